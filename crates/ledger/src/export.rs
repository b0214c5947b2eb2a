//! QA export of decisions: CSV (RFC 4180, UTF-8, header row) and JSON Lines, streamed row by
//! row in constant memory, de-identified by default.

use std::io::Write;

use hmac::{Hmac, Mac};
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::anchor::CheckpointReason;
use crate::store::{Ledger, LedgerError};

/// The version of the exported columns; bumped when a column changes meaning or is removed.
pub const EXPORT_SCHEMA_VERSION: u32 = 1;

/// Which decisions to export (or count). Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct DecisionFilter {
    /// Inclusive, compared with the UTC timestamp (`2026-01-01` or a full RFC 3339 time).
    pub from: Option<String>,
    /// Exclusive upper bound, as `from`.
    pub to: Option<String>,
    /// Reader display name.
    pub reader: Option<String>,
    pub model_id: Option<String>,
    pub model_version: Option<String>,
    pub label: Option<String>,
    pub action: Option<String>,
    pub study_uid: Option<String>,
}

/// How identifiers leave the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifiers {
    /// Study UID and accession replaced by HMAC-SHA256 pseudonyms under this key, so rows
    /// can be joined without revealing identities (the default for exports).
    Pseudonymised { key: Vec<u8> },
    /// As recorded (the user asked for it explicitly).
    AsRecorded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

/// One exported decision, with the AI finding it was about and the model that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct ExportedDecision {
    pub schema_version: u32,
    #[specta(type = i32)]
    pub decision_id: i64,
    pub recorded_at: String,
    #[specta(type = i32)]
    pub utc_offset_minutes: i64,
    pub study: String,
    pub accession: String,
    pub modality: String,
    pub patient_key: String,
    pub reader: String,
    pub reader_role: String,
    pub action: String,
    pub label: String,
    pub reject_reason: String,
    pub reason_text: String,
    #[specta(type = Option<i32>)]
    pub supersedes_id: Option<i64>,
    #[specta(type = Option<i32>)]
    pub finding_id: Option<i64>,
    pub ai_label: String,
    pub ai_score: Option<f64>,
    pub model_id: String,
    pub model_version: String,
    pub model_sha256: String,
    pub execution_provider: String,
    pub geometry_json: String,
    pub app_version: String,
}

/// The SQL that joins a decision with its study, reader, finding and analysis. A decision that
/// adds a finding the model missed is attributed to the study's latest analysis.
pub(crate) const DECISION_JOIN: &str = "
    FROM decisions d
    JOIN studies s ON s.id = d.study_id
    JOIN readers r ON r.id = d.reader_id
    LEFT JOIN findings f ON f.id = d.finding_id
    LEFT JOIN analyses a ON a.id = COALESCE(f.analysis_id,
        (SELECT max(a2.id) FROM analyses a2 WHERE a2.study_id = d.study_id
           AND a2.id NOT IN (SELECT analysis_id FROM shadow_analyses)))";

/// The WHERE clause and its parameters for a filter.
pub(crate) fn where_clause(filter: &DecisionFilter) -> (String, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    let mut add = |sql: &str, value: &Option<String>| {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            conditions.push(sql.to_owned());
            params.push(Value::Text(v.clone()));
        }
    };
    add("d.recorded_at >= ?", &filter.from);
    add("d.recorded_at < ?", &filter.to);
    add("r.display_name = ?", &filter.reader);
    add("a.model_id = ?", &filter.model_id);
    add("a.model_version = ?", &filter.model_version);
    add("d.label = ?", &filter.label);
    add("d.action = ?", &filter.action);
    add("s.study_uid = ?", &filter.study_uid);
    if conditions.is_empty() {
        (String::new(), params)
    } else {
        (format!(" WHERE {}", conditions.join(" AND ")), params)
    }
}

/// The pseudonym of `value` under `key` (`psn-` + 32 hex digits; empty for an empty value).
pub fn pseudonym(key: &[u8], value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    // HMAC accepts keys of any length; an error here is impossible.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("psn-{}", hex::encode(&digest[..16]))
}

impl Ledger {
    /// Streams the decisions that match `filter` to `out`, one row at a time; returns how many.
    pub fn export_decisions(
        &self,
        filter: &DecisionFilter,
        format: Format,
        identifiers: &Identifiers,
        out: &mut dyn Write,
    ) -> Result<u64, LedgerError> {
        let write_err = |e: String| LedgerError::Write {
            path: self.path.clone(),
            reason: format!("writing the export: {e}"),
        };
        // The trailer: a checkpoint of the ledger as exported (made now if the head moved), so
        // every export QA keeps is a witness of the chain.
        let trailer = |out: &mut dyn Write| -> Result<(), LedgerError> {
            let Some(c) = self.checkpoint(CheckpointReason::Export)? else {
                return Ok(());
            };
            let line = match format {
                Format::Csv => format!("# {}\n", c.line()),
                Format::JsonLines => format!("{{\"checkpoint\":\"{}\"}}\n", c.line()),
            };
            out.write_all(line.as_bytes())
                .map_err(|e| write_err(e.to_string()))
        };
        match format {
            Format::Csv => {
                let mut w = csv::WriterBuilder::new().has_headers(true).from_writer(out);
                let n = self.for_each_decision(filter, identifiers, &mut |r| {
                    w.serialize(r).map_err(|e| e.to_string())
                })?;
                w.flush().map_err(|e| write_err(e.to_string()))?;
                let mut out = w.into_inner().map_err(|e| write_err(e.to_string()))?;
                trailer(&mut out)?;
                out.flush().map_err(|e| write_err(e.to_string()))?;
                Ok(n)
            }
            Format::JsonLines => {
                let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
                let n = self.for_each_decision(filter, identifiers, &mut |r| {
                    serde_json::to_writer(&mut w, r).map_err(|e| e.to_string())?;
                    w.write_all(b"\n").map_err(|e| e.to_string())
                })?;
                trailer(&mut w)?;
                w.flush().map_err(|e| write_err(e.to_string()))?;
                Ok(n)
            }
        }
    }

    /// Calls `f` with each decision that matches `filter`, in the order they were recorded.
    pub fn for_each_decision(
        &self,
        filter: &DecisionFilter,
        identifiers: &Identifiers,
        f: &mut dyn FnMut(&ExportedDecision) -> Result<(), String>,
    ) -> Result<u64, LedgerError> {
        let (clause, params) = where_clause(filter);
        let sql = format!(
            "SELECT d.id, d.recorded_at, d.utc_offset_minutes, s.study_uid, s.accession, s.modality,
                    s.patient_key, r.display_name, r.role, d.action, d.label,
                    COALESCE(d.reject_reason, ''), d.reason_text, d.supersedes_id, d.finding_id,
                    COALESCE(f.label, ''), f.score, COALESCE(a.model_id, ''),
                    COALESCE(a.model_version, ''), COALESCE(a.model_sha256, ''),
                    COALESCE(a.execution_provider, ''), d.geometry_json, d.app_version
             {DECISION_JOIN}{clause} ORDER BY d.seq"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.read_err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| self.read_err(e))?;
        let mut count = 0u64;
        // Studies repeat row after row: compute each pseudonym once.
        let mut pseudonyms: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        while let Some(row) = rows.next().map_err(|e| self.read_err(e))? {
            let get_s = |i: usize| row.get::<_, String>(i);
            let mut record = (|| -> rusqlite::Result<ExportedDecision> {
                Ok(ExportedDecision {
                    schema_version: EXPORT_SCHEMA_VERSION,
                    decision_id: row.get(0)?,
                    recorded_at: get_s(1)?,
                    utc_offset_minutes: row.get(2)?,
                    study: get_s(3)?,
                    accession: get_s(4)?,
                    modality: get_s(5)?,
                    patient_key: get_s(6)?,
                    reader: get_s(7)?,
                    reader_role: get_s(8)?,
                    action: get_s(9)?,
                    label: get_s(10)?,
                    reject_reason: get_s(11)?,
                    reason_text: get_s(12)?,
                    supersedes_id: row.get(13)?,
                    finding_id: row.get(14)?,
                    ai_label: get_s(15)?,
                    ai_score: row.get(16)?,
                    model_id: get_s(17)?,
                    model_version: get_s(18)?,
                    model_sha256: get_s(19)?,
                    execution_provider: get_s(20)?,
                    geometry_json: get_s(21)?,
                    app_version: get_s(22)?,
                })
            })()
            .map_err(|e| self.read_err(e))?;
            if let Identifiers::Pseudonymised { key } = identifiers {
                for field in [&mut record.study, &mut record.accession] {
                    if pseudonyms.len() > 100_000 {
                        pseudonyms.clear(); // bounded memory however many studies there are
                    }
                    let p = pseudonyms
                        .entry(std::mem::take(field))
                        .or_insert_with_key(|v| pseudonym(key, v));
                    field.clone_from(p);
                }
            }
            f(&record).map_err(|e| LedgerError::Write {
                path: self.path.clone(),
                reason: format!("writing the export: {e}"),
            })?;
            count += 1;
        }
        Ok(count)
    }
}

/// Reads an export back (for round-trip checks and for tools that consume it).
pub fn read_export(
    format: Format,
    input: &mut dyn std::io::Read,
) -> Result<Vec<ExportedDecision>, String> {
    match format {
        // The trailer (a checkpoint) is a `#` comment line.
        Format::Csv => csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .from_reader(input)
            .deserialize()
            .collect::<Result<Vec<ExportedDecision>, _>>()
            .map_err(|e| e.to_string()),
        Format::JsonLines => {
            let mut text = String::new();
            input.read_to_string(&mut text).map_err(|e| e.to_string())?;
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with("{\"checkpoint\":"))
                .map(|l| serde_json::from_str(l).map_err(|e| e.to_string()))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_between_keys() {
        let a = pseudonym(b"key-a", "1.2.3");
        assert_eq!(a, pseudonym(b"key-a", "1.2.3"));
        assert_ne!(a, pseudonym(b"key-b", "1.2.3"));
        assert!(a.starts_with("psn-") && a.len() == 36, "{a}");
        assert_eq!(pseudonym(b"k", ""), "");
    }
}
