//! Objects Dokuei writes, checked by the independent tools (dciodvfy, dsrdump, PixelMed's
//! DicomSRValidator, highdicom, dcmqi) through `scripts/reference/results_check.py`: an AI SEG
//! and SR over a synthetic CT whose image size is not a multiple of 8 pixels, then a reader's SEG
//! (one edited, one added finding) and the physician's assessment SR.

use std::path::{Path, PathBuf};
use std::process::Command;

use dokuei_dicom::index::index;
use dokuei_dicom::stack::stacks;
use dokuei_dicom::synth::{Sphere, SyntheticCt};
use dokuei_dicom::testdata;
use dokuei_results::codes::{Code, default_category};
use dokuei_results::seg::write_seg;
use dokuei_results::sr::{
    Assessment, SegmentRef, Verdict, Verifier, write_assessment, write_measurement_report,
};
use dokuei_results::{
    Algorithm, FindingCoding, MaskSlice, ObjectIdentity, Origin, ResultFinding, SourceSeries,
    StudyContext, Writer,
};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct Scenario {
    pub dir: PathBuf,
    pub study: StudyContext,
    pub source: SourceSeries,
    pub findings: Vec<ResultFinding>,
    pub algorithm: Algorithm,
}

pub fn algorithm() -> Algorithm {
    Algorithm {
        id: "ct-nodule-demo".into(),
        name: "CT lung nodule segmentation (demonstration)".into(),
        version: "1.0.0".into(),
        sha256: "14d90d8e39d4be2cb8e490fc34f68307e97dfdd5fa0d5b2cdaea196d689e4e1c".into(),
        manufacturer: "The Dokuei project".into(),
    }
}

/// Runs of the voxels of slice `k` within `radius` of `center`.
fn sphere_mask(ct: &SyntheticCt, center: [f64; 3], radius: f64) -> Vec<MaskSlice> {
    let mut out = Vec::new();
    for k in 0..ct.slices {
        let p0 = ct.position(k);
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for r in 0..ct.rows as usize {
            for c in 0..ct.columns as usize {
                let p = [
                    p0[0] + c as f64 * ct.pixel_spacing[1],
                    p0[1] + r as f64 * ct.pixel_spacing[0],
                    p0[2],
                ];
                let d2: f64 = (0..3).map(|i| (p[i] - center[i]).powi(2)).sum();
                if d2 <= radius * radius {
                    let at = (r * ct.columns as usize + c) as u32;
                    match runs.last_mut() {
                        Some((s, l)) if *s + *l == at => *l += 1,
                        _ => runs.push((at, 1)),
                    }
                }
            }
        }
        if !runs.is_empty() {
            out.push(MaskSlice {
                slice: k as u32,
                runs,
            });
        }
    }
    out
}

fn bbox(mask: &[MaskSlice], columns: u32) -> ([u32; 4], u32) {
    let (mut r0, mut c0, mut r1, mut c1) = (u32::MAX, u32::MAX, 0, 0);
    let mut best = (0, 0);
    for m in mask {
        let n: u32 = m.runs.iter().map(|r| r.1).sum();
        if n > best.0 {
            best = (n, m.slice);
        }
        for &(s, l) in &m.runs {
            for i in s..s + l {
                let (r, c) = (i / columns, i % columns);
                r0 = r0.min(r);
                r1 = r1.max(r);
                c0 = c0.min(c);
                c1 = c1.max(c);
            }
        }
    }
    ([r0, c0, r1, c1], best.1)
}

pub fn finding(
    label: &str,
    n: usize,
    mask: Vec<MaskSlice>,
    columns: u32,
    origin: Origin,
    probability: Option<f64>,
) -> ResultFinding {
    let (bbox, key_slice) = bbox(&mask, columns);
    let voxels: u32 = mask.iter().flat_map(|m| &m.runs).map(|r| r.1).sum();
    ResultFinding {
        coding: FindingCoding {
            label: label.into(),
            category: default_category(),
            finding: Code::new("27925004", "SCT", "Nodule"),
            site: Some(Code::new("39607008", "SCT", "Lung")),
            rgb: [255, 64, 32],
        },
        tracking_id: format!("{label} #{n}"),
        tracking_uid: dokuei_results::uid::uid_from(&format!("test/{label}/{n}")),
        origin,
        mask,
        bbox,
        key_slice,
        longest_diameter_mm: 10.0 + n as f64,
        area_mm2: 50.0,
        volume_mm3: f64::from(voxels) * 0.7 * 0.7 * 2.5,
        probability,
    }
}

/// A 24-slice CT of 61 × 63 pixels (3843 per frame: frames do not start on byte boundaries)
/// with two nodules, and the model's two findings on it.
pub fn scenario(dir: &Path) -> Scenario {
    let ct = SyntheticCt {
        slices: 24,
        rows: 61,
        columns: 63,
        spheres: vec![
            Sphere {
                center: [-5.0, -4.0, 20.0],
                radius: 6.0,
                hu: 40.0,
            },
            Sphere {
                center: [8.0, 6.0, 40.0],
                radius: 4.0,
                hu: 40.0,
            },
        ],
        ..SyntheticCt::default()
    };
    let series_dir = dir.join("source");
    ct.write(&series_dir).expect("synthetic CT");
    let idx = index(std::slice::from_ref(&series_dir));
    let patient = &idx.patients[0];
    let study = &patient.studies[0];
    let series = &study.series[0];
    let stack = &stacks(series)[0];
    let source = SourceSeries::from_stack(series, stack).expect("source series");
    let alg = algorithm();
    let findings = ct
        .spheres
        .iter()
        .enumerate()
        .map(|(i, s)| {
            finding(
                "nodule",
                i + 1,
                sphere_mask(&ct, s.center, s.radius),
                63,
                Origin::Automatic(alg.clone()),
                Some(0.9 - i as f64 * 0.2),
            )
        })
        .collect();
    Scenario {
        dir: dir.to_owned(),
        study: StudyContext::from_index(patient, study),
        source,
        findings,
        algorithm: alg,
    }
}

pub fn identity(study: &StudyContext, kind: &str, number: i32) -> ObjectIdentity {
    ObjectIdentity {
        sop_instance_uid: dokuei_results::uid::uid_from(&format!("{}/{kind}", study.study_uid)),
        series_uid: dokuei_results::uid::uid_from(&format!("{}/{kind}/series", study.study_uid)),
        series_number: 9000 + number,
        series_description: format!("Dokuei {kind}"),
        instance_number: 1,
        content_date: "20261201".into(),
        content_time: "101500".into(),
    }
}

pub fn writer() -> Writer {
    Writer {
        software_version: "Dokuei 0.1.0".into(),
        device_serial: "test-installation".into(),
    }
}

fn seg_expectation(
    file: &Path,
    s: &Scenario,
    findings: &[ResultFinding],
    numbers: &[Option<u16>],
    kind: &str,
) -> Value {
    let segments: Vec<Value> = findings
        .iter()
        .zip(numbers)
        .filter_map(|(f, n)| {
            let n = (*n)?;
            let alg = f.origin.algorithm();
            Some(json!({
                "number": n,
                "label": f.coding.label,
                "tracking_uid": f.tracking_uid,
                "tracking_id": f.tracking_id,
                "algorithm_type": f.origin.keyword(),
                "algorithm_name": alg.map(|a| a.name.clone()),
                "algorithm_version": alg.map(|a| a.version.clone()),
                "mask": f.mask.iter().map(|m| json!({
                    "sop_instance_uid": s.source.images[m.slice as usize].sop_instance_uid,
                    "runs": m.runs,
                })).collect::<Vec<_>>(),
            }))
        })
        .collect();
    json!({
        "file": file,
        "algorithm_type": kind,
        "device_uid": findings.iter().find_map(|f| f.origin.algorithm()).map(|a| a.device_uid()),
        "segments": segments,
    })
}

/// Writes the AI objects and the physician's, and returns the expectation for the checker.
pub fn write_all(s: &Scenario, out: &Path) -> Value {
    std::fs::create_dir_all(out).expect("out dir");
    let w = writer();
    let seg_id = identity(&s.study, "ai-seg", 1);
    let seg = write_seg(&s.study, &s.source, &s.findings, &seg_id, &w).expect("SEG");
    let seg_file = out.join("ai-seg.dcm");
    seg.object.write_to_file(&seg_file).expect("write SEG");
    let refs: Vec<Option<SegmentRef>> = seg
        .segment_numbers
        .iter()
        .map(|n| {
            n.map(|n| SegmentRef {
                sop_instance_uid: seg_id.sop_instance_uid.clone(),
                series_uid: seg_id.series_uid.clone(),
                segment_number: n,
            })
        })
        .collect();
    let sr_id = identity(&s.study, "ai-sr", 2);
    let sr = write_measurement_report(
        &s.study,
        &s.source,
        &s.algorithm,
        &s.findings,
        &refs,
        &sr_id,
        &w,
    )
    .expect("SR");
    let sr_file = out.join("ai-sr.dcm");
    sr.write_to_file(&sr_file).expect("write SR");

    // The reader: confirms nodule #1... no: edits nodule #1 (drops its first slice), rejects
    // nodule #2 as an artefact, and adds a finding of their own.
    let mut edited = s.findings[0].clone();
    edited.mask.remove(0);
    edited.origin = Origin::SemiAutomatic(s.algorithm.clone());
    edited.probability = None;
    let added_mask = vec![MaskSlice {
        slice: 3,
        runs: vec![(63 * 10 + 5, 7), (63 * 11 + 5, 7)],
    }];
    let added = finding("nodule", 3, added_mask, 63, Origin::Manual, None);
    let reader_findings = vec![edited.clone(), added.clone()];
    let rseg_id = identity(&s.study, "reader-seg", 3);
    let rseg = write_seg(&s.study, &s.source, &reader_findings, &rseg_id, &w).expect("reader SEG");
    let rseg_file = out.join("reader-seg.dcm");
    rseg.object
        .write_to_file(&rseg_file)
        .expect("write reader SEG");
    let rref = |k: usize| SegmentRef {
        sop_instance_uid: rseg_id.sop_instance_uid.clone(),
        series_uid: rseg_id.series_uid.clone(),
        segment_number: rseg.segment_numbers[k].expect("segment"),
    };
    let assessments = vec![
        Assessment {
            finding: s.findings[0].clone(),
            ai_segment: refs[0].clone(),
            verdict: Verdict::Modified {
                edited: Box::new(edited.clone()),
                segment: rref(0),
            },
        },
        Assessment {
            finding: s.findings[1].clone(),
            ai_segment: refs[1].clone(),
            verdict: Verdict::Rejected {
                reason: "REJ-ARTEFACT".into(),
                text: "beam hardening".into(),
            },
        },
        Assessment {
            finding: added.clone(),
            ai_segment: None,
            verdict: Verdict::Added { segment: rref(1) },
        },
    ];
    let assessed = vec![
        dokuei_results::sr::ObjectRef {
            sop_class_uid: dokuei_results::sr::COMPREHENSIVE_3D_SR.into(),
            sop_instance_uid: sr_id.sop_instance_uid.clone(),
            series_uid: sr_id.series_uid.clone(),
        },
        (&refs[0].clone().expect("segment")).into(),
    ];
    let verifier = Verifier {
        name: "Yamada^Hanako".into(),
        organization: "Dokuei test hospital".into(),
        date_time: "20261201103000+0000".into(),
        ledger_checkpoint: Some(format!(
            "dokuei-checkpoint/1 {} 42 {} 2026-12-01T10:30:00.000Z {} {}",
            "1".repeat(32),
            "2".repeat(64),
            "3".repeat(64),
            "4".repeat(128)
        )),
    };
    let asr_id = identity(&s.study, "assessment-sr", 4);
    let asr = write_assessment(
        &s.study,
        &s.source,
        &assessments,
        &assessed,
        &verifier,
        &asr_id,
        &w,
    )
    .expect("assessment SR");
    let asr_file = out.join("assessment-sr.dcm");
    asr.write_to_file(&asr_file).expect("write assessment SR");

    let ai_refs: Vec<Value> = s
        .findings
        .iter()
        .zip(&refs)
        .filter_map(|(f, r)| {
            let r = r.as_ref()?;
            Some(json!({"tracking_uid": f.tracking_uid, "seg_sop_instance_uid": r.sop_instance_uid, "segment_number": r.segment_number}))
        })
        .collect();
    json!({
        "source_dir": s.dir.join("source"),
        "seg": [
            seg_expectation(&seg_file, s, &s.findings, &seg.segment_numbers, "AUTOMATIC"),
            seg_expectation(&rseg_file, s, &reader_findings, &rseg.segment_numbers, "SEMIAUTOMATIC"),
        ],
        "sr": [
            {"file": sr_file, "verified": false,
             "tracking_uids": s.findings.iter().map(|f| f.tracking_uid.clone()).collect::<Vec<_>>(),
             "referenced_segments": ai_refs},
            {"file": asr_file, "verified": true,
             "tracking_uids": [s.findings[0].tracking_uid.clone(), s.findings[1].tracking_uid.clone(), added.tracking_uid.clone()],
             "referenced_segments": [
                 {"tracking_uid": edited.tracking_uid, "seg_sop_instance_uid": rseg_id.sop_instance_uid, "segment_number": rref(0).segment_number},
                 {"tracking_uid": added.tracking_uid, "seg_sop_instance_uid": rseg_id.sop_instance_uid, "segment_number": rref(1).segment_number},
                 {"tracking_uid": s.findings[1].tracking_uid, "seg_sop_instance_uid": seg_id.sop_instance_uid, "segment_number": 2},
             ]},
        ],
    })
}

#[test]
fn written_objects_pass_every_validator_and_read_back_in_highdicom_and_dcmqi() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let s = scenario(tmp.path());
    let out = std::env::var_os("DOKUEI_RESULTS_OUT")
        .map_or_else(|| tmp.path().join("out"), PathBuf::from);
    let expected = write_all(&s, &out);
    let exp_file = out.join("expected.json");
    std::fs::write(
        &exp_file,
        serde_json::to_vec_pretty(&expected).expect("json"),
    )
    .expect("write");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/results_check.py");
    let run = Command::new(testdata::reference_python())
        .arg(&script)
        .arg(&exp_file)
        .output()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    let report = String::from_utf8_lossy(&run.stdout);
    let problems = String::from_utf8_lossy(&run.stderr);
    println!("{report}");
    assert!(run.status.success(), "the checks failed:\n{problems}");
}

#[test]
fn dokuei_reads_back_what_it_wrote_and_refuses_to_misplace_it() {
    use dokuei_results::read::{place, read_seg, read_tid1500};
    let tmp = tempfile::tempdir().expect("temp dir");
    let s = scenario(tmp.path());
    let out = tmp.path().join("out");
    write_all(&s, &out);

    let seg = read_seg(&out.join("ai-seg.dcm")).expect("read SEG");
    assert_eq!(seg.segmentation_type, "BINARY");
    assert_eq!(seg.segments.len(), 2);
    let placed = place(&seg, &s.source).expect("placed");
    for (f, p) in s.findings.iter().zip(&placed) {
        assert_eq!(p.mask, f.mask, "segment {} voxel for voxel", p.number);
    }
    for (f, seg_desc) in s.findings.iter().zip(&seg.segments) {
        assert_eq!(seg_desc.tracking_uid, f.tracking_uid);
        assert_eq!(seg_desc.producer.algorithm_name, s.algorithm.name);
        assert_eq!(seg_desc.producer.algorithm_version, s.algorithm.version);
        assert_eq!(seg_desc.producer.device_uid, s.algorithm.device_uid());
        assert_eq!(seg_desc.rgb, Some([255, 64, 32]), "colour survives CIELab");
        assert_eq!(
            seg_desc.property_type.as_ref().map(|c| c.value.as_str()),
            Some("27925004")
        );
    }
    let sr = read_tid1500(&out.join("ai-sr.dcm")).expect("read SR");
    assert!(!sr.verified);
    assert_eq!(sr.producer.device_uid, s.algorithm.device_uid());
    let volumetric: Vec<_> = sr.groups.iter().filter(|g| g.template == "1411").collect();
    assert_eq!(volumetric.len(), 2);
    for (f, g) in s.findings.iter().zip(&volumetric) {
        assert_eq!(g.tracking_uid, f.tracking_uid);
        let (uid, n) = g.referenced_segment.clone().expect("segment reference");
        assert_eq!(uid, seg.sop_instance_uid);
        let volume = g
            .measurements
            .iter()
            .find(|m| m.concept.value == "118565006")
            .expect("volume");
        assert!((volume.value - f.volume_mm3).abs() < 1e-6 * f.volume_mm3.max(1.0));
        assert_eq!(
            placed.iter().find(|p| p.number == n).map(|p| &p.mask),
            Some(&f.mask)
        );
    }
    let assessment = read_tid1500(&out.join("assessment-sr.dcm")).expect("assessment");
    assert!(assessment.verified);
    let verdicts: Vec<&str> = assessment
        .groups
        .iter()
        .flat_map(|g| &g.evaluations)
        .filter(|(c, _)| c.value == "AIRA-VERDICT")
        .map(|(_, v)| v.value.as_str())
        .collect();
    assert_eq!(verdicts, ["AIRA-MODIFIED", "AIRA-REJECTED", "AIRA-ADDED"]);

    // Placed by position when the frames name no source instance: same masks.
    let mut by_position = seg.clone();
    for segm in &mut by_position.segments {
        for f in &mut segm.frames {
            f.source_sop_instance_uid = None;
        }
    }
    assert_eq!(place(&by_position, &s.source).expect("by position"), placed);

    // Another series (another Frame of Reference): refused, naming both.
    let other = scenario(&tmp.path().join("other-seed-irrelevant"));
    let mut foreign = other.source.clone();
    foreign.frame_of_reference_uid = Some("2.25.1".into());
    let e = place(&seg, &foreign).expect_err("other frame of reference");
    assert!(e.to_string().contains("Frame of Reference"), "{e}");
    // Same frame of reference but the referenced instances are not there and the frames lie
    // between the series' planes: refused, not misplaced.
    let mut shifted = s.source.clone();
    for im in &mut shifted.images {
        im.sop_instance_uid.push_str(".9");
        if let Some(p) = im.position.as_mut() {
            p[2] += 1.25;
        }
    }
    let e = place(&seg, &shifted).expect_err("off-plane frames");
    assert!(e.to_string().contains("on none of"), "{e}");
    // An image size that differs: refused.
    let mut small = s.source.clone();
    small.rows -= 1;
    assert!(place(&seg, &small).is_err());
}

/// Probability `p` at (slice, row, column) of a smooth synthetic heatmap.
fn heat(k: usize, r: usize, c: usize) -> f32 {
    ((k * 7 + r * 3 + c) % 101) as f32 / 100.0
}

fn check_pmap(source_dir: &Path, source: &SourceSeries, file: &Path, values: &[f32]) {
    let plane = (source.rows * source.columns) as usize;
    let frames: Vec<Value> = source
        .images
        .iter()
        .enumerate()
        .map(|(k, im)| {
            json!({"sop_instance_uid": im.sop_instance_uid, "values": &values[k * plane..(k + 1) * plane]})
        })
        .collect();
    let exp = file.with_extension("json");
    std::fs::write(
        &exp,
        serde_json::to_vec(&json!({ "frames": frames })).expect("json"),
    )
    .expect("write");
    let run = Command::new(testdata::reference_python())
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/pmap_check.py"),
        )
        .arg(file)
        .arg(source_dir)
        .arg(&exp)
        .output()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(
        run.status.success(),
        "{}: {}\n{}",
        file.display(),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn a_heatmap_as_a_parametric_map_passes_dciodvfy_and_highdicom_reads_its_values() {
    use dokuei_results::pmap::write_parametric_map;
    let tmp = tempfile::tempdir().expect("temp dir");
    let s = scenario(tmp.path());
    let (rows, columns) = (s.source.rows as usize, s.source.columns as usize);
    let values: Vec<f32> = (0..s.source.images.len())
        .flat_map(|k| (0..rows).flat_map(move |r| (0..columns).map(move |c| heat(k, r, c))))
        .collect();
    let id = identity(&s.study, "pmap", 5);
    let pm = write_parametric_map(
        &s.study,
        &s.source,
        &s.algorithm,
        "nodule",
        &values,
        &id,
        &writer(),
    )
    .expect("parametric map");
    let file = tmp.path().join("pmap.dcm");
    pm.write_to_file(&file).expect("write");
    check_pmap(&tmp.path().join("source"), &s.source, &file, &values);
    // A map that does not fit the series is refused, naming it.
    let e = write_parametric_map(
        &s.study,
        &s.source,
        &s.algorithm,
        "nodule",
        &values[1..],
        &id,
        &writer(),
    )
    .expect_err("wrong size");
    assert!(e.to_string().contains("nodule map"), "{e}");
}

fn dciodvfy_errors(file: &Path) -> Vec<String> {
    let out = Command::new(testdata::reference_python().with_file_name("dciodvfy"))
        .arg(file)
        .output()
        .expect("dciodvfy (run `bash scripts/setup.sh --test`)");
    let report =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    report
        .lines()
        .filter(|l| l.starts_with("Error"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_radiograph_without_patient_geometry_gets_a_valid_seg_and_sr_and_no_invented_parametric_map() {
    use dokuei_dicom::synth::SyntheticCxr;
    use dokuei_results::pmap::write_parametric_map;
    let tmp = tempfile::tempdir().expect("temp dir");
    let cxr_dir = tmp.path().join("cxr");
    SyntheticCxr {
        size: 93,
        opacities: 1,
        ..SyntheticCxr::default()
    }
    .write(&cxr_dir.join("cxr.dcm"))
    .expect("radiograph");
    let idx = index(std::slice::from_ref(&cxr_dir));
    let (patient, study) = (&idx.patients[0], &idx.patients[0].studies[0]);
    let series = &study.series[0];
    let source = SourceSeries::from_stack(series, &stacks(series)[0]).expect("source");
    assert!(source.frame_of_reference_uid.is_none() || source.images[0].position.is_none());
    let ctx = StudyContext::from_index(patient, study);
    let alg = algorithm();
    // An opacity: a 20 × 15 block on the one image (93 × 93: frames are not byte multiples).
    let mask = vec![MaskSlice {
        slice: 0,
        runs: (30..45).map(|r| (r * 93 + 40, 20)).collect(),
    }];
    let f = finding(
        "opacity",
        1,
        mask,
        93,
        Origin::Automatic(alg.clone()),
        Some(0.8),
    );
    let seg_id = identity(&ctx, "cxr-seg", 1);
    let seg = write_seg(&ctx, &source, std::slice::from_ref(&f), &seg_id, &writer()).expect("SEG");
    let seg_file = tmp.path().join("seg.dcm");
    seg.object.write_to_file(&seg_file).expect("write");
    assert_eq!(dciodvfy_errors(&seg_file), Vec::<String>::new());
    let refs = [Some(SegmentRef {
        sop_instance_uid: seg_id.sop_instance_uid.clone(),
        series_uid: seg_id.series_uid.clone(),
        segment_number: 1,
    })];
    let sr = write_measurement_report(
        &ctx,
        &source,
        &alg,
        std::slice::from_ref(&f),
        &refs,
        &identity(&ctx, "cxr-sr", 2),
        &writer(),
    )
    .expect("SR");
    let sr_file = tmp.path().join("sr.dcm");
    sr.write_to_file(&sr_file).expect("write");
    assert_eq!(dciodvfy_errors(&sr_file), Vec::<String>::new());
    // Read back and placed on the radiograph by its source reference.
    let back = dokuei_results::read::read_seg(&seg_file).expect("read");
    let placed = dokuei_results::read::place(&back, &source).expect("placed");
    assert_eq!(placed[0].mask, f.mask);
    // No Parametric Map: it would need patient geometry the radiograph does not have.
    let values = vec![0.5f32; 93 * 93];
    let e = write_parametric_map(
        &ctx,
        &source,
        &alg,
        "opacity",
        &values,
        &identity(&ctx, "pmap", 5),
        &writer(),
    )
    .expect_err("no geometry");
    assert!(e.to_string().contains("no patient geometry"), "{e}");
}

#[test]
fn overlapping_fractional_and_label_map_segs_made_by_highdicom_read_to_the_same_masks() {
    use dokuei_results::read::{place, read_seg};
    let tmp = tempfile::tempdir().expect("temp dir");
    let source_dir = tmp.path().join("ct");
    // 63 × 71: 1-bit frames do not start on byte boundaries.
    SyntheticCt {
        slices: 30,
        rows: 63,
        columns: 71,
        ..SyntheticCt::default()
    }
    .write(&source_dir)
    .expect("synthetic CT");
    let out = tmp.path().join("variants");
    let run = Command::new(testdata::reference_python())
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/reference/results_reference.py"),
        )
        .arg("make-variants")
        .arg(&source_dir)
        .arg(&out)
        .output()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(
        run.status.success(),
        "highdicom: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let expected: Value =
        serde_json::from_slice(&std::fs::read(out.join("expected.json")).expect("expected"))
            .expect("json");
    let idx = index(std::slice::from_ref(&source_dir));
    let series = &idx.patients[0].studies[0].series[0];
    let source = SourceSeries::from_stack(series, &stacks(series)[0]).expect("source");
    let slice_of = |uid: &str| {
        source
            .images
            .iter()
            .position(|im| im.sop_instance_uid == uid)
            .expect("source image") as u32
    };
    let files = expected["files"].as_object().expect("files");
    assert_eq!(files.len(), 3);
    for (name, numbers) in files {
        let seg = read_seg(&out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let placed = place(&seg, &source).unwrap_or_else(|e| panic!("{name}: {e}"));
        let numbers: Vec<u64> = numbers
            .as_array()
            .expect("numbers")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let got: Vec<u64> = placed.iter().map(|p| u64::from(p.number)).collect();
        assert_eq!(
            got, numbers,
            "{name}: segments (a label map's background is not one)"
        );
        for p in &placed {
            let want = expected["segments"]
                .as_array()
                .expect("segments")
                .iter()
                .find(|s| s["number"].as_u64() == Some(u64::from(p.number)))
                .expect("expected segment");
            let mut want_mask: Vec<MaskSlice> = want["mask"]
                .as_array()
                .expect("mask")
                .iter()
                .map(|m| MaskSlice {
                    slice: slice_of(m["sop_instance_uid"].as_str().expect("uid")),
                    runs: serde_json::from_value(m["runs"].clone()).expect("runs"),
                })
                .collect();
            want_mask.sort_by_key(|m| m.slice);
            assert_eq!(
                p.mask, want_mask,
                "{name}: segment {} voxel for voxel",
                p.number
            );
        }
    }
}
