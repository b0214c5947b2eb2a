//! The reading workflow: readers, the models on offer, recording an analysis and its findings,
//! a decision on every finding, sign-off, and commit-then-reveal. The rules (what may be done
//! when) live here, so the desktop app, the CLI and the tests share them; every action is
//! written to the ledger when it happens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dokuei_dicom::Series;
use dokuei_dicom::stack::Stack;
use dokuei_infer::findings::{ComponentGeometry, Finding, ModelRef, SliceGeometry, describe};
use dokuei_infer::manifest::{Manifest, OutputKind};
use dokuei_infer::model::file_sha256;
use dokuei_ledger::{
    Action, AnalysisRecord, DecisionRecord, FindingRecord, Ledger, ReadingEventKind, RejectReason,
    Role, SignOffRecord, StudyRecord, StudyRows,
};
use serde::{Deserialize, Serialize};

use crate::{AppError, ErrorCode};

/// Someone who reads studies or audits decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Reader {
    #[specta(type = i32)]
    pub id: i64,
    pub display_name: String,
    pub role: Role,
}

pub fn readers(ledger: &Ledger) -> Result<Vec<Reader>, AppError> {
    ledger
        .readers()?
        .into_iter()
        .map(|r| {
            Ok(Reader {
                id: r.id,
                display_name: r.display_name,
                role: role_from_str(&r.role)?,
            })
        })
        .collect()
}

fn role_from_str(s: &str) -> Result<Role, AppError> {
    match s {
        "radiologist" => Ok(Role::Radiologist),
        "clinician" => Ok(Role::Clinician),
        "qa" => Ok(Role::Qa),
        other => Err(AppError::new(
            ErrorCode::LedgerUnavailable,
            format!("the ledger names an unknown reader role `{other}`"),
        )),
    }
}

/// Creates a reader profile. Names are trimmed and must not be empty.
pub fn add_reader(ledger: &Ledger, display_name: &str, role: Role) -> Result<Reader, AppError> {
    let name = display_name.trim();
    if name.is_empty() {
        return Err(invalid("a reader needs a display name"));
    }
    if name.chars().count() > 120 {
        return Err(invalid("a display name has at most 120 characters"));
    }
    let id = ledger.add_reader(name, role)?;
    Ok(Reader {
        id,
        display_name: name.to_owned(),
        role,
    })
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidArgument, message)
}

fn reader(ledger: &Ledger, id: i64) -> Result<Reader, AppError> {
    readers(ledger)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| invalid(format!("there is no reader with id {id}")))
}

// ---------------------------------------------------------------------------------------------
// Models

/// A label a model reports, with its colour.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct LabelInfo {
    pub name: String,
    /// RGBA, 0–255.
    pub color: [u8; 4],
    pub threshold: f64,
}

/// A model found in a models folder, as the models panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct ModelSummary {
    /// The model's folder (what `analyse` takes).
    pub dir: String,
    pub id: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub intended_use: String,
    pub modality: String,
    pub body_part: String,
    pub clinical_use: String,
    /// Demonstration models carry a persistent "not for clinical use" banner.
    pub demonstration: bool,
    /// segmentation, heatmap, detection or classification.
    pub kind: String,
    pub labels: Vec<LabelInfo>,
    /// The SHA-256 the manifest declares.
    pub sha256: String,
    /// Whether the `.onnx` file matches it.
    pub integrity_ok: bool,
    /// Why the model cannot be used (unreadable manifest, missing file, SHA-256 mismatch).
    pub problem: Option<String>,
    /// The model card (Markdown), empty when it cannot be read.
    pub model_card: String,
    /// Where it will run (e.g. "CPU", "CUDA"), filled in by the caller that knows the runtime.
    pub execution_provider: String,
}

fn kind_name(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Segmentation => "segmentation",
        OutputKind::Heatmap => "heatmap",
        OutputKind::Detection => "detection",
        OutputKind::Classification => "classification",
    }
}

/// The models in each folder of `roots` (every sub-folder with a `manifest.toml`), sorted by
/// name. A model that cannot be used is listed with its problem, not hidden.
pub fn list_models(roots: &[PathBuf]) -> Vec<ModelSummary> {
    let mut out = Vec::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join(dokuei_infer::manifest::MANIFEST_FILE).is_file())
            .collect();
        dirs.sort();
        out.extend(dirs.iter().map(|d| summarise_model(d)));
    }
    out
}

/// Describes the model in `dir` and checks its file against the manifest's SHA-256.
pub fn summarise_model(dir: &Path) -> ModelSummary {
    let dir_text = dir.display().to_string();
    let (manifest, manifest_path) = match Manifest::read(dir) {
        Ok(m) => m,
        Err(e) => {
            return ModelSummary {
                dir: dir_text,
                id: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                name: String::new(),
                version: String::new(),
                publisher: String::new(),
                intended_use: String::new(),
                modality: String::new(),
                body_part: String::new(),
                clinical_use: String::new(),
                demonstration: false,
                kind: String::new(),
                labels: Vec::new(),
                sha256: String::new(),
                integrity_ok: false,
                problem: Some(e.to_string()),
                model_card: String::new(),
                execution_provider: String::new(),
            };
        }
    };
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let m = &manifest.model;
    let onnx = base.join(&m.file);
    let problem = match file_sha256(&onnx) {
        Ok(found) if found.eq_ignore_ascii_case(&m.sha256) => None,
        Ok(found) => Some(format!(
            "the model file `{}` does not match its manifest: SHA-256 {found}, manifest says {}",
            onnx.display(),
            m.sha256
        )),
        Err(e) => Some(format!(
            "cannot read the model file `{}`: {e}",
            onnx.display()
        )),
    };
    ModelSummary {
        dir: dir_text,
        id: m.id.clone(),
        name: m.name.clone(),
        version: m.version.clone(),
        publisher: m.publisher.clone(),
        intended_use: m.intended_use.clone(),
        modality: m.modality.clone(),
        body_part: m.body_part.clone(),
        clinical_use: m.clinical_use.clone(),
        demonstration: m.is_demonstration(),
        kind: kind_name(manifest.output.kind).to_owned(),
        labels: manifest
            .labels
            .iter()
            .map(|l| LabelInfo {
                name: l.name.clone(),
                color: l.color,
                threshold: l.threshold,
            })
            .collect(),
        sha256: m.sha256.to_ascii_lowercase(),
        integrity_ok: problem.is_none(),
        problem,
        model_card: std::fs::read_to_string(base.join(&m.model_card)).unwrap_or_default(),
        execution_provider: String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry shared by findings and decisions

/// Set pixels of one slice: `[start, length]` runs in row-major pixel index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct MaskSlice {
    pub slice: u32,
    pub runs: Vec<[u32; 2]>,
}

/// Where a finding is, in its stack's pixel grid, and how big. Stored as JSON in the ledger;
/// `box` is the `[x0, y0, x1, y1]` (column, row; inclusive) the agreement statistics read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Geometry {
    #[serde(rename = "box")]
    pub bbox: [u32; 4],
    /// First and last slice (display order).
    pub slices: [u32; 2],
    pub mask: Vec<MaskSlice>,
    pub centroid_lps_mm: [f64; 3],
    pub longest_diameter_mm: f64,
    pub area_mm2: f64,
    pub volume_mm3: f64,
}

impl From<&ComponentGeometry> for Geometry {
    fn from(g: &ComponentGeometry) -> Self {
        let b = g.bbox_voxels;
        Geometry {
            bbox: [b[2], b[1], b[5], b[4]],
            slices: g.slices,
            mask: g
                .mask
                .iter()
                .map(|m| MaskSlice {
                    slice: m.slice,
                    runs: m.runs.iter().map(|&(s, l)| [s, l]).collect(),
                })
                .collect(),
            centroid_lps_mm: g.centroid_lps_mm,
            longest_diameter_mm: g.size.longest_diameter_mm,
            area_mm2: g.size.area_mm2,
            volume_mm3: g.size.volume_mm3,
        }
    }
}

/// The patient-space geometry of slice `i` of a stack (image millimetres for projection
/// images without patient geometry, from (Imager) Pixel Spacing, one slice per mm).
pub fn slice_geometry(series: &Series, stack: &Stack, i: usize) -> SliceGeometry {
    match stack.frames[i].geometry {
        Some(g) => SliceGeometry {
            position: g.position,
            row_direction: g.orientation.row,
            column_direction: g.orientation.column,
            pixel_spacing: g.pixel_spacing,
        },
        None => SliceGeometry {
            position: [0.0, 0.0, i as f64],
            row_direction: [1.0, 0.0, 0.0],
            column_direction: [0.0, 1.0, 0.0],
            pixel_spacing: series.instances[stack.frames[i].instance]
                .image
                .as_ref()
                .and_then(|im| im.pixel_spacing)
                .unwrap_or([1.0, 1.0]),
        },
    }
}

/// Distance between a stack's slices (mm), else its slice thickness, else 1.
pub fn slice_spacing(stack: &Stack) -> f64 {
    let s = stack.spacing.spacing.abs();
    if s > 0.0 {
        s
    } else {
        stack.slice_thickness.unwrap_or(1.0)
    }
}

/// The geometry of a mask drawn or edited by a reader on a stack: box, centroid and size are
/// computed here, not trusted from the screen. Refuses an empty mask or pixels outside the
/// stack.
pub fn geometry_from_mask(
    series: &Series,
    stack: &Stack,
    mask: &[MaskSlice],
) -> Result<Geometry, AppError> {
    let (rows, columns) = (stack.rows as usize, stack.columns as usize);
    let plane = rows * columns;
    let mut voxels = Vec::new();
    for m in mask {
        let s = m.slice as usize;
        if s >= stack.frames.len() {
            return Err(invalid(format!(
                "the drawn region is on slice {}, but the stack has {} slices",
                s + 1,
                stack.frames.len()
            )));
        }
        for &[start, len] in &m.runs {
            let (start, len) = (start as usize, len as usize);
            if start + len > plane {
                return Err(invalid(
                    "the drawn region extends outside the image".to_owned(),
                ));
            }
            voxels.extend((start..start + len).map(|p| s * plane + p));
        }
    }
    voxels.sort_unstable();
    voxels.dedup();
    if voxels.is_empty() {
        return Err(invalid("the drawn region is empty"));
    }
    let geometry: Vec<SliceGeometry> = (0..stack.frames.len())
        .map(|i| slice_geometry(series, stack, i))
        .collect();
    Ok(Geometry::from(&describe(
        &voxels,
        rows,
        columns,
        &geometry,
        slice_spacing(stack),
    )))
}

// ---------------------------------------------------------------------------------------------
// Recording an analysis

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

fn study_id(ledger: &Ledger, study: &StudyIdentity) -> Result<i64, AppError> {
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

fn mask_sha256(mask: &[MaskSlice]) -> String {
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
    let analysis_id = ledger.record_analysis(&AnalysisRecord {
        study_id,
        series_uid: series_uid.to_owned(),
        model_id: model.id.clone(),
        model_version: model.version.clone(),
        model_sha256: model.sha256.to_ascii_lowercase(),
        execution_provider: model.execution_provider.clone(),
        thresholds_json: serde_json::to_string(&model.thresholds).unwrap_or_default(),
        started_at: started_at.to_owned(),
        finished_at: finished_at.to_owned(),
    })?;
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

fn record_finding(
    ledger: &Ledger,
    analysis_id: i64,
    f: &Finding,
    shown_at: &str,
) -> Result<i64, AppError> {
    let stored = StoredFinding {
        geometry: Geometry::from(&f.geometry),
        image_score: f.image_score,
        color: None,
    };
    Ok(ledger.record_finding(&FindingRecord {
        analysis_id,
        label: f.label.clone(),
        score: f.score,
        geometry_json: serde_json::to_string(&stored).unwrap_or_default(),
        mask_sha256: mask_sha256(&stored.geometry.mask),
        shown_at: shown_at.to_owned(),
    })?)
}

// ---------------------------------------------------------------------------------------------
// The state of a study's review

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

fn signed_off_error() -> AppError {
    AppError::new(
        ErrorCode::ReadOnly,
        "this study has been signed off; it is read-only",
    )
}

fn parse_action(s: &str) -> Option<Action> {
    Some(match s {
        "confirm" => Action::Confirm,
        "edit" => Action::Edit,
        "reject" => Action::Reject,
        "add" => Action::Add,
        _ => return None,
    })
}

fn parse_reason(s: &str) -> Option<RejectReason> {
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

fn decision_view(d: &dokuei_ledger::DecisionRow) -> Option<DecisionView> {
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

fn review_from_rows(study_uid: &str, rows: &StudyRows) -> StudyReview {
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

// ---------------------------------------------------------------------------------------------
// Decisions and sign-off

/// What a reader decided, as the screen sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct DecisionInput {
    /// The AI finding decided on; `None` to add a finding.
    #[specta(type = Option<i32>)]
    pub finding_id: Option<i64>,
    /// An added finding being redrawn: the decision that added it.
    #[specta(type = Option<i32>)]
    pub replaces_added: Option<i64>,
    pub action: Action,
    /// The label (for add; for others the finding's label is used when empty).
    pub label: String,
    pub reject_reason: Option<RejectReason>,
    pub reason_text: String,
    /// The edited or drawn mask (edit and add), in the stack's pixel grid.
    pub mask: Vec<MaskSlice>,
}

/// The study a decision is on, and the stack its geometry refers to.
#[derive(Debug)]
pub struct DecisionContext<'a> {
    pub study: &'a StudyIdentity,
    pub series: &'a Series,
    pub stack: &'a Stack,
}

fn require_reader_who_decides(ledger: &Ledger, reader_id: i64) -> Result<Reader, AppError> {
    let r = reader(ledger, reader_id)?;
    if r.role == Role::Qa {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            format!(
                "{} has the QA role, which reviews decisions but does not make them",
                r.display_name
            ),
        ));
    }
    Ok(r)
}

/// Records one decision at once and returns the study's review. Rules: the study is not
/// signed off; the reader is a radiologist or clinician; confirm, edit and reject name an AI
/// finding of the study's current analyses; reject has a reason (and text for "other"); edit
/// and add carry a non-empty region. A decision on a finding that already has one supersedes
/// it (undo is a new decision, never a deletion).
pub fn decide(
    ledger: &Ledger,
    ctx: &DecisionContext<'_>,
    reader_id: i64,
    input: &DecisionInput,
) -> Result<(i64, StudyReview), AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    let study_id = ledger
        .study_id(&ctx.study.study_uid)?
        .ok_or_else(|| invalid("this study has no analysis to decide on yet"))?;
    let rows = ledger.study_rows(study_id)?;
    if !rows.sign_offs.is_empty() {
        return Err(signed_off_error());
    }
    let current = review_from_rows(&ctx.study.study_uid, &rows);
    // Commit-then-reveal: once an impression is recorded, decisions wait for the reveal.
    if current.impression_before_ai.is_some() && !current.ai_revealed {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            "the AI results have not been revealed yet",
        ));
    }
    let (label, finding_id, supersedes_id) = match (input.action, input.finding_id) {
        (Action::Add, None) => {
            let supersedes = match input.replaces_added {
                Some(id) => {
                    let added = current
                        .findings
                        .iter()
                        .filter_map(|f| f.decision.as_ref())
                        .find(|d| d.id == id && d.action == Action::Add);
                    if added.is_none() {
                        return Err(invalid(format!(
                            "decision {id} is not a current added finding of this study"
                        )));
                    }
                    Some(id)
                }
                None => None,
            };
            if input.label.trim().is_empty() {
                return Err(invalid("an added finding needs a label"));
            }
            (input.label.trim().to_owned(), None, supersedes)
        }
        (Action::Add, Some(_)) => {
            return Err(invalid(
                "add is for a finding the model missed; use edit to change an AI finding",
            ));
        }
        (_, None) => {
            return Err(invalid(format!(
                "{} needs the AI finding it is about",
                input.action.as_str()
            )));
        }
        (_, Some(fid)) => {
            let finding = current
                .findings
                .iter()
                .find(|f| f.finding_id == Some(fid))
                .ok_or_else(|| {
                    invalid(format!(
                        "finding {fid} is not one of this study's current AI findings"
                    ))
                })?;
            let label = if input.label.trim().is_empty() {
                finding.label.clone()
            } else {
                input.label.trim().to_owned()
            };
            (label, Some(fid), finding.decision.as_ref().map(|d| d.id))
        }
    };
    let reason_text = input.reason_text.trim().to_owned();
    match (input.action, input.reject_reason) {
        (Action::Reject, None) => {
            return Err(invalid("a rejection needs a reason"));
        }
        (Action::Reject, Some(RejectReason::Other)) if reason_text.is_empty() => {
            return Err(invalid("a rejection for another reason needs a few words"));
        }
        (Action::Reject, _) => {}
        (_, Some(_)) => return Err(invalid("only a rejection has a reject reason")),
        _ => {}
    }
    let geometry = match input.action {
        Action::Edit | Action::Add => Some(geometry_from_mask(ctx.series, ctx.stack, &input.mask)?),
        _ if !input.mask.is_empty() => {
            return Err(invalid(format!(
                "{} does not change the region",
                input.action.as_str()
            )));
        }
        _ => None,
    };
    let id = ledger.record_decision(&DecisionRecord {
        study_id,
        finding_id,
        action: input.action,
        label,
        reject_reason: input.reject_reason,
        reason_text,
        geometry_json: geometry
            .as_ref()
            .map(|g| serde_json::to_string(g).unwrap_or_default())
            .unwrap_or_default(),
        reader_id,
        supersedes_id,
    })?;
    Ok((id, review(ledger, &ctx.study.study_uid)?))
}

/// Signs the study off. Refused while any AI finding has no decision, and when already signed
/// off. Records the counts of effective decisions and the optional impression.
pub fn sign_off(
    ledger: &Ledger,
    study_uid: &str,
    reader_id: i64,
    impression: &str,
) -> Result<StudyReview, AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    let study_id = ledger
        .study_id(study_uid)?
        .ok_or_else(|| invalid("this study has not been analysed or reviewed yet"))?;
    let current = review_from_rows(study_uid, &ledger.study_rows(study_id)?);
    if current.sign_off.is_some() {
        return Err(signed_off_error());
    }
    if current.undecided > 0 {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            format!(
                "{} AI finding{} still need{} a decision before sign-off",
                current.undecided,
                if current.undecided == 1 { "" } else { "s" },
                if current.undecided == 1 { "s" } else { "" },
            ),
        ));
    }
    let count = |a: Action| {
        current
            .findings
            .iter()
            .filter(|f| f.decision.as_ref().is_some_and(|d| d.action == a))
            .count() as i64
    };
    ledger.record_sign_off(&SignOffRecord {
        study_id,
        reader_id,
        confirmed: count(Action::Confirm),
        edited: count(Action::Edit),
        rejected: count(Action::Reject),
        added: count(Action::Add),
        impression: impression.trim().to_owned(),
    })?;
    review(ledger, study_uid)
}

/// Commit-then-reveal, step one: the reader's own impression before any AI result is shown.
pub fn record_impression(
    ledger: &Ledger,
    study: &StudyIdentity,
    reader_id: i64,
    impression: &str,
) -> Result<StudyReview, AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    if impression.trim().is_empty() {
        return Err(invalid(
            "write an impression before the AI results are shown",
        ));
    }
    let study_id = study_id(ledger, study)?;
    let current = review_from_rows(&study.study_uid, &ledger.study_rows(study_id)?);
    if current.sign_off.is_some() {
        return Err(signed_off_error());
    }
    if current.ai_revealed || !current.findings.is_empty() {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            "the AI results of this study have already been shown; an impression recorded now \
             would not be independent of them",
        ));
    }
    ledger.record_reading_event(
        study_id,
        reader_id,
        ReadingEventKind::ImpressionBeforeAi,
        impression.trim(),
    )?;
    review(ledger, &study.study_uid)
}

/// Commit-then-reveal, step two: the AI results are shown. Refused before an impression.
pub fn reveal(ledger: &Ledger, study_uid: &str, reader_id: i64) -> Result<StudyReview, AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    let study_id = ledger
        .study_id(study_uid)?
        .ok_or_else(|| invalid("record an impression first"))?;
    let current = review_from_rows(study_uid, &ledger.study_rows(study_id)?);
    if current.impression_before_ai.is_none() {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            "record your impression before the AI results are revealed",
        ));
    }
    if !current.ai_revealed {
        ledger.record_reading_event(study_id, reader_id, ReadingEventKind::AiRevealed, "")?;
    }
    review(ledger, study_uid)
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

/// Environment variable naming extra model folders (separated like `PATH`).
pub const MODELS_PATH_ENV: &str = "DOKUEI_MODELS";

/// Where models are looked for, in order: the folders in `DOKUEI_MODELS`, the user's
/// configured folders, `models/` next to the executable, and the `models/` folder of the
/// source checkout the app runs from (nearest above the current folder, else the one it was
/// compiled in). Duplicates and missing folders are dropped.
pub fn model_roots(configured: &[PathBuf]) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os(MODELS_PATH_ENV)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    candidates.extend(configured.iter().cloned());
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("models"));
    }
    if let Some(checkout) = std::env::current_dir().ok().and_then(|cwd| {
        cwd.ancestors()
            .map(|a| a.join("models"))
            .find(|m| m.join("ct-nodule-demo").is_dir())
    }) {
        candidates.push(checkout);
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    let mut seen = std::collections::HashSet::new();
    candidates
        .into_iter()
        .filter(|p| p.is_dir())
        .filter(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())))
        .collect()
}
