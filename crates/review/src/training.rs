//! One-click training data: the findings physicians decided, for a filter (model, version,
//! dates, label), as a dataset a training pipeline reads without conversion:
//!
//! ```text
//! OUT/
//!   dicom/                     de-identified images and a SEG of the final labels per case
//!                              (<pseudonym>/<study>/<series>/<instance>.dcm, deid-report.json)
//!   nnUNet/Dataset<NNN>_Dokuei/  imagesTr, labelsTr (final labels), imagesTs, labelsTs,
//!                              dataset.json (nnU-Net v2)
//!   labels/final/<case>.nii.gz     confirmed, edited and added findings
//!   labels/original/<case>.nii.gz  what the AI said, decisions aside
//!   monai_datalist.json        training / validation / test lists (MONAI's decathlon form)
//!   findings.jsonl             one line per AI finding (rejected ones are negatives) and per
//!                              finding a reader added
//!   splits.json                patient-level splits
//!   provenance.json            app version, PS3.15 edition and options, site key id, dates
//!                              policy, defacing, filter, models, label values
//! ```
//!
//! A case is one analysed stack of a signed-off study. Only signed-off studies leave: before
//! sign-off the labels are not final. Nothing identifying leaves unless an identified export is
//! chosen, and every study exported is recorded in the access audit either way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use dokuei_dicom::stack::Stack;
use dokuei_dicom::volume::{Volume, VolumeData, load_volume};
use dokuei_dicom::{Series, Source, StudyIndex};
use dokuei_ledger::{AccessAction, Action, Ledger, Outcome};
use dokuei_results::seg::write_seg;
use dokuei_results::uid::uid_from;
use dokuei_results::{ObjectIdentity, Origin, ResultFinding, SourceSeries, StudyContext, Writer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::deid::{DeidDates, DeidSettings};
use crate::reading::{AnalysisView, FindingView, Geometry, hex_lower, review};
use crate::results::{analysed_stack, coding, models, result_finding, write_object};
use crate::{AppError, ErrorCode};

/// Which decided findings to export. Every field is optional; empty means any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct TrainingFilter {
    pub model_id: Option<String>,
    pub model_version: Option<String>,
    /// Analyses that finished on or after this day (YYYY-MM-DD, UTC).
    pub from: Option<String>,
    /// Analyses that finished on or before this day (YYYY-MM-DD, UTC).
    pub to: Option<String>,
    /// Findings with this label only (in both label maps and in findings.jsonl).
    pub label: Option<String>,
}

/// What the QA view's "Export training data…" and `dokuei export training` ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct TrainingSettings {
    pub filter: TrainingFilter,
    /// How the DICOM copies are de-identified (PS3.15 options).
    pub deid: DeidSettings,
    /// Identified export: the original DICOM files and readers' free text leave as they are.
    /// Recorded in the access audit as identified.
    pub identified: bool,
    /// Share of patients in the validation split (0 to 1).
    pub validation: f64,
    /// Share of patients in the test split (0 to 1).
    pub test: f64,
}

impl Default for TrainingSettings {
    fn default() -> Self {
        TrainingSettings {
            filter: TrainingFilter::default(),
            deid: DeidSettings::default(),
            identified: false,
            validation: 0.15,
            test: 0.15,
        }
    }
}

/// Progress: steps done of the total (DICOM files, then cases).
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct TrainingProgress {
    pub phase: String,
    pub done: u32,
    pub total: u32,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, specta::Type)]
pub struct TrainingExport {
    pub folder: String,
    pub cases: u32,
    pub patients: u32,
    /// AI findings written to findings.jsonl (rejected ones included, as negatives).
    pub ai_findings: u32,
    /// Findings readers added.
    pub added_findings: u32,
    pub rejected: u32,
    /// Cases per split: training, validation, test.
    pub splits: [u32; 3],
    pub files: u32,
    #[specta(type = f64)]
    pub bytes: u64,
    pub identified: bool,
    pub cancelled: bool,
    /// Studies, cases or files left out, with the reason (no patient identifier).
    pub notes: Vec<String>,
}

/// The nnU-Net dataset's name (its number is in nnU-Net's range for user datasets).
pub const NNUNET_DATASET: &str = "Dataset500_Dokuei";

/// One analysed stack of a signed-off study.
struct Case<'a> {
    study_uid: String,
    patient_id: String,
    context: StudyContext,
    series: &'a Series,
    stack: Stack,
    /// The analyses on this stack that pass the filter.
    analyses: Vec<AnalysisView>,
    /// AI findings of those analyses that pass the label filter, then findings readers added
    /// on this series.
    findings: Vec<FindingView>,
}

impl Case<'_> {
    fn analysis(&self, id: i64) -> Option<&AnalysisView> {
        self.analyses.iter().find(|a| a.id == id)
    }
}

/// A decided finding's place in the label maps.
fn final_geometry(f: &FindingView) -> Option<&Geometry> {
    match f.decision.as_ref()?.action {
        Action::Reject => None,
        Action::Confirm | Action::Edit | Action::Add => Some(f.effective_geometry()),
    }
}

fn in_dates(finished_at: &str, filter: &TrainingFilter) -> bool {
    let day = finished_at.get(..10).unwrap_or(finished_at);
    filter.from.as_deref().is_none_or(|f| day >= f) && filter.to.as_deref().is_none_or(|t| day <= t)
}

fn check_day(day: &Option<String>, what: &str) -> Result<(), AppError> {
    match day {
        Some(d) if chrono_like_day(d) => Ok(()),
        Some(d) => Err(AppError::new(
            ErrorCode::InvalidArgument,
            format!("the {what} date `{d}` is not YYYY-MM-DD"),
        )),
        None => Ok(()),
    }
}

fn chrono_like_day(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The cases `index` holds for `filter`, and notes on what was left out.
fn plan<'a>(
    ledger: &Ledger,
    index: &'a StudyIndex,
    filter: &TrainingFilter,
) -> Result<(Vec<Case<'a>>, Vec<String>), AppError> {
    let mut cases: Vec<Case<'a>> = Vec::new();
    let mut notes = Vec::new();
    let mut study_number = 0;
    for patient in &index.patients {
        for study in &patient.studies {
            let Some(study_id) = ledger.study_id(&study.uid)? else {
                continue;
            };
            study_number += 1;
            let rv = review(ledger, &study.uid)?;
            let analyses: Vec<&AnalysisView> = rv
                .analyses
                .iter()
                .filter(|a| {
                    filter.model_id.as_ref().is_none_or(|m| &a.model_id == m)
                        && filter
                            .model_version
                            .as_ref()
                            .is_none_or(|v| &a.model_version == v)
                        && in_dates(&a.finished_at, filter)
                })
                .collect();
            if analyses.is_empty() {
                continue;
            }
            if rv.sign_off.is_none() {
                notes.push(format!(
                    "study {study_number} ({} {}) is not signed off: its labels are not final, \
                     so it is left out",
                    study.date, study.description
                ));
                continue;
            }
            let rows = ledger.study_rows(study_id)?;
            // Findings readers added are recorded without their series (the review shows them
            // on the latest analysis's): they are placed only when the study has one analysed
            // stack.
            let stacks_analysed: BTreeSet<(&str, Option<i64>)> = rv
                .analyses
                .iter()
                .map(|a| {
                    let s = rows.sources.iter().find(|s| s.analysis_id == a.id);
                    (a.series_uid.as_str(), s.map(|s| s.stack_index))
                })
                .collect();
            let adds_placed = stacks_analysed.len() == 1;
            if !adds_placed && rv.findings.iter().any(|f| f.finding_id.is_none()) {
                notes.push(format!(
                    "study {study_number}: the findings readers added are left out: the ledger \
                     does not record which of its {} analysed stacks they were drawn on",
                    stacks_analysed.len()
                ));
            }
            for a in analyses {
                let Some(series) = study.series.iter().find(|s| s.uid == a.series_uid) else {
                    notes.push(format!(
                        "study {study_number}: the series analysis {} ran on is not among the \
                         files opened",
                        a.id
                    ));
                    continue;
                };
                let stack = match analysed_stack(series, a.id, &rows.sources, &mut notes) {
                    Ok(s) => s,
                    Err(e) => {
                        notes.push(format!("study {study_number}: {}", e.message));
                        continue;
                    }
                };
                let label_ok =
                    |f: &&FindingView| filter.label.as_ref().is_none_or(|l| &f.label == l);
                let ai: Vec<FindingView> = rv
                    .findings
                    .iter()
                    .filter(|f| f.analysis_id == a.id && f.finding_id.is_some())
                    .filter(label_ok)
                    .cloned()
                    .collect();
                let existing = cases
                    .iter_mut()
                    .find(|c| c.series.uid == series.uid && c.stack.label == stack.label);
                match existing {
                    Some(c) => {
                        c.analyses.push(a.clone());
                        let at = c.findings.partition_point(|f| f.finding_id.is_some());
                        c.findings.splice(at..at, ai);
                    }
                    None => {
                        let added = rv
                            .findings
                            .iter()
                            .filter(|f| {
                                adds_placed && f.finding_id.is_none() && f.series_uid == series.uid
                            })
                            .filter(label_ok)
                            .cloned();
                        cases.push(Case {
                            study_uid: study.uid.clone(),
                            patient_id: patient.id.clone(),
                            context: StudyContext::from_index(patient, study),
                            series,
                            stack,
                            analyses: vec![a.clone()],
                            findings: ai.into_iter().chain(added).collect(),
                        });
                    }
                }
            }
        }
    }
    Ok((cases, notes))
}

/// Where a patient falls in [0, 1): the first 8 bytes of SHA-256 of the pseudonym.
fn split_point(pseudonym: &str) -> f64 {
    let h = Sha256::digest(format!("dokuei-split/{pseudonym}"));
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Patient-level splits: each patient's place is a number in [0, 1) from a hash of the
/// pseudonym: test below the test share, validation below test + validation, training
/// above. A patient's cases never straddle two splits, and a patient stays in the same split
/// as more patients arrive. Training keeps at least one patient (the one placed highest).
/// Returns the split (0 training, 1 validation, 2 test) per pseudonym.
fn split_patients(
    pseudonyms: &BTreeSet<String>,
    validation: f64,
    test: f64,
) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = pseudonyms
        .iter()
        .map(|p| {
            let u = split_point(p);
            let split = if u < test {
                2
            } else if u < test + validation {
                1
            } else {
                0
            };
            (p.clone(), split)
        })
        .collect();
    if !out.is_empty() && out.values().all(|&s| s != 0) {
        let highest = pseudonyms
            .iter()
            .max_by(|a, b| split_point(a).total_cmp(&split_point(b)))
            .cloned()
            .unwrap_or_default();
        out.insert(highest, 0);
    }
    out
}

const SPLIT_NAMES: [&str; 3] = ["training", "validation", "test"];

// ---------------------------------------------------------------------------------------------
// NIfTI

/// Why one affine cannot place a stack's slices: missing slices, irregular spacing, or slices
/// not stacked along their normal (gantry tilt).
fn affine_problem(stack: &Stack) -> Option<String> {
    if !stack.spacing.gaps.is_empty() {
        return Some("slices are missing from the stack".into());
    }
    if stack.spacing.irregular {
        return Some("its slice spacing is irregular".into());
    }
    let (first, last) = (
        stack.frames.first()?.geometry?,
        stack.frames.last()?.geometry?,
    );
    if stack.frames.len() > 1 {
        let d: [f64; 3] = std::array::from_fn(|i| last.position[i] - first.position[i]);
        let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        let n = first.orientation.normal();
        let cos = (d[0] * n[0] + d[1] * n[1] + d[2] * n[2]).abs() / len.max(f64::EPSILON);
        if cos < 0.9999 {
            return Some(format!(
                "its slices are tilted by {:.1}° from their normal (gantry tilt)",
                cos.clamp(-1.0, 1.0).acos().to_degrees()
            ));
        }
    }
    None
}

/// The NIfTI affine (RAS+, mm) of a stack whose voxel (i, j, k) is column i, row j, slice k in
/// display order: DICOM's LPS position of each voxel with x and y negated; the slice step is
/// the first-to-last distance over (slices − 1). A stack without patient geometry (a
/// radiograph) gets the identity.
pub fn stack_affine(stack: &Stack) -> ([[f64; 4]; 3], bool) {
    let first = stack.frames.first().and_then(|f| f.geometry);
    let Some(g0) = first else {
        return (
            [
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
            ],
            false,
        );
    };
    let [dr, dc] = g0.pixel_spacing;
    let n = stack.frames.len();
    let last = stack.frames.last().and_then(|f| f.geometry);
    let slice: [f64; 3] = match last {
        Some(gl) if n > 1 => {
            let d = |i: usize| (gl.position[i] - g0.position[i]) / (n - 1) as f64;
            [d(0), d(1), d(2)]
        }
        _ => {
            let t = stack.slice_thickness.unwrap_or(1.0).max(f64::EPSILON);
            let nrm = g0.orientation.normal();
            [nrm[0] * t, nrm[1] * t, nrm[2] * t]
        }
    };
    let (r, c, o) = (g0.orientation.row, g0.orientation.column, g0.position);
    let mut m = [[0.0; 4]; 3];
    for a in 0..3 {
        let sign = if a < 2 { -1.0 } else { 1.0 };
        m[a] = [
            sign * r[a] * dc,
            sign * c[a] * dr,
            sign * slice[a],
            sign * o[a],
        ];
    }
    (m, true)
}

/// The quaternion (b, c, d), qfac and voxel sizes of an affine's rotation, as NIfTI's qform
/// stores them (nifti1_io's `nifti_mat44_to_quatern` for an orthogonal matrix).
fn quatern(m: &[[f64; 4]; 3]) -> ([f64; 3], f64, [f64; 3]) {
    let col = |j: usize| [m[0][j], m[1][j], m[2][j]];
    let len = |v: [f64; 3]| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let mut sizes = [0.0; 3];
    let mut r = [[0.0; 3]; 3];
    for j in 0..3 {
        let v = col(j);
        let l = len(v).max(f64::EPSILON);
        sizes[j] = l;
        for i in 0..3 {
            r[i][j] = v[i] / l;
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 {
        for row in &mut r {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    let (r11, r12, r13) = (r[0][0], r[0][1], r[0][2]);
    let (r21, r22, r23) = (r[1][0], r[1][1], r[1][2]);
    let (r31, r32, r33) = (r[2][0], r[2][1], r[2][2]);
    let trace = r11 + r22 + r33 + 1.0;
    let (mut a, mut b, mut c, mut d);
    if trace > 0.5 {
        a = 0.5 * trace.sqrt();
        b = 0.25 * (r32 - r23) / a;
        c = 0.25 * (r13 - r31) / a;
        d = 0.25 * (r21 - r12) / a;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r12 + r21) / b;
            d = 0.25 * (r13 + r31) / b;
            a = 0.25 * (r32 - r23) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r12 + r21) / c;
            d = 0.25 * (r23 + r32) / c;
            a = 0.25 * (r13 - r31) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r13 + r31) / d;
            c = 0.25 * (r23 + r32) / d;
            a = 0.25 * (r21 - r12) / d;
        }
        if a < 0.0 {
            (a, b, c, d) = (-a, -b, -c, -d);
        }
    }
    let _ = a;
    ([b, c, d], qfac, sizes)
}

/// Writes a volume (`values` in slice, row, column order) as a gzipped NIfTI-1 file with the
/// stack's affine in both sform and qform (code 1, scanner), through a temporary name.
fn write_nifti<T>(
    path: &Path,
    (slices, rows, columns): (usize, usize, usize),
    values: Vec<T>,
    affine: &[[f64; 4]; 3],
    description: &str,
) -> Result<u64, AppError>
where
    T: nifti::DataElement + bytemuck::Pod,
{
    use ndarray016::ShapeBuilder;
    let fail = |e: &dyn std::fmt::Display| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    // Column-major (i, j, k) over the slice-row-column buffer: voxel (i, j, k) is column i,
    // row j, slice k, and NIfTI's i runs fastest, as DICOM's columns do.
    let array = ndarray016::Array3::from_shape_vec((columns, rows, slices).f(), values)
        .map_err(|e| fail(&e))?;
    let mut header = nifti::NiftiHeader::default();
    let (q, qfac, sizes) = quatern(affine);
    header.pixdim = [
        qfac as f32,
        sizes[0] as f32,
        sizes[1] as f32,
        sizes[2] as f32,
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    header.qform_code = 1;
    header.sform_code = 1;
    header.quatern_b = q[0] as f32;
    header.quatern_c = q[1] as f32;
    header.quatern_d = q[2] as f32;
    header.quatern_x = affine[0][3] as f32;
    header.quatern_y = affine[1][3] as f32;
    header.quatern_z = affine[2][3] as f32;
    header.srow_x = affine[0].map(|v| v as f32);
    header.srow_y = affine[1].map(|v| v as f32);
    header.srow_z = affine[2].map(|v| v as f32);
    // NIFTI_UNITS_MM.
    header.xyzt_units = 2;
    let mut d = description.as_bytes().to_vec();
    d.truncate(79);
    header.descrip = d;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{}.part.nii.gz", name.trim_end_matches(".nii.gz")));
    let written = nifti::writer::WriterOptions::new(&tmp)
        .reference_header(&header)
        .write_nifti(&array)
        .map_err(|e| fail(&e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| fail(&e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    Ok(std::fs::metadata(path).map_or(0, |m| m.len()))
}

/// The modality values of a volume (HU for CT): whole numbers as i16 when every slice's
/// rescale keeps them whole and in range, else f32.
enum Values {
    I16(Vec<i16>),
    F32(Vec<f32>),
}

fn modality_values(v: &Volume) -> Values {
    let (s, r, c) = v.data.dim();
    let whole = v
        .rescale
        .iter()
        .all(|x| x.slope.fract() == 0.0 && x.intercept.fract() == 0.0 && x.slope.abs() <= 1.0);
    let stored_i16 = matches!(
        v.data,
        VolumeData::U8(_) | VolumeData::I8(_) | VolumeData::I16(_) | VolumeData::U16(_)
    );
    let mut out_f = Vec::with_capacity(s * r * c);
    for k in 0..s {
        if let Some(slice) = v.slice_values(k) {
            out_f.extend(slice);
        }
    }
    if whole && stored_i16 && out_f.iter().all(|&x| (-32768.0..=32767.0).contains(&x)) {
        Values::I16(out_f.into_iter().map(|x| x as i16).collect())
    } else {
        Values::F32(out_f)
    }
}

/// Paints findings into a label map (slice, row, column order); a later finding wins where
/// two overlap. Returns the voxels set.
fn paint<'g>(
    map: &mut [u8],
    plane: usize,
    findings: impl Iterator<Item = (&'g Geometry, u8)>,
) -> usize {
    let mut set = 0;
    for (g, value) in findings {
        for m in &g.mask {
            let base = m.slice as usize * plane;
            for run in &m.runs {
                let (start, len) = (run[0] as usize, run[1] as usize);
                if start + len > plane || base + start + len > map.len() {
                    continue;
                }
                for v in &mut map[base + start..base + start + len] {
                    *v = value;
                }
                set += len;
            }
        }
    }
    set
}

// ---------------------------------------------------------------------------------------------
// The export

/// What the heavy part of an export needs from the ledger, read while it is held.
pub struct TrainingPlan<'a> {
    cases: Vec<Case<'a>>,
    notes: Vec<String>,
    ledger_path: PathBuf,
    writer: Writer,
    models: HashMap<(String, String), crate::results::ModelInfo>,
}

impl std::fmt::Debug for TrainingPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingPlan")
            .field("cases", &self.cases.len())
            .field("notes", &self.notes)
            .finish_non_exhaustive()
    }
}

impl TrainingPlan<'_> {
    /// Cases the plan holds (one per analysed stack of a signed-off study).
    pub fn cases(&self) -> usize {
        self.cases.len()
    }
}

/// Reads what the export needs from the ledger (quick; the ledger can be released after).
pub fn plan_training<'a>(
    ledger: &Ledger,
    index: &'a StudyIndex,
    settings: &TrainingSettings,
    model_roots: &[PathBuf],
) -> Result<TrainingPlan<'a>, AppError> {
    check_day(&settings.filter.from, "from")?;
    check_day(&settings.filter.to, "to")?;
    for (share, what) in [(settings.validation, "validation"), (settings.test, "test")] {
        if !(0.0..=1.0).contains(&share) {
            return Err(AppError::new(
                ErrorCode::InvalidArgument,
                format!("the {what} share must be between 0 and 1, not {share}"),
            ));
        }
    }
    if settings.validation + settings.test >= 1.0 {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            "the validation and test shares leave no patient for training",
        ));
    }
    let (cases, notes) = plan(ledger, index, &settings.filter)?;
    let key = crate::ledger::export_key(ledger.path())?;
    Ok(TrainingPlan {
        cases,
        notes,
        ledger_path: ledger.path().to_path_buf(),
        writer: Writer {
            software_version: format!("Dokuei {}", env!("CARGO_PKG_VERSION")),
            device_serial: hex_lower(&Sha256::digest(&key)[..8]),
        },
        models: models(model_roots),
    })
}

/// Writes `text` to `path` through a temporary file beside it (a full disk leaves no half
/// file under the final name); returns the bytes written.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<u64, AppError> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            AppError::new(
                ErrorCode::WriteFailed,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    Ok(text.len() as u64)
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn create_dir(dir: &Path) -> Result<(), AppError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!("cannot create {}: {e}", dir.display()),
        )
    })
}

fn dates_policy(d: DeidDates) -> &'static str {
    match d {
        DeidDates::Removed => "removed (Basic Profile)",
        DeidDates::Modified => "shifted per patient by a keyed number of days (times kept)",
        DeidDates::Full => "kept",
    }
}

/// One case's identity in the dataset.
struct Named {
    id: String,
    pseudonym: String,
    split: usize,
}

/// Writes the dataset of `plan` into `out` (which must be empty or new). `progress` gets the
/// steps done; `cancel` stops between files and between cases (what was written stays, and
/// the export says it was cancelled; dataset.json and provenance.json are written only by a
/// whole export).
pub fn write_training(
    plan: &TrainingPlan<'_>,
    out: &Path,
    settings: &TrainingSettings,
    cancel: &AtomicBool,
    progress: impl FnMut(TrainingProgress),
) -> Result<TrainingExport, AppError> {
    let existed = out.exists();
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            format!(
                "{} is not empty: training data goes into a new or empty folder",
                out.display()
            ),
        ));
    }
    create_dir(out)?;
    // The final-label SEGs are made identified, then de-identified like the images: they wait
    // outside the export, in a folder removed whatever happens.
    let staging = crate::deid::Staging::new("training")?;
    let result = write_into(plan, out, settings, cancel, progress, &staging.0);
    if result.is_err() {
        // A failed export leaves nothing half-written behind.
        let _ = std::fs::remove_dir_all(out);
        if existed {
            let _ = std::fs::create_dir_all(out);
        }
    }
    result
}

fn write_into(
    plan: &TrainingPlan<'_>,
    out: &Path,
    settings: &TrainingSettings,
    cancel: &AtomicBool,
    mut progress: impl FnMut(TrainingProgress),
    staging: &Path,
) -> Result<TrainingExport, AppError> {
    let mut done = TrainingExport {
        folder: out.display().to_string(),
        identified: settings.identified,
        notes: plan.notes.clone(),
        ..TrainingExport::default()
    };
    if plan.cases.is_empty() {
        done.notes.push(
            "no signed-off study among the files opened has findings that pass the filter".into(),
        );
        return Ok(done);
    }
    let request = settings.deid.request();
    let deid = crate::deid::deidentifier(&plan.ledger_path, &request)?;

    // Who each case's patient is: the pseudonym the de-identifier gives (the same one its
    // DICOM copies carry).
    let mut pseudonyms: Vec<String> = Vec::with_capacity(plan.cases.len());
    for case in &plan.cases {
        let first = case
            .stack
            .frames
            .first()
            .map(|f| &case.series.instances[f.instance].source)
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "a case has no images"))?;
        let obj = first
            .open(dokuei_dicom::source::ReadDepth::Header)
            .map_err(|e| AppError::new(ErrorCode::DicomUnreadable, e.to_string()))?
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::DicomUnreadable,
                    format!("{} is no longer a DICOM file", first.file_name()),
                )
            })?;
        let patient = deid
            .patient(&obj)
            .map_err(|e| AppError::new(ErrorCode::WriteFailed, e.to_string()))?;
        pseudonyms.push(patient.pseudonym().to_owned());
    }
    let splits = split_patients(
        &pseudonyms.iter().cloned().collect(),
        settings.validation,
        settings.test,
    );
    let mut per_patient: HashMap<&str, usize> = HashMap::new();
    let named: Vec<Named> = pseudonyms
        .iter()
        .map(|p| {
            let n = per_patient.entry(p).or_default();
            *n += 1;
            Named {
                id: format!("{p}-{n:02}"),
                pseudonym: p.clone(),
                split: splits[p],
            }
        })
        .collect();

    // Label values, over the whole export: 0 is background, then labels by name.
    let labels: BTreeSet<&str> = plan
        .cases
        .iter()
        .flat_map(|c| c.findings.iter().map(|f| f.label.as_str()))
        .collect();
    if labels.len() > 254 {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            format!(
                "{} labels do not fit an 8-bit label map: filter by label",
                labels.len()
            ),
        ));
    }
    if labels.contains("background") {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            "a finding is labelled `background`, the name of label value 0 in nnU-Net: filter \
             it out by label",
        ));
    }
    let value_of: BTreeMap<&str, u8> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, (i + 1) as u8))
        .collect();

    // Cases left out, and the notes on cases that provenance.json carries: by case name and a
    // fixed reason only (a de-identifier's or decoder's message can name a file, and a file's
    // path can name a patient).
    let mut refused_cases: BTreeSet<usize> = BTreeSet::new();
    let mut public_notes: Vec<String> = Vec::new();

    // 0. Clean Recognizable Visual Features: each case's stack defaced (its DICOM copies, SEG
    // and NIfTI are then made from the defaced series), kept when it can hold no face, or left
    // out. The defaced copies are identified until de-identified: they wait in a private
    // folder removed whatever happens.
    let deface_dir = if settings.deid.clean_recognizable_visual_features {
        Some(crate::deid::Staging::new("training-deface")?)
    } else {
        None
    };
    let mut faces: Vec<Option<(StudyIndex, Stack)>> = Vec::with_capacity(plan.cases.len());
    for (n, case) in plan.cases.iter().enumerate() {
        let Some(dir) = &deface_dir else {
            faces.push(None);
            continue;
        };
        let id = &named[n].id;
        match crate::deid::face_of_stack(case.series, &case.stack, &dir.0, cancel) {
            Ok(crate::deid::Face::Defaced(r)) => {
                let files: Vec<Source> = r
                    .files
                    .iter()
                    .map(|p| Source::File { path: p.clone() })
                    .collect();
                let index = dokuei_dicom::index::index_sources(&files, Vec::new(), &[]);
                let stack = index
                    .series()
                    .next()
                    .and_then(|s| dokuei_dicom::stack::stacks(s).into_iter().next());
                match stack {
                    Some(stack) if stack.frames.len() == case.stack.frames.len() => {
                        let note = format!("case {id}: {}", crate::deid::defaced_note(&r));
                        done.notes.push(note.clone());
                        public_notes.push(note);
                        faces.push(Some((index, stack)));
                    }
                    _ => {
                        refused_cases.insert(n);
                        let note = format!(
                            "case {id} left out: its defaced series could not be read back as one stack"
                        );
                        done.notes.push(note.clone());
                        public_notes.push(note);
                        faces.push(None);
                    }
                }
            }
            Ok(crate::deid::Face::None(why)) => {
                let note = format!("case {id}: not defaced, {why}");
                done.notes.push(note.clone());
                public_notes.push(note);
                faces.push(None);
            }
            Ok(crate::deid::Face::Refused(reason)) => {
                refused_cases.insert(n);
                done.notes.push(format!("case {id} is left out: {reason}"));
                public_notes.push(format!(
                    "case {id} left out: it could show a face and could not be defaced"
                ));
                faces.push(None);
            }
            Err(e) if e.code == ErrorCode::Cancelled => {
                done.cancelled = true;
                return Ok(done);
            }
            Err(e) => return Err(e),
        }
    }
    // A case as its files are exported: its defaced series when it was defaced.
    let exported = |n: usize| -> Case<'_> {
        let case = &plan.cases[n];
        match &faces[n] {
            Some((index, stack)) => Case {
                study_uid: case.study_uid.clone(),
                patient_id: case.patient_id.clone(),
                context: case.context.clone(),
                series: index.series().next().unwrap_or(case.series),
                stack: stack.clone(),
                analyses: case.analyses.clone(),
                findings: case.findings.clone(),
            },
            None => Case {
                study_uid: case.study_uid.clone(),
                patient_id: case.patient_id.clone(),
                context: case.context.clone(),
                series: case.series,
                stack: case.stack.clone(),
                analyses: case.analyses.clone(),
                findings: case.findings.clone(),
            },
        }
    };

    // 1. The DICOM part: each case's images and a SEG of its final labels.
    let dicom = out.join("dicom");
    let mut sources: Vec<Source> = Vec::new();
    let mut case_of_source: Vec<usize> = Vec::new();
    let mut seen: std::collections::HashSet<Source> = std::collections::HashSet::new();
    for (n, name) in named.iter().enumerate() {
        if refused_cases.contains(&n) {
            continue;
        }
        let case = exported(n);
        let case = &case;
        let seg = match final_seg(plan, case, name, staging) {
            Ok(seg) => seg,
            Err(e) => {
                refused_cases.insert(n);
                done.notes.push(format!(
                    "case {} is left out: its final labels could not be written as a SEG ({})",
                    name.id, e.message
                ));
                public_notes.push(format!(
                    "case {} left out: its final labels could not be written as a SEG",
                    name.id
                ));
                continue;
            }
        };
        for f in &case.stack.frames {
            let s = &case.series.instances[f.instance].source;
            if seen.insert(s.clone()) {
                sources.push(s.clone());
                case_of_source.push(n);
            }
        }
        if let Some(path) = seg {
            sources.push(Source::File { path });
            case_of_source.push(n);
        }
    }
    let total = (sources.len() + plan.cases.len()) as u32;
    // Each case's series folder under dicom/ (from its first image written).
    let mut folder_of: Vec<Option<String>> = vec![None; plan.cases.len()];
    if settings.identified {
        for (k, s) in sources.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                done.cancelled = true;
                break;
            }
            let n = case_of_source[k];
            let (bytes, rel) = copy_identified(s, &dicom, &named[n].pseudonym)?;
            done.bytes += bytes;
            folder_of[n].get_or_insert(rel);
            done.files += 1;
            progress(TrainingProgress {
                phase: "DICOM".into(),
                done: k as u32 + 1,
                total,
            });
        }
    } else {
        let report = dokuei_deid::run::run_sources(
            &deid,
            &sources,
            Vec::new(),
            Vec::new(),
            &dicom,
            cancel,
            |d, _| {
                progress(TrainingProgress {
                    phase: "DICOM".into(),
                    done: d as u32,
                    total,
                })
            },
        )
        .map_err(|e| AppError::new(ErrorCode::WriteFailed, e.to_string()))?;
        done.cancelled |= report.cancelled;
        let position: HashMap<String, usize> = sources
            .iter()
            .enumerate()
            .map(|(k, s)| (s.to_string(), k))
            .collect();
        for f in &report.files {
            let k = position.get(&f.input).copied();
            match (&f.status, k) {
                (dokuei_deid::run::Status::Written { .. }, k) => {
                    done.files += 1;
                    if let Some(rel) = &f.output {
                        done.bytes += std::fs::metadata(dicom.join(rel)).map_or(0, |m| m.len());
                        if let Some(k) = k
                            && folder_of[case_of_source[k]].is_none()
                        {
                            folder_of[case_of_source[k]] = Path::new(rel)
                                .parent()
                                .map(|p| format!("dicom/{}", p.display()));
                        }
                    }
                }
                (status, Some(k)) => {
                    let reason = match status {
                        dokuei_deid::run::Status::Refused { reason }
                        | dokuei_deid::run::Status::Failed { reason }
                        | dokuei_deid::run::Status::Skipped { reason } => reason.clone(),
                        dokuei_deid::run::Status::Written { .. } => String::new(),
                    };
                    let n = case_of_source[k];
                    if refused_cases.insert(n) {
                        done.notes.push(format!(
                            "case {} is left out: a file of it was not de-identified ({reason})",
                            named[n].id
                        ));
                        public_notes.push(format!(
                            "case {} left out: a file of it was refused or failed in \
                             de-identification",
                            named[n].id
                        ));
                    }
                }
                _ => {}
            }
        }
        done.files += 1;
        done.bytes +=
            std::fs::metadata(dicom.join(dokuei_deid::run::REPORT)).map_or(0, |m| m.len());
    }
    if done.cancelled {
        return Ok(done);
    }

    // 2. NIfTI: images, final and original labels, per case.
    let nn = out.join("nnUNet").join(NNUNET_DATASET);
    for d in ["imagesTr", "labelsTr", "imagesTs", "labelsTs"] {
        create_dir(&nn.join(d))?;
    }
    create_dir(&out.join("labels/final"))?;
    create_dir(&out.join("labels/original"))?;
    let mut jsonl = String::new();
    let mut datalist: [Vec<serde_json::Value>; 3] = Default::default();
    let mut exported_patients: BTreeSet<&str> = BTreeSet::new();
    let mut case_rows = Vec::new();
    let mut modalities: BTreeSet<String> = BTreeSet::new();
    for (n, case) in plan.cases.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            done.cancelled = true;
            return Ok(done);
        }
        progress(TrainingProgress {
            phase: "NIfTI".into(),
            done: (sources.len() + n) as u32,
            total,
        });
        let name = &named[n];
        if refused_cases.contains(&n) {
            continue;
        }
        if let Some(problem) = affine_problem(&case.stack) {
            let note = format!(
                "case {} is left out of the NIfTI datasets: {problem}, which one affine cannot \
                 describe (its DICOM copy is written)",
                name.id
            );
            done.notes.push(note.clone());
            public_notes.push(note);
            continue;
        }
        // The voxels as the DICOM copies have them (defaced, when they were).
        let source = exported(n);
        let volume = match load_volume(
            source.series,
            &source.stack,
            &|_: usize, _: usize| {},
            cancel,
        ) {
            Ok(v) => v,
            Err(dokuei_dicom::volume::LoadError::Cancelled) => {
                done.cancelled = true;
                return Ok(done);
            }
            Err(e) => {
                done.notes.push(format!(
                    "case {} is left out of the NIfTI datasets: {e} (its DICOM copy is written)",
                    name.id
                ));
                public_notes.push(format!(
                    "case {} left out of the NIfTI datasets: its images could not be loaded as \
                     one volume",
                    name.id
                ));
                continue;
            }
        };
        let (affine, has_geometry) = stack_affine(&case.stack);
        if !has_geometry {
            let note = format!(
                "case {} has no patient geometry: its NIfTI affine is the identity",
                name.id
            );
            done.notes.push(note.clone());
            public_notes.push(note);
        }
        let dim = volume.data.dim();
        let plane = dim.1 * dim.2;
        let training = name.split < 2;
        let (img_dir, lab_dir) = if training {
            ("imagesTr", "labelsTr")
        } else {
            ("imagesTs", "labelsTs")
        };
        let image = nn.join(img_dir).join(format!("{}_0000.nii.gz", name.id));
        let descr = format!("Dokuei {} {}", case.series.modality, name.id);
        done.bytes += match modality_values(&volume) {
            Values::I16(v) => write_nifti(&image, dim, v, &affine, &descr)?,
            Values::F32(v) => write_nifti(&image, dim, v, &affine, &descr)?,
        };
        drop(volume);
        let mut original = vec![0u8; dim.0 * plane];
        let mut fin = vec![0u8; dim.0 * plane];
        paint(
            &mut original,
            plane,
            case.findings
                .iter()
                .filter(|f| f.finding_id.is_some())
                .map(|f| (&f.geometry, value_of[f.label.as_str()])),
        );
        paint(
            &mut fin,
            plane,
            case.findings
                .iter()
                .filter_map(|f| Some((final_geometry(f)?, value_of[f.label.as_str()]))),
        );
        let final_path = out.join("labels/final").join(format!("{}.nii.gz", name.id));
        let original_path = out
            .join("labels/original")
            .join(format!("{}.nii.gz", name.id));
        let nn_label = nn.join(lab_dir).join(format!("{}.nii.gz", name.id));
        done.bytes += write_nifti(&final_path, dim, fin, &affine, "Dokuei final labels")?;
        done.bytes += write_nifti(&original_path, dim, original, &affine, "Dokuei AI labels")?;
        std::fs::copy(&final_path, &nn_label).map_err(|e| {
            AppError::new(
                ErrorCode::WriteFailed,
                format!("cannot write {}: {e}", nn_label.display()),
            )
        })?;
        done.bytes += std::fs::metadata(&nn_label).map_or(0, |m| m.len());
        done.files += 4;
        modalities.insert(case.series.modality.clone());
        let rel = |p: &Path| {
            p.strip_prefix(out)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        };
        datalist[name.split].push(json!({
            "image": rel(&image),
            "label": rel(&final_path),
            "label_original": rel(&original_path),
            "case": name.id,
            "patient": name.pseudonym,
        }));
        exported_patients.insert(&name.pseudonym);
        done.cases += 1;
        done.splits[name.split] += 1;
        case_rows.push(json!({
            "case": name.id,
            "patient": name.pseudonym,
            "split": SPLIT_NAMES[name.split],
            "modality": case.series.modality,
            "slices": dim.0, "rows": dim.1, "columns": dim.2,
            "dicom": folder_of[n],
        }));
        for f in &case.findings {
            jsonl.push_str(&finding_line(case, f, name, &value_of, settings.identified));
            jsonl.push('\n');
            match f.finding_id {
                Some(_) => done.ai_findings += 1,
                None => done.added_findings += 1,
            }
            if f.decision
                .as_ref()
                .is_some_and(|d| d.action == Action::Reject)
            {
                done.rejected += 1;
            }
        }
    }
    progress(TrainingProgress {
        phase: "NIfTI".into(),
        done: total,
        total,
    });
    done.patients = exported_patients.len() as u32;

    // 3. The lists and the dataset's description.
    done.bytes += write_text(&out.join("findings.jsonl"), &jsonl)?;
    let split_json = |s: usize| -> Vec<&str> {
        datalist[s]
            .iter()
            .filter_map(|d| d["case"].as_str())
            .collect()
    };
    done.bytes += write_text(
        &out.join("splits.json"),
        &pretty(&json!({
            "level": "patient",
            "method": "each patient placed in [0, 1) by SHA-256 of their pseudonym: test below \
                       the test share, validation below test + validation, training above",
            "shares": {"validation": settings.validation, "test": settings.test},
            "training": split_json(0),
            "validation": split_json(1),
            "test": split_json(2),
        })),
    )?;
    // nnU-Net's own folds would split a patient's cases apart: one fold of the patient-level
    // split instead (copy it into nnUNet_preprocessed/Dataset500_Dokuei/).
    if !split_json(1).is_empty() {
        done.bytes += write_text(
            &nn.join("splits_final.json"),
            &pretty(&json!([{ "train": split_json(0), "val": split_json(1) }])),
        )?;
        done.files += 1;
    } else {
        public_notes.push(
            "no patient fell in the validation split: no splits_final.json was written, and \
             nnU-Net's own folds may put one patient's cases on both sides"
                .into(),
        );
    }
    done.bytes += write_text(
        &out.join("monai_datalist.json"),
        &pretty(&json!({
            "training": datalist[0],
            "validation": datalist[1],
            "test": datalist[2],
        })),
    )?;
    let mut nn_labels = serde_json::Map::new();
    nn_labels.insert("background".into(), json!(0));
    for (l, v) in &value_of {
        nn_labels.insert((*l).to_owned(), json!(v));
    }
    let channel = if modalities.len() == 1 && modalities.contains("CT") {
        "CT".to_owned()
    } else {
        modalities.into_iter().collect::<Vec<_>>().join("+")
    };
    done.bytes += write_text(
        &nn.join("dataset.json"),
        &pretty(&json!({
            "name": "Dokuei",
            "description": "Findings physicians decided in Dokuei (confirmed, edited, added); \
                            labels/original beside it holds what the AI said",
            "channel_names": {"0": channel},
            "labels": nn_labels,
            "numTraining": done.splits[0] + done.splits[1],
            "file_ending": ".nii.gz",
            "reference": "Dokuei training-data export",
            "licence": "as the site's data-sharing agreement says",
        })),
    )?;
    let mut models_used: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    for case in &plan.cases {
        for a in &case.analyses {
            *models_used
                .entry((
                    a.model_id.clone(),
                    a.model_version.clone(),
                    a.model_sha256.clone(),
                ))
                .or_default() += 1;
        }
    }
    let options: Vec<String> = if settings.identified {
        Vec::new()
    } else {
        deid.policy().method()
    };
    done.bytes += write_text(
        &out.join("provenance.json"),
        &pretty(&json!({
            "tool": format!("Dokuei {}", env!("CARGO_PKG_VERSION")),
            "created": crate::ledger::now_utc(),
            "identified": settings.identified,
            "de_identification": if settings.identified {
                json!("none: an identified export, chosen by the user and recorded in the access audit")
            } else {
                json!({
                    "standard": format!("DICOM PS3.15 {} Annex E", dokuei_deid::EDITION),
                    "method": options,
                    "site_key_id": deid.key().id(),
                    "dates": dates_policy(settings.deid.dates),
                    "free_text": "readers' reason texts are left out of findings.jsonl",
                })
            },
            "defacing": if settings.deid.clean_recognizable_visual_features {
                "Clean Recognizable Visual Features (Dokuei, quickshear-style): each head CT or \
                 MR case defaced beyond a plane 5 mm in front of and below the brain, in its DICOM \
                 copies and NIfTI alike; cases that could show a face and could not be defaced \
                 are left out; see notes"
            } else {
                "none: Clean Recognizable Visual Features is not applied; a head CT or MR \
                 keeps the face in its voxels"
            },
            "filter": settings.filter,
            "models": models_used.iter().map(|((id, version, sha), n)| json!({
                "id": id, "version": version, "sha256": sha, "analyses": n,
            })).collect::<Vec<_>>(),
            "label_values": value_of,
            "nifti": "gzipped NIfTI-1; sform and qform code 1 (scanner), RAS+ in mm from DICOM's \
                      LPS (x and y negated); voxel (i, j, k) = column, row, slice in the stack's \
                      display order; images in modality units (HU for CT)",
            "cases": case_rows,
            "counts": {
                "cases": done.cases, "patients": done.patients,
                "ai_findings": done.ai_findings, "rejected": done.rejected,
                "added_findings": done.added_findings,
            },
            // The notes on cases, by case name and a fixed reason; those on studies name their
            // dates and descriptions, and a decoder's message can name a file: for the user on
            // this machine only.
            "notes": public_notes,
        })),
    )?;
    done.files += 5;
    Ok(done)
}

/// A SEG of the case's final labels (confirmed, edited, added), written for the DICOM part;
/// `None` when no finding remains.
fn final_seg(
    plan: &TrainingPlan<'_>,
    case: &Case<'_>,
    name: &Named,
    dir: &Path,
) -> Result<Option<PathBuf>, AppError> {
    let source = SourceSeries::from_stack(case.series, &case.stack)
        .map_err(|e| AppError::new(ErrorCode::DicomUnreadable, e.to_string()))?;
    let findings: Vec<ResultFinding> = case
        .findings
        .iter()
        .filter_map(|f| {
            let g = final_geometry(f)?;
            let a = case.analysis(f.analysis_id);
            let model = a.and_then(|a| {
                plan.models
                    .get(&(a.model_id.clone(), a.model_sha256.to_ascii_lowercase()))
            });
            let algorithm = a.map(|a| dokuei_results::Algorithm {
                id: a.model_id.clone(),
                name: a.model_id.clone(),
                version: a.model_version.clone(),
                sha256: a.model_sha256.to_ascii_lowercase(),
                manufacturer: "unknown".into(),
            });
            let (origin, tag) = match (f.finding_id, f.decision.as_ref().map(|d| d.action)) {
                (None, _) => (Origin::Manual, "added"),
                (Some(_), Some(Action::Edit)) => (
                    algorithm.map_or(Origin::Manual, Origin::SemiAutomatic),
                    "edited",
                ),
                _ => (
                    algorithm.map_or(Origin::Manual, Origin::Automatic),
                    "confirmed",
                ),
            };
            let id = f
                .finding_id
                .or(f.decision.as_ref().map(|d| d.id))
                .unwrap_or_default();
            Some(result_finding(
                g,
                coding(model, &f.label),
                format!("{} ({tag}) #{id}", f.label),
                uid_from(&format!("dokuei/training/{}/{tag}/{id}", case.study_uid)),
                origin,
                None,
            ))
        })
        .collect();
    if findings.iter().all(|f| f.mask.is_empty()) {
        return Ok(None);
    }
    let basis = format!(
        "dokuei/training/{}/{}/{}",
        case.study_uid, case.series.uid, case.stack.label
    );
    let identity = ObjectIdentity {
        sop_instance_uid: uid_from(&format!("{basis}/SEG")),
        series_uid: uid_from(&format!("{basis}/SEG/series")),
        series_number: 9600,
        series_description: "Final labels (training)".into(),
        instance_number: 1,
        content_date: String::new(),
        content_time: String::new(),
    };
    let seg = write_seg(&case.context, &source, &findings, &identity, &plan.writer)
        .map_err(|e| AppError::new(ErrorCode::InvalidArgument, e.to_string()))?;
    let (path, _) = write_object(&seg.object, dir, &format!("FINAL_SEG_{}.dcm", name.id))?;
    Ok(Some(path))
}

/// Copies one file as it is (an identified export) to
/// `dicom/<pseudonym>/<study>/<series>/<instance>.dcm`; returns its size and its series
/// folder, relative to the export.
fn copy_identified(
    source: &Source,
    dicom: &Path,
    pseudonym: &str,
) -> Result<(u64, String), AppError> {
    let obj = source
        .open(dokuei_dicom::source::ReadDepth::Full)
        .map_err(|e| AppError::new(ErrorCode::DicomUnreadable, e.to_string()))?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::DicomUnreadable,
                format!("{} is no longer a DICOM file", source.file_name()),
            )
        })?;
    let text = |tag| {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    use dicom_dictionary_std::tags;
    let safe = |s: String| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
            Ok(s)
        } else {
            Err(AppError::new(
                ErrorCode::DicomUnreadable,
                format!("{} has no valid UIDs", source.file_name()),
            ))
        }
    };
    let rel = format!(
        "{pseudonym}/{}/{}",
        safe(text(tags::STUDY_INSTANCE_UID))?,
        safe(text(tags::SERIES_INSTANCE_UID))?
    );
    let folder = dicom.join(&rel);
    create_dir(&folder)?;
    let (path, _) = write_object(
        &obj,
        &folder,
        &format!("{}.dcm", safe(text(tags::SOP_INSTANCE_UID))?),
    )?;
    Ok((
        std::fs::metadata(path).map_or(0, |m| m.len()),
        format!("dicom/{rel}"),
    ))
}

/// One line of findings.jsonl.
fn finding_line(
    case: &Case<'_>,
    f: &FindingView,
    name: &Named,
    value_of: &BTreeMap<&str, u8>,
    identified: bool,
) -> String {
    let a = case.analysis(f.analysis_id);
    let d = f.decision.as_ref();
    let geometry = |g: &Geometry| {
        json!({
            "slices": g.slices,
            "box": g.bbox,
            "centroid_lps_mm": g.centroid_lps_mm,
            "longest_diameter_mm": g.longest_diameter_mm,
            "area_mm2": g.area_mm2,
            "volume_mm3": g.volume_mm3,
        })
    };
    let value = value_of.get(f.label.as_str()).copied().unwrap_or(0);
    let kept = final_geometry(f).is_some();
    json!({
        "case": name.id,
        "patient": name.pseudonym,
        "split": SPLIT_NAMES[name.split],
        "finding": f.finding_id,
        "source": if f.finding_id.is_some() { "ai" } else { "reader" },
        "label": f.label,
        "label_value": value,
        "score": f.score,
        "image_score": f.image_score,
        "model": if f.finding_id.is_some() {
            a.map(|a| json!({
                "id": a.model_id, "version": a.model_version, "sha256": a.model_sha256,
                "imported_from": a.imported_from.as_ref().map(|i| &i.algorithm_name),
            }))
        } else {
            None
        },
        "decision": d.map(|d| d.action.as_str()),
        "reject_reason": d.and_then(|d| d.reject_reason.map(|r| r.as_str())),
        "reason_text": if identified { d.map(|d| d.reason_text.clone()) } else { None },
        "negative": !kept,
        "in_original_labels": f.finding_id.is_some(),
        "in_final_labels": kept,
        "original": f.finding_id.map(|_| geometry(&f.geometry)),
        "final": final_geometry(f).map(geometry),
    })
    .to_string()
}

/// Records one Exported event per study the export wrote (identified ones say so). A failure
/// to record is logged, never hides the export's outcome.
pub fn audit_training(
    ledger: &Ledger,
    plan: &TrainingPlan<'_>,
    result: &Result<TrainingExport, AppError>,
    out: &Path,
    reader_id: Option<i64>,
) {
    let kind = |identified: bool| {
        if identified {
            "training data, IDENTIFIED (original DICOM and readers' text)"
        } else {
            "training data, de-identified"
        }
    };
    let mut events = Vec::new();
    let mut studies: BTreeMap<&str, (&str, u32)> = BTreeMap::new();
    for c in &plan.cases {
        studies.entry(&c.study_uid).or_insert((&c.patient_id, 0)).1 += 1;
    }
    for (study, (patient, cases)) in studies {
        let mut e = crate::audit::event(AccessAction::Exported, reader_id);
        e.study_uid = study.to_owned();
        e.patient_key = crate::audit::patient_key(ledger, patient).unwrap_or_default();
        e.peer = crate::audit::absolute(out).display().to_string();
        match result {
            Ok(r) => {
                e.object = kind(r.identified).to_owned();
                e.detail.note = format!(
                    "{cases} case(s) of this study; {} case(s) in all{}",
                    r.cases,
                    if r.cancelled { ", cancelled" } else { "" }
                );
                if r.cancelled {
                    e.outcome = Outcome::MinorFailure;
                }
            }
            Err(err) => {
                e.object = "training data".into();
                e.outcome = Outcome::MinorFailure;
                e.detail.error = err.message.clone();
            }
        }
        events.push(e);
    }
    for e in events {
        if let Err(err) = ledger.record_access(&e) {
            tracing::error!("the access audit could not record a training-data export: {err}");
        }
    }
}

/// Plans, writes and audits in one go (the command line; the app releases the ledger while
/// writing).
#[allow(clippy::too_many_arguments)]
pub fn export_training(
    ledger: &Ledger,
    index: &StudyIndex,
    out: &Path,
    settings: &TrainingSettings,
    model_roots: &[PathBuf],
    reader_id: Option<i64>,
    cancel: &AtomicBool,
    progress: impl FnMut(TrainingProgress),
) -> Result<TrainingExport, AppError> {
    let plan = plan_training(ledger, index, settings, model_roots)?;
    let result = write_training(&plan, out, settings, cancel, progress);
    audit_training(ledger, &plan, &result, out, reader_id);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_by_patient_stable_as_patients_arrive_and_keep_training() {
        let ps: BTreeSet<String> = (1..=2000).map(|i| format!("DOKUEI-{i:06}")).collect();
        let a = split_patients(&ps, 0.15, 0.15);
        assert_eq!(a, split_patients(&ps, 0.15, 0.15));
        // The shares hold on many patients (within 3 points).
        let share = |s| a.values().filter(|&&v| v == s).count() as f64 / 2000.0;
        assert!((share(0) - 0.7).abs() < 0.03 && (share(2) - 0.15).abs() < 0.03);
        // A patient keeps their split when others are added.
        let more: BTreeSet<String> = (1..=3000).map(|i| format!("DOKUEI-{i:06}")).collect();
        let b = split_patients(&more, 0.15, 0.15);
        assert!(a.iter().all(|(p, s)| b[p] == *s));
        let one: BTreeSet<String> = ["P-000001".to_owned()].into();
        assert_eq!(split_patients(&one, 0.3, 0.6)["P-000001"], 0);
    }

    #[test]
    fn the_quaternion_of_an_axial_and_an_oblique_affine_rebuilds_their_rotation() {
        // Axial, LPS → RAS: x and y negated, z kept; 0.7 × 0.8 × 2.5 mm voxels.
        let axial = [
            [-0.7, 0.0, 0.0, 10.0],
            [0.0, -0.8, 0.0, 20.0],
            [0.0, 0.0, 2.5, -30.0],
        ];
        // A rotation by 30° about z, then a left-handed slice axis (qfac -1).
        let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
        let oblique = [
            [c * 0.5, -s * 0.6, 0.0, 0.0],
            [s * 0.5, c * 0.6, 0.0, 0.0],
            [0.0, 0.0, -2.0, 0.0],
        ];
        for m in [axial, oblique] {
            let ([b, c, d], qfac, sizes) = quatern(&m);
            let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
            // nifti1_io's quatern_to_mat44.
            let r = [
                [
                    a * a + b * b - c * c - d * d,
                    2.0 * (b * c - a * d),
                    2.0 * (b * d + a * c),
                ],
                [
                    2.0 * (b * c + a * d),
                    a * a + c * c - b * b - d * d,
                    2.0 * (c * d - a * b),
                ],
                [
                    2.0 * (b * d - a * c),
                    2.0 * (c * d + a * b),
                    a * a + d * d - c * c - b * b,
                ],
            ];
            for i in 0..3 {
                for j in 0..3 {
                    let z = if j == 2 { qfac } else { 1.0 };
                    let rebuilt = r[i][j] * sizes[j] * z;
                    assert!(
                        (rebuilt - m[i][j]).abs() < 1e-9,
                        "{m:?} [{i}][{j}]: {rebuilt}"
                    );
                }
            }
        }
    }

    #[test]
    fn dates_filter_by_the_day_the_analysis_finished() {
        let f = TrainingFilter {
            from: Some("2026-03-01".into()),
            to: Some("2026-03-31".into()),
            ..TrainingFilter::default()
        };
        assert!(in_dates("2026-03-01T00:00:00.000Z", &f));
        assert!(in_dates("2026-03-31T23:59:59.999Z", &f));
        assert!(!in_dates("2026-04-01T00:00:00.000Z", &f));
        assert!(!in_dates("2026-02-28T23:59:59.999Z", &f));
        assert!(chrono_like_day("2026-03-01") && !chrono_like_day("2026-3-1"));
    }

    #[test]
    fn painting_sets_the_runs_and_ignores_runs_off_the_grid() {
        let g = Geometry {
            bbox: [0, 0, 0, 0],
            slices: [1, 1],
            mask: vec![crate::reading::MaskSlice {
                slice: 1,
                runs: vec![[2, 3], [11, 5]],
            }],
            centroid_lps_mm: [0.0; 3],
            longest_diameter_mm: 0.0,
            area_mm2: 0.0,
            volume_mm3: 0.0,
        };
        let mut map = vec![0u8; 2 * 12];
        let set = paint(&mut map, 12, [(&g, 7u8)].into_iter());
        assert_eq!(set, 3);
        assert_eq!(&map[12..], &[0, 0, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0]);
    }
}
