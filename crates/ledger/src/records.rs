//! What the ledger records, and the typed appends for each kind of record. There is no update
//! and no delete: a correction is a new decision that names the one it supersedes.

use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use crate::store::{Ledger, LedgerError};

/// Who a reader is, for attribution and for what they may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Radiologist,
    Clinician,
    Qa,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Radiologist => "radiologist",
            Role::Clinician => "clinician",
            Role::Qa => "qa",
        }
    }
}

/// What a reader did with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Confirm,
    Edit,
    Reject,
    /// A finding the model missed, drawn by the reader.
    Add,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Edit => "edit",
            Action::Reject => "reject",
            Action::Add => "add",
        }
    }
}

/// The documented reasons for rejecting a finding. `Other` needs free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// A vessel, a rib, a normal structure mistaken for a lesion.
    AnatomicalStructure,
    /// Motion, beam hardening, noise, metal.
    Artefact,
    /// Real, but benign or already known.
    BenignOrKnown,
    /// The image is outside what the model is meant for.
    OutsideIntendedUse,
    Other,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::AnatomicalStructure => "anatomical_structure",
            RejectReason::Artefact => "artefact",
            RejectReason::BenignOrKnown => "benign_or_known",
            RejectReason::OutsideIntendedUse => "outside_intended_use",
            RejectReason::Other => "other",
        }
    }
}

/// Which DICOM object an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    /// The model's segmentation (one per analysis).
    AiSeg,
    /// The model's TID 1500 report (one per analysis).
    AiSr,
    /// A heatmap model's probabilities as a Parametric Map (one per label).
    AiPmap,
    /// Regions readers edited or added (one per sign-off, when there are any).
    ReaderSeg,
    /// The physician's assessment at sign-off.
    AssessmentSr,
    /// The study's key images (a Key Object Selection document). Recorded in
    /// `key_object_documents`, not `exported_objects`.
    KeyObjects,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::AiSeg => "ai_seg",
            ExportKind::AiSr => "ai_sr",
            ExportKind::AiPmap => "ai_pmap",
            ExportKind::ReaderSeg => "reader_seg",
            ExportKind::AssessmentSr => "assessment_sr",
            ExportKind::KeyObjects => "key_objects",
        }
    }
}

/// A DICOM object written out, and what it came from (an analysis, or a sign-off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub study_id: i64,
    pub analysis_id: Option<i64>,
    pub sign_off_id: Option<i64>,
    pub kind: ExportKind,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
    /// SHA-256 of the file written.
    pub sha256: String,
    /// Where it went (a folder, later a PACS node).
    pub destination: String,
}

/// An instance sent to a PACS node, and how it fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentRecord {
    /// The exported object it was, when Dokuei wrote it.
    pub exported_object_id: Option<i64>,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// SHA-256 of the file sent.
    pub sha256: String,
    /// The node's name, and `dimse` or `dicomweb`, and its address (AE@host:port or URL).
    pub node: String,
    pub protocol: String,
    pub address: String,
    pub stored: bool,
    /// The DIMSE or HTTP status, when there was one.
    pub status: Option<i64>,
    pub detail: String,
}

/// One send of an instance: (node, stored, DIMSE or HTTP status, detail).
pub type SendRow = (String, bool, Option<i64>, String);

/// Who produced a result read from another tool's object (in place of a model SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub analysis_id: i64,
    pub source_sop_class_uid: String,
    /// The SEG the findings came from.
    pub source_sop_instance_uid: String,
    pub algorithm_name: String,
    pub algorithm_version: String,
    pub manufacturer: String,
    pub device_uid: String,
}

/// A study as the ledger knows it: no patient identifier, only a keyed hash of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRecord {
    pub study_uid: String,
    pub accession: String,
    pub modality: String,
    pub study_date: String,
    pub patient_key: String,
}

/// One run of a model on a series, with exactly which model it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    pub study_id: i64,
    pub series_uid: String,
    pub model_id: String,
    pub model_version: String,
    pub model_sha256: String,
    pub execution_provider: String,
    pub thresholds_json: String,
    pub started_at: String,
    pub finished_at: String,
}

/// An AI finding as it was shown to the reader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    pub analysis_id: i64,
    pub label: String,
    pub score: f64,
    pub geometry_json: String,
    pub mask_sha256: String,
    pub shown_at: String,
}

/// A reader's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub study_id: i64,
    /// `None` for [`Action::Add`].
    pub finding_id: Option<i64>,
    pub action: Action,
    pub label: String,
    pub reject_reason: Option<RejectReason>,
    pub reason_text: String,
    /// The edited or added geometry (JSON); empty for confirm and reject.
    pub geometry_json: String,
    pub reader_id: i64,
    /// The decision this one corrects (undo is a new decision, never a deletion).
    pub supersedes_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOffRecord {
    pub study_id: i64,
    pub reader_id: i64,
    pub confirmed: i64,
    pub edited: i64,
    pub rejected: i64,
    pub added: i64,
    pub impression: String,
}

/// Commit-then-reveal: the reader's own impression before AI results were shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadingEventKind {
    ImpressionBeforeAi,
    AiRevealed,
}

impl ReadingEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadingEventKind::ImpressionBeforeAi => "impression_before_ai",
            ReadingEventKind::AiRevealed => "ai_revealed",
        }
    }
}

/// The current time as stored: UTC, RFC 3339 with milliseconds, and the local offset in
/// minutes (so a QA reader sees the reader's wall-clock time too).
pub(crate) fn now() -> (String, i64) {
    let local = chrono::Local::now();
    let utc = local.with_timezone(&chrono::Utc);
    (
        utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        i64::from(local.offset().local_minus_utc() / 60),
    )
}

/// The current UTC time as the ledger stores it (RFC 3339 with milliseconds).
pub fn now_utc() -> String {
    now().0
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Integer)
}

impl Ledger {
    pub(crate) fn stamped(
        &self,
        mut columns: Vec<(&'static str, Value)>,
    ) -> Vec<(&'static str, Value)> {
        let (at, offset) = self.fixed_clock.clone().unwrap_or_else(now);
        columns.push(("recorded_at", Value::Text(at)));
        columns.push(("utc_offset_minutes", Value::Integer(offset)));
        columns.push(("app_version", Value::Text(self.app_version.clone())));
        columns
    }

    pub fn add_reader(&self, display_name: &str, role: Role) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("display_name", text(display_name)),
            ("role", text(role.as_str())),
        ]);
        self.append("readers", &cols)
    }

    /// Records a study once; later calls with the same Study Instance UID return the first id.
    pub fn record_study(&self, study: &StudyRecord) -> Result<i64, LedgerError> {
        if let Some(id) = self.study_id(&study.study_uid)? {
            return Ok(id);
        }
        let cols = self.stamped(vec![
            ("study_uid", text(&study.study_uid)),
            ("accession", text(&study.accession)),
            ("modality", text(&study.modality)),
            ("study_date", text(&study.study_date)),
            ("patient_key", text(&study.patient_key)),
        ]);
        self.append("studies", &cols)
    }

    pub fn study_id(&self, study_uid: &str) -> Result<Option<i64>, LedgerError> {
        match self.conn.query_row(
            "SELECT id FROM studies WHERE study_uid = ?1 ORDER BY id LIMIT 1",
            [study_uid],
            |r| r.get(0),
        ) {
            Ok(id) => Ok(Some(id)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(self.read_err(e)),
        }
    }

    pub fn record_analysis(&self, a: &AnalysisRecord) -> Result<i64, LedgerError> {
        self.append("analyses", &self.analysis_columns(a))
    }

    fn analysis_columns(&self, a: &AnalysisRecord) -> Vec<(&'static str, Value)> {
        self.stamped(vec![
            ("study_id", Value::Integer(a.study_id)),
            ("series_uid", text(&a.series_uid)),
            ("model_id", text(&a.model_id)),
            ("model_version", text(&a.model_version)),
            ("model_sha256", text(&a.model_sha256)),
            ("execution_provider", text(&a.execution_provider)),
            ("thresholds_json", text(&a.thresholds_json)),
            ("started_at", text(&a.started_at)),
            ("finished_at", text(&a.finished_at)),
        ])
    }

    pub fn record_finding(&self, f: &FindingRecord) -> Result<i64, LedgerError> {
        self.append("findings", &self.finding_columns(f))
    }

    fn finding_columns(&self, f: &FindingRecord) -> Vec<(&'static str, Value)> {
        self.stamped(vec![
            ("analysis_id", Value::Integer(f.analysis_id)),
            ("label", text(&f.label)),
            ("score", Value::Real(f.score)),
            ("geometry_json", text(&f.geometry_json)),
            ("mask_sha256", text(&f.mask_sha256)),
            ("shown_at", text(&f.shown_at)),
        ])
    }

    /// Records a shadow run in one transaction: the candidate's analysis, the stack it ran on,
    /// the mark that it shadows analysis `shadows` (which keeps it off the review screen), and
    /// its findings (their `analysis_id` is set here). Returns the new analysis id.
    pub fn record_shadow_run(
        &self,
        a: &AnalysisRecord,
        shadows: i64,
        source: (i64, i64, &str),
        findings: &[FindingRecord],
    ) -> Result<i64, LedgerError> {
        self.append_group("analyses", &self.analysis_columns(a), |id, tx| {
            let mut more = vec![
                (
                    "shadow_analyses",
                    self.stamped(vec![
                        ("analysis_id", Value::Integer(id)),
                        ("shadows_analysis_id", Value::Integer(shadows)),
                    ]),
                ),
                (
                    "analysis_sources",
                    self.stamped(vec![
                        ("analysis_id", Value::Integer(id)),
                        ("stack_index", Value::Integer(source.0)),
                        ("frames", Value::Integer(source.1)),
                        ("images_sha256", text(source.2)),
                    ]),
                ),
            ];
            for f in findings {
                more.push((
                    "findings",
                    self.finding_columns(&FindingRecord {
                        analysis_id: id,
                        ..f.clone()
                    }),
                ));
            }
            for (table, cols) in more {
                crate::store::append_in(tx, table, &cols)?;
            }
            Ok(())
        })
    }

    /// Records a decision at once (not at sign-off).
    pub fn record_decision(&self, d: &DecisionRecord) -> Result<i64, LedgerError> {
        self.append("decisions", &self.decision_columns(d))
    }

    /// A sign-off without a signature: for ledgers and tests of readers without keys (the
    /// application signs every sign-off: see `record_signed_sign_off`).
    pub fn record_sign_off(&self, s: &SignOffRecord) -> Result<i64, LedgerError> {
        self.append("sign_offs", &self.sign_off_columns(s))
    }

    /// A sign-off's columns, stamped.
    pub(crate) fn sign_off_columns(&self, s: &SignOffRecord) -> Vec<(&'static str, Value)> {
        self.stamped(vec![
            ("study_id", Value::Integer(s.study_id)),
            ("reader_id", Value::Integer(s.reader_id)),
            ("confirmed", Value::Integer(s.confirmed)),
            ("edited", Value::Integer(s.edited)),
            ("rejected", Value::Integer(s.rejected)),
            ("added", Value::Integer(s.added)),
            ("impression", text(&s.impression)),
        ])
    }

    pub fn record_reading_event(
        &self,
        study_id: i64,
        reader_id: i64,
        kind: ReadingEventKind,
        content: &str,
    ) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("study_id", Value::Integer(study_id)),
            ("reader_id", Value::Integer(reader_id)),
            ("kind", text(kind.as_str())),
            ("content", text(content)),
        ]);
        self.append("reading_events", &cols)
    }

    pub fn record_export(&self, e: &ExportRecord) -> Result<i64, LedgerError> {
        let opt = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
        let cols = self.stamped(vec![
            ("study_id", Value::Integer(e.study_id)),
            ("analysis_id", opt(e.analysis_id)),
            ("sign_off_id", opt(e.sign_off_id)),
            ("kind", text(e.kind.as_str())),
            ("sop_class_uid", text(&e.sop_class_uid)),
            ("sop_instance_uid", text(&e.sop_instance_uid)),
            ("series_instance_uid", text(&e.series_instance_uid)),
            ("sha256", text(&e.sha256)),
            ("destination", text(&e.destination)),
        ]);
        self.append("exported_objects", &cols)
    }

    /// Which stack of its series analysis `analysis_id` ran on: its index, image count and the
    /// SHA-256 of its images' SOP Instance UIDs and frame numbers in display order.
    pub fn record_analysis_source(
        &self,
        analysis_id: i64,
        stack_index: i64,
        frames: i64,
        images_sha256: &str,
    ) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("analysis_id", Value::Integer(analysis_id)),
            ("stack_index", Value::Integer(stack_index)),
            ("frames", Value::Integer(frames)),
            ("images_sha256", text(images_sha256)),
        ]);
        self.append("analysis_sources", &cols)
    }

    pub fn record_sent(&self, s: &SentRecord) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            (
                "exported_object_id",
                s.exported_object_id.map_or(Value::Null, Value::Integer),
            ),
            ("sop_class_uid", text(&s.sop_class_uid)),
            ("sop_instance_uid", text(&s.sop_instance_uid)),
            ("sha256", text(&s.sha256)),
            ("node", text(&s.node)),
            ("protocol", text(&s.protocol)),
            ("address", text(&s.address)),
            ("stored", Value::Integer(i64::from(s.stored))),
            ("status", s.status.map_or(Value::Null, Value::Integer)),
            ("detail", text(&s.detail)),
        ]);
        self.append("sent_objects", &cols)
    }

    /// The exported object with this SOP Instance UID (the latest, if written more than once).
    pub fn exported_object_id(&self, sop_instance_uid: &str) -> Result<Option<i64>, LedgerError> {
        let ids = self.rows(
            "SELECT id FROM exported_objects WHERE sop_instance_uid = ?1 ORDER BY id DESC LIMIT 1",
            [sop_instance_uid],
            |r| r.get::<_, i64>(0),
        )?;
        Ok(ids.into_iter().next())
    }

    /// Every send of this instance, oldest first.
    pub fn sends_of(&self, sop_instance_uid: &str) -> Result<Vec<SendRow>, LedgerError> {
        self.rows(
            "SELECT node, stored, status, detail FROM sent_objects
             WHERE sop_instance_uid = ?1 ORDER BY id",
            [sop_instance_uid],
            |r| Ok((r.get(0)?, r.get::<_, i64>(1)? == 1, r.get(2)?, r.get(3)?)),
        )
    }

    pub fn record_import(&self, i: &ImportRecord) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("analysis_id", Value::Integer(i.analysis_id)),
            ("source_sop_class_uid", text(&i.source_sop_class_uid)),
            ("source_sop_instance_uid", text(&i.source_sop_instance_uid)),
            ("algorithm_name", text(&i.algorithm_name)),
            ("algorithm_version", text(&i.algorithm_version)),
            ("manufacturer", text(&i.manufacturer)),
            ("device_uid", text(&i.device_uid)),
        ]);
        self.append("imported_analyses", &cols)
    }

    /// Appends `n` decisions in one transaction, cycling through the actions: a fast way to
    /// build a large ledger for benchmarks. The rows are ordinary chained rows.
    #[doc(hidden)]
    pub fn bulk_decisions_for_benchmark(
        &self,
        n: usize,
        template: &DecisionRecord,
    ) -> Result<(), LedgerError> {
        let actions = [
            Action::Confirm,
            Action::Confirm,
            Action::Edit,
            Action::Reject,
        ];
        self.append_many(n, |i| {
            let action = actions[i % actions.len()];
            let d = DecisionRecord {
                action,
                reject_reason: (action == Action::Reject)
                    .then_some(RejectReason::AnatomicalStructure),
                ..template.clone()
            };
            ("decisions", self.decision_columns(&d))
        })
    }

    fn decision_columns(&self, d: &DecisionRecord) -> Vec<(&'static str, Value)> {
        self.stamped(vec![
            ("study_id", Value::Integer(d.study_id)),
            ("finding_id", opt_int(d.finding_id)),
            ("action", text(d.action.as_str())),
            ("label", text(&d.label)),
            (
                "reject_reason",
                d.reject_reason.map_or(Value::Null, |r| text(r.as_str())),
            ),
            ("reason_text", text(&d.reason_text)),
            ("geometry_json", text(&d.geometry_json)),
            ("reader_id", Value::Integer(d.reader_id)),
            ("supersedes_id", opt_int(d.supersedes_id)),
        ])
    }

    /// Number of decisions recorded.
    pub fn decision_count(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("SELECT count(*) FROM decisions", [], |r| r.get(0))
            .map_err(|e| self.read_err(e))
    }

    /// Whether a decision with this id exists.
    pub fn has_decision(&self, id: i64) -> Result<bool, LedgerError> {
        self.conn
            .query_row("SELECT count(*) FROM decisions WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n > 0)
            .map_err(|e| self.read_err(e))
    }
}
