//! `dokuei bench training`: the training-data export of synthetic CTs whose findings a reader
//! decided and signed off (a ledger built here), against copying the same studies' files (the
//! disk's floor for the DICOM part) in the same run.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use dokuei_review::dicom::synth::{Sphere, SyntheticCt};
use dokuei_review::infer::findings::{Finding, ModelRef, describe};
use dokuei_review::ledger::{Action, Role};
use dokuei_review::reading::{
    DecisionContext, DecisionInput, StackIdentity, add_reader, decide, record_analysis, sign_off,
    slice_geometry, study_identity,
};
use dokuei_review::study::open_study;
use dokuei_review::training::{TrainingSettings, export_training};
use dokuei_review::viewer::OpenStudy;
use dokuei_review::{AppError, ErrorCode};

const PASSPHRASE: &str = "bench passphrase";

fn fail(e: &dyn std::fmt::Display) -> AppError {
    AppError::new(ErrorCode::WriteFailed, e.to_string())
}

/// Voxels within `radius` of `center` (display-order slice × rows × columns index).
fn ball(study: &OpenStudy, center: [f64; 3], radius: f64) -> Vec<usize> {
    let Ok(stack) = study.stack(0, 0) else {
        return Vec::new();
    };
    let (rows, columns) = (stack.rows as usize, stack.columns as usize);
    let mut voxels = Vec::new();
    for (k, f) in stack.frames.iter().enumerate() {
        let Some(g) = f.geometry else { continue };
        if (g.position[2] - center[2]).abs() > radius {
            continue;
        }
        for r in 0..rows {
            for c in 0..columns {
                let p = g.pixel_to_patient(c as f64, r as f64);
                let d2: f64 = (0..3).map(|i| (p[i] - center[i]).powi(2)).sum();
                if d2 <= radius * radius {
                    voxels.push((k * rows + r) * columns + c);
                }
            }
        }
    }
    voxels
}

/// Writes `patients` CTs with three nodules each, records an analysis of each with the
/// nodules as findings, confirms two and rejects one, and signs off.
fn decided_studies(
    dir: &Path,
    patients: usize,
    slices: usize,
    size: u16,
) -> Result<(PathBuf, Vec<PathBuf>), AppError> {
    let ledger_path = dir.join("ledger.sqlite3");
    let ledger = dokuei_review::ledger::open_ledger(Some(&ledger_path))?;
    let reader = add_reader(&ledger, "Bench^Reader", Role::Radiologist, PASSPHRASE)?.id;
    let half = f64::from(size) * 0.7 / 2.0;
    let model = ModelRef {
        id: "ct-nodule-demo".into(),
        version: "1.0.0".into(),
        sha256: "0".repeat(64),
        execution_provider: "CPU".into(),
        thresholds: Default::default(),
    };
    let mut folders = Vec::new();
    for p in 0..patients {
        let centers: Vec<[f64; 3]> = (0..3)
            .map(|i| {
                let f = i as f64;
                [
                    -half * 0.3 + f * 20.0,
                    -half * 0.1,
                    slices as f64 * (0.25 + 0.25 * f),
                ]
            })
            .collect();
        let ct = SyntheticCt {
            slices,
            rows: size,
            columns: size,
            slice_spacing: 1.0,
            origin: [-half, -half, 0.0],
            seed: 100 + p as u64,
            spheres: centers
                .iter()
                .map(|&center| Sphere {
                    center,
                    radius: 6.0,
                    hu: 40.0,
                })
                .collect(),
            ..SyntheticCt::default()
        };
        let folder = dir.join(format!("ct{p}"));
        ct.write(&folder).map_err(|e| fail(&e))?;
        let study = OpenStudy::open(std::slice::from_ref(&folder))?;
        let series = study.series(0)?;
        let stack = study.stack(0, 0)?;
        let identity = study_identity(&study.index, &series.uid)
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no study"))?;
        let geometry: Vec<_> = (0..stack.frames.len())
            .map(|i| slice_geometry(series, stack, i))
            .collect();
        let findings: Vec<Finding> = centers
            .iter()
            .enumerate()
            .map(|(i, &c)| Finding {
                label: "nodule".into(),
                score: 0.9 - 0.2 * i as f64,
                geometry: describe(
                    &ball(&study, c, 6.0),
                    size.into(),
                    size.into(),
                    &geometry,
                    1.0,
                ),
                model: model.clone(),
                series_uid: series.uid.clone(),
                instance_uids: Vec::new(),
                image_score: None,
            })
            .collect();
        let recorded = record_analysis(
            &ledger,
            &identity,
            &series.uid,
            &StackIdentity::of(series, stack, 0),
            &model,
            &findings,
            "2026-12-01T08:00:00.000Z",
            "2026-12-01T08:00:05.000Z",
        )?;
        let ctx = DecisionContext {
            study: &identity,
            series,
            stack,
        };
        for (i, f) in recorded.findings.iter().enumerate() {
            let action = if i == 2 {
                Action::Reject
            } else {
                Action::Confirm
            };
            decide(
                &ledger,
                &ctx,
                reader,
                &DecisionInput {
                    finding_id: f.finding_id,
                    replaces_added: None,
                    action,
                    label: String::new(),
                    reject_reason: (i == 2)
                        .then_some(dokuei_review::ledger::RejectReason::AnatomicalStructure),
                    reason_text: String::new(),
                    mask: Vec::new(),
                },
            )?;
        }
        sign_off(&ledger, &identity.study_uid, reader, "bench", PASSPHRASE)?;
        folders.push(folder);
    }
    Ok((ledger_path, folders))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            bytes += copy_tree(&e.path(), &target)?;
        } else {
            bytes += std::fs::copy(e.path(), target)?;
        }
    }
    Ok(bytes)
}

/// Opens each study in a workstation, runs ct-nodule-demo on its first series, confirms every
/// finding and signs off: real decisions on real analyses.
fn decided_sample_studies(dir: &Path, studies: &[PathBuf]) -> Result<PathBuf, AppError> {
    use dokuei_review::reading::DecisionInput;
    use dokuei_review::workstation::Workstation;
    let ledger_path = dir.join("ledger.sqlite3");
    let ws =
        Workstation::new(dir.join("data"), dir.join("cache")).with_ledger_file(ledger_path.clone());
    let reader =
        ws.with_ledger(|l| add_reader(l, "Bench^Reader", Role::Radiologist, PASSPHRASE))?;
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/ct-nodule-demo");
    for s in studies {
        let opened = ws.open_study(vec![s.display().to_string()])?;
        let series = opened
            .tree
            .studies
            .first()
            .and_then(|st| st.series.first())
            .map(|x| x.key)
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "the study has no series"))?;
        let analysed = ws.analyse(series, 0, &model, &mut |_| {})?;
        for id in analysed.review.findings.iter().filter_map(|f| f.finding_id) {
            ws.decide(
                series,
                0,
                reader.id as i32,
                &DecisionInput {
                    finding_id: Some(id),
                    replaces_added: None,
                    action: Action::Confirm,
                    label: String::new(),
                    reject_reason: None,
                    reason_text: String::new(),
                    mask: Vec::new(),
                },
                None,
            )?;
        }
        ws.sign_off(series, reader.id as i32, "bench", PASSPHRASE)?;
    }
    Ok(ledger_path)
}

pub fn run(patients: usize, slices: usize, size: u16, studies: &[PathBuf]) -> Result<(), AppError> {
    let dir = tempfile::tempdir().map_err(|e| fail(&e))?;
    let t = Instant::now();
    let (ledger_path, folders) = if studies.is_empty() {
        println!(
            "training export: {patients} synthetic CT(s) of {slices} × {size}×{size}, three \
             nodules each (two confirmed, one rejected), signed off"
        );
        decided_studies(dir.path(), patients, slices, size)?
    } else {
        println!(
            "training export: {} study(ies), ct-nodule-demo run on each, every finding \
             confirmed, signed off",
            studies.len()
        );
        (
            decided_sample_studies(dir.path(), studies)?,
            studies.to_vec(),
        )
    };
    println!(
        "  set-up (write, analyse, decide, sign off): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ledger = dokuei_review::ledger::open_ledger(Some(&ledger_path))?;
    let index = open_study(&folders)?;

    // The floor: copying the studies' files.
    let t = Instant::now();
    let mut copied = 0;
    for (n, f) in folders.iter().enumerate() {
        copied += copy_tree(f, &dir.path().join(format!("copy{n}"))).map_err(|e| fail(&e))?;
    }
    let copy_s = t.elapsed().as_secs_f64();

    let out = dir.path().join("training");
    let t = Instant::now();
    let e = export_training(
        &ledger,
        &index,
        &out,
        &TrainingSettings::default(),
        &[],
        None,
        &AtomicBool::new(false),
        |_| {},
    )?;
    let export_s = t.elapsed().as_secs_f64();
    println!(
        "  copy of the studies' files (floor):  {copy_s:>7.2} s  {:>8.1} MB",
        copied as f64 / 1e6
    );
    println!(
        "  Dokuei training export:             {export_s:>7.2} s  {:>8.1} MB in {} files \
         ({} cases, {} findings, {} negatives)",
        e.bytes as f64 / 1e6,
        e.files,
        e.cases,
        e.ai_findings + e.added_findings,
        e.rejected
    );
    println!(
        "  ratio export / copy: {:.1}×  ({:.1} s per case)",
        export_s / copy_s.max(1e-9),
        export_s / f64::from(e.cases.max(1))
    );
    Ok(())
}
