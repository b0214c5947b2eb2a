//! Export of DICOM results from a real ledger: an analysis of a synthetic CT (image size not a
//! multiple of 8 pixels) with four findings, one decision of each kind (confirm, reject, edit,
//! add), sign-off, export; the folder passes dciodvfy, dsrdump, PixelMed, highdicom and dcmqi
//! (`scripts/reference/results_check.py`), Dokuei reads it back, and the ledger records every
//! object written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The test readers' passphrase.
const PASSPHRASE: &str = "correct horse battery";

use dokuei_review::dicom::synth::{Sphere, SyntheticCt};
use dokuei_review::infer::findings::{Finding, ModelRef, SliceGeometry, describe};
use dokuei_review::ledger::{Action, Ledger, RejectReason, Role};
use dokuei_review::reading::{
    DecisionContext, DecisionInput, MaskSlice, StackIdentity, StudyIdentity, add_reader, decide,
    record_analysis, review, sign_off, slice_geometry, study_identity,
};
use dokuei_review::results::export_results;
use dokuei_review::viewer::OpenStudy;
use serde_json::json;

const ROWS: u16 = 61;
const COLUMNS: u16 = 75;

/// A synthetic CT written to `dir/ct` and opened as the viewer opens it, with the identity of
/// its study (series 0).
struct Written {
    source_dir: PathBuf,
    files: Vec<PathBuf>,
    study: OpenStudy,
    identity: StudyIdentity,
}

fn write_and_open(ct: &SyntheticCt, dir: &Path) -> Written {
    let source_dir = dir.join("ct");
    let files = ct.write(&source_dir).unwrap();
    let study = OpenStudy::open(std::slice::from_ref(&source_dir)).unwrap();
    let identity = study_identity(&study.index, &study.series(0).unwrap().uid).unwrap();
    Written {
        source_dir,
        files,
        study,
        identity,
    }
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// The demo model's identity, so the export finds its manifest (name, codes, colours).
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

/// The model's finding (score 0.9) on the first sphere planted in `ct`, on `stack`.
fn ball_finding(
    ct: &SyntheticCt,
    series: &dokuei_review::dicom::Series,
    stack: &dokuei_review::dicom::stack::Stack,
) -> Finding {
    let geometry: Vec<SliceGeometry> = (0..stack.frames.len())
        .map(|i| slice_geometry(series, stack, i))
        .collect();
    Finding {
        label: "nodule".into(),
        score: 0.9,
        geometry: describe(
            &ball(ct, &ct.spheres[0]),
            ROWS.into(),
            COLUMNS.into(),
            &geometry,
            2.5,
        ),
        model: model(),
        series_uid: series.uid.clone(),
        instance_uids: Vec::new(),
        image_score: None,
    }
}

fn ball(ct: &SyntheticCt, s: &Sphere) -> Vec<usize> {
    let plane = usize::from(ROWS) * usize::from(COLUMNS);
    let mut voxels = Vec::new();
    for k in 0..ct.slices {
        let p0 = ct.position(k);
        for r in 0..usize::from(ROWS) {
            for c in 0..usize::from(COLUMNS) {
                let p = [
                    p0[0] + c as f64 * ct.pixel_spacing[1],
                    p0[1] + r as f64 * ct.pixel_spacing[0],
                    p0[2],
                ];
                let d2: f64 = (0..3).map(|i| (p[i] - s.center[i]).powi(2)).sum();
                if d2 <= s.radius * s.radius {
                    voxels.push(k * plane + r * usize::from(COLUMNS) + c);
                }
            }
        }
    }
    voxels
}

#[test]
fn a_signed_off_study_exports_seg_and_sr_that_every_validator_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let spheres = [
        ([-8.0, -6.0, 15.0], 5.0),
        ([10.0, 5.0, 30.0], 4.0),
        ([0.0, 10.0, 45.0], 3.5),
        ([-12.0, 12.0, 25.0], 3.0),
    ];
    let ct = SyntheticCt {
        slices: 24,
        rows: ROWS,
        columns: COLUMNS,
        spheres: spheres
            .iter()
            .map(|&(center, radius)| Sphere {
                center,
                radius,
                hu: 40.0,
            })
            .collect(),
        ..SyntheticCt::default()
    };
    let Written {
        source_dir,
        study,
        identity,
        ..
    } = write_and_open(&ct, dir.path());
    let (series, stack) = (study.series(0).unwrap(), study.stack(0, 0).unwrap());
    // Anchored as the application opens it: the sign-off makes a signed checkpoint.
    let ledger =
        dokuei_review::ledger::open_ledger(Some(&dir.path().join("ledger.sqlite"))).unwrap();
    let geometry: Vec<SliceGeometry> = (0..stack.frames.len())
        .map(|i| slice_geometry(series, stack, i))
        .collect();
    let findings: Vec<Finding> = ct
        .spheres
        .iter()
        .enumerate()
        .map(|(i, s)| Finding {
            label: "nodule".into(),
            score: 0.95 - i as f64 * 0.1,
            geometry: describe(&ball(&ct, s), ROWS.into(), COLUMNS.into(), &geometry, 2.5),
            model: model(),
            series_uid: series.uid.clone(),
            instance_uids: Vec::new(),
            image_score: None,
        })
        .collect();
    let r = record_analysis(
        &ledger,
        &identity,
        &series.uid,
        &StackIdentity::of(series, stack, 0),
        &model(),
        &findings,
        "2026-12-01T08:00:00.000Z",
        "2026-12-01T08:00:02.000Z",
    )
    .unwrap();
    let reader = add_reader(&ledger, "Yamada^Hanako", Role::Radiologist, PASSPHRASE).unwrap();
    let ctx = DecisionContext {
        study: &identity,
        series,
        stack,
    };
    let ids: Vec<i64> = r.findings.iter().map(|f| f.finding_id.unwrap()).collect();
    let base = |finding_id, action| DecisionInput {
        finding_id,
        replaces_added: None,
        action,
        label: String::new(),
        reject_reason: None,
        reason_text: String::new(),
        mask: Vec::new(),
    };

    // Before sign-off: the AI objects only, and a note that the assessment comes later.
    let early = export_results(
        &ledger,
        &study.index,
        &identity.study_uid,
        &[models_dir()],
        &Default::default(),
        &dir.path().join("early"),
    )
    .unwrap();
    assert_eq!(early.objects.len(), 2, "{early:?}");
    assert!(
        early.notes.iter().any(|n| n.contains("not signed off")),
        "{:?}",
        early.notes
    );

    decide(
        &ledger,
        &ctx,
        reader.id,
        &base(Some(ids[0]), Action::Confirm),
    )
    .unwrap();
    let mut reject = base(Some(ids[1]), Action::Reject);
    reject.reject_reason = Some(RejectReason::AnatomicalStructure);
    reject.reason_text = "vessel".into();
    decide(&ledger, &ctx, reader.id, &reject).unwrap();
    // Edit: keep the finding's mask but drop its first slice.
    let mut edit = base(Some(ids[2]), Action::Edit);
    edit.mask = r.findings[2].geometry.mask[1..].to_vec();
    decide(&ledger, &ctx, reader.id, &edit).unwrap();
    decide(
        &ledger,
        &ctx,
        reader.id,
        &base(Some(ids[3]), Action::Confirm),
    )
    .unwrap();
    // Add: a 6 × 5 rectangle on slice 4 (its rows do not start on a byte boundary).
    let mut add = base(None, Action::Add);
    add.label = "nodule".into();
    add.mask = vec![MaskSlice {
        slice: 4,
        runs: (20..25)
            .map(|row| [row * u32::from(COLUMNS) + 33, 6])
            .collect(),
    }];
    decide(&ledger, &ctx, reader.id, &add).unwrap();
    sign_off(
        &ledger,
        &identity.study_uid,
        reader.id,
        "two nodules",
        PASSPHRASE,
    )
    .unwrap();

    let out = dir.path().join("export");
    let export = export_results(
        &ledger,
        &study.index,
        &identity.study_uid,
        &[models_dir()],
        &Default::default(),
        &out,
    )
    .unwrap();
    let kinds: Vec<&str> = export.objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, ["ai_seg", "ai_sr", "reader_seg", "assessment_sr"]);
    assert!(export.notes.is_empty(), "{:?}", export.notes);

    // The ledger recorded each object: the two exports' AI objects have the same UIDs (an
    // object exported twice keeps its identity), the later ones point at the sign-off.
    let rows = ledger
        .study_rows(ledger.study_id(&identity.study_uid).unwrap().unwrap())
        .unwrap();
    assert_eq!(rows.exports.len(), 6);
    assert_eq!(
        rows.exports[0].sop_instance_uid,
        rows.exports[2].sop_instance_uid
    );
    assert!(rows.exports[4].sign_off_id.is_some() && rows.exports[4].analysis_id.is_none());
    assert!(ledger.verify().unwrap().is_intact());

    // The assessment SR carries the checkpoint made at sign-off: the PACS that stores it
    // witnesses the ledger.
    let sr_path = &export.objects[3].file;
    let witness = dokuei_review::ledger::read_witness(Path::new(sr_path)).unwrap();
    let at_sign_off = ledger
        .checkpoint_of_sign_off(rows.sign_offs[0].id)
        .unwrap()
        .unwrap();
    assert_eq!(witness.checkpoints, [at_sign_off], "{witness:?}");
    let sr = dicom_object::open_file(sr_path).unwrap();
    assert_eq!(
        sr.element(dokuei_review::dicom_results::sr::LEDGER_CHECKPOINT)
            .unwrap()
            .to_str()
            .unwrap()
            .trim(),
        witness.checkpoints[0].line()
    );
    let report = ledger.verify_with(&[witness], None).unwrap();
    assert!(
        report.is_intact() && report.external_checkpoints() == 1,
        "{}",
        report.summary()
    );

    // What the checker expects, from the review the ledger gives.
    let rv = review(&ledger, &identity.study_uid).unwrap();
    let file = |kind: &str| {
        export
            .objects
            .iter()
            .find(|o| o.kind.as_str() == kind)
            .unwrap()
    };
    let (ai_seg, ai_sr, reader_seg, assessment) = (
        file("ai_seg"),
        file("ai_sr"),
        file("reader_seg"),
        file("assessment_sr"),
    );
    let uid_of = |i: usize| {
        series.instances[stack.frames[i].instance]
            .sop_instance_uid
            .clone()
    };
    let mask_json = |mask: &[MaskSlice]| {
        mask.iter()
            .map(|m| json!({"sop_instance_uid": uid_of(m.slice as usize), "runs": m.runs}))
            .collect::<Vec<_>>()
    };
    let seg_read = dokuei_review::dicom_results::read::read_seg(Path::new(&ai_seg.file)).unwrap();
    let ai_tracking: Vec<String> = seg_read
        .segments
        .iter()
        .map(|s| s.tracking_uid.clone())
        .collect();
    let ai_segments: Vec<_> = rv
        .findings
        .iter()
        .filter(|f| f.finding_id.is_some())
        .zip(&seg_read.segments)
        .map(|(f, s)| {
            json!({"number": s.number, "label": "nodule", "tracking_uid": s.tracking_uid,
                   "tracking_id": s.tracking_id, "algorithm_type": "AUTOMATIC",
                   "algorithm_name": "CT lung nodule segmentation (demonstration)",
                   "algorithm_version": "1.0.0", "mask": mask_json(&f.geometry.mask)})
        })
        .collect();
    let reader_read =
        dokuei_review::dicom_results::read::read_seg(Path::new(&reader_seg.file)).unwrap();
    let edited = rv
        .findings
        .iter()
        .find(|f| f.finding_id == Some(ids[2]))
        .unwrap();
    let added = rv.findings.iter().find(|f| f.finding_id.is_none()).unwrap();
    let reader_segments = vec![
        json!({"number": 1, "label": "nodule", "tracking_uid": reader_read.segments[0].tracking_uid,
               "algorithm_type": "SEMIAUTOMATIC", "algorithm_name": "CT lung nodule segmentation (demonstration)",
               "algorithm_version": "1.0.0", "mask": mask_json(&edited.effective_geometry().mask)}),
        json!({"number": 2, "label": "nodule", "tracking_uid": reader_read.segments[1].tracking_uid,
               "algorithm_type": "MANUAL", "algorithm_name": null, "algorithm_version": null,
               "mask": mask_json(&added.effective_geometry().mask)}),
    ];
    assert_eq!(
        reader_read.segments[0].tracking_uid,
        seg_read
            .segments
            .iter()
            .find(|s| s.number == 3)
            .map(|s| s.tracking_uid.clone())
            .unwrap_or_default(),
        "the edited finding keeps its Tracking UID"
    );
    let mut assessed_uids = ai_tracking.clone();
    assessed_uids.push(reader_read.segments[1].tracking_uid.clone());
    let expected = json!({
        "source_dir": source_dir,
        "seg": [
            {"file": ai_seg.file, "algorithm_type": "AUTOMATIC", "device_uid": seg_read.segments[0].producer.device_uid, "segments": ai_segments},
            {"file": reader_seg.file, "algorithm_type": "SEMIAUTOMATIC", "device_uid": seg_read.segments[0].producer.device_uid, "segments": reader_segments},
        ],
        "sr": [
            {"file": ai_sr.file, "verified": false, "tracking_uids": ai_tracking,
             "referenced_segments": seg_read.segments.iter().map(|s| json!({"tracking_uid": s.tracking_uid, "seg_sop_instance_uid": seg_read.sop_instance_uid, "segment_number": s.number})).collect::<Vec<_>>()},
            {"file": assessment.file, "verified": true, "tracking_uids": assessed_uids,
             "referenced_segments": [
                 {"tracking_uid": reader_read.segments[0].tracking_uid, "seg_sop_instance_uid": reader_read.sop_instance_uid, "segment_number": 1},
                 {"tracking_uid": reader_read.segments[1].tracking_uid, "seg_sop_instance_uid": reader_read.sop_instance_uid, "segment_number": 2},
             ]},
        ],
    });
    let exp_file = dir.path().join("expected.json");
    std::fs::write(&exp_file, serde_json::to_vec_pretty(&expected).unwrap()).unwrap();
    let run = Command::new(dokuei_review::dicom::testdata::reference_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/results_check.py"))
        .arg(&exp_file)
        .output()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    println!("{}", String::from_utf8_lossy(&run.stdout));
    assert!(
        run.status.success(),
        "the checks failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn a_seg_made_by_dcmqi_and_an_sr_made_by_highdicom_open_as_findings_with_their_measurements() {
    use dokuei_review::results::import_results;
    let dir = tempfile::tempdir().unwrap();
    let source_dir = dir.path().join("ct");
    SyntheticCt {
        slices: 30,
        rows: 64,
        columns: 72,
        ..SyntheticCt::default()
    }
    .write(&source_dir)
    .unwrap();
    let imports = dir.path().join("imports");
    let run = Command::new(dokuei_review::dicom::testdata::reference_python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/reference/results_reference.py"),
        )
        .arg("make-imports")
        .arg(&source_dir)
        .arg(&imports)
        .output()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(
        run.status.success(),
        "dcmqi/highdicom: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(imports.join("expected.json")).unwrap()).unwrap();

    // Opened together with their source series, as a reader would open the folder.
    let paths = [source_dir.clone(), imports.clone()];
    let study = OpenStudy::open(&paths).unwrap();
    let imported = import_results(&study.index);
    assert!(imported.problems.is_empty(), "{:?}", imported.problems);
    let series = study.index.series().find(|s| s.modality == "CT").unwrap();
    let stack = &dokuei_review::dicom::stack::stacks(series)[0];
    let uid_of = |i: u32| {
        series.instances[stack.frames[i as usize].instance]
            .sop_instance_uid
            .clone()
    };
    let segments = expected["segments"].as_array().unwrap();
    assert_eq!(imported.findings.len(), segments.len());
    for want in segments {
        let f = imported
            .findings
            .iter()
            .find(|f| f.segment_number as u64 == want["number"].as_u64().unwrap())
            .unwrap();
        assert_eq!(f.label, want["label"].as_str().unwrap());
        assert_eq!(f.algorithm_name, want["algorithm_name"].as_str().unwrap());
        assert_eq!(f.algorithm_type, "AUTOMATIC");
        let rgb: Vec<u8> = want["rgb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(f.rgb.to_vec(), rgb, "colour from the SEG's CIELab");
        // The mask equals the label map dcmqi was given, voxel for voxel.
        let got: Vec<serde_json::Value> = f
            .geometry
            .mask
            .iter()
            .map(|m| json!({"sop_instance_uid": uid_of(m.slice), "runs": m.runs}))
            .collect();
        let mut want_mask = want["mask"].as_array().unwrap().clone();
        let mut got_sorted = got.clone();
        let key = |v: &serde_json::Value| v["sop_instance_uid"].as_str().unwrap().to_owned();
        want_mask.sort_by_key(key);
        got_sorted.sort_by_key(key);
        assert_eq!(got_sorted, want_mask, "segment {}", f.segment_number);
        // The SR's measurements, found by its Referenced Segment.
        let value = |name: &str| f.measurements.iter().find(|m| m.0 == name).map(|m| m.1);
        let volume = value("Volume").expect("volume from the SR");
        assert!(
            (volume - want["volume_mm3"].as_f64().unwrap()).abs() < 1e-3,
            "{volume}"
        );
        assert_eq!(value("Diameter"), want["diameter_mm"].as_f64());
    }

    // Recorded for review: one imported analysis naming the producer in place of a model
    // SHA-256, its findings with their colours; recording again adds nothing.
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    let identity = study_identity(&study.index, &series.uid).unwrap();
    let rv = dokuei_review::reading::record_imported(&ledger, &identity, &imported).unwrap();
    assert_eq!(rv.analyses.len(), 1);
    let from = rv.analyses[0].imported_from.clone().unwrap();
    assert_eq!(from.algorithm_name, "ThirdPartyAI");
    assert_eq!(rv.analyses[0].model_sha256, "");
    assert_eq!(rv.analyses[0].execution_provider, "imported");
    assert_eq!(rv.findings.len(), segments.len());
    assert!(
        rv.findings
            .iter()
            .all(|f| f.color.is_some() && f.decision.is_none())
    );
    assert_eq!(
        rv.undecided as usize,
        segments.len(),
        "imported findings need decisions too"
    );
    let again = dokuei_review::reading::record_imported(&ledger, &identity, &imported).unwrap();
    assert_eq!(again.findings.len(), segments.len());
    assert!(ledger.verify().unwrap().is_intact());
    // Exporting the study does not write the other tool's results again as Dokuei's.
    let export = export_results(
        &ledger,
        &study.index,
        &identity.study_uid,
        &[models_dir()],
        &Default::default(),
        &dir.path().join("out"),
    )
    .unwrap();
    assert!(export.objects.is_empty(), "{:?}", export.objects);
    assert!(
        export.notes.iter().any(|n| n.contains("imported results")),
        "{:?}",
        export.notes
    );
}

#[test]
fn results_are_written_only_on_the_images_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let ct = SyntheticCt {
        slices: 8,
        rows: ROWS,
        columns: COLUMNS,
        spheres: vec![Sphere {
            center: [0.0, 0.0, 8.0],
            radius: 3.0,
            hu: 40.0,
        }],
        ..SyntheticCt::default()
    };
    let Written {
        source_dir,
        files,
        study,
        identity,
    } = write_and_open(&ct, dir.path());
    let (series, stack) = (study.series(0).unwrap(), study.stack(0, 0).unwrap());
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    let finding = ball_finding(&ct, series, stack);
    record_analysis(
        &ledger,
        &identity,
        &series.uid,
        &StackIdentity::of(series, stack, 0),
        &model(),
        &[finding],
        "2026-12-01T08:00:00.000Z",
        "2026-12-01T08:00:02.000Z",
    )
    .unwrap();
    // The same study opened again without its last slice: the stack analysed is not there.
    std::fs::remove_file(files.last().unwrap()).unwrap();
    let reopened = OpenStudy::open(std::slice::from_ref(&source_dir)).unwrap();
    let e = export_results(
        &ledger,
        &reopened.index,
        &identity.study_uid,
        &[models_dir()],
        &Default::default(),
        &dir.path().join("out"),
    )
    .unwrap_err();
    assert_eq!(e.code, dokuei_review::ErrorCode::NotFound);
    assert!(
        e.message.contains("no longer hold unchanged"),
        "{}",
        e.message
    );
    // With the files as analysed (written again), the export goes through.
    ct.write(&source_dir).unwrap();
    let restored = OpenStudy::open(std::slice::from_ref(&source_dir)).unwrap();
    let ok = export_results(
        &ledger,
        &restored.index,
        &identity.study_uid,
        &[models_dir()],
        &Default::default(),
        &dir.path().join("out2"),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

/// Key images: marked and unmarked by a reader (each a ledger row), refused for QA, for a
/// missing image, for an overlong note and after sign-off; written with the results as a Key
/// Object Selection document that pydicom and highdicom resolve to the images marked.
#[test]
fn key_images_are_recorded_and_written_as_a_kos_that_pydicom_and_highdicom_resolve() {
    use dokuei_review::reading::{MAX_KEY_IMAGE_NOTE, key_images, mark_key_image};
    let dir = tempfile::tempdir().unwrap();
    let ct = SyntheticCt {
        slices: 10,
        rows: ROWS,
        columns: COLUMNS,
        spheres: vec![Sphere {
            center: [0.0, 0.0, 10.0],
            radius: 4.0,
            hu: 40.0,
        }],
        ..SyntheticCt::default()
    };
    let Written {
        study, identity, ..
    } = write_and_open(&ct, dir.path());
    let (series, stack) = (study.series(0).unwrap(), study.stack(0, 0).unwrap());
    let ledger =
        dokuei_review::ledger::open_ledger(Some(&dir.path().join("ledger.sqlite"))).unwrap();
    let finding = ball_finding(&ct, series, stack);
    let analysed = record_analysis(
        &ledger,
        &identity,
        &series.uid,
        &StackIdentity::of(series, stack, 0),
        &model(),
        &[finding],
        "2026-12-03T08:00:00.000Z",
        "2026-12-03T08:00:02.000Z",
    )
    .unwrap();
    let reader = add_reader(&ledger, "Yamada^Hanako", Role::Radiologist, PASSPHRASE).unwrap();
    let qa = add_reader(&ledger, "Suzuki^QA", Role::Qa, PASSPHRASE).unwrap();
    let ctx = DecisionContext {
        study: &identity,
        series,
        stack,
    };
    let uid = |slice: usize| {
        series.instances[stack.frames[slice].instance]
            .sop_instance_uid
            .clone()
    };

    mark_key_image(&ledger, &ctx, reader.id, 2, "first look", true).unwrap();
    mark_key_image(&ledger, &ctx, reader.id, 5, "  nodule, 8 mm  ", true).unwrap();
    mark_key_image(&ledger, &ctx, reader.id, 2, "", false).unwrap();
    let list = mark_key_image(&ledger, &ctx, reader.id, 7, "compare with prior", true).unwrap();
    let shown: Vec<(Option<u32>, &str, &str)> = list
        .iter()
        .map(|k| (k.slice, k.note.as_str(), k.reader.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (Some(5), "nodule, 8 mm", "Yamada^Hanako"),
            (Some(7), "compare with prior", "Yamada^Hanako")
        ]
    );
    assert_eq!(key_images(&ledger, &ctx).unwrap(), list);
    for (who, slice, note, why) in [
        (qa.id, 3, "", "QA role"),
        (reader.id, 99, "", "does not exist"),
        (
            reader.id,
            3,
            &"x".repeat(MAX_KEY_IMAGE_NOTE + 1)[..],
            "at most",
        ),
    ] {
        let e = mark_key_image(&ledger, &ctx, who, slice, note, true).unwrap_err();
        assert!(e.message.contains(why), "{}", e.message);
    }

    let e = mark_key_image(&ledger, &ctx, reader.id, 3, "", false).unwrap_err();
    assert!(e.message.contains("not a key image"), "{}", e.message);

    let out = dir.path().join("export");
    let export = export_results(
        &ledger,
        &study.index,
        &identity.study_uid,
        &[models_dir()],
        &Default::default(),
        &out,
    )
    .unwrap();
    let kos = export
        .objects
        .iter()
        .find(|o| o.kind.as_str() == "key_objects")
        .expect("a KOS beside the results");
    assert!(kos.file.ends_with("KEY_IMAGES.dcm"));
    let run = Command::new(dokuei_review::dicom::testdata::reference_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/kos_check.py"))
        .arg(&kos.file)
        .output()
        .expect("reference python (run `bash scripts/setup.sh --test`)");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(r["title"], json!(["113000", "DCM"]));
    assert_eq!(r["observer"], "Yamada^Hanako");
    assert_eq!(r["images"], json!([[uid(5), null], [uid(7), null]]));
    assert_eq!(r["highdicom_images"], json!([uid(5), uid(7)]));
    let description = r["description"].as_str().unwrap();
    assert!(
        description.contains("nodule, 8 mm") && description.contains("compare with prior"),
        "{description}"
    );
    assert!(!description.contains("first look"), "{description}");

    let confirm = DecisionInput {
        finding_id: analysed.findings[0].finding_id,
        replaces_added: None,
        action: Action::Confirm,
        label: String::new(),
        reject_reason: None,
        reason_text: String::new(),
        mask: Vec::new(),
    };
    decide(&ledger, &ctx, reader.id, &confirm).unwrap();
    sign_off(
        &ledger,
        &identity.study_uid,
        reader.id,
        "one nodule",
        PASSPHRASE,
    )
    .unwrap();
    let e = mark_key_image(&ledger, &ctx, reader.id, 3, "", true).unwrap_err();
    assert!(e.message.contains("signed off"), "{}", e.message);
    assert!(ledger.verify().unwrap().is_intact());
}
