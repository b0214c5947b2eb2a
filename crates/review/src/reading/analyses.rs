//! Recording an analysis (Dokuei's own, or results imported from another tool) and its
//! findings, with the study's and the stack's identity.

use dokuei_dicom::Series;
use dokuei_dicom::stack::Stack;
use dokuei_infer::findings::{Finding, ModelRef};
use dokuei_ledger::{AnalysisRecord, FindingRecord, Ledger, StudyRecord};
use serde::{Deserialize, Serialize};

use super::*;
use crate::AppError;

/// The study an analysis belongs to, as the ledger records it (no patient identifier: the
/// patient ID is recorded as a keyed hash).
#[derive(Debug, Clone)]
pub struct StudyIdentity {
    pub study_uid: String,
    pub accession: String,
    pub modality: String,
    pub study_date: String,
    pub patient_id: String,
}

pub(super) fn study_id(ledger: &Ledger, study: &StudyIdentity) -> Result<i64, AppError> {
    let key = crate::ledger::export_key(ledger.path())?;
    let patient_key = dokuei_ledger::export::pseudonym(&key, &study.patient_id);
    Ok(ledger.record_study(&StudyRecord {
        study_uid: study.study_uid.clone(),
        accession: study.accession.clone(),
        modality: study.modality.clone(),
        study_date: study.study_date.clone(),
        patient_key,
    })?)
}

/// The JSON a finding's geometry is stored as: the [`Geometry`] plus the image-level score of
/// heatmap models.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredFinding {
    #[serde(flatten)]
    pub(crate) geometry: Geometry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) image_score: Option<f64>,
    /// The colour an imported result asks for (its SEG's recommended display colour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) color: Option<[u8; 3]>,
}

pub(super) fn mask_sha256(mask: &[MaskSlice]) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(mask).unwrap_or_default();
    hex_lower(&sha2::Sha256::digest(&json))
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which stack of a series an analysis ran on: its index, image count and a SHA-256 of its
/// images (SOP Instance UID and frame, in display order), so that results are later written on
/// exactly these images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackIdentity {
    pub index: usize,
    pub frames: usize,
    pub sha256: String,
}

impl StackIdentity {
    pub fn of(series: &Series, stack: &Stack, index: usize) -> StackIdentity {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for f in &stack.frames {
            h.update(series.instances[f.instance].sop_instance_uid.as_bytes());
            h.update(format!("\0{}\n", f.frame).as_bytes());
        }
        StackIdentity {
            index,
            frames: stack.frames.len(),
            sha256: hex_lower(&h.finalize()),
        }
    }
}

/// Records a finished analysis of `stack` and its findings (shown to the reader now) and returns
/// the study's review. Called only once an analysis has completed: a cancelled or failed
/// analysis leaves nothing in the ledger.
#[allow(clippy::too_many_arguments)]
pub fn record_analysis(
    ledger: &Ledger,
    study: &StudyIdentity,
    series_uid: &str,
    stack: &StackIdentity,
    model: &ModelRef,
    findings: &[Finding],
    started_at: &str,
    finished_at: &str,
) -> Result<StudyReview, AppError> {
    let study_id = study_id(ledger, study)?;
    if !ledger.study_rows(study_id)?.sign_offs.is_empty() {
        return Err(signed_off_error());
    }
    let analysis_id = ledger.record_analysis(&analysis_record(
        study_id,
        series_uid,
        model,
        started_at,
        finished_at,
    ))?;
    ledger.record_analysis_source(
        analysis_id,
        stack.index as i64,
        stack.frames as i64,
        &stack.sha256,
    )?;
    let shown_at = dokuei_ledger::records::now_utc();
    for f in findings {
        record_finding(ledger, analysis_id, f, &shown_at)?;
    }
    review(ledger, &study.study_uid)
}

/// Records results read from other tools' objects (one analysis per SEG, findings as imported)
/// and returns the study's review. A SEG already recorded for this study is not recorded again.
pub fn record_imported(
    ledger: &Ledger,
    study: &StudyIdentity,
    imported: &crate::results::ImportedResults,
) -> Result<StudyReview, AppError> {
    let study_id = study_id(ledger, study)?;
    let rows = ledger.study_rows(study_id)?;
    if !rows.sign_offs.is_empty() {
        return Err(signed_off_error());
    }
    let mut by_seg: Vec<(&str, Vec<&crate::results::ImportedFinding>)> = Vec::new();
    for f in &imported.findings {
        match by_seg
            .iter_mut()
            .find(|(u, _)| *u == f.seg_sop_instance_uid)
        {
            Some((_, v)) => v.push(f),
            None => by_seg.push((&f.seg_sop_instance_uid, vec![f])),
        }
    }
    let now = dokuei_ledger::records::now_utc();
    for (seg_uid, findings) in by_seg {
        if rows
            .imports
            .iter()
            .any(|i| i.source_sop_instance_uid == seg_uid)
        {
            continue;
        }
        let first = findings[0];
        let name = if first.algorithm_name.is_empty() {
            first.manufacturer.clone()
        } else {
            first.algorithm_name.clone()
        };
        let tail = &seg_uid[seg_uid.len().saturating_sub(6)..];
        let analysis_id = ledger.record_analysis(&AnalysisRecord {
            study_id,
            series_uid: first.series_uid.clone(),
            model_id: format!("{name} [imported …{tail}]"),
            model_version: first.algorithm_version.clone(),
            model_sha256: String::new(),
            execution_provider: "imported".into(),
            thresholds_json: "{}".into(),
            started_at: now.clone(),
            finished_at: now.clone(),
        })?;
        ledger.record_import(&dokuei_ledger::ImportRecord {
            analysis_id,
            source_sop_class_uid: first.seg_sop_class_uid.clone(),
            source_sop_instance_uid: seg_uid.to_owned(),
            algorithm_name: first.algorithm_name.clone(),
            algorithm_version: first.algorithm_version.clone(),
            manufacturer: first.manufacturer.clone(),
            device_uid: first.device_uid.clone(),
        })?;
        for f in findings {
            let probability = f
                .measurements
                .iter()
                .find(|m| m.0.to_ascii_lowercase().contains("probability"))
                .map(|m| m.1);
            let stored = StoredFinding {
                geometry: f.geometry.clone(),
                image_score: None,
                color: Some(f.rgb),
            };
            ledger.record_finding(&FindingRecord {
                analysis_id,
                label: f.label.clone(),
                score: probability.unwrap_or(-1.0),
                geometry_json: serde_json::to_string(&stored).unwrap_or_default(),
                mask_sha256: mask_sha256(&stored.geometry.mask),
                shown_at: now.clone(),
            })?;
        }
    }
    review(ledger, &study.study_uid)
}

pub(super) fn record_finding(
    ledger: &Ledger,
    analysis_id: i64,
    f: &Finding,
    shown_at: &str,
) -> Result<i64, AppError> {
    Ok(ledger.record_finding(&finding_record(analysis_id, f, shown_at))?)
}

/// What the ledger records of one run of `model` on a series.
fn analysis_record(
    study_id: i64,
    series_uid: &str,
    model: &ModelRef,
    started_at: &str,
    finished_at: &str,
) -> AnalysisRecord {
    AnalysisRecord {
        study_id,
        series_uid: series_uid.to_owned(),
        model_id: model.id.clone(),
        model_version: model.version.clone(),
        model_sha256: model.sha256.to_ascii_lowercase(),
        execution_provider: model.execution_provider.clone(),
        thresholds_json: serde_json::to_string(&model.thresholds).unwrap_or_default(),
        started_at: started_at.to_owned(),
        finished_at: finished_at.to_owned(),
    }
}

fn finding_record(analysis_id: i64, f: &Finding, shown_at: &str) -> FindingRecord {
    let stored = StoredFinding {
        geometry: Geometry::from(&f.geometry),
        image_score: f.image_score,
        color: None,
    };
    FindingRecord {
        analysis_id,
        label: f.label.clone(),
        score: f.score,
        geometry_json: serde_json::to_string(&stored).unwrap_or_default(),
        mask_sha256: mask_sha256(&stored.geometry.mask),
        shown_at: shown_at.to_owned(),
    }
}

/// Records a shadow run: a candidate model version's analysis of the same stack as analysis
/// `shadows`, with its findings, in one transaction, never shown on the review screen (the
/// model-version watch compares it with what readers decided). Its findings carry no
/// `shown_at`: they were never shown. Returns its analysis id.
#[allow(clippy::too_many_arguments)]
pub fn record_shadow_run(
    ledger: &Ledger,
    study: &StudyIdentity,
    series_uid: &str,
    stack: &StackIdentity,
    model: &ModelRef,
    findings: &[Finding],
    started_at: &str,
    finished_at: &str,
    shadows: i64,
) -> Result<i64, AppError> {
    let study_id = study_id(ledger, study)?;
    let records: Vec<FindingRecord> = findings.iter().map(|f| finding_record(0, f, "")).collect();
    Ok(ledger.record_shadow_run(
        &analysis_record(study_id, series_uid, model, started_at, finished_at),
        shadows,
        (stack.index as i64, stack.frames as i64, &stack.sha256),
        &records,
    )?)
}

/// The ledger's identity of a study of the open index.
pub fn study_identity(index: &dokuei_dicom::StudyIndex, series_uid: &str) -> Option<StudyIdentity> {
    for p in &index.patients {
        for s in &p.studies {
            if let Some(series) = s.series.iter().find(|x| x.uid == series_uid) {
                return Some(StudyIdentity {
                    study_uid: s.uid.clone(),
                    accession: s.accession_number.clone(),
                    modality: series.modality.clone(),
                    study_date: s.date.clone(),
                    patient_id: p.id.clone(),
                });
            }
        }
    }
    None
}
