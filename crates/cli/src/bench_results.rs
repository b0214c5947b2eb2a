//! `dokuei bench results`: writing SEG + SR TID 1500 for a 300-slice CT's findings, and
//! reading the SEG back, against highdicom doing the same SEG in the same run
//! (`scripts/reference/results_reference.py`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dokuei_review::dicom::synth::{Sphere, SyntheticCt};
use dokuei_review::dicom_results::codes::{Code, default_category};
use dokuei_review::dicom_results::read::{place, read_seg};
use dokuei_review::dicom_results::seg::write_seg;
use dokuei_review::dicom_results::sr::{SegmentRef, write_measurement_report};
use dokuei_review::dicom_results::uid::uid_from;
use dokuei_review::dicom_results::{
    Algorithm, FindingCoding, MaskSlice, ObjectIdentity, Origin, ResultFinding, SourceSeries,
    StudyContext, Writer,
};
use dokuei_review::{AppError, ErrorCode};
use serde_json::json;

/// A region on the CT: a ball, or a vertical cylinder through every slice (so the SEG has at
/// least one frame per slice, as a structure segmentation does).
enum Region {
    Ball([f64; 3], f64),
    Cylinder([f64; 2], f64),
}

fn mask_of(ct: &SyntheticCt, region: &Region) -> Vec<MaskSlice> {
    let (rows, columns) = (u32::from(ct.rows), u32::from(ct.columns));
    let mut out = Vec::new();
    for k in 0..ct.slices {
        let p0 = ct.position(k);
        let (cx, cy, r2) = match *region {
            Region::Ball(c, r) => {
                let dz = p0[2] - c[2];
                if dz.abs() > r {
                    continue;
                }
                (c[0], c[1], r * r - dz * dz)
            }
            Region::Cylinder(c, r) => (c[0], c[1], r * r),
        };
        let mut runs = Vec::new();
        for row in 0..rows {
            let y = p0[1] + f64::from(row) * ct.pixel_spacing[0] - cy;
            let half = r2 - y * y;
            if half < 0.0 {
                continue;
            }
            let half = half.sqrt();
            let c0 = ((cx - half - p0[0]) / ct.pixel_spacing[1]).ceil().max(0.0) as u32;
            let c1 = ((cx + half - p0[0]) / ct.pixel_spacing[1])
                .floor()
                .min(f64::from(columns - 1));
            if c1 < f64::from(c0) {
                continue;
            }
            runs.push((row * columns + c0, c1 as u32 - c0 + 1));
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

fn best(repeat: usize, mut f: impl FnMut() -> Result<(), AppError>) -> Result<f64, AppError> {
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn reference(args: &[&std::ffi::OsStr]) -> Option<serde_json::Value> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/results_reference.py");
    let out = Command::new(dokuei_review::dicom::testdata::reference_python())
        .arg(&script)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "highdicom reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
}

pub fn run(slices: usize, size: u16, repeat: usize) -> Result<(), AppError> {
    let fail = |e: &dyn std::fmt::Display| AppError::new(ErrorCode::WriteFailed, e.to_string());
    let dir = tempfile::tempdir().map_err(|e| fail(&e))?;
    let spacing = 0.7;
    let half = f64::from(size) * spacing / 2.0;
    let z_span = slices as f64 * 1.0;
    let mut ct = SyntheticCt {
        slices,
        rows: size,
        columns: size,
        pixel_spacing: [spacing, spacing],
        slice_spacing: 1.0,
        origin: [-half, -half, 0.0],
        ..SyntheticCt::default()
    };
    // Eight nodules of 4–11 mm radius along the volume, and one cylinder through it.
    let mut regions: Vec<(String, Region)> = (0..8)
        .map(|i| {
            let f = i as f64;
            let c = [
                -half * 0.4 + f * half * 0.1,
                -half * 0.2 + (f % 3.0) * half * 0.15,
                z_span * (0.08 + 0.11 * f),
            ];
            (format!("nodule {}", i + 1), Region::Ball(c, 4.0 + f))
        })
        .collect();
    regions.push(("airway".into(), Region::Cylinder([0.0, -half * 0.3], 9.0)));
    ct.spheres = regions
        .iter()
        .filter_map(|(_, r)| match *r {
            Region::Ball(center, radius) => Some(Sphere {
                center,
                radius,
                hu: 30.0,
            }),
            Region::Cylinder(..) => None,
        })
        .collect();
    let source_dir = dir.path().join("ct");
    println!("writing a {slices}-slice {size}×{size} synthetic CT…");
    ct.write(&source_dir).map_err(|e| fail(&e))?;
    let index = dokuei_review::study::open_study(std::slice::from_ref(&source_dir))?;
    let patient = &index.patients[0];
    let study = &patient.studies[0];
    let series = &study.series[0];
    let stack = dokuei_review::dicom::stack::stacks(series)
        .into_iter()
        .next()
        .ok_or_else(|| fail(&"no stack"))?;
    let source = SourceSeries::from_stack(series, &stack).map_err(|e| fail(&e))?;
    let ctx = StudyContext::from_index(patient, study);
    let algorithm = Algorithm {
        id: "ct-nodule-demo".into(),
        name: "CT lung nodule segmentation (demonstration)".into(),
        version: "1.0.0".into(),
        sha256: "0".repeat(64),
        manufacturer: "The Dokuei project".into(),
    };
    let findings: Vec<ResultFinding> = regions
        .iter()
        .enumerate()
        .map(|(i, (label, region))| {
            let mask = mask_of(&ct, region);
            let voxels: u64 = mask
                .iter()
                .flat_map(|m| &m.runs)
                .map(|r| u64::from(r.1))
                .sum();
            let key = mask
                .iter()
                .max_by_key(|m| m.runs.iter().map(|r| r.1).sum::<u32>())
                .map_or(0, |m| m.slice);
            ResultFinding {
                coding: FindingCoding {
                    label: label.clone(),
                    category: default_category(),
                    finding: Code::new("27925004", "SCT", "Nodule"),
                    site: None,
                    rgb: [255, 64, 32],
                },
                tracking_id: label.clone(),
                tracking_uid: uid_from(&format!("bench/{i}")),
                origin: Origin::Automatic(algorithm.clone()),
                bbox: [0, 0, 10, 10],
                key_slice: key,
                longest_diameter_mm: 10.0,
                area_mm2: 50.0,
                volume_mm3: voxels as f64 * spacing * spacing,
                probability: Some(0.9),
                mask,
            }
        })
        .collect();
    let frames: usize = findings.iter().map(|f| f.mask.len()).sum();
    let id = |kind: &str| ObjectIdentity {
        sop_instance_uid: uid_from(&format!("bench/{kind}")),
        series_uid: uid_from(&format!("bench/{kind}/series")),
        series_number: 900,
        series_description: kind.into(),
        instance_number: 1,
        content_date: "20261201".into(),
        content_time: "120000".into(),
    };
    let writer = Writer {
        software_version: "bench".into(),
        device_serial: "bench".into(),
    };
    let seg_file = dir.path().join("dokuei-seg.dcm");
    let sr_file = dir.path().join("dokuei-sr.dcm");
    let dokuei_seg = best(repeat, || {
        let seg = write_seg(&ctx, &source, &findings, &id("SEG"), &writer).map_err(|e| fail(&e))?;
        seg.object.write_to_file(&seg_file).map_err(|e| fail(&e))
    })?;
    let refs: Vec<Option<SegmentRef>> = (1..=findings.len() as u16)
        .map(|n| {
            Some(SegmentRef {
                sop_instance_uid: id("SEG").sop_instance_uid,
                series_uid: id("SEG").series_uid,
                segment_number: n,
            })
        })
        .collect();
    let dokuei_sr = best(repeat, || {
        let sr = write_measurement_report(
            &ctx,
            &source,
            &algorithm,
            &findings,
            &refs,
            &id("SR"),
            &writer,
        )
        .map_err(|e| fail(&e))?;
        sr.write_to_file(&sr_file).map_err(|e| fail(&e))
    })?;
    let dokuei_read = best(repeat, || {
        let seg = read_seg(&seg_file).map_err(|e| fail(&e))?;
        place(&seg, &source).map_err(|e| fail(&e))?;
        Ok(())
    })?;

    // The same SEG written by highdicom, and the same SEG read by highdicom.
    let masks = json!({"segments": findings.iter().enumerate().map(|(i, f)| json!({
        "number": i + 1,
        "label": f.coding.label,
        "category": [f.coding.category.value, f.coding.category.scheme, f.coding.category.meaning],
        "type": [f.coding.finding.value, f.coding.finding.scheme, f.coding.finding.meaning],
        "rgb": f.coding.rgb,
        "algorithm_name": algorithm.name,
        "algorithm_version": algorithm.version,
        "mask": f.mask.iter().map(|m| json!({
            "sop_instance_uid": source.images[m.slice as usize].sop_instance_uid,
            "runs": m.runs,
        })).collect::<Vec<_>>(),
    })).collect::<Vec<_>>()});
    let masks_file = dir.path().join("masks.json");
    std::fs::write(&masks_file, masks.to_string()).map_err(|e| fail(&e))?;
    let hd_seg_file = dir.path().join("highdicom-seg.dcm");
    let repeat_s = repeat.to_string();
    let hd_write = reference(&[
        "bench-write".as_ref(),
        source_dir.as_os_str(),
        masks_file.as_os_str(),
        hd_seg_file.as_os_str(),
        "--repeat".as_ref(),
        repeat_s.as_ref(),
    ]);
    let hd_read = reference(&[
        "bench-read".as_ref(),
        seg_file.as_os_str(),
        "--repeat".as_ref(),
        repeat_s.as_ref(),
    ]);
    let secs = |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| v["seconds"].as_f64());
    let ms = |s: f64| s * 1000.0;
    println!(
        "SEG {frames} frames, {} segments, {slices} slices of {size}×{size}; best of {repeat}, {} build",
        findings.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "{:<34} {:>10} {:>12} {:>8}",
        "", "Dokuei", "highdicom", "ratio"
    );
    let row = |what: &str, ours: f64, theirs: Option<f64>| match theirs {
        Some(t) => println!(
            "{what:<34} {:>8.1}ms {:>10.1}ms {:>7.1}×",
            ms(ours),
            ms(t),
            t / ours
        ),
        None => println!("{what:<34} {:>8.1}ms {:>12} {:>8}", ms(ours), "n/a", "-"),
    };
    row("write SEG", dokuei_seg, secs(&hd_write));
    row(
        "write SEG + SR (vs highdicom SEG)",
        dokuei_seg + dokuei_sr,
        secs(&hd_write),
    );
    row(
        "read SEG (every segment's mask)",
        dokuei_read,
        secs(&hd_read),
    );
    Ok(())
}
