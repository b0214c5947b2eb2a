//! What has been recorded about a study, as the review screen shows it.

use std::collections::HashMap;

use dokuei_ledger::{Action, Ledger, ReadingEventKind, RejectReason, StudyRows};
use serde::Serialize;

use super::*;
use crate::{AppError, ErrorCode};

/// A reader's decision as the review shows it.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct DecisionView {
    #[specta(type = i32)]
    pub id: i64,
    pub action: Action,
    pub reject_reason: Option<RejectReason>,
    pub reason_text: String,
    /// The edited geometry (edit) or the drawn one (add).
    pub geometry: Option<Geometry>,
    #[specta(type = i32)]
    pub reader_id: i64,
    pub recorded_at: String,
}

/// A finding on screen: an AI finding (with its decision, if any) or one a reader added.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct FindingView {
    /// The AI finding's ledger id; `None` for a finding added by a reader.
    #[specta(type = Option<i32>)]
    pub finding_id: Option<i64>,
    #[specta(type = i32)]
    pub analysis_id: i64,
    pub series_uid: String,
    pub model_id: String,
    pub label: String,
    /// The model's score; `None` for an added finding (and an imported one that gives none).
    pub score: Option<f64>,
    pub image_score: Option<f64>,
    /// Imported results: the colour their object asks for (else the model's label colour).
    pub color: Option<[u8; 3]>,
    /// Where the model put it (or where the reader drew it).
    pub geometry: Geometry,
    /// The effective decision (the latest; earlier ones are superseded).
    pub decision: Option<DecisionView>,
}

impl FindingView {
    /// The geometry to show: the edited one when the finding was edited.
    pub fn effective_geometry(&self) -> &Geometry {
        self.decision
            .as_ref()
            .and_then(|d| d.geometry.as_ref())
            .unwrap_or(&self.geometry)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct AnalysisView {
    #[specta(type = i32)]
    pub id: i64,
    pub series_uid: String,
    pub model_id: String,
    pub model_version: String,
    pub model_sha256: String,
    pub execution_provider: String,
    pub finished_at: String,
    /// For results read from another tool's DICOM objects: who produced them.
    pub imported_from: Option<ImportedFrom>,
}

/// The producer of imported results, as their DICOM objects name it.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct ImportedFrom {
    pub algorithm_name: String,
    pub algorithm_version: String,
    pub manufacturer: String,
    pub device_uid: String,
    /// The SEG the findings came from.
    pub sop_instance_uid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct SignOffView {
    #[specta(type = i32)]
    pub reader_id: i64,
    pub confirmed: u32,
    pub edited: u32,
    pub rejected: u32,
    pub added: u32,
    pub impression: String,
    pub recorded_at: String,
}

/// Everything the review screen shows about a study.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct StudyReview {
    pub study_uid: String,
    /// The latest analysis per series and model (earlier runs are kept in the ledger but not
    /// shown, and need no decision).
    pub analyses: Vec<AnalysisView>,
    /// AI findings of those analyses, highest score first, then findings readers added.
    pub findings: Vec<FindingView>,
    /// AI findings still without a decision (sign-off needs zero).
    pub undecided: u32,
    pub sign_off: Option<SignOffView>,
    /// Commit-then-reveal: the reader's impression recorded before AI results were shown.
    pub impression_before_ai: Option<String>,
    pub ai_revealed: bool,
}

pub(super) fn signed_off_error() -> AppError {
    AppError::new(
        ErrorCode::ReadOnly,
        "this study has been signed off; it is read-only",
    )
}

pub(super) fn parse_action(s: &str) -> Option<Action> {
    Some(match s {
        "confirm" => Action::Confirm,
        "edit" => Action::Edit,
        "reject" => Action::Reject,
        "add" => Action::Add,
        _ => return None,
    })
}

pub(super) fn parse_reason(s: &str) -> Option<RejectReason> {
    Some(match s {
        "anatomical_structure" => RejectReason::AnatomicalStructure,
        "artefact" => RejectReason::Artefact,
        "benign_or_known" => RejectReason::BenignOrKnown,
        "outside_intended_use" => RejectReason::OutsideIntendedUse,
        "other" => RejectReason::Other,
        _ => return None,
    })
}

/// The review of study `study_uid` as recorded (an empty review if the ledger does not know
/// the study yet).
pub fn review(ledger: &Ledger, study_uid: &str) -> Result<StudyReview, AppError> {
    let Some(study_id) = ledger.study_id(study_uid)? else {
        return Ok(StudyReview {
            study_uid: study_uid.to_owned(),
            analyses: Vec::new(),
            findings: Vec::new(),
            undecided: 0,
            sign_off: None,
            impression_before_ai: None,
            ai_revealed: false,
        });
    };
    Ok(review_from_rows(study_uid, &ledger.study_rows(study_id)?))
}

pub(super) fn decision_view(d: &dokuei_ledger::DecisionRow) -> Option<DecisionView> {
    Some(DecisionView {
        id: d.id,
        action: parse_action(&d.action)?,
        reject_reason: d.reject_reason.as_deref().and_then(parse_reason),
        reason_text: d.reason_text.clone(),
        geometry: serde_json::from_str(&d.geometry_json).ok(),
        reader_id: d.reader_id,
        recorded_at: d.recorded_at.clone(),
    })
}

pub(super) fn review_from_rows(study_uid: &str, rows: &StudyRows) -> StudyReview {
    // The latest analysis per (series, model).
    let mut latest: HashMap<(&str, &str), &dokuei_ledger::AnalysisRow> = HashMap::new();
    for a in &rows.analyses {
        latest.insert((a.series_uid.as_str(), a.model_id.as_str()), a);
    }
    let mut analyses: Vec<&dokuei_ledger::AnalysisRow> = latest.into_values().collect();
    analyses.sort_by_key(|a| a.id);
    let current: HashMap<i64, &dokuei_ledger::AnalysisRow> =
        analyses.iter().map(|a| (a.id, *a)).collect();
    // Decisions superseded by a later one do not count.
    let superseded: std::collections::HashSet<i64> = rows
        .decisions
        .iter()
        .filter_map(|d| d.supersedes_id)
        .collect();
    let effective: Vec<&dokuei_ledger::DecisionRow> = rows
        .decisions
        .iter()
        .filter(|d| !superseded.contains(&d.id))
        .collect();
    let mut by_finding: HashMap<i64, &dokuei_ledger::DecisionRow> = HashMap::new();
    for d in &effective {
        if let Some(f) = d.finding_id {
            by_finding.insert(f, d);
        }
    }
    let mut findings: Vec<FindingView> = rows
        .findings
        .iter()
        .filter_map(|f| {
            let a = current.get(&f.analysis_id)?;
            let stored: StoredFinding = serde_json::from_str(&f.geometry_json).ok()?;
            Some(FindingView {
                finding_id: Some(f.id),
                analysis_id: a.id,
                series_uid: a.series_uid.clone(),
                model_id: a.model_id.clone(),
                label: f.label.clone(),
                // Imported findings without a probability are stored with a negative score.
                score: (f.score >= 0.0).then_some(f.score),
                image_score: stored.image_score,
                color: stored.color,
                geometry: stored.geometry,
                decision: by_finding.get(&f.id).and_then(|d| decision_view(d)),
            })
        })
        .collect();
    findings.sort_by(|a, b| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)));
    let undecided = findings.iter().filter(|f| f.decision.is_none()).count() as u32;
    let latest_analysis = analyses.last().map_or(0, |a| a.id);
    for d in effective.iter().filter(|d| d.action == "add") {
        let (Some(view), Ok(geometry)) = (
            decision_view(d),
            serde_json::from_str::<Geometry>(&d.geometry_json),
        ) else {
            continue;
        };
        findings.push(FindingView {
            finding_id: None,
            analysis_id: latest_analysis,
            series_uid: analyses
                .last()
                .map(|a| a.series_uid.clone())
                .unwrap_or_default(),
            model_id: String::new(),
            label: d.label.clone(),
            score: None,
            image_score: None,
            color: None,
            geometry,
            decision: Some(view),
        });
    }
    let sign_off = rows.sign_offs.last().map(|s| SignOffView {
        reader_id: s.reader_id,
        confirmed: s.confirmed as u32,
        edited: s.edited as u32,
        rejected: s.rejected as u32,
        added: s.added as u32,
        impression: s.impression.clone(),
        recorded_at: s.recorded_at.clone(),
    });
    StudyReview {
        study_uid: study_uid.to_owned(),
        analyses: analyses
            .iter()
            .map(|a| AnalysisView {
                id: a.id,
                series_uid: a.series_uid.clone(),
                model_id: a.model_id.clone(),
                model_version: a.model_version.clone(),
                model_sha256: a.model_sha256.clone(),
                execution_provider: a.execution_provider.clone(),
                finished_at: a.finished_at.clone(),
                imported_from: rows
                    .imports
                    .iter()
                    .find(|i| i.analysis_id == a.id)
                    .map(|i| ImportedFrom {
                        algorithm_name: i.algorithm_name.clone(),
                        algorithm_version: i.algorithm_version.clone(),
                        manufacturer: i.manufacturer.clone(),
                        device_uid: i.device_uid.clone(),
                        sop_instance_uid: i.source_sop_instance_uid.clone(),
                    }),
            })
            .collect(),
        findings,
        undecided,
        sign_off,
        impression_before_ai: rows
            .events
            .iter()
            .rev()
            .find(|e| e.kind == ReadingEventKind::ImpressionBeforeAi.as_str())
            .map(|e| e.content.clone()),
        ai_revealed: rows
            .events
            .iter()
            .any(|e| e.kind == ReadingEventKind::AiRevealed.as_str()),
    }
}
