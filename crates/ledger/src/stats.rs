//! Agreement between physicians and each model version: what QA follows after a model changes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::export::DECISION_JOIN;
use crate::store::{Ledger, LedgerError};

/// How physicians decided on one model version's findings of one label. Only each finding's
/// effective decision counts (a superseded decision is replaced by its correction).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Agreement {
    pub model_id: String,
    pub model_version: String,
    pub label: String,
    pub confirmed: u64,
    pub edited: u64,
    pub rejected: u64,
    /// Findings added by readers: what the model missed.
    pub added: u64,
    /// Reject reasons and how often each was given.
    pub reject_reasons: BTreeMap<String, u64>,
    /// Median seconds from a finding being shown to its decision.
    pub median_seconds_to_decision: Option<f64>,
    /// Mean intersection-over-union of the AI box and the edited box, for edited box findings.
    pub mean_edit_box_iou: Option<f64>,
}

impl Agreement {
    /// Decisions on AI findings (confirm + edit + reject).
    pub fn decided(&self) -> u64 {
        self.confirmed + self.edited + self.rejected
    }

    /// Fraction of decided AI findings, 0 when there are none.
    pub fn rate(&self, n: u64) -> f64 {
        if self.decided() == 0 {
            0.0
        } else {
            n as f64 / self.decided() as f64
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub agreement: Vec<Agreement>,
    /// Sign-offs per UTC day (`YYYY-MM-DD`).
    pub sign_offs_per_day: Vec<(String, u64)>,
}

/// An agreement being counted, with the decision times and edit IoUs seen so far.
type Group = (Agreement, Vec<f64>, Vec<f64>);

impl Ledger {
    /// Agreement per model version and label (optionally for one model), and sign-offs per day.
    pub fn stats(&self, model_id: Option<&str>) -> Result<Stats, LedgerError> {
        let sql = format!(
            "SELECT COALESCE(a.model_id, ''), COALESCE(a.model_version, ''), COALESCE(f.label, d.label),
                    d.action, COALESCE(d.reject_reason, ''), f.shown_at, d.recorded_at,
                    COALESCE(f.geometry_json, ''), d.geometry_json
             {DECISION_JOIN}
             WHERE d.id NOT IN (SELECT supersedes_id FROM decisions WHERE supersedes_id IS NOT NULL)
               AND (?1 IS NULL OR a.model_id = ?1)
             ORDER BY d.seq"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.read_err(e))?;
        let mut rows = stmt.query([model_id]).map_err(|e| self.read_err(e))?;
        let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
        while let Some(row) = rows.next().map_err(|e| self.read_err(e))? {
            let get = |i: usize| row.get::<_, String>(i).map_err(|e| self.read_err(e));
            let key = (get(0)?, get(1)?, get(2)?);
            let (action, reason) = (get(3)?, get(4)?);
            let shown_at: Option<String> = row.get(5).map_err(|e| self.read_err(e))?;
            let decided_at = get(6)?;
            let (ai_geometry, edited_geometry) = (get(7)?, get(8)?);
            let (agreement, times, ious) = groups.entry(key.clone()).or_insert_with(|| {
                (
                    Agreement {
                        model_id: key.0.clone(),
                        model_version: key.1.clone(),
                        label: key.2.clone(),
                        ..Agreement::default()
                    },
                    Vec::new(),
                    Vec::new(),
                )
            });
            match action.as_str() {
                "confirm" => agreement.confirmed += 1,
                "edit" => {
                    agreement.edited += 1;
                    if let (Some(a), Some(b)) = (json_box(&ai_geometry), json_box(&edited_geometry))
                    {
                        ious.push(box_iou(a, b));
                    }
                }
                "reject" => {
                    agreement.rejected += 1;
                    *agreement.reject_reasons.entry(reason).or_default() += 1;
                }
                _ => agreement.added += 1,
            }
            if let Some(seconds) = shown_at
                .as_deref()
                .and_then(|s| seconds_between(s, &decided_at))
            {
                times.push(seconds);
            }
        }
        let agreement = groups
            .into_values()
            .map(|(mut a, mut times, ious)| {
                a.median_seconds_to_decision = median(&mut times);
                a.mean_edit_box_iou =
                    (!ious.is_empty()).then(|| ious.iter().sum::<f64>() / ious.len() as f64);
                a
            })
            .collect();
        let mut stmt = self
            .conn
            .prepare("SELECT substr(recorded_at, 1, 10) AS day, count(*) FROM sign_offs GROUP BY day ORDER BY day")
            .map_err(|e| self.read_err(e))?;
        let sign_offs_per_day = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.read_err(e))?;
        Ok(Stats {
            agreement,
            sign_offs_per_day,
        })
    }
}

fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(from).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(to).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// `{"box": [x0, y0, x1, y1]}` in a geometry JSON.
fn json_box(json: &str) -> Option<[f64; 4]> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let b = v.get("box")?.as_array()?;
    let n = |i: usize| b.get(i).and_then(serde_json::Value::as_f64);
    Some([n(0)?, n(1)?, n(2)?, n(3)?])
}

fn box_iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let area = |r: [f64; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let inter = [
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    ];
    let i = area(inter);
    let u = area(a) + area(b) - i;
    if u > 0.0 { i / u } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_iou_of_identical_half_and_disjoint_boxes() {
        assert_eq!(box_iou([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]), 1.0);
        assert!((box_iou([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(box_iou([0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0]), 0.0);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
