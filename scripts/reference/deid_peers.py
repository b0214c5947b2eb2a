#!/usr/bin/env python3
"""De-identification peers: Orthanc's anonymiser (Debian orthanc, REST /anonymize, started on
loopback) and dicognito (PyPI) on the same files as Dokuei.

compare: classifies, for every attribute an input has with a value (at any depth, by keyword
path), what each tool did to it (kept, removed, emptied, replaced) and lists where Orthanc or
dicognito differs from Dokuei. Every difference must be listed, with the same classes, in the
comparison table of docs/deidentification.md; the command exits 1 naming any that is not.
`--update` rewrites the table's class columns and keeps the written reasons.

    python deid_peers.py compare --map MAP.json --docs docs/deidentification.md [--update]

MAP.json: [{"input": PATH, "output": PATH}] (Dokuei's output for each input).

bench: de-identifies a synthetic 300-slice 512x512 CT with Dokuei (`dokuei deid`), dicognito
(its command line) and Orthanc (POST /studies/{id}/anonymize, server side: upload and download
not timed); best of N rounds; prints times and ratios.

    python deid_peers.py bench --dokuei PATH [--slices 300] [--size 512] [--rounds 3]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from pacs_bench import free_port, make_ct, wait_port  # noqa: E402

import pydicom  # noqa: E402


class Orthanc:
    """Orthanc on loopback with a throw-away storage folder, no authentication."""

    def __init__(self, work: Path):
        self.http = free_port()
        dicom = free_port()
        storage = work / "orthanc"
        cfg = work / "orthanc.json"
        cfg.write_text(json.dumps({
            "Name": "deid-peer", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "HttpPort": self.http, "DicomPort": dicom, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "StableAge": 1,
        }))
        self.proc = subprocess.Popen(["/usr/sbin/Orthanc", str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=open(work / "orthanc.log", "wb"))
        wait_port(self.http, self.proc, "Orthanc")

    def call(self, method, path, body=None, raw=False):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=600) as r:
            out = r.read()
        return out if raw else json.loads(out)

    def upload(self, path: Path):
        return self.call("POST", "/instances", path.read_bytes())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


# Orthanc 1.10's newest profile edition; it applies the Basic Profile of that edition.
ORTHANC_EDITION = "2021b"


def orthanc_anonymize(orthanc: Orthanc, src: Path, dst: Path):
    up = orthanc.upload(src)
    data = orthanc.call("POST", f"/instances/{up['ID']}/anonymize",
                        {"Force": True, "DicomVersion": ORTHANC_EDITION}, raw=True)
    dst.write_bytes(data)


def part10(src: Path, scratch: Path) -> Path:
    """The file itself, or (for a bare data set without a meta group, which Orthanc refuses) a
    Part 10 copy of it in `scratch`."""
    ds = pydicom.dcmread(src, force=True)
    if "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
        return src
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ImplicitVRLittleEndian
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(scratch, enforce_file_format=True)
    return scratch


def dicognito_anonymize(anonymizer, src: Path, dst: Path):
    ds = pydicom.dcmread(src)
    anonymizer.anonymize(ds)
    ds.save_as(dst)


def name(elem):
    if elem.tag.is_private:
        return "(private)"
    return elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"


def values(ds, prefix=""):
    """{keyword path: value} for every element ("" when empty; a sequence by its item count),
    items flattened by position."""
    out = {}
    for elem in ds:
        if elem.tag.group == 0x0002:
            continue
        key = prefix + name(elem)
        if elem.VR == "SQ":
            out.setdefault(key, f"(sequence of {len(elem.value)})")
            for i, item in enumerate(elem.value):
                out.update(values(item, f"{key}[{i}]."))
        elif elem.value in (None, "", b"") or elem.VM == 0:
            out.setdefault(key, "")
        else:
            try:
                out.setdefault(key, str(elem.value)[:200])
            except Exception:
                out.setdefault(key, "(value)")
    return out


def strip_index(path):
    """The path without item positions, nested content sequences folded into one level (a
    report's tree is handled the same at every depth)."""
    path = re.sub(r"\[\d+\]", "", path)
    return re.sub(r"(ContentSequence\.)+", "ContentSequence.", path)


def classify(before, after):
    """{keyword path without item indices: set of classes} over every input value."""
    got = {}
    for key, value in before.items():
        if value in ("", "(sequence of 0)"):
            continue
        if key not in after:
            c = "removed"
        elif after[key] in ("", "(sequence of 0)"):
            c = "emptied"
        elif after[key] == value:
            c = "kept"
        else:
            c = "replaced"
        got.setdefault(strip_index(key), set()).add(c)
    return got


def table_rows(docs: Path):
    text = docs.read_text()
    start, end = text.index("<!-- comparison:start -->"), text.index("<!-- comparison:end -->")
    rows = {}
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("Attribute", "---") and not cells[0].startswith("-"):
            rows[cells[0].strip("`")] = cells
    return text, start, end, rows


def compare(a):
    pairs = json.loads(Path(a.map).read_text())
    work = Path(tempfile.mkdtemp(prefix="dokuei-deid-peers-"))
    orthanc = Orthanc(work)
    from dicognito.anonymizer import Anonymizer
    anonymizer = Anonymizer(seed="dokuei-comparison")
    seen = {}
    try:
        for n, pair in enumerate(pairs):
            src = part10(Path(pair["input"]), work / f"input-{n}.dcm")
            before = values(pydicom.dcmread(src))
            results = {"Dokuei": Path(pair["output"])}
            results["Orthanc"] = work / f"orthanc-{n}.dcm"
            orthanc_anonymize(orthanc, src, results["Orthanc"])
            results["dicognito"] = work / f"dicognito-{n}.dcm"
            dicognito_anonymize(anonymizer, src, results["dicognito"])
            classes = {tool: classify(before, values(pydicom.dcmread(p))) for tool, p in results.items()}
            for key in classes["Dokuei"]:
                row = seen.setdefault(key, {"Dokuei": set(), "Orthanc": set(), "dicognito": set()})
                for tool in row:
                    row[tool] |= classes[tool].get(key, set())
    finally:
        orthanc.stop()
        shutil.rmtree(work, ignore_errors=True)

    differences = {}
    for key, row in sorted(seen.items()):
        if row["Orthanc"] != row["Dokuei"] or row["dicognito"] != row["Dokuei"]:
            differences[key] = {t: "/".join(sorted(c)) for t, c in row.items()}
    print(f"{len(pairs)} files, {len(seen)} attribute paths with a value, "
          f"{len(differences)} handled differently by a peer")

    docs = Path(a.docs)
    text, start, end, rows = table_rows(docs)
    if a.update:
        lines = ["<!-- comparison:start -->", "",
                 "| Attribute | Dokuei | Orthanc | dicognito | Why |", "|---|---|---|---|---|"]
        for key, d in differences.items():
            why = rows.get(key, [""] * 5)[4] or "TODO"
            lines.append(f"| `{key}` | {d['Dokuei']} | {d['Orthanc']} | {d['dicognito']} | {why} |")
        lines.append("")
        docs.write_text(text[:start] + "\n".join(lines) + text[end:])
        print(f"rewrote the table in {docs}")
        return 0
    problems = []
    for key, d in differences.items():
        row = rows.get(key)
        want = [d["Dokuei"], d["Orthanc"], d["dicognito"]]
        if row is None:
            problems.append(f"{key}: not in the table ({want})")
        elif row[1:4] != want:
            problems.append(f"{key}: the table says {row[1:4]}, measured {want}")
        elif not row[4] or row[4] == "TODO":
            problems.append(f"{key}: no reason given")
    for key in rows:
        if key not in differences:
            problems.append(f"{key}: in the table but no longer a difference")
    for p in problems:
        print("undocumented:", p)
    return 1 if problems else 0


def bench(a):
    work = Path(tempfile.mkdtemp(prefix="dokuei-bench-deid-"))
    try:
        ct = work / "ct"
        study = make_ct(ct, a.slices, a.size, 1)
        size_mb = sum(f.stat().st_size for f in ct.iterdir()) / 1e6
        orthanc = Orthanc(work)
        try:
            for f in sorted(ct.iterdir()):
                orthanc.upload(f)
            study_id = orthanc.call("POST", "/tools/lookup", study.encode())[0]["ID"]

            # Each tool writes into a fresh folder; removing the last round's is not timed.
            def dokuei():
                out = work / "dokuei-out"
                led = work / "ledger" / "ledger.sqlite3"
                r = subprocess.run([a.dokuei, "deid", str(ct), "-o", str(out), "--ledger", str(led)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if r.returncode:
                    sys.exit(r.stderr.decode())

            def dicognito():
                out = work / "dicognito-out"
                r = subprocess.run([sys.executable, "-m", "dicognito", "-o", str(out), "--quiet", str(ct)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if r.returncode:
                    sys.exit(r.stderr.decode())

            def copy():
                # The floor: the same bytes copied file to file by cp (copy_file_range).
                r = subprocess.run(["cp", "-r", str(ct), str(work / "cp-out")])
                if r.returncode:
                    sys.exit("cp failed")

            made = []

            def orthanc_anonymize_study():
                r = orthanc.call("POST", f"/studies/{study_id}/anonymize",
                                 {"Force": True, "DicomVersion": ORTHANC_EDITION, "Synchronous": True})
                made.append(r["ID"])

            tools = {"Dokuei": dokuei, "dicognito": dicognito, "Orthanc /anonymize": orthanc_anonymize_study,
                     "cp -r (copy only)": copy}
            best = {t: float("inf") for t in tools}
            for _ in range(a.rounds):
                for t, fn in tools.items():
                    for old in ("dokuei-out", "dicognito-out", "cp-out"):
                        shutil.rmtree(work / old, ignore_errors=True)
                    subprocess.run(["sync"])
                    start = time.perf_counter()
                    fn()
                    best[t] = min(best[t], time.perf_counter() - start)
                    for made_id in made:
                        orthanc.call("DELETE", f"/studies/{made_id}")
                    made.clear()
        finally:
            orthanc.stop()
        print(f"de-identify a {a.slices}-slice {a.size}x{a.size} CT ({size_mb:.0f} MB), best of {a.rounds}:")
        for t, s in best.items():
            print(f"  {t:<20} {s:7.2f} s  {a.slices / s:7.0f} slices/s")
        faster_peer = min(best["dicognito"], best["Orthanc /anonymize"])
        print(f"  Dokuei vs dicognito: {best['dicognito'] / best['Dokuei']:.1f}x, "
              f"vs Orthanc: {best['Orthanc /anonymize'] / best['Dokuei']:.1f}x, "
              f"vs the faster peer: {faster_peer / best['Dokuei']:.1f}x (target >= 10x)")
        floor = best["cp -r (copy only)"]
        print(f"  copying the files alone (cp -r): {floor:.2f} s; Dokuei takes {best['Dokuei'] / floor:.2f}x that, "
              f"and the faster peer is {faster_peer / floor:.1f}x the copy")
        if a.json:
            Path(a.json).write_text(json.dumps(best, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--map", required=True)
    c.add_argument("--docs", required=True)
    c.add_argument("--update", action="store_true")
    b = sub.add_parser("bench")
    b.add_argument("--dokuei", required=True)
    b.add_argument("--slices", type=int, default=300)
    b.add_argument("--size", type=int, default=512)
    b.add_argument("--rounds", type=int, default=3)
    b.add_argument("--json")
    a = ap.parse_args()
    return compare(a) if a.cmd == "compare" else bench(a)


if __name__ == "__main__":
    sys.exit(main())
