//! The training-data export from a real ledger: two patients' synthetic CTs (one axial with
//! non-square pixels, one oblique with its instances numbered backwards) analysed, decided
//! (confirm, reject with free text, edit, add) and signed off, and a third study analysed but
//! not signed off. The export is checked here (counts, files, findings.jsonl, the canary of
//! identifying values, the access audit) and by nibabel and pydicom
//! (`scripts/reference/training_check.py`): shapes, affines, voxels, and the final labels
//! against the de-identified SEG.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use dokuei_ledger::AccessAction;
use dokuei_review::dicom::synth::{Sphere, SyntheticCt};
use dokuei_review::infer::findings::{Finding, ModelRef, SliceGeometry, describe};
use dokuei_review::ledger::{Action, Ledger, RejectReason, Role};
use dokuei_review::reading::{
    DecisionContext, DecisionInput, MaskSlice, StackIdentity, add_reader, decide, record_analysis,
    sign_off, slice_geometry, study_identity,
};
use dokuei_review::study::open_study;
use dokuei_review::training::{TrainingFilter, TrainingSettings, export_training};
use dokuei_review::viewer::OpenStudy;

const PASSPHRASE: &str = "correct horse battery";
const ROWS: u16 = 61;
const COLUMNS: u16 = 75;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn model() -> ModelRef {
    let manifest =
        std::fs::read_to_string(models_dir().join("ct-nodule-demo/manifest.toml")).unwrap();
    let sha = manifest
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned();
    ModelRef {
        id: "ct-nodule-demo".into(),
        version: "1.0.0".into(),
        sha256: sha,
        execution_provider: "CPU".into(),
        thresholds: BTreeMap::from([("nodule".to_owned(), 0.5)]),
    }
}

/// Voxels (display-order slice × rows × columns index) within `radius` mm of `center`, from the
/// stack's own geometry.
fn ball(study: &OpenStudy, center: [f64; 3], radius: f64) -> Vec<usize> {
    let stack = study.stack(0, 0).unwrap();
    let plane = usize::from(ROWS) * usize::from(COLUMNS);
    let mut voxels = Vec::new();
    for (k, f) in stack.frames.iter().enumerate() {
        let g = f.geometry.unwrap();
        for r in 0..usize::from(ROWS) {
            for c in 0..usize::from(COLUMNS) {
                let p = g.pixel_to_patient(c as f64, r as f64);
                let d2: f64 = (0..3).map(|i| (p[i] - center[i]).powi(2)).sum();
                if d2 <= radius * radius {
                    voxels.push(k * plane + r * usize::from(COLUMNS) + c);
                }
            }
        }
    }
    voxels
}

struct Analysed {
    study: OpenStudy,
    ids: Vec<i64>,
    voxels: Vec<Vec<usize>>,
    masks: Vec<Vec<MaskSlice>>,
}

/// Writes a CT with spheres at `centers` (patient mm, radius 4, or three pixels on coarse
/// grids), opens it and records an analysis with one finding per sphere.
fn analysed(ledger: &Ledger, dir: &Path, ct: SyntheticCt, centers: &[[f64; 3]]) -> Analysed {
    let folder = dir.join(format!("ct{}-{}", ct.seed, ct.series_number));
    let radius = 4.0f64.max(3.0 * ct.pixel_spacing[0]);
    let ct = SyntheticCt {
        spheres: centers
            .iter()
            .map(|&center| Sphere {
                center,
                radius,
                hu: 40.0,
            })
            .collect(),
        ..ct
    };
    ct.write(&folder).unwrap();
    let study = OpenStudy::open(std::slice::from_ref(&folder)).unwrap();
    let series = study.series(0).unwrap();
    let stack = study.stack(0, 0).unwrap();
    let identity = study_identity(&study.index, &series.uid).unwrap();
    let geometry: Vec<SliceGeometry> = (0..stack.frames.len())
        .map(|i| slice_geometry(series, stack, i))
        .collect();
    let voxels: Vec<Vec<usize>> = centers.iter().map(|&c| ball(&study, c, radius)).collect();
    let findings: Vec<Finding> = voxels
        .iter()
        .enumerate()
        .map(|(i, v)| {
            assert!(v.len() > 50, "sphere {i} has {} voxels", v.len());
            Finding {
                label: "nodule".into(),
                score: 0.9 - i as f64 * 0.1,
                geometry: describe(v, ROWS.into(), COLUMNS.into(), &geometry, 2.5),
                model: model(),
                series_uid: series.uid.clone(),
                instance_uids: Vec::new(),
                image_score: None,
            }
        })
        .collect();
    let r = record_analysis(
        ledger,
        &identity,
        &series.uid,
        &StackIdentity::of(series, stack, 0),
        &model(),
        &findings,
        "2026-11-20T08:00:00.000Z",
        "2026-11-20T08:00:02.000Z",
    )
    .unwrap();
    // This series' findings (the review holds the whole study's).
    let mine: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.series_uid == series.uid)
        .collect();
    let masks = mine
        .iter()
        .map(|f| {
            f.geometry
                .mask
                .iter()
                .map(|m| MaskSlice {
                    slice: m.slice,
                    runs: m.runs.clone(),
                })
                .collect()
        })
        .collect();
    drop(findings);
    let ids = mine.iter().map(|f| f.finding_id.unwrap()).collect();
    Analysed {
        study,
        ids,
        voxels,
        masks,
    }
}

fn input(finding_id: Option<i64>, action: Action) -> DecisionInput {
    DecisionInput {
        finding_id,
        replaces_added: None,
        action,
        label: String::new(),
        reject_reason: None,
        reason_text: String::new(),
        mask: Vec::new(),
    }
}

fn decide_on(ledger: &Ledger, a: &Analysed, reader: i64, d: &DecisionInput) {
    let series = a.study.series(0).unwrap();
    let stack = a.study.stack(0, 0).unwrap();
    let identity = study_identity(&a.study.index, &series.uid).unwrap();
    let ctx = DecisionContext {
        study: &identity,
        series,
        stack,
    };
    decide(ledger, &ctx, reader, d).unwrap();
}

fn sign(ledger: &Ledger, a: &Analysed, reader: i64) {
    let series = a.study.series(0).unwrap();
    let identity = study_identity(&a.study.index, &series.uid).unwrap();
    sign_off(ledger, &identity.study_uid, reader, "read", PASSPHRASE).unwrap();
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn decided_findings_leave_as_nnunet_monai_and_dicom_that_nibabel_and_pydicom_agree_with() {
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        dokuei_review::ledger::open_ledger(Some(&dir.path().join("ledger.sqlite"))).unwrap();
    let reader = add_reader(&ledger, "Yamada^Hanako", Role::Radiologist, PASSPHRASE)
        .unwrap()
        .id;
    let base = SyntheticCt {
        slices: 24,
        rows: ROWS,
        columns: COLUMNS,
        pixel_spacing: [0.7, 0.9],
        ..SyntheticCt::default()
    };
    // Patient 1: axial, non-square pixels; a confirmed nodule, a rejected one, an added region.
    let a = analysed(
        &ledger,
        dir.path(),
        SyntheticCt {
            seed: 11,
            ..base.clone()
        },
        &[[-6.0, -4.0, 20.0], [12.0, 8.0, 35.0]],
    );
    decide_on(&ledger, &a, reader, &input(Some(a.ids[0]), Action::Confirm));
    let mut reject = input(Some(a.ids[1]), Action::Reject);
    reject.reject_reason = Some(RejectReason::AnatomicalStructure);
    reject.reason_text = "vessel, as on Mr Tanaka's prior".into();
    decide_on(&ledger, &a, reader, &reject);
    let mut add = input(None, Action::Add);
    add.label = "nodule".into();
    add.mask = vec![MaskSlice {
        slice: 4,
        runs: (20..25)
            .map(|row| [row * u32::from(COLUMNS) + 33, 6])
            .collect(),
    }];
    decide_on(&ledger, &a, reader, &add);
    sign(&ledger, &a, reader);

    // Patient 2: oblique (rows turned 20° in the axial plane, columns running feet-ward), its
    // instances numbered backwards; the nodule edited (its first slice dropped).
    let (s, c) = (20f64.to_radians().sin(), 20f64.to_radians().cos());
    let oblique = SyntheticCt {
        seed: 12,
        orientation: [c, s, 0.0, 0.0, 0.0, -1.0],
        origin: [-25.0, -10.0, 30.0],
        reverse_instance_numbers: true,
        ..base.clone()
    };
    let row = [c, s, 0.0];
    let normal = [-s, c, 0.0];
    let center: [f64; 3] =
        std::array::from_fn(|i| oblique.origin[i] + row[i] * 0.9 * 35.0 + normal[i] * 2.5 * 10.0);
    let center = [center[0], center[1], center[2] - 0.7 * 30.0];
    let b = analysed(&ledger, dir.path(), oblique, &[center]);
    let mut edit = input(Some(b.ids[0]), Action::Edit);
    edit.mask = b.masks[0][1..].to_vec();
    decide_on(&ledger, &b, reader, &edit);
    sign(&ledger, &b, reader);

    // Patient 3: analysed, confirmed, never signed off.
    let third = analysed(
        &ledger,
        dir.path(),
        SyntheticCt {
            seed: 13,
            ..base.clone()
        },
        &[[0.0, 0.0, 25.0]],
    );
    decide_on(
        &ledger,
        &third,
        reader,
        &input(Some(third.ids[0]), Action::Confirm),
    );

    let paths: Vec<PathBuf> = [11, 12, 13]
        .iter()
        .map(|s| dir.path().join(format!("ct{s}-1")))
        .collect();
    let index = open_study(&paths).unwrap();
    let out = dir.path().join("training");
    let settings = TrainingSettings::default();
    let mut steps = Vec::new();
    let export = export_training(
        &ledger,
        &index,
        &out,
        &settings,
        &[models_dir()],
        Some(reader),
        &AtomicBool::new(false),
        |p| steps.push((p.done, p.total)),
    )
    .unwrap();
    println!("{export:#?}");
    assert_eq!((export.cases, export.patients), (2, 2), "{export:?}");
    assert_eq!(
        (export.ai_findings, export.rejected, export.added_findings),
        (3, 1, 1)
    );
    assert_eq!(export.splits.iter().sum::<u32>(), 2);
    assert!(!export.cancelled && !export.identified);
    assert!(
        export.notes.iter().any(|n| n.contains("not signed off")),
        "{:?}",
        export.notes
    );
    // Progress: 48 images and 2 SEGs, then 2 cases; it ends at its total.
    assert_eq!(steps.last(), Some(&(52, 52)), "{steps:?}");

    // The dataset's description.
    let read_json = |p: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(p)).unwrap()).unwrap()
    };
    let dataset = read_json("nnUNet/Dataset500_Dokuei/dataset.json");
    assert_eq!(dataset["labels"]["background"], 0);
    assert_eq!(dataset["labels"]["nodule"], 1);
    assert_eq!(dataset["channel_names"]["0"], "CT");
    assert_eq!(dataset["file_ending"], ".nii.gz");
    let training = export.splits[0] + export.splits[1];
    assert_eq!(dataset["numTraining"], training);
    let count = |d: &str| std::fs::read_dir(out.join(d)).unwrap().count() as u32;
    assert_eq!(count("nnUNet/Dataset500_Dokuei/imagesTr"), training);
    assert_eq!(count("nnUNet/Dataset500_Dokuei/labelsTr"), training);
    assert_eq!(count("nnUNet/Dataset500_Dokuei/imagesTs"), export.splits[2]);
    assert_eq!((count("labels/final"), count("labels/original")), (2, 2));
    let provenance = read_json("provenance.json");
    assert_eq!(provenance["identified"], false);
    assert_eq!(
        provenance["de_identification"]["standard"],
        "DICOM PS3.15 2023b Annex E"
    );
    assert!(provenance["defacing"].as_str().unwrap().starts_with("none"));
    // Two patients at 15 % / 15 %: nobody in validation, so nnU-Net gets no one-fold split
    // file, and provenance says so.
    let notes = provenance["notes"].to_string();
    assert_eq!(
        out.join("nnUNet/Dataset500_Dokuei/splits_final.json")
            .exists(),
        export.splits[1] > 0,
        "{notes}"
    );
    assert_eq!(provenance["models"][0]["sha256"], model().sha256);
    let splits = read_json("splits.json");
    let split_cases: usize = ["training", "validation", "test"]
        .iter()
        .map(|s| splits[s].as_array().unwrap().len())
        .sum();
    assert_eq!(split_cases, 2);

    // findings.jsonl: every AI finding, the rejected one as a negative without its free text.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("findings.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let rejected = lines.iter().find(|l| l["decision"] == "reject").unwrap();
    assert_eq!(rejected["negative"], true);
    assert_eq!(rejected["reject_reason"], "anatomical_structure");
    assert!(rejected["reason_text"].is_null());
    assert_eq!(rejected["model"]["sha256"], model().sha256);
    assert!(rejected["final"].is_null() && rejected["original"].is_object());
    let added = lines.iter().find(|l| l["source"] == "reader").unwrap();
    assert_eq!(
        (&added["decision"], &added["negative"]),
        (&"add".into(), &false.into())
    );
    let edited = lines.iter().find(|l| l["decision"] == "edit").unwrap();
    assert_ne!(edited["original"]["slices"], edited["final"]["slices"]);

    // Nothing identifying leaves: no name, patient ID, original UID or reader's text in any
    // file's bytes (the NIfTI files carry only voxels and a description).
    let uids: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|x| {
            let s = x.study.series(0).unwrap();
            let id = study_identity(&x.study.index, &s.uid).unwrap();
            [id.study_uid, s.uid.clone()]
        })
        .collect();
    let files = files_under(&out);
    assert!(files.len() > 50, "{} files", files.len());
    for f in &files {
        let mut bytes = std::fs::read(f).unwrap();
        if f.to_string_lossy().ends_with(".gz") {
            // A NIfTI file: its header (description included) is inside the gzip stream.
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
                .unwrap();
            bytes = plain;
        }
        for canary in [
            "Synthetic^Phantom",
            "SYN-11",
            "SYN-12",
            "Tanaka",
            "Yamada",
            "20260101",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(uids.iter().cloned())
        {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{} holds {canary}",
                f.display()
            );
        }
    }

    // The access audit: one Exported event per study, none for the study left out.
    let audit: Vec<_> = ledger
        .access_events_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == AccessAction::Exported)
        .collect();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(
        audit
            .iter()
            .all(|r| r.event.object == "training data, de-identified"
                && uids.contains(&r.event.study_uid))
    );

    // nibabel and pydicom, on their own: shapes, affines, voxels, and the final labels where
    // the de-identified SEG says.
    let run = Command::new(dokuei_review::dicom::testdata::reference_python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/training_check.py"),
        )
        .arg(&out)
        .output()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    assert!(
        run.status.success(),
        "the checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let check: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // Final labels: patient 1's confirmed sphere and the 6 × 5 region added; patient 2's
    // sphere without its first slice. Original: all three AI spheres.
    let plane = usize::from(ROWS) * usize::from(COLUMNS);
    let first_slice = b.masks[0][0].slice as usize;
    let edited_voxels = b.voxels[0]
        .iter()
        .filter(|&&v| v / plane != first_slice)
        .count();
    let final_voxels = a.voxels[0].len() + 30 + edited_voxels;
    assert_eq!(check["final_label_voxels"], final_voxels);
    assert_eq!(
        check["original_label_voxels"],
        a.voxels[0].len() + a.voxels[1].len() + b.voxels[0].len()
    );
    assert_eq!(check["voxels_checked"], 2 * 24 * plane);

    // A second export into the same folder is refused; one that filters on another model
    // finds nothing.
    let again = export_training(
        &ledger,
        &index,
        &out,
        &settings,
        &[models_dir()],
        Some(reader),
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap_err();
    assert!(again.message.contains("not empty"), "{}", again.message);
    let other = TrainingSettings {
        filter: TrainingFilter {
            model_version: Some("2.0.0".into()),
            ..TrainingFilter::default()
        },
        ..TrainingSettings::default()
    };
    let none = export_training(
        &ledger,
        &index,
        &dir.path().join("none"),
        &other,
        &[models_dir()],
        Some(reader),
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap();
    assert_eq!(none.cases, 0);

    // An identified export keeps the originals and the reader's text, and says so in the audit.
    let identified = TrainingSettings {
        identified: true,
        ..TrainingSettings::default()
    };
    let out2 = dir.path().join("identified");
    let e2 = export_training(
        &ledger,
        &index,
        &out2,
        &identified,
        &[models_dir()],
        Some(reader),
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap();
    assert_eq!((e2.cases, e2.identified), (2, true));
    let text = std::fs::read_to_string(out2.join("findings.jsonl")).unwrap();
    assert!(text.contains("Tanaka"), "{text}");
    let any_dcm = files_under(&out2.join("dicom"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "dcm"))
        .unwrap();
    let bytes = std::fs::read(any_dcm).unwrap();
    assert!(bytes.windows(17).any(|w| w == b"Synthetic^Phantom"));
    let last = ledger.access_events_after(0, 1000).unwrap();
    assert!(
        last.iter()
            .filter(|r| r.event.object.contains("IDENTIFIED"))
            .count()
            == 2
    );
}

/// A study with two analysed series (where an added finding cannot be placed: the ledger does
/// not record its series) and a patient whose images the de-identifier refuses (one slice says
/// Burned In Annotation YES): both are left out with a note, and provenance.json names the
/// case and a fixed reason, never a file.
#[test]
fn added_findings_of_a_two_series_study_and_a_refused_case_are_left_out_with_notes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        dokuei_review::ledger::open_ledger(Some(&dir.path().join("ledger.sqlite"))).unwrap();
    let reader = add_reader(&ledger, "Yamada^Hanako", Role::Radiologist, PASSPHRASE)
        .unwrap()
        .id;
    let base = SyntheticCt {
        slices: 16,
        rows: ROWS,
        columns: COLUMNS,
        seed: 31,
        ..SyntheticCt::default()
    };
    let first = analysed(&ledger, dir.path(), base.clone(), &[[0.0, 0.0, 15.0]]);
    let second = analysed(
        &ledger,
        dir.path(),
        SyntheticCt {
            series_number: 2,
            ..base.clone()
        },
        &[[5.0, 5.0, 20.0]],
    );
    decide_on(
        &ledger,
        &first,
        reader,
        &input(Some(first.ids[0]), Action::Confirm),
    );
    decide_on(
        &ledger,
        &second,
        reader,
        &input(Some(second.ids[0]), Action::Confirm),
    );
    let mut add = input(None, Action::Add);
    add.label = "nodule".into();
    add.mask = vec![MaskSlice {
        slice: 2,
        runs: vec![[10 * u32::from(COLUMNS) + 10, 4]],
    }];
    decide_on(&ledger, &first, reader, &add);
    sign(&ledger, &first, reader);

    let refused = analysed(
        &ledger,
        dir.path(),
        SyntheticCt {
            seed: 32,
            ..base.clone()
        },
        &[[0.0, 0.0, 15.0]],
    );
    decide_on(
        &ledger,
        &refused,
        reader,
        &input(Some(refused.ids[0]), Action::Confirm),
    );
    sign(&ledger, &refused, reader);
    let one = files_under(&dir.path().join("ct32-1"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "dcm"))
        .unwrap();
    let mut obj = dicom_object::open_file(&one).unwrap();
    obj.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::BURNED_IN_ANNOTATION,
        dicom_core::VR::CS,
        dicom_core::PrimitiveValue::from("YES"),
    ));
    obj.write_to_file(&one).unwrap();

    let paths: Vec<PathBuf> = ["ct31-1", "ct31-2", "ct32-1"]
        .iter()
        .map(|f| dir.path().join(f))
        .collect();
    let index = open_study(&paths).unwrap();
    let out = dir.path().join("training");
    let export = export_training(
        &ledger,
        &index,
        &out,
        &TrainingSettings::default(),
        &[models_dir()],
        Some(reader),
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap();
    println!("{export:#?}");
    // Two cases of the two-series study; the refused patient's case is left out.
    assert_eq!((export.cases, export.added_findings), (2, 0), "{export:?}");
    assert!(
        export
            .notes
            .iter()
            .any(|n| n.contains("findings readers added are left out")),
        "{:?}",
        export.notes
    );
    assert!(
        export
            .notes
            .iter()
            .any(|n| n.contains("is left out: a file of it was not de-identified")),
        "{:?}",
        export.notes
    );
    let provenance = std::fs::read_to_string(out.join("provenance.json")).unwrap();
    assert!(
        provenance.contains("left out: a file of it was refused or failed in de-identification"),
        "{provenance}"
    );
    let file_name = one.file_name().unwrap().to_string_lossy().into_owned();
    assert!(!provenance.contains(&file_name), "{provenance}");
    assert!(!provenance.contains("ct32"), "{provenance}");
    // The nibabel and pydicom check holds for the cases written.
    let run = Command::new(dokuei_review::dicom::testdata::reference_python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/training_check.py"),
        )
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Defacing in the training export: a head CT case leaves defaced in its DICOM copies (DERIVED,
/// marked 113102), in the SEG (whose references resolve among those copies) and in its NIfTI
/// image (the face's voxels air, every other voxel as it was), and provenance.json says so.
#[test]
fn defacing_reaches_the_dicom_copies_the_seg_and_the_nifti_of_a_head_case() {
    use dicom_dictionary_std::tags;
    use dokuei_review::dicom::synth::{HeadRegion, Phantom};

    let dir = tempfile::tempdir().unwrap();
    let ledger =
        dokuei_review::ledger::open_ledger(Some(&dir.path().join("ledger.sqlite"))).unwrap();
    let reader = add_reader(&ledger, "Yamada^Hanako", Role::Radiologist, PASSPHRASE)
        .unwrap()
        .id;
    let head = SyntheticCt {
        phantom: Phantom::Head,
        rows: ROWS,
        columns: COLUMNS,
        pixel_spacing: [4.0, 4.0],
        slices: 48,
        slice_spacing: 5.0,
        origin: [-150.0, -122.0, -120.0],
        seed: 41,
        ..SyntheticCt::default()
    };
    let c = head.volume_center();
    let a = analysed(
        &ledger,
        dir.path(),
        head.clone(),
        &[[c[0] + 20.0, c[1] + 10.0, c[2] + 30.0]],
    );
    decide_on(&ledger, &a, reader, &input(Some(a.ids[0]), Action::Confirm));
    sign(&ledger, &a, reader);

    let index = open_study(&[dir.path().join("ct41-1")]).unwrap();
    let out = dir.path().join("training");
    let settings = TrainingSettings {
        deid: dokuei_review::deid::DeidSettings {
            clean_recognizable_visual_features: true,
            ..dokuei_review::deid::DeidSettings::default()
        },
        ..TrainingSettings::default()
    };
    let export = export_training(
        &ledger,
        &index,
        &out,
        &settings,
        &[models_dir()],
        Some(reader),
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap();
    println!("{export:#?}");
    assert_eq!(export.cases, 1, "{export:?}");
    assert!(
        export.notes.iter().any(|n| n.contains("defaced (brain")),
        "{:?}",
        export.notes
    );

    // DICOM: every image DERIVED and marked; the SEG's references resolve among them.
    let mut images = std::collections::BTreeSet::new();
    let mut referenced = Vec::new();
    for f in files_under(&out.join("dicom")) {
        if f.extension().is_none_or(|e| e != "dcm") {
            continue;
        }
        let obj = dicom_object::open_file(&f).unwrap();
        let text = |o: &dicom_object::InMemDicomObject, tag| {
            o.get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                .unwrap_or_default()
        };
        let codes: Vec<String> = obj
            .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
            .and_then(|e| e.items())
            .unwrap()
            .iter()
            .map(|i| text(i, tags::CODE_VALUE))
            .collect();
        assert!(codes.contains(&"113102".to_owned()), "{codes:?}");
        if text(&obj, tags::MODALITY) == "SEG" {
            for item in obj
                .get(tags::REFERENCED_SERIES_SEQUENCE)
                .and_then(|e| e.items())
                .unwrap()
            {
                for inst in item
                    .get(tags::REFERENCED_INSTANCE_SEQUENCE)
                    .and_then(|e| e.items())
                    .unwrap()
                {
                    referenced.push(text(inst, tags::REFERENCED_SOP_INSTANCE_UID));
                }
            }
        } else {
            assert!(text(&obj, tags::IMAGE_TYPE).starts_with("DERIVED"));
            images.insert(text(&obj, tags::SOP_INSTANCE_UID));
        }
    }
    assert_eq!(images.len(), 48);
    assert!(!referenced.is_empty());
    for r in &referenced {
        assert!(
            images.contains(r),
            "the SEG references {r}, which is not exported"
        );
    }

    // NIfTI: the face is air, everything else as the original volume has it.
    let nifti_path = files_under(&out.join("nnUNet"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("_0000.nii.gz"))
        .unwrap();
    use nifti::{IntoNdArray, NiftiObject};
    let volume = nifti::ReaderOptions::new()
        .read_file(&nifti_path)
        .unwrap()
        .into_volume();
    let image = volume.into_ndarray::<f32>().unwrap();
    let series = a.study.series(0).unwrap();
    let stack = a.study.stack(0, 0).unwrap();
    let original = dokuei_review::dicom::volume::load_volume(
        series,
        stack,
        &|_: usize, _: usize| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let grid = dokuei_review::deface::stack_grid(stack).unwrap();
    let (rows, columns) = (usize::from(ROWS), usize::from(COLUMNS));
    let (mut changed, mut nose, mut nose_gone, mut brain) = (0, 0, 0, 0);
    for k in 0..48 {
        let before = original.slice_values(k).unwrap();
        for r in 0..rows {
            for col in 0..columns {
                let b = before[r * columns + col];
                let after = image[[col, r, k]];
                let region = SyntheticCt::head_region(grid.position(k, r, col), c);
                if after != b {
                    assert_eq!(after, -1000.0, "voxel ({k}, {r}, {col}) changed to {after}");
                    assert_ne!(region, HeadRegion::Intracranial);
                    changed += 1;
                }
                match region {
                    HeadRegion::Nose => {
                        nose += 1;
                        nose_gone += usize::from(after == -1000.0);
                    }
                    HeadRegion::Intracranial => brain += 1,
                    _ => {}
                }
            }
        }
    }
    assert!(changed > 1000 && brain > 10_000, "{changed} {brain}");
    assert_eq!(nose_gone, nose, "the nose is gone from the NIfTI");
    let provenance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("provenance.json")).unwrap()).unwrap();
    assert!(
        provenance["defacing"]
            .as_str()
            .unwrap()
            .starts_with("Clean Recognizable Visual Features")
    );
}
