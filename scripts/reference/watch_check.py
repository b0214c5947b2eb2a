"""The model-version watch's statistics by SciPy and NumPy, for crates/review/tests/watch.rs.

    python watch_check.py INPUT.json

INPUT: {"previous": [scores], "current": [scores], "kept": [[k, n], [k, n]]}. Prints JSON:
the two-sample Kolmogorov-Smirnov D (scipy.stats.ks_2samp) and its p-value from Kolmogorov's
limiting distribution (scipy.stats.kstwobign; ks_2samp's own p beside it), the PSI over
the previous version's deciles (the rule docs/model-watch.md states, in NumPy), and Wilson
95% intervals of each kept rate (scipy.stats.binomtest(...).proportion_ci("wilson")).
"""

import json
import sys

import numpy as np
import scipy
from scipy import stats


def psi(reference, current):
    r = np.sort(np.asarray(reference, dtype=float))
    edges = np.unique([r[min(q * len(r) // 10, len(r) - 1)] for q in range(1, 10)])

    def share(values):
        bins = np.searchsorted(edges, np.asarray(values, dtype=float), side="right")
        counts = np.bincount(bins, minlength=len(edges) + 1)
        return np.maximum(counts / len(values), 1e-4)

    p, q = share(reference), share(current)
    return float(np.sum((q - p) * np.log(q / p)))


def main():
    data = json.loads(open(sys.argv[1]).read())
    ks = stats.ks_2samp(data["previous"], data["current"], method="asymp")
    m, n = len(data["previous"]), len(data["current"])
    # Kolmogorov's limiting distribution at sqrt(mn/(m+n)) D (what Dokuei reports); ks_2samp's
    # own "asymp" p uses the finite-n distribution at n = round(mn/(m+n)), given beside it.
    limit_p = stats.kstwobign.sf(np.sqrt(m * n / (m + n)) * ks.statistic)
    wilson = []
    for k, n in data["kept"]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        wilson.append([ci.low, ci.high])
    print(json.dumps({
        "scipy": scipy.__version__,
        "ks_d": float(ks.statistic),
        "ks_p": float(limit_p),
        "ks_2samp_p": float(ks.pvalue),
        "psi": psi(data["previous"], data["current"]),
        "wilson": wilson,
    }))


if __name__ == "__main__":
    main()
