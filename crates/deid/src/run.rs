//! De-identifies files, folders, zip archives and DICOMDIRs into an output folder laid out as
//! `<pseudonym>/<study UID>/<series UID>/<SOP instance UID>.dcm`, and writes a report there that
//! names no input path (paths can hold patients' names).

use std::collections::HashSet;
use std::fs;
use std::io::{Read as _, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use dicom_object::DefaultDicomObject;
use rayon::prelude::*;

use dicom_dictionary_std::tags;
use dokuei_dicom::Source;
use dokuei_dicom::source::{ReadDepth, Split, discover};

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
    Written { summary: Box<Summary> },
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
    /// The region table that cleaned burned-in text, if one was set.
    pub region_table: Option<String>,
    /// Files whose burned-in text was blanked.
    pub pixels_cleaned: usize,
    pub written: usize,
    pub refused: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Stopped by the user before every file was done (what was written stays).
    pub cancelled: bool,
    /// What was done before the files were de-identified (defacing, series by series).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub files: Vec<FileOutcome>,
}

/// The name of the report file written into the output folder.
pub const REPORT: &str = "deid-report.json";

/// De-identifies every instance under `paths` into `out`. `progress(done, total)` is called
/// after each group of files; setting `cancel` stops before the next group. Failures of single
/// files are outcomes, not errors; only an unusable output folder or report is an error.
pub fn run(
    deid: &Deidentifier,
    paths: &[PathBuf],
    out: &Path,
    cancel: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> Result<Report, DeidError> {
    let (sources, problems) = discover(paths);
    run_sources(deid, &sources, problems, Vec::new(), out, cancel, progress)
}

/// One input on its way out.
enum Read {
    /// Read up to its Pixel Data, which is copied from the input file byte for byte.
    Split(Split),
    Whole(DefaultDicomObject),
}

impl Read {
    fn object(&self) -> &DefaultDicomObject {
        match self {
            Read::Split(s) => &s.object,
            Read::Whole(o) => o,
        }
    }
}

/// A de-identified file ready to be written.
struct Ready {
    rel: String,
    object: DefaultDicomObject,
    /// The input's Pixel Data element to append: the input (open), start, end.
    pixels: Option<(fs::File, u64, u64)>,
    summary: Summary,
}

/// Reads one input: split at its Pixel Data when the file allows and its pixels are copied as
/// they are, else whole (pixels the region table cleans).
fn read(source: &Source, deid: &Deidentifier) -> Result<Read, Status> {
    if let Ok(Some(split)) = source.open_split()
        && !deid.policy().cleans_pixels_of(&split.object)
    {
        return Ok(Read::Split(split));
    }
    match source.open(ReadDepth::Full) {
        Ok(None) => Err(Status::Skipped {
            reason: "not a DICOM file".into(),
        }),
        Err(e) => Err(Status::Failed {
            reason: e.to_string(),
        }),
        Ok(Some(obj)) if is_dicomdir(&obj) => Err(Status::Skipped {
            reason: "a DICOMDIR: its records point at the original files; the files it lists are exported instead".into(),
        }),
        Ok(Some(obj)) => Ok(Read::Whole(obj)),
    }
}

/// Writes a file to a temporary name beside its place, then renames it: a failure leaves no
/// partial file under the final name.
fn write(out: &Path, ready: &Ready) -> Result<(), String> {
    let path = out.join(&ready.rel);
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| err(&e))?;
    }
    let tmp = path.with_extension("dcm.part");
    let result = (|| -> Result<(), String> {
        let file = fs::File::create(&tmp).map_err(|e| err(&e))?;
        let mut w = std::io::BufWriter::with_capacity(64 << 10, file);
        ready.object.write_all(&mut w).map_err(|e| err(&e))?;
        let mut file = w.into_inner().map_err(|e| err(&e.into_error()))?;
        if let Some((src, start, end)) = &ready.pixels {
            let mut input: &fs::File = src;
            input.seek(SeekFrom::Start(*start)).map_err(|e| err(&e))?;
            // File to file: the kernel copies (copy_file_range), the bytes never pass here.
            let copied =
                std::io::copy(&mut input.take(end - start), &mut file).map_err(|e| err(&e))?;
            if copied != end - start {
                return Err(err(&format!(
                    "the input's pixel data ended after {copied} of {} bytes",
                    end - start
                )));
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => fs::rename(&tmp, &path).map_err(|e| err(&e)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The kind of a problem passed to [`run_sources`] that is a refusal (an input left out on
/// purpose, such as a head series that could not be defaced), not a failure.
pub const REFUSED: &str = "deid_refused";

/// As [`run`], for instances already found (a study open in the viewer); `problems` are
/// reported as failed, or as refused when their kind is [`REFUSED`]; `notes` go into the
/// report as they are. Files go through in groups of one per core: read and de-identified in
/// parallel, patients given pseudonyms and duplicates found in input order (so the output does
/// not depend on timing), then written in parallel.
pub fn run_sources(
    deid: &Deidentifier,
    sources: &[Source],
    problems: Vec<dokuei_dicom::index::FileProblem>,
    notes: Vec<String>,
    out: &Path,
    cancel: &AtomicBool,
    mut progress: impl FnMut(usize, usize),
) -> Result<Report, DeidError> {
    let fail = |p: &Path, e: std::io::Error| DeidError::Invalid(format!("{}: {e}", p.display()));
    fs::create_dir_all(out).map_err(|e| fail(out, e))?;
    let mut files: Vec<FileOutcome> = problems
        .into_iter()
        .map(|p| FileOutcome {
            input: p.file,
            output: None,
            study_uid: String::new(),
            patient_id: String::new(),
            status: if p.kind == REFUSED {
                Status::Refused { reason: p.reason }
            } else {
                Status::Failed { reason: p.reason }
            },
        })
        .collect();
    let total = sources.len();
    let mut done = 0;
    let mut written_here: HashSet<String> = HashSet::new();
    let group = rayon::current_num_threads().max(1);
    for chunk in sources.chunks(group) {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let read: Vec<Result<Read, Status>> = chunk.par_iter().map(|s| read(s, deid)).collect();
        // In input order: who the patient is (a new one gets the next pseudonym).
        let mut outcomes: Vec<FileOutcome> = Vec::with_capacity(chunk.len());
        let mut patients = Vec::with_capacity(chunk.len());
        for (source, r) in chunk.iter().zip(&read) {
            let mut o = FileOutcome {
                input: source.to_string(),
                output: None,
                study_uid: String::new(),
                patient_id: String::new(),
                status: Status::Skipped {
                    reason: String::new(),
                },
            };
            let patient = match r {
                Ok(r) => {
                    let obj = r.object();
                    let text = |tag| {
                        obj.get(tag)
                            .and_then(|e| e.to_str().ok())
                            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                            .unwrap_or_default()
                    };
                    o.study_uid = text(tags::STUDY_INSTANCE_UID);
                    o.patient_id = text(tags::PATIENT_ID);
                    Some(deid.patient(obj))
                }
                Err(status) => {
                    o.status = status.clone();
                    None
                }
            };
            outcomes.push(o);
            patients.push(patient);
        }
        let ready: Vec<Option<Result<Ready, Status>>> = read
            .into_par_iter()
            .zip(patients.into_par_iter())
            .map(|(r, patient)| {
                let (r, patient) = match (r, patient) {
                    (Ok(r), Some(p)) => (r, p),
                    _ => return None,
                };
                Some(prepare(deid, r, patient))
            })
            .collect();
        // In input order: two inputs with one SOP Instance UID (the same image in two
        // encodings, or a copy) are written once, the first, as dcm2niix does.
        let mut to_write: Vec<(usize, Ready)> = Vec::new();
        for (i, r) in ready.into_iter().enumerate() {
            match r {
                None => {}
                Some(Err(status)) => outcomes[i].status = status,
                Some(Ok(ready)) => {
                    if written_here.insert(ready.rel.clone()) {
                        to_write.push((i, ready));
                    } else {
                        outcomes[i].status = Status::Skipped {
                            reason:
                                "the same SOP Instance UID as a file already written in this export"
                                    .into(),
                        };
                    }
                }
            }
        }
        let results: Vec<(usize, String, Result<Summary, String>)> = to_write
            .into_par_iter()
            .map(|(i, ready)| {
                let r = write(out, &ready).map(|()| ready.summary);
                (i, ready.rel, r)
            })
            .collect();
        for (i, rel, r) in results {
            match r {
                Ok(summary) => {
                    outcomes[i].output = Some(rel);
                    outcomes[i].status = Status::Written {
                        summary: Box::new(summary),
                    };
                }
                Err(reason) => outcomes[i].status = Status::Failed { reason },
            }
        }
        files.extend(outcomes);
        done += chunk.len();
        progress(done, total);
    }
    let cancelled = done < total;
    let count = |f: fn(&Status) -> bool| files.iter().filter(|o| f(&o.status)).count();
    let report = Report {
        tool: format!("Dokuei {}", env!("CARGO_PKG_VERSION")),
        standard: format!("DICOM PS3.15 {EDITION} Annex E"),
        options: deid.policy().method(),
        key_id: deid.key().id().to_owned(),
        region_table: deid.policy().region_table().map(|t| t.describe()),
        pixels_cleaned: files
            .iter()
            .filter(|f| {
                matches!(&f.status, Status::Written { summary } if summary.pixels_cleaned.is_some())
            })
            .count(),
        written: count(|s| matches!(s, Status::Written { .. })),
        refused: count(|s| matches!(s, Status::Refused { .. })),
        failed: count(|s| matches!(s, Status::Failed { .. })),
        skipped: count(|s| matches!(s, Status::Skipped { .. })),
        cancelled,
        notes,
        files,
    };
    // The report leaves with the data: a reason that names the input (a path can hold a
    // patient's name) names it as `<input>` there.
    let mut shared = report.clone();
    for f in &mut shared.files {
        if let Status::Failed { reason } | Status::Refused { reason } | Status::Skipped { reason } =
            &mut f.status
        {
            *reason = redact_paths(reason, &f.input);
        }
    }
    for n in &mut shared.notes {
        *n = redact_absolute(n);
    }
    let json = serde_json::to_vec_pretty(&shared)
        .map_err(|e| DeidError::Invalid(format!("the report: {e}")))?;
    let report_path = out.join(REPORT);
    fs::write(&report_path, json).map_err(|e| fail(&report_path, e))?;
    Ok(report)
}

/// De-identifies one read input for its patient.
fn prepare(
    deid: &Deidentifier,
    read: Read,
    patient: Result<crate::Patient, DeidError>,
) -> Result<Ready, Status> {
    let failed = |e: DeidError| match e {
        DeidError::Refused(reason) => Status::Refused { reason },
        e => Status::Failed {
            reason: e.to_string(),
        },
    };
    let patient = patient.map_err(failed)?;
    let (object, pixels) = match read {
        Read::Split(s) => (s.object, Some((s.file, s.pixel_data.0, s.pixel_data.1))),
        Read::Whole(o) => (o, None),
    };
    let done = deid
        .deidentify_for(object, &patient, pixels.is_some())
        .map_err(failed)?;
    Ok(Ready {
        rel: relative_path(&done.object, &done.summary.pseudonym),
        object: done.object,
        pixels,
        summary: done.summary,
    })
}

fn is_dicomdir(obj: &dicom_object::DefaultDicomObject) -> bool {
    obj.meta()
        .media_storage_sop_class_uid()
        .trim_end_matches(['\0', ' '])
        == "1.2.840.10008.1.3.10"
}

/// `<pseudonym>/<study>/<series>/<instance>.dcm` from the de-identified UIDs.
/// Each part is a UID as PS3.5 9.1 allows (digits and dots, at most 64, no empty
/// component), else a name derived from it: a UID kept by Retain UIDs is the input's own and
/// must not steer the path (`../..`).
fn relative_path(obj: &dicom_object::DefaultDicomObject, pseudonym: &str) -> String {
    let uid = |tag| {
        let value = obj
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default();
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .split('.')
                .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()));
        if valid {
            value
        } else if value.is_empty() {
            "unknown".into()
        } else {
            use sha2::Digest;
            format!(
                "x{}",
                hex::encode(&sha2::Sha256::digest(value.as_bytes())[..16])
            )
        }
    };
    format!(
        "{}/{}/{}/{}.dcm",
        safe_name(pseudonym),
        uid(tags::STUDY_INSTANCE_UID),
        uid(tags::SERIES_INSTANCE_UID),
        uid(tags::SOP_INSTANCE_UID)
    )
}

/// `reason` without the input's path, its folders, or any other absolute path.
fn redact_paths(reason: &str, input: &str) -> String {
    let mut r = reason.replace(input, "<input>");
    // Folders the input sits in (walk errors name them), longest first.
    let mut dir = Path::new(input).parent();
    while let Some(d) = dir {
        let s = d.display().to_string();
        if s.len() > 1 {
            r = r.replace(&s, "<input folder>");
        }
        dir = d.parent();
    }
    redact_absolute(&r)
}

/// `text` with every absolute path, up to the next space, quote or colon, as `<path>`.
fn redact_absolute(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if c == '/' && matches!(prev, ' ' | '`' | '\'' | '"' | '(') {
            while chars
                .peek()
                .is_some_and(|n| !matches!(n, ' ' | '`' | '\'' | '"' | ')' | ':'))
            {
                chars.next();
            }
            out.push_str("<path>");
            prev = 'x';
            continue;
        }
        out.push(c);
        prev = c;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_in_the_report_name_no_path() {
        let input = "/data/DOE_JOHN_1234567/CT/IM1.dcm";
        let reason = format!("`{input}` is not valid DICOM: truncated");
        assert_eq!(
            redact_paths(&reason, input),
            "`<input>` is not valid DICOM: truncated"
        );
        assert_eq!(
            redact_paths("cannot read /data/DOE_JOHN_1234567/CT: denied", input),
            "cannot read <input folder>: denied"
        );
        assert_eq!(
            redact_paths("cannot open /mnt/other/SMITH/x.dcm", input),
            "cannot open <path>"
        );
        assert_eq!(redact_paths("no SOP Class UID", input), "no SOP Class UID");
    }

    #[test]
    fn uids_that_are_not_uids_do_not_steer_the_output_path() {
        use dicom_core::{DataElement, VR, value::PrimitiveValue};
        let obj = dicom_object::InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.2.3"),
            ),
            DataElement::new(
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from(".."),
            ),
            DataElement::new(
                tags::SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("../../../../etc/x"),
            ),
        ]);
        let meta = dicom_object::meta::FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
            .media_storage_sop_instance_uid("1.2.3.4")
            .build()
            .expect("meta");
        let rel = relative_path(&obj.with_exact_meta(meta), "P-000001");
        assert!(rel.starts_with("P-000001/1.2.3/x"), "{rel}");
        assert!(!rel.contains(".."), "{rel}");
        assert_eq!(rel.matches('/').count(), 3, "{rel}");
    }
}
