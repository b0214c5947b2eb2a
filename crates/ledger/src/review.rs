//! Reading back what was recorded about one study (its analyses, findings, decisions, sign-offs
//! and reading events) and who the readers are: what the review screen needs to show a study
//! again, read-only once signed off.

use serde::{Deserialize, Serialize};

use crate::store::{Ledger, LedgerError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderRow {
    pub id: i64,
    pub display_name: String,
    pub role: String,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRow {
    pub id: i64,
    pub series_uid: String,
    pub model_id: String,
    pub model_version: String,
    pub model_sha256: String,
    pub execution_provider: String,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRow {
    pub id: i64,
    pub analysis_id: i64,
    pub label: String,
    pub score: f64,
    pub geometry_json: String,
    pub shown_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub id: i64,
    pub finding_id: Option<i64>,
    pub action: String,
    pub label: String,
    pub reject_reason: Option<String>,
    pub reason_text: String,
    pub geometry_json: String,
    pub reader_id: i64,
    pub supersedes_id: Option<i64>,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOffRow {
    pub id: i64,
    pub reader_id: i64,
    pub confirmed: i64,
    pub edited: i64,
    pub rejected: i64,
    pub added: i64,
    pub impression: String,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingEventRow {
    pub id: i64,
    pub reader_id: i64,
    pub kind: String,
    pub content: String,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRow {
    pub id: i64,
    pub analysis_id: Option<i64>,
    pub sign_off_id: Option<i64>,
    pub kind: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
    pub sha256: String,
    pub destination: String,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRow {
    pub id: i64,
    pub analysis_id: i64,
    pub source_sop_class_uid: String,
    pub source_sop_instance_uid: String,
    pub algorithm_name: String,
    pub algorithm_version: String,
    pub manufacturer: String,
    pub device_uid: String,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSourceRow {
    pub analysis_id: i64,
    pub stack_index: i64,
    pub frames: i64,
    pub images_sha256: String,
}

/// Everything recorded about one study, each list in the order it was recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyRows {
    pub analyses: Vec<AnalysisRow>,
    pub findings: Vec<FindingRow>,
    pub decisions: Vec<DecisionRow>,
    pub sign_offs: Vec<SignOffRow>,
    pub events: Vec<ReadingEventRow>,
    pub exports: Vec<ExportRow>,
    pub imports: Vec<ImportRow>,
    pub sources: Vec<AnalysisSourceRow>,
}

impl Ledger {
    /// Every reader, in the order they were created.
    pub fn readers(&self) -> Result<Vec<ReaderRow>, LedgerError> {
        self.rows(
            "SELECT id, display_name, role, recorded_at FROM readers ORDER BY id",
            [],
            |r| {
                Ok(ReaderRow {
                    id: r.get(0)?,
                    display_name: r.get(1)?,
                    role: r.get(2)?,
                    recorded_at: r.get(3)?,
                })
            },
        )
    }

    /// What was recorded about study `study_id`.
    pub fn study_rows(&self, study_id: i64) -> Result<StudyRows, LedgerError> {
        let analyses = self.rows(
            "SELECT id, series_uid, model_id, model_version, model_sha256, execution_provider,
                    started_at, finished_at
             FROM analyses WHERE study_id = ?1
               AND id NOT IN (SELECT analysis_id FROM shadow_analyses) ORDER BY id",
            [study_id],
            |r| {
                Ok(AnalysisRow {
                    id: r.get(0)?,
                    series_uid: r.get(1)?,
                    model_id: r.get(2)?,
                    model_version: r.get(3)?,
                    model_sha256: r.get(4)?,
                    execution_provider: r.get(5)?,
                    started_at: r.get(6)?,
                    finished_at: r.get(7)?,
                })
            },
        )?;
        let findings = self.rows(
            "SELECT f.id, f.analysis_id, f.label, f.score, f.geometry_json, f.shown_at
             FROM findings f JOIN analyses a ON a.id = f.analysis_id
             WHERE a.study_id = ?1
               AND a.id NOT IN (SELECT analysis_id FROM shadow_analyses) ORDER BY f.id",
            [study_id],
            |r| {
                Ok(FindingRow {
                    id: r.get(0)?,
                    analysis_id: r.get(1)?,
                    label: r.get(2)?,
                    score: r.get(3)?,
                    geometry_json: r.get(4)?,
                    shown_at: r.get(5)?,
                })
            },
        )?;
        let decisions = self.rows(
            "SELECT id, finding_id, action, label, reject_reason, reason_text, geometry_json,
                    reader_id, supersedes_id, recorded_at
             FROM decisions WHERE study_id = ?1 ORDER BY id",
            [study_id],
            |r| {
                Ok(DecisionRow {
                    id: r.get(0)?,
                    finding_id: r.get(1)?,
                    action: r.get(2)?,
                    label: r.get(3)?,
                    reject_reason: r.get(4)?,
                    reason_text: r.get(5)?,
                    geometry_json: r.get(6)?,
                    reader_id: r.get(7)?,
                    supersedes_id: r.get(8)?,
                    recorded_at: r.get(9)?,
                })
            },
        )?;
        let sign_offs = self.rows(
            "SELECT id, reader_id, confirmed, edited, rejected, added, impression, recorded_at
             FROM sign_offs WHERE study_id = ?1 ORDER BY id",
            [study_id],
            |r| {
                Ok(SignOffRow {
                    id: r.get(0)?,
                    reader_id: r.get(1)?,
                    confirmed: r.get(2)?,
                    edited: r.get(3)?,
                    rejected: r.get(4)?,
                    added: r.get(5)?,
                    impression: r.get(6)?,
                    recorded_at: r.get(7)?,
                })
            },
        )?;
        let events = self.rows(
            "SELECT id, reader_id, kind, content, recorded_at
             FROM reading_events WHERE study_id = ?1 ORDER BY id",
            [study_id],
            |r| {
                Ok(ReadingEventRow {
                    id: r.get(0)?,
                    reader_id: r.get(1)?,
                    kind: r.get(2)?,
                    content: r.get(3)?,
                    recorded_at: r.get(4)?,
                })
            },
        )?;
        let exports = self.rows(
            "SELECT id, analysis_id, sign_off_id, kind, sop_class_uid, sop_instance_uid,
                    series_instance_uid, sha256, destination, recorded_at
             FROM exported_objects WHERE study_id = ?1 ORDER BY id",
            [study_id],
            |r| {
                Ok(ExportRow {
                    id: r.get(0)?,
                    analysis_id: r.get(1)?,
                    sign_off_id: r.get(2)?,
                    kind: r.get(3)?,
                    sop_class_uid: r.get(4)?,
                    sop_instance_uid: r.get(5)?,
                    series_instance_uid: r.get(6)?,
                    sha256: r.get(7)?,
                    destination: r.get(8)?,
                    recorded_at: r.get(9)?,
                })
            },
        )?;
        let imports = self.rows(
            "SELECT i.id, i.analysis_id, i.source_sop_class_uid, i.source_sop_instance_uid,
                    i.algorithm_name, i.algorithm_version, i.manufacturer, i.device_uid,
                    i.recorded_at
             FROM imported_analyses i JOIN analyses a ON a.id = i.analysis_id
             WHERE a.study_id = ?1 ORDER BY i.id",
            [study_id],
            |r| {
                Ok(ImportRow {
                    id: r.get(0)?,
                    analysis_id: r.get(1)?,
                    source_sop_class_uid: r.get(2)?,
                    source_sop_instance_uid: r.get(3)?,
                    algorithm_name: r.get(4)?,
                    algorithm_version: r.get(5)?,
                    manufacturer: r.get(6)?,
                    device_uid: r.get(7)?,
                    recorded_at: r.get(8)?,
                })
            },
        )?;
        let sources = self.rows(
            "SELECT s.analysis_id, s.stack_index, s.frames, s.images_sha256
             FROM analysis_sources s JOIN analyses a ON a.id = s.analysis_id
             WHERE a.study_id = ?1
               AND a.id NOT IN (SELECT analysis_id FROM shadow_analyses) ORDER BY s.id",
            [study_id],
            |r| {
                Ok(AnalysisSourceRow {
                    analysis_id: r.get(0)?,
                    stack_index: r.get(1)?,
                    frames: r.get(2)?,
                    images_sha256: r.get(3)?,
                })
            },
        )?;
        Ok(StudyRows {
            analyses,
            findings,
            decisions,
            sign_offs,
            events,
            exports,
            imports,
            sources,
        })
    }

    pub(crate) fn rows<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, LedgerError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.read_err(e))?;
        stmt.query_map(params, map)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.read_err(e))
    }
}
