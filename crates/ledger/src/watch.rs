//! The model-version watch: per model and version, the distribution of the scores its findings
//! were shown with and how physicians decided on them (with 95% intervals); and, when a version
//! follows another of the same model, how far the scores shifted (PSI, two-sample
//! Kolmogorov–Smirnov) and how much agreement changed (difference with Newcombe's interval),
//! with an alert when a shift passes the thresholds QA set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::{Ledger, LedgerError};

/// The effective decision on finding `f` (the latest that no later decision supersedes).
const EFFECTIVE_ACTION: &str = "(SELECT d.action FROM decisions d
     WHERE d.finding_id = f.id
       AND d.id NOT IN (SELECT supersedes_id FROM decisions WHERE supersedes_id IS NOT NULL)
     ORDER BY d.seq DESC LIMIT 1)";

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its Wilson 95% interval (or a difference with Newcombe's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Wilson's score interval for `k` of `n` (n = 0 gives 0 in [0, 1]).
pub fn wilson(k: u64, n: u64) -> Interval {
    if n == 0 {
        return Interval {
            value: 0.0,
            low: 0.0,
            high: 1.0,
        };
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Interval {
        value: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

/// The difference `a − b` of two independent proportions with Newcombe's hybrid score
/// interval (his method 10, from the two Wilson intervals).
pub fn newcombe(a: (u64, u64), b: (u64, u64)) -> Interval {
    let (wa, wb) = (wilson(a.0, a.1), wilson(b.0, b.1));
    let d = wa.value - wb.value;
    Interval {
        value: d,
        low: d - ((wa.value - wa.low).powi(2) + (wb.high - wb.value).powi(2)).sqrt(),
        high: d + ((wa.high - wa.value).powi(2) + (wb.value - wb.low).powi(2)).sqrt(),
    }
}

/// The two-sample Kolmogorov–Smirnov statistic D and its asymptotic p-value: Kolmogorov's
/// limiting distribution at √(mn/(m+n))·D (SciPy's `kstwobign`; SciPy's `ks_2samp` uses the
/// finite-n distribution instead, a little smaller for small samples).
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (m, n) = (a.len(), b.len());
    let (mut i, mut j) = (0, 0);
    let mut d: f64 = 0.0;
    while i < m && j < n {
        let x = a[i].min(b[j]);
        while i < m && a[i] <= x {
            i += 1;
        }
        while j < n && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / m as f64 - j as f64 / n as f64).abs());
    }
    let en = (m * n) as f64 / (m + n) as f64;
    Some((d, kolmogorov_sf(en.sqrt() * d)))
}

/// P(K > x) for the Kolmogorov distribution.
fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.18 {
        // The form that converges fast for small x: 1 − √(2π)/x Σ exp(−(2k−1)²π²/(8x²)).
        let t = -std::f64::consts::PI.powi(2) / (8.0 * x * x);
        let s: f64 = (1..=8)
            .map(|k| ((2 * k - 1) as f64).powi(2))
            .map(|w| (w * t).exp())
            .sum();
        return (1.0 - (2.0 * std::f64::consts::PI).sqrt() / x * s).clamp(0.0, 1.0);
    }
    let s: f64 = (1..=100)
        .map(|k| {
            let sign = if k % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * (k * k) as f64 * x * x).exp()
        })
        .sum();
    (2.0 * s).clamp(0.0, 1.0)
}

/// The population stability index of `current` against `reference`, over up to ten bins at
/// the reference's deciles (bins that hold no reference or no current value get 0.0001 of the
/// mass, so one empty bin does not make the index infinite).
pub fn psi(reference: &[f64], current: &[f64]) -> Option<f64> {
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let mut r = reference.to_vec();
    r.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..10)
        .map(|q| r[(q * r.len() / 10).min(r.len() - 1)])
        .collect();
    edges.dedup();
    let bin = |x: f64| edges.partition_point(|&e| e <= x);
    let share = |values: &[f64]| {
        let mut counts = vec![0usize; edges.len() + 1];
        for &v in values {
            counts[bin(v)] += 1;
        }
        counts
            .into_iter()
            .map(|c| (c as f64 / values.len() as f64).max(1e-4))
            .collect::<Vec<_>>()
    };
    let (p, q) = (share(reference), share(current));
    Some(
        p.iter()
            .zip(&q)
            .map(|(&p, &q)| (q - p) * (q / p).ln())
            .sum(),
    )
}

/// One model version as physicians met it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct VersionWatch {
    pub model_id: String,
    pub model_version: String,
    /// Run in shadow (beside the version readers saw; its findings never shown).
    pub shadow: bool,
    /// For a shadow version: the version it ran beside (the one it ran beside most often).
    pub shadowed_version: Option<String>,
    /// First and last analysis (UTC).
    pub first_seen: String,
    pub last_seen: String,
    #[specta(type = f64)]
    pub analyses: u64,
    /// AI findings shown, and their scores (in ledger order; findings without a score, such as
    /// imported ones that gave no probability, are left out of the scores).
    #[specta(type = f64)]
    pub findings: u64,
    pub scores: Vec<f64>,
    pub score_median: Option<f64>,
    /// Counts of scores in twenty bins of width 0.05 over [0, 1].
    pub histogram: Vec<u32>,
    #[specta(type = f64)]
    pub confirmed: u64,
    #[specta(type = f64)]
    pub edited: u64,
    #[specta(type = f64)]
    pub rejected: u64,
    /// Findings without a decision (runs replaced by a later one, studies not yet read).
    #[specta(type = f64)]
    pub undecided: u64,
    pub confirm_rate: Interval,
    pub edit_rate: Interval,
    pub reject_rate: Interval,
    /// Confirmed or edited: the findings physicians kept.
    pub kept_rate: Interval,
}

/// What QA set: when a new version's shift raises an alert.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct WatchThresholds {
    /// PSI above this alerts (0.1 is usually read as a moderate shift, 0.25 as a large one).
    pub psi: f64,
    /// A KS p-value below this alerts.
    pub ks_p: f64,
    /// A drop in the kept rate of at least this much, with its interval wholly below zero,
    /// alerts.
    pub agreement_drop: f64,
    /// Fewer findings than this in either version: the comparison is shown, never alerts.
    pub min_findings: u32,
}

impl Default for WatchThresholds {
    fn default() -> Self {
        WatchThresholds {
            psi: 0.2,
            ks_p: 0.01,
            agreement_drop: 0.05,
            min_findings: 20,
        }
    }
}

/// A version against the one before it (of the same model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct VersionComparison {
    pub model_id: String,
    pub previous: String,
    pub current: String,
    pub psi: Option<f64>,
    pub ks_d: Option<f64>,
    pub ks_p: Option<f64>,
    /// Kept rate, current − previous.
    pub kept_difference: Interval,
    pub alert: bool,
    /// Why it alerts, or why it cannot.
    pub reasons: Vec<String>,
    /// A shadow version against the version readers saw, on the same signed-off studies.
    pub shadow: Option<ShadowMatch>,
}

/// How a shadow version's findings compare with what readers decided on the version they
/// saw, on the same stacks of signed-off studies. A finding matches a kept one (confirmed,
/// edited or added by a reader) of the same label when their slices overlap and their boxes'
/// intersection over union is at least 0.1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct ShadowMatch {
    /// Shadow runs beside a signed-off study's analysis.
    pub runs: u32,
    pub shadow_findings: u32,
    pub kept_findings: u32,
    /// Shadow findings that match a kept finding: the share a reader would likely have kept.
    pub shadow_precision: Interval,
    /// Kept findings a shadow finding matches.
    pub shadow_sensitivity: Interval,
    /// The same two for the version readers saw, on the same studies.
    pub current_precision: Interval,
    pub current_sensitivity: Interval,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Watch {
    /// Versions by model, each model's in the order they first ran.
    pub versions: Vec<VersionWatch>,
    pub comparisons: Vec<VersionComparison>,
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Compares `current` with `previous` under `t`.
pub fn compare(
    previous: &VersionWatch,
    current: &VersionWatch,
    t: &WatchThresholds,
) -> VersionComparison {
    let psi = psi(&previous.scores, &current.scores);
    let ks = ks_two_sample(&previous.scores, &current.scores);
    let decided = |v: &VersionWatch| v.confirmed + v.edited + v.rejected;
    let kept = |v: &VersionWatch| (v.confirmed + v.edited, decided(v));
    let kept_difference = newcombe(kept(current), kept(previous));
    // What alerts, and what keeps a comparison from judging.
    let (mut alerts, mut notes) = (Vec::new(), Vec::new());
    let few = previous.scores.len().min(current.scores.len()) < t.min_findings as usize;
    if few {
        notes.push(format!(
            "too few scored findings to judge a shift ({} and {}; at least {} each)",
            previous.scores.len(),
            current.scores.len(),
            t.min_findings
        ));
    } else {
        if let Some(p) = psi.filter(|&p| p > t.psi) {
            alerts.push(format!("score shift: PSI {p:.3} > {}", t.psi));
        }
        if let Some((d, p)) = ks.filter(|&(_, p)| p < t.ks_p) {
            alerts.push(format!(
                "score distribution differs: KS D {d:.3}, p {p:.2e} < {}",
                t.ks_p
            ));
        }
    }
    let too_few_decided = decided(previous).min(decided(current)) < u64::from(t.min_findings);
    if !too_few_decided && kept_difference.high < 0.0 && -kept_difference.value >= t.agreement_drop
    {
        alerts.push(format!(
            "physicians keep fewer findings: {:+.1} points (95% CI {:+.1} to {:+.1})",
            100.0 * kept_difference.value,
            100.0 * kept_difference.low,
            100.0 * kept_difference.high
        ));
    }
    let alert = !alerts.is_empty();
    notes.extend(alerts);
    VersionComparison {
        model_id: current.model_id.clone(),
        previous: previous.model_version.clone(),
        current: current.model_version.clone(),
        psi,
        ks_d: ks.map(|k| k.0),
        ks_p: ks.map(|k| k.1),
        kept_difference,
        alert,
        reasons: notes,
        shadow: None,
    }
}

impl Ledger {
    /// The watch over every model (or `model_id`'s versions): each version's scores and
    /// decisions, and each version against the one before it.
    pub fn watch(
        &self,
        model_id: Option<&str>,
        thresholds: &WatchThresholds,
    ) -> Result<Watch, LedgerError> {
        // Each AI finding with its effective decision (the latest not superseded).
        let sql = format!(
            "SELECT a.model_id, a.model_version, a.id, a.finished_at, f.score, {EFFECTIVE_ACTION},
                    (SELECT p.model_version FROM shadow_analyses sh
                     JOIN analyses p ON p.id = sh.shadows_analysis_id
                     WHERE sh.analysis_id = a.id),
                    f.id
             FROM analyses a LEFT JOIN findings f ON f.analysis_id = a.id
             WHERE (?1 IS NULL OR a.model_id = ?1)
             ORDER BY a.seq, f.seq"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.read_err(e))?;
        let mut rows = stmt.query([model_id]).map_err(|e| self.read_err(e))?;
        type Seen = (
            VersionWatch,
            std::collections::BTreeSet<i64>,
            BTreeMap<String, u32>,
        );
        let mut by: BTreeMap<(String, String, bool), Seen> = BTreeMap::new();
        while let Some(row) = rows.next().map_err(|e| self.read_err(e))? {
            let get = |i: usize| row.get::<_, String>(i).map_err(|e| self.read_err(e));
            let (model, version) = (get(0)?, get(1)?);
            let analysis: i64 = row.get(2).map_err(|e| self.read_err(e))?;
            let finished = get(3)?;
            let score: Option<f64> = row.get(4).map_err(|e| self.read_err(e))?;
            let action: Option<String> = row.get(5).map_err(|e| self.read_err(e))?;
            let shadowed: Option<String> = row.get(6).map_err(|e| self.read_err(e))?;
            let finding: Option<i64> = row.get(7).map_err(|e| self.read_err(e))?;
            let (v, analyses, beside) = by
                .entry((model.clone(), version.clone(), shadowed.is_some()))
                .or_insert_with(|| {
                    (
                        VersionWatch {
                            model_id: model,
                            model_version: version,
                            shadow: shadowed.is_some(),
                            first_seen: finished.clone(),
                            last_seen: finished.clone(),
                            histogram: vec![0; 20],
                            ..VersionWatch::default()
                        },
                        Default::default(),
                        BTreeMap::new(),
                    )
                });
            if analyses.insert(analysis)
                && let Some(s) = shadowed
            {
                *beside.entry(s).or_default() += 1;
            }
            if finished < v.first_seen {
                v.first_seen = finished.clone();
            }
            if finished > v.last_seen {
                v.last_seen = finished;
            }
            // An analysis that found nothing counts as a run, with no finding.
            if finding.is_none() {
                continue;
            }
            v.findings += 1;
            // Imported findings without a probability are stored with a negative score.
            if let Some(s) = score.filter(|s| s.is_finite() && *s >= 0.0) {
                v.scores.push(s);
                v.histogram[((s.clamp(0.0, 1.0) * 20.0) as usize).min(19)] += 1;
            }
            match action.as_deref() {
                Some("confirm") => v.confirmed += 1,
                Some("edit") => v.edited += 1,
                Some("reject") => v.rejected += 1,
                _ => v.undecided += 1,
            }
        }
        let mut versions: Vec<VersionWatch> = by
            .into_values()
            .map(|(mut v, analyses, beside)| {
                v.analyses = analyses.len() as u64;
                v.shadowed_version = beside
                    .into_iter()
                    .max_by_key(|(_, n)| *n)
                    .map(|(version, _)| version);
                let mut sorted = v.scores.clone();
                sorted.sort_by(f64::total_cmp);
                v.score_median = median(&sorted);
                let decided = v.confirmed + v.edited + v.rejected;
                v.confirm_rate = wilson(v.confirmed, decided);
                v.edit_rate = wilson(v.edited, decided);
                v.reject_rate = wilson(v.rejected, decided);
                v.kept_rate = wilson(v.confirmed + v.edited, decided);
                v
            })
            .collect();
        versions.sort_by(|a, b| {
            (a.model_id.as_str(), a.shadow, a.first_seen.as_str()).cmp(&(
                b.model_id.as_str(),
                b.shadow,
                b.first_seen.as_str(),
            ))
        });
        let seen: Vec<&VersionWatch> = versions.iter().filter(|v| !v.shadow).collect();
        let mut comparisons: Vec<VersionComparison> = seen
            .windows(2)
            .filter(|w| w[0].model_id == w[1].model_id)
            .map(|w| compare(w[0], w[1], thresholds))
            .collect();
        for s in versions.iter().filter(|v| v.shadow) {
            let Some(current) = seen.iter().find(|v| {
                v.model_id == s.model_id && Some(&v.model_version) == s.shadowed_version.as_ref()
            }) else {
                continue;
            };
            let mut c = compare(current, s, thresholds);
            // A shadow version has no decisions of its own: its agreement is estimated below.
            c.kept_difference = Interval::default();
            let m = self.shadow_match(&s.model_id, &s.model_version)?;
            if m.runs > 0 {
                let d = m.shadow_precision.value - m.current_precision.value;
                if m.shadow_findings.min(m.kept_findings) >= thresholds.min_findings
                    && d <= -thresholds.agreement_drop
                    && m.shadow_precision.high < m.current_precision.low
                {
                    c.alert = true;
                    c.reasons.push(format!(
                        "in shadow, readers would likely keep fewer findings: {:.0}% against {:.0}%",
                        100.0 * m.shadow_precision.value,
                        100.0 * m.current_precision.value
                    ));
                }
            }
            c.shadow = Some(m);
            comparisons.push(c);
        }
        Ok(Watch {
            versions,
            comparisons,
        })
    }
}

/// A finding's place: its box (columns and rows, inclusive) and slices.
type Region = ([f64; 4], [f64; 2]);

fn region(json: &str) -> Option<Region> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let n = |a: &serde_json::Value, i: usize| a.get(i).and_then(serde_json::Value::as_f64);
    let b = v.get("box")?;
    let s = v.get("slices")?;
    Some((
        [n(b, 0)?, n(b, 1)?, n(b, 2)?, n(b, 3)?],
        [n(s, 0)?, n(s, 1)?],
    ))
}

/// Same label, overlapping slices, and boxes with an intersection over union of 0.1 or more.
fn matches(a: &(String, Region), b: &(String, Region)) -> bool {
    let ((la, (ba, sa)), (lb, (bb, sb))) = (a, b);
    if la != lb || sa[0] > sb[1] || sb[0] > sa[1] {
        return false;
    }
    let area = |r: [f64; 4]| ((r[2] - r[0] + 1.0).max(0.0)) * ((r[3] - r[1] + 1.0).max(0.0));
    let inter = area([
        ba[0].max(bb[0]),
        ba[1].max(bb[1]),
        ba[2].min(bb[2]),
        ba[3].min(bb[3]),
    ]);
    let union = area(*ba) + area(*bb) - inter;
    union > 0.0 && inter / union >= 0.1
}

impl Ledger {
    /// A shadow version's findings against what readers kept of the version they saw, over
    /// the shadow runs beside signed-off studies' analyses.
    fn shadow_match(&self, model_id: &str, version: &str) -> Result<ShadowMatch, LedgerError> {
        let pairs: Vec<(i64, i64, i64)> = self.rows(
            "SELECT sh.analysis_id, sh.shadows_analysis_id, p.study_id
             FROM shadow_analyses sh
             JOIN analyses s ON s.id = sh.analysis_id
             JOIN analyses p ON p.id = sh.shadows_analysis_id
             WHERE s.model_id = ?1 AND s.model_version = ?2
               AND p.study_id IN (SELECT study_id FROM sign_offs)
             ORDER BY sh.id",
            rusqlite::params![model_id, version],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut m = ShadowMatch::default();
        let (mut shadow_n, mut shadow_hit, mut kept_n, mut kept_hit) = (0u64, 0u64, 0u64, 0u64);
        let (mut ai_decided, mut ai_kept, mut added_n) = (0u64, 0u64, 0u64);
        let mut adds_counted: std::collections::BTreeSet<i64> = Default::default();
        for (shadow, seen, study) in pairs {
            m.runs += 1;
            let shadow_findings: Vec<(String, Region)> = self
                .rows(
                    "SELECT label, geometry_json FROM findings WHERE analysis_id = ?1",
                    [shadow],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )?
                .into_iter()
                .filter_map(|(l, g)| Some((l, region(&g)?)))
                .collect();
            let sql = format!(
                "SELECT f.label, f.geometry_json, {EFFECTIVE_ACTION},
                        (SELECT d.geometry_json FROM decisions d WHERE d.finding_id = f.id
                           AND d.id NOT IN (SELECT supersedes_id FROM decisions
                                            WHERE supersedes_id IS NOT NULL)
                         ORDER BY d.seq DESC LIMIT 1)
                 FROM findings f WHERE f.analysis_id = ?1"
            );
            let seen_findings: Vec<(String, String, Option<String>, Option<String>)> =
                self.rows(&sql, [seen], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
            let mut kept: Vec<(String, Region)> = Vec::new();
            for (label, geometry, action, edited) in seen_findings {
                let placed = match action.as_deref() {
                    Some("confirm") => region(&geometry),
                    Some("edit") => edited.as_deref().and_then(region).or(region(&geometry)),
                    Some(_) => {
                        ai_decided += 1;
                        continue;
                    }
                    None => continue,
                };
                ai_decided += 1;
                ai_kept += 1;
                if let Some(r) = placed {
                    kept.push((label, r));
                }
            }
            // Findings readers added are recorded without their series: they are this stack's
            // only when the study has one analysed stack, and are counted once per study.
            let stacks: i64 = self
                .conn
                .query_row(
                    "SELECT count(DISTINCT a.series_uid || '/' || COALESCE(s.stack_index, -1))
                     FROM analyses a LEFT JOIN analysis_sources s ON s.analysis_id = a.id
                     WHERE a.study_id = ?1
                       AND a.id NOT IN (SELECT analysis_id FROM shadow_analyses)",
                    [study],
                    |r| r.get(0),
                )
                .map_err(|e| self.read_err(e))?;
            if stacks == 1 && adds_counted.insert(study) {
                let added: Vec<(String, Region)> = self
                    .rows(
                        "SELECT label, geometry_json FROM decisions
                         WHERE study_id = ?1 AND action = 'add'
                           AND id NOT IN (SELECT supersedes_id FROM decisions
                                          WHERE supersedes_id IS NOT NULL)",
                        [study],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                    )?
                    .into_iter()
                    .filter_map(|(l, g)| Some((l, region(&g)?)))
                    .collect();
                added_n += added.len() as u64;
                kept.extend(added);
            }
            shadow_n += shadow_findings.len() as u64;
            shadow_hit += shadow_findings
                .iter()
                .filter(|s| kept.iter().any(|k| matches(s, k)))
                .count() as u64;
            kept_n += kept.len() as u64;
            kept_hit += kept
                .iter()
                .filter(|k| shadow_findings.iter().any(|s| matches(s, k)))
                .count() as u64;
        }
        m.shadow_findings = shadow_n as u32;
        m.kept_findings = kept_n as u32;
        m.shadow_precision = wilson(shadow_hit, shadow_n);
        m.shadow_sensitivity = wilson(kept_hit, kept_n);
        m.current_precision = wilson(ai_kept, ai_decided);
        m.current_sensitivity = wilson(ai_kept, ai_kept + added_n);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_and_newcombe_match_newcombes_published_example() {
        // Newcombe (1998), Statistics in Medicine 17:873, Table II, example (a): 56/70 vs 48/80.
        let d = newcombe((56, 70), (48, 80));
        assert!(close(d.value, 0.2, 1e-12), "{d:?}");
        assert!(
            close(d.low, 0.0524, 5e-5) && close(d.high, 0.3339, 5e-5),
            "{d:?}"
        );
        // Wilson for 81/263 (Newcombe 1998b's example): 0.2553 to 0.3662.
        let w = wilson(81, 263);
        assert!(
            close(w.low, 0.2553, 5e-5) && close(w.high, 0.3662, 5e-5),
            "{w:?}"
        );
        assert_eq!(wilson(0, 0).high, 1.0);
    }

    #[test]
    fn ks_statistic_and_p_value_by_hand() {
        // D is the largest gap between the empirical CDFs: at 0.35, 3/4 of `a` and 0 of `b`.
        let a = [0.1, 0.2, 0.3, 0.9];
        let b = [0.4, 0.5, 0.6, 0.7, 0.8];
        let (d, p) = ks_two_sample(&a, &b).unwrap();
        assert!(close(d, 0.75, 1e-12));
        // Q(√(20/9) · 0.75) = Q(1.118) = 0.1640 (Kolmogorov's distribution).
        assert!(close(p, 0.1640, 5e-4), "{p}");
        let same = ks_two_sample(&a, &a).unwrap();
        assert_eq!(same, (0.0, 1.0));
        // Both series of the Kolmogorov distribution agree where they meet.
        assert!(close(kolmogorov_sf(1.1799), kolmogorov_sf(1.18), 1e-4));
    }

    #[test]
    fn psi_is_zero_for_the_same_scores_and_grows_with_a_shift() {
        let reference: Vec<f64> = (0..200).map(|i| 0.5 + f64::from(i) / 400.0).collect();
        assert!(close(psi(&reference, &reference).unwrap(), 0.0, 1e-12));
        let shifted: Vec<f64> = reference.iter().map(|s| (s + 0.1).min(1.0)).collect();
        let small: Vec<f64> = reference.iter().map(|s| (s + 0.01).min(1.0)).collect();
        let (big, little) = (
            psi(&reference, &shifted).unwrap(),
            psi(&reference, &small).unwrap(),
        );
        assert!(big > 0.25 && little < 0.1 && little > 0.0, "{big} {little}");
    }

    #[test]
    fn comparisons_alert_on_a_shift_and_stay_quiet_on_few_findings() {
        let version = |v: &str, scores: Vec<f64>, kept: u64, decided: u64| VersionWatch {
            model_id: "m".into(),
            model_version: v.into(),
            scores,
            confirmed: kept,
            rejected: decided - kept,
            ..VersionWatch::default()
        };
        let t = WatchThresholds::default();
        let base: Vec<f64> = (0..100).map(|i| 0.5 + f64::from(i) / 200.0).collect();
        let up: Vec<f64> = base.iter().map(|s| (s + 0.2).min(1.0)).collect();
        let c = compare(
            &version("1", base.clone(), 80, 100),
            &version("2", up, 60, 100),
            &t,
        );
        assert!(c.alert, "{c:?}");
        assert_eq!(c.reasons.len(), 3, "{:?}", c.reasons);
        let quiet = compare(
            &version("1", base.clone(), 80, 100),
            &version("2", base.clone(), 79, 100),
            &t,
        );
        assert!(!quiet.alert, "{quiet:?}");
        let few = compare(
            &version("1", base[..5].to_vec(), 4, 5),
            &version("2", vec![0.99; 5], 1, 5),
            &t,
        );
        assert!(
            !few.alert && few.reasons[0].starts_with("too few"),
            "{few:?}"
        );
    }
}
