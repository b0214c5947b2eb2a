//! De-identifies files, folders, zip archives and DICOMDIRs into an output folder laid out as
//! `<pseudonym>/<study UID>/<series UID>/<SOP instance UID>.dcm`, and writes a report there that
//! names no input path (paths can hold patients' names).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use dicom_dictionary_std::tags;
use dokuei_dicom::source::{ReadDepth, discover};

use crate::{DeidError, Deidentifier, EDITION, Summary};

/// What happened to one input.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileOutcome {
    /// Where the input was (shown on this machine only; not written to the report).
    #[serde(skip)]
    pub input: String,
    /// The output, relative to the output folder.
    pub output: Option<String>,
    /// The input's Study Instance UID and Patient ID, for the access audit on this machine
    /// (never written to the report).
    #[serde(skip)]
    pub study_uid: String,
    #[serde(skip)]
    pub patient_id: String,
    #[serde(flatten)]
    pub status: Status,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Written { summary: Summary },
    Refused { reason: String },
    Failed { reason: String },
    Skipped { reason: String },
}

/// The whole run, as written to `deid-report.json` in the output folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub tool: String,
    pub standard: String,
    pub options: Vec<String>,
    pub key_id: String,
    pub written: usize,
    pub refused: usize,
    pub failed: usize,
    pub skipped: usize,
    pub files: Vec<FileOutcome>,
}

/// The name of the report file written into the output folder.
pub const REPORT: &str = "deid-report.json";

/// De-identifies every instance under `paths` into `out`. `progress(done, total)` is called
/// after each file; setting `cancel` stops before the next one. Failures of single files are
/// outcomes, not errors; only an unusable output folder or report is an error.
pub fn run(
    deid: &mut Deidentifier,
    paths: &[PathBuf],
    out: &Path,
    cancel: &AtomicBool,
    mut progress: impl FnMut(usize, usize),
) -> Result<Report, DeidError> {
    let fail = |p: &Path, e: std::io::Error| DeidError::Invalid(format!("{}: {e}", p.display()));
    fs::create_dir_all(out).map_err(|e| fail(out, e))?;
    let (sources, problems) = discover(paths);
    let mut files: Vec<FileOutcome> = problems
        .into_iter()
        .map(|p| FileOutcome {
            input: p.file,
            output: None,
            study_uid: String::new(),
            patient_id: String::new(),
            status: Status::Failed { reason: p.reason },
        })
        .collect();
    let total = sources.len();
    let mut written_here: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (n, source) in sources.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let input = source.to_string();
        let outcome = match source.open(ReadDepth::Full) {
            Ok(None) => FileOutcome {
                input: input.clone(),
                output: None,
                study_uid: String::new(),
                patient_id: String::new(),
                status: Status::Skipped {
                    reason: "not a DICOM file".into(),
                },
            },
            Err(e) => FileOutcome {
                input: input.clone(),
                output: None,
                study_uid: String::new(),
                patient_id: String::new(),
                status: Status::Failed {
                    reason: e.to_string(),
                },
            },
            Ok(Some(obj)) if is_dicomdir(&obj) => FileOutcome {
                input: input.clone(),
                output: None,
                study_uid: String::new(),
                patient_id: String::new(),
                status: Status::Skipped {
                    reason: "a DICOMDIR: its records point at the original files; the files it lists are exported instead".into(),
                },
            },
            Ok(Some(obj)) => {
                let text = |tag| {
                    obj.get(tag)
                        .and_then(|e| e.to_str().ok())
                        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                        .unwrap_or_default()
                };
                let (study_uid, patient_id) =
                    (text(tags::STUDY_INSTANCE_UID), text(tags::PATIENT_ID));
                let (output, status) = match deid.deidentify(obj) {
                    Err(DeidError::Refused(reason)) => (None, Status::Refused { reason }),
                    Err(e) => (
                        None,
                        Status::Failed {
                            reason: e.to_string(),
                        },
                    ),
                    Ok(done) => 'write: {
                        let rel = relative_path(&done.object, &done.summary.pseudonym);
                        if !written_here.insert(rel.clone()) {
                            // Two inputs with one SOP Instance UID (the same image in two
                            // encodings, or a copy): the first is kept, as dcm2niix does.
                            break 'write (
                                None,
                                Status::Skipped {
                                    reason: "the same SOP Instance UID as a file already written in this export".into(),
                                },
                            );
                        }
                        let path = out.join(&rel);
                        let written = path
                            .parent()
                            .map_or(Ok(()), fs::create_dir_all)
                            .map_err(|e| format!("{}: {e}", path.display()))
                            .and_then(|_| {
                                done.object
                                    .write_to_file(&path)
                                    .map_err(|e| format!("{}: {e}", path.display()))
                            });
                        match written {
                            Ok(()) => (
                                Some(rel),
                                Status::Written {
                                    summary: done.summary,
                                },
                            ),
                            Err(reason) => (None, Status::Failed { reason }),
                        }
                    }
                };
                FileOutcome {
                    input,
                    output,
                    study_uid,
                    patient_id,
                    status,
                }
            }
        };
        files.push(outcome);
        progress(n + 1, total);
    }
    let count = |f: fn(&Status) -> bool| files.iter().filter(|o| f(&o.status)).count();
    let report = Report {
        tool: format!("Dokuei {}", env!("CARGO_PKG_VERSION")),
        standard: format!("DICOM PS3.15 {EDITION} Annex E"),
        options: deid.policy().method(),
        key_id: deid.key().id().to_owned(),
        written: count(|s| matches!(s, Status::Written { .. })),
        refused: count(|s| matches!(s, Status::Refused { .. })),
        failed: count(|s| matches!(s, Status::Failed { .. })),
        skipped: count(|s| matches!(s, Status::Skipped { .. })),
        files,
    };
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| DeidError::Invalid(format!("the report: {e}")))?;
    let report_path = out.join(REPORT);
    fs::write(&report_path, json).map_err(|e| fail(&report_path, e))?;
    Ok(report)
}

fn is_dicomdir(obj: &dicom_object::DefaultDicomObject) -> bool {
    obj.meta()
        .media_storage_sop_class_uid()
        .trim_end_matches(['\0', ' '])
        == "1.2.840.10008.1.3.10"
}

/// `<pseudonym>/<study>/<series>/<instance>.dcm` from the de-identified UIDs.
fn relative_path(obj: &dicom_object::DefaultDicomObject, pseudonym: &str) -> String {
    let uid = |tag| {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    };
    format!(
        "{}/{}/{}/{}.dcm",
        safe_name(pseudonym),
        uid(tags::STUDY_INSTANCE_UID),
        uid(tags::SERIES_INSTANCE_UID),
        uid(tags::SOP_INSTANCE_UID)
    )
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
