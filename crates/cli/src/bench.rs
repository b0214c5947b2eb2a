//! `dokuei bench …`: printed benchmarks, each against a reference run in the same command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use clap::Subcommand;
use dokuei_review::dicom::stack::stacks;
use dokuei_review::dicom::synth::SyntheticCt;
use dokuei_review::study::{open_study, series_list};
use dokuei_review::{AppError, ErrorCode};

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Load a 300-slice 512×512 16-bit CT series; compare with pydicom + numpy.
    Load {
        /// Series folder to load; a synthetic one is written there first when it is empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Python with pydicom and numpy (default: the project's reference venv).
        #[arg(long)]
        python: Option<PathBuf>,
    },
}

pub fn run(bench: Bench) -> Result<(), AppError> {
    match bench {
        Bench::Load { dir, python } => load(dir, python),
    }
}

fn fail(e: impl std::fmt::Display) -> AppError {
    AppError::new(ErrorCode::WriteFailed, e.to_string())
}

pub fn synth_ct(dir: &Path, slices: usize, size: u16) -> Result<(), AppError> {
    let ct = SyntheticCt {
        slices,
        rows: size,
        columns: size,
        pixel_spacing: [0.7, 0.7],
        origin: [-0.35 * f64::from(size), -0.35 * f64::from(size), -400.0],
        series_description: format!("Synthetic CT {slices} slices"),
        shuffle_file_names: true,
        ..SyntheticCt::default()
    };
    ct.write(dir).map_err(fail)?;
    Ok(())
}

/// Peak resident set size of this process so far, bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn load(dir: Option<PathBuf>, python: Option<PathBuf>) -> Result<(), AppError> {
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("dokuei-bench-ct300"));
    let empty = std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true);
    if empty {
        eprintln!(
            "writing a synthetic 300-slice 512×512 CT series to {} …",
            dir.display()
        );
        // In a child process, so that writing it does not count in this process's peak RSS.
        let status = Command::new(std::env::current_exe().map_err(fail)?)
            .args([
                "synth-ct",
                &dir.display().to_string(),
                "--slices",
                "300",
                "--size",
                "512",
            ])
            .status()
            .map_err(fail)?;
        if !status.success() {
            return Err(fail("writing the synthetic series failed"));
        }
    }
    let paths = [dir.clone()];
    // Warm the page cache (the targets are for a warm cache), then measure.
    let _ = open_study(&paths)?;

    let t0 = Instant::now();
    let index = open_study(&paths)?;
    let t_index = t0.elapsed();
    let series = *series_list(&index)
        .first()
        .ok_or_else(|| fail("no series"))?;
    let stack = stacks(series)
        .into_iter()
        .next()
        .ok_or_else(|| fail("no stack"))?;
    let middle = &stack.frames[stack.frames.len() / 2];
    let first = dokuei_review::dicom::volume::decode(series, middle.instance, middle.frame)?;
    let t_first = t0.elapsed();
    let cancel = AtomicBool::new(false);
    let volume = dokuei_review::dicom::volume::load_volume(series, &stack, &|_, _| {}, &cancel)
        .map_err(|e| AppError::new(ErrorCode::DecodeFailed, e.to_string()))?;
    let t_full = t0.elapsed();
    let rss = peak_rss().unwrap_or(0);
    let stored = volume.data.bytes() as u64;
    let (s, r, c) = volume.data.dim();
    drop(first);

    let python = python.unwrap_or_else(dokuei_review::dicom::testdata::reference_python);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/pydicom_load.py");
    let reference = Command::new(&python).arg(&script).arg(&dir).output();
    let reference: Option<serde_json::Value> = reference
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice(&o.stdout).ok());

    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "series: {s} slices × {r} × {c}, stored volume {:.1} MiB, {} build",
        mib(stored),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "", "Dokuei", "pydicom", "ratio"
    );
    println!(
        "{:<34} {:>9.1} ms {:>12}",
        "index (headers only)",
        ms(t_index),
        "-"
    );
    println!(
        "{:<34} {:>9.1} ms {:>12}",
        "first displayable slice",
        ms(t_first),
        "-"
    );
    match &reference {
        Some(v) => {
            let py = v["seconds"].as_f64().unwrap_or(f64::NAN) * 1000.0;
            let py_rss = v["peak_rss_bytes"].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:<34} {:>9.1} ms {:>9.1} ms {:>7.1}×",
                "full volume (HU-ready)",
                ms(t_full),
                py,
                py / ms(t_full)
            );
            println!(
                "{:<34} {:>8.1} MiB {:>8.1} MiB {:>7.2}×",
                "peak RSS",
                mib(rss),
                py_rss / 1048576.0,
                py_rss / rss as f64
            );
        }
        None => {
            println!(
                "{:<34} {:>9.1} ms {:>12}",
                "full volume (HU-ready)",
                ms(t_full),
                "(not run)"
            );
            println!("{:<34} {:>8.1} MiB", "peak RSS", mib(rss));
            eprintln!(
                "pydicom reference did not run: `{} {}` failed (run `bash scripts/setup.sh --test`)",
                python.display(),
                script.display()
            );
        }
    }
    println!(
        "targets: full volume ≥ 7× faster than pydicom; first slice ≤ 50 ms; peak RSS ≤ 1.2 × stored + 100 MiB = {:.1} MiB",
        mib(stored) * 1.2 + 100.0
    );
    Ok(())
}
