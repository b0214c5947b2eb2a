//! Export results as standard DICOM (IHE AI Results / AI Result Assessment): for every current
//! analysis of a study, the model's SEG and TID 1500 SR; once the study is signed off, the
//! physician's assessment SR (and a SEG of the regions readers edited or added). Every object
//! written is recorded in the ledger with the analysis or sign-off it came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dicom_object::{FileDicomObject, InMemDicomObject};
use dokuei_dicom::StudyIndex;
use dokuei_dicom::stack::stacks;
use dokuei_infer::manifest::{CodedConcept, Label, Manifest};
use dokuei_infer::pipeline::LabelMap;
use dokuei_ledger::{ExportKind, ExportRecord, Ledger};
use dokuei_results::codes::{Code, default_category, default_type};
use dokuei_results::pmap::{PARAMETRIC_MAP_STORAGE, write_parametric_map};
use dokuei_results::seg::{SEGMENTATION_STORAGE, write_seg};
use dokuei_results::sr::{
    Assessment, COMPREHENSIVE_3D_SR, ObjectRef, SegmentRef, Verdict, Verifier, write_assessment,
    write_measurement_report,
};
use dokuei_results::uid::uid_from;
use dokuei_results::{
    Algorithm, FindingCoding, MaskSlice, ObjectIdentity, Origin, ResultFinding, SourceSeries,
    StudyContext, Writer, iso_to_dicom,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{AppError, ErrorCode};
use crate::reading::{FindingView, Geometry, hex_lower, review};
use dokuei_ledger::{Action, RejectReason};

/// One object an export wrote.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct ExportedObject {
    pub kind: ExportKind,
    /// The file written.
    pub file: String,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    /// Findings (segments or measurement groups) it holds.
    pub findings: u32,
}

/// What an export did.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct ResultsExport {
    pub folder: String,
    pub objects: Vec<ExportedObject>,
    /// Things the reader should know (e.g. a model whose manifest was not found, so default
    /// codes and colours were used).
    pub notes: Vec<String>,
}

/// A model as the export describes it: identity and coded labels.
pub(crate) struct ModelInfo {
    algorithm: Algorithm,
    labels: Vec<Label>,
    /// A heatmap model (its maps can be written as Parametric Maps).
    heatmap: bool,
}

fn concept(c: &Option<CodedConcept>) -> Option<Code> {
    c.as_ref()
        .map(|c| Code::new(&c.value, &c.scheme, &c.meaning))
}

pub(crate) fn coding(model: Option<&ModelInfo>, label: &str) -> FindingCoding {
    let l = model.and_then(|m| m.labels.iter().find(|l| l.name == label));
    FindingCoding {
        label: label.to_owned(),
        category: l
            .and_then(|l| concept(&l.category))
            .unwrap_or_else(default_category),
        finding: l
            .and_then(|l| concept(&l.property_type))
            .unwrap_or_else(default_type),
        site: l.and_then(|l| concept(&l.site)),
        rgb: l.map_or([128, 128, 128], |l| [l.color[0], l.color[1], l.color[2]]),
    }
}

/// The models under `roots`, by (id, SHA-256).
pub(crate) fn models(roots: &[PathBuf]) -> HashMap<(String, String), ModelInfo> {
    let mut out = HashMap::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for dir in entries.filter_map(Result::ok).map(|e| e.path()) {
            let Ok((m, _)) = Manifest::read(&dir) else {
                continue;
            };
            let key = (m.model.id.clone(), m.model.sha256.to_ascii_lowercase());
            out.entry(key).or_insert(ModelInfo {
                algorithm: Algorithm {
                    id: m.model.id.clone(),
                    name: m.model.name.clone(),
                    version: m.model.version.clone(),
                    sha256: m.model.sha256.to_ascii_lowercase(),
                    manufacturer: m.model.publisher.clone(),
                },
                heatmap: m.output.kind == dokuei_infer::manifest::OutputKind::Heatmap,
                labels: m.labels,
            });
        }
    }
    out
}

pub(crate) fn result_finding(
    g: &Geometry,
    coding: FindingCoding,
    tracking_id: String,
    tracking_uid: String,
    origin: Origin,
    probability: Option<f64>,
) -> ResultFinding {
    let mask: Vec<MaskSlice> = g
        .mask
        .iter()
        .map(|m| MaskSlice {
            slice: m.slice,
            runs: m.runs.iter().map(|r| (r[0], r[1])).collect(),
        })
        .collect();
    let key_slice = g
        .mask
        .iter()
        .max_by_key(|m| m.runs.iter().map(|r| u64::from(r[1])).sum::<u64>())
        .map_or(g.slices[0], |m| m.slice);
    let [x0, y0, x1, y1] = g.bbox;
    ResultFinding {
        coding,
        tracking_id,
        tracking_uid,
        origin,
        mask,
        bbox: [y0, x0, y1, x1],
        key_slice,
        longest_diameter_mm: g.longest_diameter_mm,
        area_mm2: g.area_mm2,
        volume_mm3: g.volume_mm3,
        probability,
    }
}

/// The stack of `series` analysis `analysis_id` ran on: the one whose images the ledger
/// recorded; refused when the files opened no longer hold it unchanged. Analyses recorded
/// before the ledger kept this (schema 2) use the series' first stack, with a note.
pub(crate) fn analysed_stack(
    series: &dokuei_dicom::Series,
    analysis_id: i64,
    sources: &[dokuei_ledger::AnalysisSourceRow],
    notes: &mut Vec<String>,
) -> Result<dokuei_dicom::stack::Stack, AppError> {
    let all = stacks(series);
    match sources.iter().find(|s| s.analysis_id == analysis_id) {
        Some(src) => all
            .into_iter()
            .enumerate()
            .find(|(i, st)| {
                crate::reading::StackIdentity::of(series, st, *i).sha256 == src.images_sha256
            })
            .map(|(_, st)| st)
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::NotFound,
                    format!(
                        "analysis {analysis_id} ran on stack {} ({} images) of series {}, which \
                         the files opened no longer hold unchanged; open the analysed files",
                        src.stack_index + 1,
                        src.frames,
                        series.uid
                    ),
                )
            }),
        None => {
            notes.push(format!(
                "analysis {analysis_id} was recorded without its stack: its findings are \
                 written on the first stack of series {}",
                series.uid
            ));
            all.into_iter().next().ok_or_else(|| {
                AppError::new(
                    ErrorCode::NotFound,
                    format!("series {} has no images", series.uid),
                )
            })
        }
    }
}

fn reason_code(r: Option<RejectReason>) -> &'static str {
    match r {
        Some(RejectReason::AnatomicalStructure) => "REJ-ANATOMY",
        Some(RejectReason::Artefact) => "REJ-ARTEFACT",
        Some(RejectReason::BenignOrKnown) => "REJ-BENIGN",
        Some(RejectReason::OutsideIntendedUse) => "REJ-OUTSIDE",
        Some(RejectReason::Other) | None => "REJ-OTHER",
    }
}

/// Writes `obj` to `dir/name` through a temporary file (a full disk leaves no half object) and
/// returns the path and the file's SHA-256 (of the bytes encoded once, in memory).
pub(crate) fn write_object(
    obj: &FileDicomObject<InMemDicomObject>,
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, String), AppError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.part"));
    let fail = |e: &dyn std::fmt::Display| {
        let _ = std::fs::remove_file(&tmp);
        AppError::new(
            ErrorCode::WriteFailed,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    let mut bytes = Vec::new();
    obj.write_all(&mut bytes).map_err(|e| fail(&e))?;
    std::fs::write(&tmp, &bytes).map_err(|e| fail(&e))?;
    std::fs::rename(&tmp, &path).map_err(|e| fail(&e))?;
    Ok((path, hex_lower(&Sha256::digest(&bytes))))
}

/// "series 2, image 41" (frame 3 of a multi-frame image: "series 2, image 41 frame 3").
fn key_image_label(study: &dokuei_dicom::Study, k: &dokuei_ledger::KeyImageRow) -> String {
    let series = study.series.iter().find(|s| s.uid == k.series_uid);
    let number = |n: Option<i32>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let image = series
        .and_then(|s| {
            s.instances
                .iter()
                .find(|i| i.sop_instance_uid == k.sop_instance_uid)
        })
        .and_then(|i| i.instance_number);
    let frame = k.frame.map(|f| format!(" frame {f}")).unwrap_or_default();
    format!(
        "series {}, image {}{frame}",
        number(series.and_then(|s| s.number)),
        number(image)
    )
}

fn times(iso: &str) -> (String, String) {
    let (da, tm, _) = iso_to_dicom(iso).unwrap_or_default();
    (da, tm)
}

/// Exports the results of study `study_uid` (found in `index`) into `out`. Models are looked
/// up under `model_roots` for their names and coded labels. `heatmaps` holds the probability
/// maps of heatmap analyses run in this session (by analysis id): each is written as a
/// Parametric Map. The ledger does not keep maps, so an export without them says so.
pub fn export_results(
    ledger: &Ledger,
    index: &StudyIndex,
    study_uid: &str,
    model_roots: &[PathBuf],
    heatmaps: &HashMap<i64, Vec<LabelMap>>,
    out: &Path,
) -> Result<ResultsExport, AppError> {
    let (patient, study) = index
        .patients
        .iter()
        .flat_map(|p| p.studies.iter().map(move |s| (p, s)))
        .find(|(_, s)| s.uid == study_uid)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                "the study is not among the files opened",
            )
        })?;
    let study_id = ledger.study_id(study_uid)?.ok_or_else(|| {
        AppError::new(
            ErrorCode::NotFound,
            "the ledger holds no analysis of this study: analyse it first",
        )
    })?;
    let rows = ledger.study_rows(study_id)?;
    let rv = review(ledger, study_uid)?;
    if rv.analyses.is_empty() {
        return Err(AppError::new(
            ErrorCode::NotFound,
            "the ledger holds no analysis of this study: analyse it first",
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!("cannot create {}: {e}", out.display()),
        )
    })?;
    let ctx = StudyContext::from_index(patient, study);
    let models = models(model_roots);
    let key = crate::ledger::export_key(ledger.path())?;
    let writer = Writer {
        software_version: format!("Dokuei {}", env!("CARGO_PKG_VERSION")),
        device_serial: hex_lower(&Sha256::digest(&key)[..8]),
    };
    let destination = out.display().to_string();
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    let mut record = |kind: ExportKind,
                      analysis_id: Option<i64>,
                      sign_off_id: Option<i64>,
                      id: &ObjectIdentity,
                      class: &str,
                      file: (PathBuf, String),
                      findings: usize|
     -> Result<(), AppError> {
        ledger.record_export(&ExportRecord {
            study_id,
            analysis_id,
            sign_off_id,
            kind,
            sop_class_uid: class.to_owned(),
            sop_instance_uid: id.sop_instance_uid.clone(),
            series_instance_uid: id.series_uid.clone(),
            sha256: file.1,
            destination: destination.clone(),
        })?;
        objects.push(ExportedObject {
            kind,
            file: file.0.display().to_string(),
            sop_instance_uid: id.sop_instance_uid.clone(),
            sop_class_uid: class.to_owned(),
            findings: findings as u32,
        });
        Ok(())
    };
    let tracking_uid = |f: &FindingView, sha: &str, finished: &str| match f.finding_id {
        Some(id) => uid_from(&format!("dokuei/finding/{study_uid}/{sha}/{finished}/{id}")),
        None => uid_from(&format!(
            "dokuei/added/{study_uid}/{}",
            f.decision.as_ref().map_or(0, |d| d.id)
        )),
    };

    // Per analysed series: its source, and the AI objects' references for the assessment.
    struct Analysed {
        source: SourceSeries,
        ai: Vec<(ResultFinding, FindingView, Option<SegmentRef>)>,
        assessed: Vec<ObjectRef>,
        algorithm: Algorithm,
    }
    let mut analysed: Vec<Analysed> = Vec::new();
    for (n, a) in rv.analyses.iter().enumerate() {
        // Results read from another tool's objects are that tool's: not written again as
        // Dokuei's AI results.
        if a.imported_from.is_some() {
            notes.push(format!(
                "analysis {} holds imported results ({}); they are not exported again, and \
                 verdicts on them are not in the assessment SR yet",
                a.id, a.model_id
            ));
            continue;
        }
        let series = index
            .series()
            .find(|s| s.uid == a.series_uid)
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::NotFound,
                    format!(
                        "analysed series {} is not among the files opened",
                        a.series_uid
                    ),
                )
            })?;
        let stack = analysed_stack(series, a.id, &rows.sources, &mut notes)?;
        let source = SourceSeries::from_stack(series, &stack)
            .map_err(|e| AppError::new(ErrorCode::DicomUnreadable, e.to_string()))?;
        let sha = a.model_sha256.to_ascii_lowercase();
        let model = models.get(&(a.model_id.clone(), sha.clone()));
        if model.is_none() {
            notes.push(format!(
                "model {} {} (SHA-256 {}) was not found among the model folders: its findings are \
                 written with default codes and grey",
                a.model_id, a.model_version, sha
            ));
        }
        let algorithm = model.map_or_else(
            || Algorithm {
                id: a.model_id.clone(),
                name: a.model_id.clone(),
                version: a.model_version.clone(),
                sha256: sha.clone(),
                manufacturer: "unknown".into(),
            },
            |m| m.algorithm.clone(),
        );
        let ai: Vec<(ResultFinding, FindingView)> = rv
            .findings
            .iter()
            .filter(|f| f.analysis_id == a.id && f.finding_id.is_some())
            .map(|f| {
                let rf = result_finding(
                    &f.geometry,
                    coding(model, &f.label),
                    format!("{} #{}", f.label, f.finding_id.unwrap_or_default()),
                    tracking_uid(f, &sha, &a.finished_at),
                    Origin::Automatic(algorithm.clone()),
                    f.score,
                );
                (rf, f.clone())
            })
            .collect();
        let (da, tm) = times(&a.finished_at);
        let basis = format!(
            "dokuei/{study_uid}/analysis/{}/{}/{sha}",
            a.id, a.finished_at
        );
        let identity = |kind: &str, number: i32| ObjectIdentity {
            sop_instance_uid: uid_from(&format!("{basis}/{kind}")),
            series_uid: uid_from(&format!("{basis}/{kind}/series")),
            series_number: number,
            series_description: format!("AI {kind} {} {}", algorithm.id, algorithm.version),
            instance_number: 1,
            content_date: da.clone(),
            content_time: tm.clone(),
        };
        let findings: Vec<ResultFinding> = ai.iter().map(|(r, _)| r.clone()).collect();
        let mut refs: Vec<Option<SegmentRef>> = vec![None; findings.len()];
        let mut assessed = Vec::new();
        if findings.iter().any(|f| !f.mask.is_empty()) {
            let id = identity("SEG", 9100 + n as i32);
            let seg = write_seg(&ctx, &source, &findings, &id, &writer)
                .map_err(|e| AppError::new(ErrorCode::InvalidArgument, e.to_string()))?;
            for (r, num) in refs.iter_mut().zip(&seg.segment_numbers) {
                *r = num.map(|segment_number| SegmentRef {
                    sop_instance_uid: id.sop_instance_uid.clone(),
                    series_uid: id.series_uid.clone(),
                    segment_number,
                });
            }
            let file = write_object(
                &seg.object,
                out,
                &format!("AI_SEG_{}_{}.dcm", a.model_id, a.id),
            )?;
            let count = seg.segment_numbers.iter().flatten().count();
            record(
                ExportKind::AiSeg,
                Some(a.id),
                None,
                &id,
                SEGMENTATION_STORAGE,
                file,
                count,
            )?;
            assessed.push(ObjectRef {
                sop_class_uid: SEGMENTATION_STORAGE.into(),
                sop_instance_uid: id.sop_instance_uid.clone(),
                series_uid: id.series_uid.clone(),
            });
        }
        // Heatmap models: the maps as Parametric Maps, when this session has them.
        let is_heatmap = model.is_some_and(|m| m.heatmap);
        if is_heatmap && !heatmaps.contains_key(&a.id) {
            notes.push(format!(
                "the heatmap of analysis {} is not kept in the ledger: its Parametric Map is \
                 written only by an export from the app in the session that ran the analysis",
                a.id
            ));
        }
        if let Some(maps) = heatmaps.get(&a.id) {
            for (k, map) in maps.iter().enumerate() {
                let values: Vec<f32> = map.values.iter().map(|&v| f32::from(v) / 255.0).collect();
                let id = identity(&format!("PMAP {}", map.label), 9500 + (n * 10 + k) as i32);
                let pm = match write_parametric_map(
                    &ctx, &source, &algorithm, &map.label, &values, &id, &writer,
                ) {
                    Ok(pm) => pm,
                    Err(e) => {
                        // E.g. a radiograph: no patient geometry for a Parametric Map. The
                        // findings are still in the SEG and SR.
                        notes.push(e.to_string());
                        continue;
                    }
                };
                let name = format!("AI_PMAP_{}_{}_{}.dcm", a.model_id, a.id, map.label);
                let file = write_object(&pm, out, &name)?;
                record(
                    ExportKind::AiPmap,
                    Some(a.id),
                    None,
                    &id,
                    PARAMETRIC_MAP_STORAGE,
                    file,
                    0,
                )?;
            }
        }
        let id = identity("SR", 9200 + n as i32);
        let sr =
            write_measurement_report(&ctx, &source, &algorithm, &findings, &refs, &id, &writer)
                .map_err(|e| AppError::new(ErrorCode::InvalidArgument, e.to_string()))?;
        let file = write_object(&sr, out, &format!("AI_SR_{}_{}.dcm", a.model_id, a.id))?;
        record(
            ExportKind::AiSr,
            Some(a.id),
            None,
            &id,
            COMPREHENSIVE_3D_SR,
            file,
            findings.len(),
        )?;
        assessed.push(ObjectRef {
            sop_class_uid: COMPREHENSIVE_3D_SR.into(),
            sop_instance_uid: id.sop_instance_uid.clone(),
            series_uid: id.series_uid.clone(),
        });
        let ai = ai
            .into_iter()
            .zip(refs)
            .map(|((rf, view), r)| (rf, view, r))
            .collect();
        analysed.push(Analysed {
            source,
            ai,
            assessed,
            algorithm,
        });
    }

    // The physician's assessment, once signed off.
    if let (Some(sign_off), Some(so_row)) = (&rv.sign_off, rows.sign_offs.last()) {
        let reader = ledger
            .readers()?
            .into_iter()
            .find(|r| r.id == sign_off.reader_id)
            .map_or_else(
                || format!("Reader {}", sign_off.reader_id),
                |r| r.display_name,
            );
        let (da, tm, dt) = iso_to_dicom(&sign_off.recorded_at).unwrap_or_default();
        let verifier = Verifier {
            name: reader,
            organization: "Dokuei reading workstation".into(),
            date_time: dt,
            // The PACS that stores the SR then witnesses the ledger as it was at sign-off.
            ledger_checkpoint: ledger.checkpoint_of_sign_off(so_row.id)?.map(|c| c.line()),
        };
        for (n, an) in analysed.iter().enumerate() {
            let basis = format!(
                "dokuei/{study_uid}/sign-off/{}/{}/{}",
                so_row.id, so_row.recorded_at, an.source.series_uid
            );
            let identity = |kind: &str, number: i32| ObjectIdentity {
                sop_instance_uid: uid_from(&format!("{basis}/{kind}")),
                series_uid: uid_from(&format!("{basis}/{kind}/series")),
                series_number: number,
                series_description: format!("Physician {kind}"),
                instance_number: 1,
                content_date: da.clone(),
                content_time: tm.clone(),
            };
            // Regions readers changed or drew: a SEG of their own.
            let mut reader_findings: Vec<ResultFinding> = Vec::new();
            let mut verdicts: Vec<(
                ResultFinding,
                Option<usize>,
                &FindingView,
                Option<SegmentRef>,
            )> = Vec::new();
            for (rf, view, ai_seg) in &an.ai {
                let Some(d) = &view.decision else { continue };
                match d.action {
                    Action::Edit => {
                        let g = d.geometry.as_ref().unwrap_or(&view.geometry);
                        let edited = result_finding(
                            g,
                            rf.coding.clone(),
                            rf.tracking_id.clone(),
                            rf.tracking_uid.clone(),
                            Origin::SemiAutomatic(an.algorithm.clone()),
                            None,
                        );
                        reader_findings.push(edited);
                        verdicts.push((
                            rf.clone(),
                            Some(reader_findings.len() - 1),
                            view,
                            ai_seg.clone(),
                        ));
                    }
                    _ => verdicts.push((rf.clone(), None, view, ai_seg.clone())),
                }
            }
            let added: Vec<&FindingView> = rv
                .findings
                .iter()
                .filter(|f| f.finding_id.is_none() && f.series_uid == an.source.series_uid)
                .collect();
            for f in &added {
                let model = models.get(&(an.algorithm.id.clone(), an.algorithm.sha256.clone()));
                let d_id = f.decision.as_ref().map_or(0, |d| d.id);
                let rf = result_finding(
                    f.effective_geometry(),
                    coding(model, &f.label),
                    format!("{} (added) #{d_id}", f.label),
                    tracking_uid(f, "", ""),
                    Origin::Manual,
                    None,
                );
                reader_findings.push(rf.clone());
                verdicts.push((rf, Some(reader_findings.len() - 1), f, None));
            }
            let mut reader_refs: Vec<Option<SegmentRef>> = vec![None; reader_findings.len()];
            if reader_findings.iter().any(|f| !f.mask.is_empty()) {
                let id = identity("SEG", 9300 + n as i32);
                let seg = write_seg(&ctx, &an.source, &reader_findings, &id, &writer)
                    .map_err(|e| AppError::new(ErrorCode::InvalidArgument, e.to_string()))?;
                for (r, num) in reader_refs.iter_mut().zip(&seg.segment_numbers) {
                    *r = num.map(|segment_number| SegmentRef {
                        sop_instance_uid: id.sop_instance_uid.clone(),
                        series_uid: id.series_uid.clone(),
                        segment_number,
                    });
                }
                let file =
                    write_object(&seg.object, out, &format!("READER_SEG_{}.dcm", so_row.id))?;
                let count = seg.segment_numbers.iter().flatten().count();
                record(
                    ExportKind::ReaderSeg,
                    None,
                    Some(so_row.id),
                    &id,
                    SEGMENTATION_STORAGE,
                    file,
                    count,
                )?;
            }
            let assessments: Vec<Assessment> = verdicts
                .into_iter()
                .filter_map(|(rf, k, view, ai_segment)| {
                    let d = view.decision.as_ref()?;
                    let verdict = match d.action {
                        Action::Confirm => Verdict::Accepted,
                        Action::Reject => Verdict::Rejected {
                            reason: reason_code(d.reject_reason).into(),
                            text: d.reason_text.clone(),
                        },
                        Action::Edit => match k.and_then(|k| reader_refs[k].clone()) {
                            Some(segment) => Verdict::Modified {
                                edited: Box::new(reader_findings[k?].clone()),
                                segment,
                            },
                            None => Verdict::Accepted,
                        },
                        Action::Add => Verdict::Added {
                            segment: k.and_then(|k| reader_refs[k].clone())?,
                        },
                    };
                    Some(Assessment {
                        finding: rf,
                        ai_segment,
                        verdict,
                    })
                })
                .collect();
            let id = identity("SR", 9400 + n as i32);
            let sr = write_assessment(
                &ctx,
                &an.source,
                &assessments,
                &an.assessed,
                &verifier,
                &id,
                &writer,
            )
            .map_err(|e| AppError::new(ErrorCode::InvalidArgument, e.to_string()))?;
            let file = write_object(&sr, out, &format!("ASSESSMENT_SR_{}.dcm", so_row.id))?;
            record(
                ExportKind::AssessmentSr,
                None,
                Some(so_row.id),
                &id,
                COMPREHENSIVE_3D_SR,
                file,
                assessments.len(),
            )?;
        }
    } else {
        notes.push(
            "the study is not signed off: only the AI results were exported (the physician's \
             assessment is written at sign-off)"
                .into(),
        );
    }
    // Key images: one Key Object Selection document naming them, with the readers' notes.
    let marks = ledger.key_images(study_id)?;
    if let Some(last) = marks.last() {
        use dokuei_results::kos::{KEY_OBJECT_SELECTION, KeyImage, write_key_objects};
        let images: Vec<KeyImage> = marks
            .iter()
            .map(|k| KeyImage {
                sop_class_uid: k.sop_class_uid.clone(),
                sop_instance_uid: k.sop_instance_uid.clone(),
                series_uid: k.series_uid.clone(),
                frame: k.frame,
                note: k.note.clone(),
            })
            .collect();
        let labels: Vec<String> = marks.iter().map(|k| key_image_label(study, k)).collect();
        let (da, tm) = times(&last.recorded_at);
        let marked: Vec<String> = marks.iter().map(|k| k.id.to_string()).collect();
        let basis = format!("dokuei/kos/{study_uid}/{}", marked.join(","));
        let id = ObjectIdentity {
            sop_instance_uid: uid_from(&basis),
            series_uid: uid_from(&format!("{basis}/series")),
            series_number: 9600,
            series_description: "Key images".into(),
            instance_number: 1,
            content_date: da,
            content_time: tm,
        };
        let kos = write_key_objects(&ctx, &images, &labels, &last.reader, &id, &writer)
            .map_err(|e| AppError::new(ErrorCode::InvalidArgument, e.to_string()))?;
        let (file, sha256) = write_object(&kos, out, "KEY_IMAGES.dcm")?;
        ledger.record_key_object_document(&dokuei_ledger::KeyObjectRecord {
            study_id,
            sop_instance_uid: id.sop_instance_uid.clone(),
            series_instance_uid: id.series_uid.clone(),
            images: images.len() as u32,
            sha256,
            destination: destination.clone(),
        })?;
        objects.push(ExportedObject {
            kind: ExportKind::KeyObjects,
            file: file.display().to_string(),
            sop_instance_uid: id.sop_instance_uid,
            sop_class_uid: KEY_OBJECT_SELECTION.into(),
            findings: 0,
        });
    }
    Ok(ResultsExport {
        folder: destination,
        objects,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------
// Reading results other tools (or Dokuei) wrote

/// A finding read from a SEG (and the SR groups that describe it), placed on its source series.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct ImportedFinding {
    pub series_uid: String,
    /// Stack of the series the mask is on (0-based).
    pub stack: u32,
    pub label: String,
    /// sRGB from the SEG (grey when it gives none).
    pub rgb: [u8; 3],
    /// e.g. "Nodule (SCT 27925004)".
    pub finding: String,
    pub tracking_id: String,
    pub tracking_uid: String,
    /// AUTOMATIC, SEMIAUTOMATIC or MANUAL.
    pub algorithm_type: String,
    pub algorithm_name: String,
    pub algorithm_version: String,
    pub manufacturer: String,
    pub device_uid: String,
    /// The SEG (file, SOP Class and Instance UIDs) and segment number it came from.
    pub seg_file: String,
    pub seg_sop_class_uid: String,
    pub seg_sop_instance_uid: String,
    pub segment_number: u16,
    pub geometry: Geometry,
    /// Measurements the SR gives for it: (name, value, unit).
    pub measurements: Vec<(String, f64, String)>,
}

/// What reading a folder's results gave: findings placed on their series, and the objects that
/// could not be read or placed, each with its reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, specta::Type)]
pub struct ImportedResults {
    pub findings: Vec<ImportedFinding>,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// [`import_results`], keeping only the findings on series of study `study_uid`.
pub fn import_results_of_study(index: &StudyIndex, study_uid: &str) -> ImportedResults {
    let mut imported = import_results(index);
    let in_study: std::collections::HashSet<&str> = index
        .patients
        .iter()
        .flat_map(|p| &p.studies)
        .filter(|s| s.uid == study_uid)
        .flat_map(|s| s.series.iter().map(|x| x.uid.as_str()))
        .collect();
    imported
        .findings
        .retain(|f| in_study.contains(f.series_uid.as_str()));
    imported
}

/// Reads every SEG and TID 1500 SR the study index found (its `results`) and places the SEGs'
/// segments on the series of `index` they were made from.
pub fn import_results(index: &StudyIndex) -> ImportedResults {
    use dokuei_dicom::source::Source;
    use dokuei_results::read::{place, read_seg, read_tid1500};
    let mut out = ImportedResults::default();
    let mut segs = Vec::new();
    let mut reports = Vec::new();
    for r in &index.results {
        let Source::File { path } = &r.instance.source else {
            out.problems.push(format!(
                "{}: results inside archives are not read yet",
                r.instance.source
            ));
            continue;
        };
        let class = &r.instance.sop_class_uid;
        if class.starts_with("1.2.840.10008.5.1.4.1.1.66.") {
            match read_seg(path) {
                Ok(s) => segs.push(s),
                Err(e) => out.problems.push(e.to_string()),
            }
        } else if class.starts_with("1.2.840.10008.5.1.4.1.1.88.") {
            // Only TID 1500 reports are read; other SRs are not results of this kind.
            if let Ok(rep) = read_tid1500(path) {
                reports.push(rep);
            }
        }
    }
    for seg in &segs {
        out.notes
            .extend(seg.notes.iter().map(|n| format!("{}: {n}", seg.file)));
        // The source series: the one it names, else one sharing its Frame of Reference.
        let named = seg
            .referenced_series_uid
            .as_deref()
            .and_then(|u| index.series().find(|s| s.uid == u));
        let Some(series) = named else {
            out.problems.push(format!(
                "{}: its source series ({}) is not among the files opened",
                seg.file,
                seg.referenced_series_uid.as_deref().unwrap_or("not named")
            ));
            continue;
        };
        let mut placed = None;
        let mut last_err = None;
        for (k, stack) in stacks(series).iter().enumerate() {
            let source = match SourceSeries::from_stack(series, stack) {
                Ok(s) => s,
                Err(e) => {
                    last_err = Some(e.to_string());
                    continue;
                }
            };
            match place(seg, &source) {
                Ok(p) => {
                    placed = Some((k, stack.clone(), p));
                    break;
                }
                Err(e) => last_err = Some(e.to_string()),
            }
        }
        let Some((k, stack, placed)) = placed else {
            out.problems
                .push(last_err.unwrap_or_else(|| format!("{}: no stack to place it on", seg.file)));
            continue;
        };
        for (desc, p) in seg.segments.iter().zip(&placed) {
            if p.mask.is_empty() {
                continue;
            }
            let mask: Vec<crate::reading::MaskSlice> = p
                .mask
                .iter()
                .map(|m| crate::reading::MaskSlice {
                    slice: m.slice,
                    runs: m.runs.iter().map(|&(s, l)| [s, l]).collect(),
                })
                .collect();
            let geometry = match crate::reading::geometry_from_mask(series, &stack, &mask) {
                Ok(g) => g,
                Err(e) => {
                    out.problems.push(format!(
                        "{} segment {}: {}",
                        seg.file, desc.number, e.message
                    ));
                    continue;
                }
            };
            // SR groups about this segment: by reference, else by Tracking UID.
            let mut measurements = Vec::new();
            for r in &reports {
                for g in &r.groups {
                    let about = g
                        .referenced_segment
                        .as_ref()
                        .is_some_and(|(u, n)| *u == seg.sop_instance_uid && *n == desc.number)
                        || (!desc.tracking_uid.is_empty() && g.tracking_uid == desc.tracking_uid);
                    if about {
                        for m in &g.measurements {
                            let entry = (m.concept.meaning.clone(), m.value, m.unit.value.clone());
                            if !measurements.contains(&entry) {
                                measurements.push(entry);
                            }
                        }
                    }
                }
            }
            let finding = desc
                .property_type
                .as_ref()
                .map(|c| format!("{} ({} {})", c.meaning, c.scheme, c.value))
                .unwrap_or_default();
            out.findings.push(ImportedFinding {
                series_uid: series.uid.clone(),
                stack: k as u32,
                label: desc.label.clone(),
                rgb: desc.rgb.unwrap_or([128, 128, 128]),
                finding,
                tracking_id: desc.tracking_id.clone(),
                tracking_uid: desc.tracking_uid.clone(),
                algorithm_type: desc.algorithm_type.clone(),
                algorithm_name: desc.producer.algorithm_name.clone(),
                algorithm_version: desc.producer.algorithm_version.clone(),
                manufacturer: desc.producer.manufacturer.clone(),
                device_uid: desc.producer.device_uid.clone(),
                seg_file: seg.file.clone(),
                seg_sop_class_uid: seg.sop_class_uid.clone(),
                seg_sop_instance_uid: seg.sop_instance_uid.clone(),
                segment_number: desc.number,
                geometry,
                measurements,
            });
        }
    }
    out
}
