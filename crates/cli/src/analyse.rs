//! `dokuei analyse`: run a model on a series and print its findings.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use dokuei_review::analysis::analyse_series;
use dokuei_review::study::{open_study, series_by_number};
use dokuei_review::{AppError, ErrorCode};

pub fn run(
    paths: &[PathBuf],
    model_dir: &Path,
    series: usize,
    stack: usize,
    threads: Option<usize>,
    json: Option<&Path>,
) -> Result<(), AppError> {
    let index = open_study(paths)?;
    // Files that could not be read are not part of any series: say so before analysing, so a
    // series with a broken slice is never analysed without the reader knowing.
    for p in &index.problems {
        eprintln!("skipped {}: {}", p.file, p.reason);
    }
    let s = series_by_number(&index, series)?;
    let stack = stack
        .checked_sub(1)
        .ok_or_else(|| AppError::new(ErrorCode::InvalidArgument, "stack numbers start at 1"))?;
    let started = Instant::now();
    let cancel = AtomicBool::new(false);
    let mut last_print = Instant::now();
    let runtime = dokuei_review::OnnxRuntime::load(None)?;
    let (model, analysis) = analyse_series(
        &runtime,
        &Default::default(),
        model_dir,
        s,
        stack,
        threads,
        &mut |p| {
            if last_print.elapsed().as_millis() >= 500 || p.done == p.total {
                eprint!(
                    "\ranalysing: {}/{} slices ({:.0}%), about {:.0} s left   ",
                    p.done,
                    p.total,
                    100.0 * p.done as f64 / p.total as f64,
                    p.eta_seconds
                );
                last_print = Instant::now();
            }
        },
        &cancel,
    )?;
    eprintln!();
    let model = model.lock().unwrap_or_else(|e| e.into_inner());
    let m = &model.manifest.model;
    println!(
        "{:>3}  {:<16} {:>6} {:>10} {:>14} {:>9}  centroid LPS (mm)",
        "#", "label", "score", "diam. mm", "size", "slices"
    );
    for (i, f) in analysis.findings.iter().enumerate() {
        let size = &f.geometry.size;
        // One slice: an area; several: a volume.
        let extent = if f.geometry.slices[0] == f.geometry.slices[1] {
            format!("{:.1} mm²", size.area_mm2)
        } else {
            format!("{:.1} mm³", size.volume_mm3)
        };
        println!(
            "{:>3}  {:<16} {:>6.3} {:>10.1} {:>14} {:>9}  ({:.1}, {:.1}, {:.1}){}",
            i + 1,
            f.label,
            f.score,
            size.longest_diameter_mm,
            extent,
            format!("{}–{}", f.geometry.slices[0] + 1, f.geometry.slices[1] + 1),
            f.geometry.centroid_lps_mm[0],
            f.geometry.centroid_lps_mm[1],
            f.geometry.centroid_lps_mm[2],
            f.image_score
                .map(|s| format!("  image score {s:.3}"))
                .unwrap_or_default()
        );
    }
    if analysis.findings.is_empty() {
        println!("     (no findings)");
    }
    println!(
        "model {} {} (sha256 {}…) on {}; {} finding(s) in {:.2} s (model run time {:.2} s)",
        m.id,
        m.version,
        &m.sha256[..12.min(m.sha256.len())],
        model.provider.used.name(),
        analysis.findings.len(),
        started.elapsed().as_secs_f64(),
        analysis.inference_seconds
    );
    for skipped in &model.provider.skipped {
        println!("  ({} not used: {})", skipped.kind.name(), skipped.reason);
    }
    if m.is_demonstration() {
        println!(
            "DEMONSTRATION MODEL — NOT FOR CLINICAL USE ({})",
            m.clinical_use
        );
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&analysis.findings)
            .map_err(|e| AppError::new(ErrorCode::WriteFailed, e.to_string()))?;
        std::fs::write(path, text).map_err(|e| {
            AppError::new(
                ErrorCode::WriteFailed,
                format!("cannot write `{}`: {e}", path.display()),
            )
        })?;
        println!("findings written to {}", path.display());
    }
    Ok(())
}
