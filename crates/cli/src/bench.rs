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
    /// ct-nodule-demo on a synthetic CT (written first); compared with the same analysis done
    /// with pydicom + numpy + Python onnxruntime at the same thread count.
    Analyse {
        #[arg(long, default_value_t = 300)]
        slices: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Decode throughput per transfer syntax family (MB/s of decoded stored values) on the real
    /// test corpora, against pydicom with its pylibjpeg plug-ins on the same files, one thread.
    Decode {
        /// Seconds of decoding per family and side (at least three rounds).
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// Writing SEG + SR TID 1500 for a CT's findings and reading the SEG back, against
    /// highdicom writing and reading the same SEG.
    Results {
        #[arg(long, default_value_t = 300)]
        slices: usize,
        #[arg(long, default_value_t = 512)]
        size: u16,
        /// Timed rounds per side (the best is shown).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// The training-data export of signed-off synthetic CTs (a ledger built here), against
    /// copying the same studies' files.
    Training {
        #[arg(long, default_value_t = 2)]
        patients: usize,
        #[arg(long, default_value_t = 300)]
        slices: usize,
        #[arg(long, default_value_t = 512)]
        size: u16,
        /// CT studies to analyse with ct-nodule-demo and export instead of synthetic ones
        /// (e.g. sample-studies/generated/chest-ct-nodules).
        #[arg(long, num_args = 1..)]
        studies: Vec<PathBuf>,
    },
    /// Reformatting coronal and sagittal planes and a MIP slab through a CT in memory, against
    /// taking an axial slice out of it.
    Mpr {
        #[arg(long, default_value_t = 512)]
        size: u16,
        #[arg(long, default_value_t = 300)]
        slices: usize,
        /// Timed rounds per plane.
        #[arg(long, default_value_t = 20)]
        repeat: usize,
    },
    /// Ledger appends/s (synchronous=FULL, one decision per transaction), export and verify
    /// of a large ledger; compared with plain SQLite inserts under the same settings.
    Ledger {
        /// Decisions in the large ledger.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Single appends timed.
        #[arg(long, default_value_t = 1_000)]
        appends: usize,
    },
}

pub fn run(bench: Bench) -> Result<(), AppError> {
    match bench {
        Bench::Load { dir, python } => load(dir, python),
        Bench::Ledger { rows, appends } => ledger(rows, appends),
        Bench::Results {
            slices,
            size,
            repeat,
        } => crate::bench_results::run(slices, size, repeat),
        Bench::Analyse { slices, threads } => analyse(slices, threads),
        Bench::Decode { seconds } => decode(seconds),
        Bench::Mpr {
            size,
            slices,
            repeat,
        } => crate::bench_mpr::run(size, slices, repeat),
        Bench::Training {
            patients,
            slices,
            size,
            studies,
        } => crate::bench_training::run(patients, slices, size, &studies),
    }
}

/// The transfer syntax families `bench decode` reports, by UID.
fn decode_family(ts: &str) -> Option<&'static str> {
    Some(match ts {
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2" => "native",
        "1.2.840.10008.1.2.1.99" => "deflate",
        "1.2.840.10008.1.2.5" => "RLE",
        "1.2.840.10008.1.2.4.50" => "JPEG baseline (8-bit)",
        "1.2.840.10008.1.2.4.51" => "JPEG extended (12-bit)",
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "JPEG lossless",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "JPEG-LS",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "JPEG 2000",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "HTJ2K"
        }
        "1.2.840.10008.1.2.4.110" | "1.2.840.10008.1.2.4.111" | "1.2.840.10008.1.2.4.112" => {
            "JPEG XL"
        }
        _ => return None,
    })
}

/// The instance in `file`, as the index reads it (once, outside any timing).
fn instance_of(file: &Path) -> Result<dokuei_review::dicom::Instance, AppError> {
    dokuei_review::dicom::index(&[file.to_path_buf()])
        .instances()
        .next()
        .filter(|i| i.image.is_some())
        .cloned()
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::DecodeFailed,
                format!("{} has no image", file.display()),
            )
        })
}

/// Reads each file whole and decodes every frame, as `dcmread(…).pixel_array` does; returns the
/// stored bytes decoded.
fn decode_all(instances: &[dokuei_review::dicom::Instance]) -> Result<u64, AppError> {
    use dokuei_review::dicom::decode::{decode_frame_of, open_for_decoding};
    let mut bytes = 0u64;
    for instance in instances {
        let Some(image) = instance.image.as_ref() else {
            continue;
        };
        let object = open_for_decoding(instance)?;
        for f in 0..image.frames {
            decode_frame_of(&object, instance, f)?;
        }
        bytes += u64::from(image.rows)
            * u64::from(image.columns)
            * u64::from(image.frames)
            * u64::from(image.samples_per_pixel)
            * u64::from(image.bits_allocated.div_ceil(8));
    }
    Ok(bytes)
}

fn decode(seconds: f64) -> Result<(), AppError> {
    use dokuei_review::dicom::testdata::{Collection, reference_python};
    use std::collections::BTreeMap;
    // Every corpus file Dokuei decodes, by family.
    let mut families: BTreeMap<&str, Vec<PathBuf>> = BTreeMap::new();
    for collection in Collection::ALL {
        // File by file: the corpora hold one instance in several transfer syntaxes, which an
        // index of the whole folder would merge as duplicates.
        let (sources, _) = dokuei_review::dicom::source::discover(&[collection.dir()]);
        for source in sources {
            let dokuei_review::dicom::Source::File { path } = &source else {
                continue;
            };
            let Ok(instance) = instance_of(path) else {
                continue;
            };
            let Some(family) = decode_family(&instance.transfer_syntax) else {
                continue;
            };
            if decode_all(std::slice::from_ref(&instance)).is_ok() {
                families.entry(family).or_default().push(path.clone());
            }
        }
    }
    if families.is_empty() {
        return Err(AppError::new(
            ErrorCode::NotFound,
            "no test corpus: run `bash scripts/setup.sh --test`",
        ));
    }
    // pydicom first, on the same files; it names the ones it cannot decode.
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/reference/pydicom_decode_bench.py");
    let mut child = Command::new(reference_python())
        .arg(&script)
        .arg(seconds.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(fail)?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or_else(|| fail("no stdin"))?;
        for (family, files) in &families {
            for f in files {
                writeln!(stdin, "{family}\t{}", f.display()).map_err(fail)?;
            }
        }
    }
    let output = child.wait_with_output().map_err(fail)?;
    let reference: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| fail(format!("the pydicom reference did not run: {e}")))?;
    println!(
        "decode throughput, MB/s of decoded stored values, one thread, {} build",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "{:<24} {:>6} {:>12} {:>12} {:>8}",
        "family", "files", "Dokuei", "pydicom", "ratio"
    );
    for (family, files) in &families {
        let theirs = &reference[*family];
        // Both sides decode the files pydicom decodes.
        let both: Vec<PathBuf> = theirs["files"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let only_dokuei = files.len() - both.len();
        // Where pydicom decodes none of the files, Dokuei's throughput is shown on all of them.
        let timed: &[PathBuf] = if both.is_empty() { files } else { &both };
        let instances = timed
            .iter()
            .map(|f| instance_of(f))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut rounds, mut bytes) = (0u32, 0u64);
        let start = Instant::now();
        while rounds < 3 || start.elapsed().as_secs_f64() < seconds {
            bytes += decode_all(&instances)?;
            rounds += 1;
        }
        let ours = bytes as f64 / start.elapsed().as_secs_f64() / 1e6;
        if both.is_empty() {
            println!(
                "{family:<24} {:>6} {ours:>12.1} {:>12} {:>8}",
                files.len(),
                "fails",
                "-"
            );
            continue;
        }
        let py = theirs["mb_per_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{family:<24} {:>6} {:>12.1} {:>12.1} {:>7.2}×{}",
            both.len(),
            ours,
            py,
            ours / py,
            if only_dokuei > 0 {
                format!("  (+{only_dokuei} file(s) only Dokuei decodes)")
            } else {
                String::new()
            }
        );
    }
    println!("target: Dokuei ≥ pydicom (ratio ≥ 1) in every family");
    Ok(())
}

fn fail(e: impl std::fmt::Display) -> AppError {
    AppError::new(ErrorCode::WriteFailed, e.to_string())
}

pub fn synth_cxr(
    file: &Path,
    size: u16,
    opacities: usize,
    seed: u64,
    description: &str,
) -> Result<(), AppError> {
    let cxr = dokuei_review::dicom::synth::SyntheticCxr {
        size,
        spacing: 0.7 * 512.0 / f64::from(size.max(1)),
        seed,
        opacities,
        description: description.to_owned(),
        ..Default::default()
    };
    let planted = cxr.write(file).map_err(fail)?;
    println!("{}", serde_json::to_string(&planted).map_err(fail)?);
    Ok(())
}

/// What `dokuei synth-ct` writes.
pub struct SynthCtArgs {
    pub slices: usize,
    pub size: u16,
    pub spheres: Vec<String>,
    pub seed: u64,
    pub noise_hu: f64,
    pub description: String,
    pub slice_spacing: f64,
    pub series_number: i32,
}

pub fn synth_ct(dir: &Path, a: &SynthCtArgs) -> Result<(), AppError> {
    let SynthCtArgs {
        slices,
        size,
        seed,
        noise_hu,
        slice_spacing,
        series_number,
        ..
    } = *a;
    if slice_spacing.is_nan() || slice_spacing <= 0.0 {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            "--slice-spacing must be positive",
        ));
    }
    let spheres = a
        .spheres
        .iter()
        .map(|s| {
            let v: Vec<f64> = s.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            match v[..] {
                [x, y, z, radius, hu] => Ok(dokuei_review::dicom::synth::Sphere {
                    center: [x, y, z],
                    radius,
                    hu,
                }),
                _ => Err(AppError::new(
                    ErrorCode::InvalidArgument,
                    format!("`{s}` is not X,Y,Z,RADIUS,HU"),
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ct = SyntheticCt {
        spheres,
        slices,
        rows: size,
        columns: size,
        pixel_spacing: [0.7, 0.7],
        origin: [-0.35 * f64::from(size), -0.35 * f64::from(size), -400.0],
        series_description: a.description.clone(),
        seed,
        noise_hu,
        slice_spacing,
        series_number,
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

fn ledger(rows: usize, appends: usize) -> Result<(), AppError> {
    use dokuei_review::ledger::{
        Action, AnalysisRecord, Anchoring, DecisionFilter, DecisionRecord, FindingRecord, Format,
        Identifiers, InstallationKey, Ledger, Role, SignOffRecord, StudyRecord, Witness,
    };

    let dir = std::env::temp_dir().join(format!("dokuei-bench-ledger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let ledger = Ledger::open(&dir.join("ledger.sqlite3"))?;
    let reader = ledger.add_reader("Dr. Bench", Role::Radiologist)?;
    let study = ledger.record_study(&StudyRecord {
        study_uid: "1.2.826.0.1.3680043.10.1".into(),
        accession: "BENCH1".into(),
        modality: "CT".into(),
        study_date: "20260101".into(),
        patient_key: "bench".into(),
    })?;
    let analysis = ledger.record_analysis(&AnalysisRecord {
        study_id: study,
        series_uid: "1.2.826.0.1.3680043.10.2".into(),
        model_id: "ct-nodule-demo".into(),
        model_version: "1.0.0".into(),
        model_sha256: "0".repeat(64),
        execution_provider: "CPU".into(),
        thresholds_json: "{}".into(),
        started_at: "2026-01-01T09:00:00.000Z".into(),
        finished_at: "2026-01-01T09:00:01.000Z".into(),
    })?;
    let finding = ledger.record_finding(&FindingRecord {
        analysis_id: analysis,
        label: "nodule".into(),
        score: 0.9,
        geometry_json: r#"{"box":[10,10,20,20]}"#.into(),
        mask_sha256: "0".repeat(64),
        shown_at: "2026-01-01T09:00:02.000Z".into(),
    })?;
    let template = DecisionRecord {
        study_id: study,
        finding_id: Some(finding),
        action: Action::Confirm,
        label: "nodule".into(),
        reject_reason: None,
        reason_text: String::new(),
        geometry_json: String::new(),
        reader_id: reader,
        supersedes_id: None,
    };

    // Appends as the app makes them: one decision, one synchronous=FULL transaction.
    let t = Instant::now();
    for _ in 0..appends {
        ledger.record_decision(&template)?;
    }
    let per_s = appends as f64 / t.elapsed().as_secs_f64();

    // The same appends with checkpoints on (a second ledger, anchored as the app opens it),
    // against them off, in alternating blocks so that the disk's drift hits both alike; and a
    // reading mix in which every 10th append is a sign-off (a checkpoint, and a line synced
    // to the checkpoint log, each time).
    let anchored_path = dir.join("anchored.sqlite3");
    let mut anchored = Ledger::open(&anchored_path)?;
    anchored.anchor(Anchoring {
        key: InstallationKey::load_or_create(&InstallationKey::path_for(&anchored_path))
            .map_err(fail)?,
        log: Some(dir.join("witness/checkpoints.log")),
    });
    let mut rates = [[0f64; 2]; 2]; // [decisions only, with sign-offs][off, on]
    for (mix, with_sign_offs) in [false, true].into_iter().enumerate() {
        let mut elapsed = [0f64; 2];
        let mut counts = [0usize; 2];
        for block in 0..(appends / 100).max(1) {
            // Which side goes first alternates, so that neither always follows the other's
            // sync (or SQLite's WAL checkpoint).
            let order = if block % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let l = [&ledger, &anchored][side];
                let reader = l.add_reader("Dr. Bench", Role::Radiologist)?;
                let t = Instant::now();
                let mut study_id = 0;
                for i in 0..100 {
                    if i % 10 == 0 {
                        study_id = l.record_study(&StudyRecord {
                            study_uid: format!(
                                "1.2.826.0.1.3680043.10.9.{side}.{mix}.{}",
                                counts[side] + i
                            ),
                            accession: "BENCH".into(),
                            modality: "CT".into(),
                            study_date: "20260101".into(),
                            patient_key: "bench".into(),
                        })?;
                    }
                    if with_sign_offs && i % 10 == 9 {
                        l.record_sign_off(&SignOffRecord {
                            study_id,
                            reader_id: reader,
                            confirmed: 0,
                            edited: 0,
                            rejected: 0,
                            added: 8,
                            impression: String::new(),
                        })?;
                    } else {
                        l.record_decision(&DecisionRecord {
                            study_id,
                            finding_id: None,
                            action: Action::Add,
                            geometry_json: r#"{"box":[1,2,3,4]}"#.into(),
                            reader_id: reader,
                            ..template.clone()
                        })?;
                    }
                }
                elapsed[side] += t.elapsed().as_secs_f64();
                counts[side] += 100;
            }
        }
        rates[mix] = [counts[0] as f64 / elapsed[0], counts[1] as f64 / elapsed[1]];
    }
    let checkpoints_made = anchored.checkpoints()?.len();
    drop(anchored);
    // Reference: plain INSERTs of the same width under the same pragmas, no chain.
    let reference = plain_sqlite_inserts(&dir.join("plain.sqlite3"), appends).map_err(fail)?;

    let t = Instant::now();
    ledger.bulk_decisions_for_benchmark(rows, &template)?;
    let build = t.elapsed();

    let rss_before = peak_rss().unwrap_or(0);
    let mut timings = Vec::new();
    for (format, name) in [
        (Format::Csv, "export.csv"),
        (Format::JsonLines, "export.jsonl"),
    ] {
        let out = std::fs::File::create(dir.join(name)).map_err(fail)?;
        let mut out = std::io::BufWriter::new(out);
        let t = Instant::now();
        let n = ledger.export_decisions(
            &DecisionFilter::default(),
            format,
            &Identifiers::Pseudonymised { key: vec![7; 32] },
            &mut out,
        )?;
        timings.push((
            name,
            n,
            t.elapsed(),
            std::fs::metadata(dir.join(name))
                .map(|m| m.len())
                .unwrap_or(0),
        ));
    }
    let rss_after_export = peak_rss().unwrap_or(0);
    let t = Instant::now();
    let report = ledger.verify()?;
    let verify_time = t.elapsed();
    // Against a witness: checkpoints of every 20th entry (a sign-off every 20 entries or so:
    // study, analysis, findings, decisions), held in the ledger and in the checkpoint log.
    let mut ledger = ledger;
    ledger.anchor(Anchoring {
        key: InstallationKey::load_or_create(&dir.join("ledger.sqlite3.checkpoint-key"))
            .map_err(fail)?,
        log: Some(dir.join("witness/big.log")),
    });
    let witness_checkpoints = ledger.checkpoints_for_benchmark(20)?;
    let t = Instant::now();
    let witness = Witness::read(&dir.join("witness/big.log")).map_err(fail)?;
    let witnessed = ledger.verify_with(&[witness], None)?;
    let witnessed_time = t.elapsed();

    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "ledger benchmark ({} build), {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        dir.display()
    );
    println!(
        "appends, synchronous=FULL, 1 decision per transaction: {per_s:.0}/s (plain SQLite inserts, same pragmas, no chain: {reference:.0}/s; ratio {:.2})",
        per_s / reference
    );
    println!(
        "building {rows} decisions in one transaction: {:.2} s",
        build.as_secs_f64()
    );
    for (name, n, d, bytes) in &timings {
        println!(
            "export {n} decisions to {name}: {:.2} s ({:.0} MiB)",
            d.as_secs_f64(),
            mib(*bytes)
        );
    }
    println!(
        "peak RSS before exports {:.1} MiB, after {:.1} MiB (growth {:.1} MiB: constant memory)",
        mib(rss_before),
        mib(rss_after_export),
        mib(rss_after_export.saturating_sub(rss_before))
    );
    println!(
        "verify {} chain entries: {:.2} s, intact: {}",
        report.rows_checked,
        verify_time.as_secs_f64(),
        report.is_intact()
    );
    println!(
        "appends with checkpoints on (interleaved with the same appends off): decisions only {:.0}/s vs {:.0}/s, ratio {:.2}; every 10th a sign-off (a checkpoint each) {:.0}/s vs {:.0}/s, ratio {:.2} ({checkpoints_made} checkpoints made)",
        rates[0][1],
        rates[0][0],
        rates[0][1] / rates[0][0],
        rates[1][1],
        rates[1][0],
        rates[1][1] / rates[1][0],
    );
    println!(
        "verify {} chain entries against a witness of {witness_checkpoints} checkpoints (and the ledger's own): {:.2} s (plain verify {:.2} s; ratio {:.2}), {}",
        witnessed.rows_checked,
        witnessed_time.as_secs_f64(),
        verify_time.as_secs_f64(),
        witnessed_time.as_secs_f64() / verify_time.as_secs_f64(),
        witnessed.summary()
    );
    println!(
        "targets: ≥ 1000 appends/s; export ≤ 5 s; verify ≤ 3 s; constant memory during export; appends with checkpoints ≥ 0.9× without; verify of 1M entries against a witness ≤ 2 s"
    );
    drop(ledger);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn plain_sqlite_inserts(path: &Path, n: usize) -> Result<f64, String> {
    dokuei_review::ledger::plain_insert_reference(path, n)
}

/// Runs of each side in `bench analyse`: the machine's noise is ±20% run to run.
const RUNS: usize = 3;

fn analyse(slices: usize, threads: usize) -> Result<(), AppError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let study = std::env::temp_dir().join(format!("dokuei-bench-analyse-{slices}"));
    if !study.join("ground_truth.json").exists() {
        let status = Command::new("python3")
            .arg(root.join("sample-studies/generate.py"))
            .arg(std::env::current_exe().map_err(fail)?)
            .arg(&study)
            .args([
                "--seed",
                "1",
                "--slices",
                &slices.to_string(),
                "--size",
                "256",
            ])
            .status()
            .map_err(fail)?;
        if !status.success() {
            return Err(fail("generating the study failed"));
        }
    }
    let model_dir = root.join("models/ct-nodule-demo");
    let series_dir = study.join("series");
    let paths = [series_dir.clone()];
    let _ = open_study(&paths)?; // warm the page cache
    // Loaded once per process, like Python's `import onnxruntime` before its timer starts.
    let runtime = dokuei_review::OnnxRuntime::load(None)?;
    let python = dokuei_review::dicom::testdata::reference_python();
    println!(
        "ct-nodule-demo on {slices} slices of 256×256, {threads} thread(s), {} build; {RUNS} runs of each, interleaved, medians",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 1..=RUNS {
        let t = Instant::now();
        let index = open_study(&paths)?;
        let indexed = t.elapsed().as_secs_f64();
        let series = *series_list(&index)
            .first()
            .ok_or_else(|| fail("no series"))?;
        let cancel = AtomicBool::new(false);
        // A fresh cache each run: the model is loaded each time, as the Python pipeline does.
        let (model, analysis) = dokuei_review::analysis::analyse_series(
            &runtime,
            &Default::default(),
            &model_dir,
            series,
            0,
            Some(threads),
            &mut |_| {},
            &cancel,
        )?;
        let wall = t.elapsed().as_secs_f64();
        println!(
            "  run {run}: Dokuei {wall:.2} s end to end (index, model load, decode, pre-process, run, post-process), session.run {:.2} s, {} finding(s)",
            analysis.inference_seconds,
            analysis.findings.len(),
        );
        let ms = |s: f64| s * 1000.0;
        println!(
            "         where the rest went: index {:.0} ms, model load {:.0} ms, pipeline outside session.run {:.0} ms (decode, pre-process, tensors in and out, post-process), findings {:.0} ms",
            ms(indexed),
            ms(wall - indexed - analysis.wall_seconds),
            ms(analysis.wall_seconds - analysis.inference_seconds - analysis.findings_seconds),
            ms(analysis.findings_seconds),
        );
        ours.push((wall, analysis.inference_seconds));
        let (onnx_path, window) = {
            let model = model.lock().unwrap_or_else(|e| e.into_inner());
            let window = model.manifest.preprocess.windows.first().copied();
            (
                model.onnx_path.clone(),
                window.ok_or_else(|| fail("no window"))?,
            )
        };
        // Our session (and its thread pool) is gone before Python starts.
        drop(model);
        let reference = Command::new(&python)
            .arg(root.join("scripts/reference/python_analyse.py"))
            .arg(&series_dir)
            .arg(&onnx_path)
            .args([
                window.center.to_string(),
                window.width.to_string(),
                threads.to_string(),
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok());
        match reference {
            Some(v) => {
                let py = v["seconds"].as_f64().unwrap_or(f64::NAN);
                let py_run = v["run_seconds"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "         Python (pydicom + numpy + onnxruntime) {py:.2} s end to end, session.run {py_run:.2} s"
                );
                theirs.push(py);
            }
            None => {
                eprintln!("the Python reference did not run (run `bash scripts/setup.sh --test`)")
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let wall = median(ours.iter().map(|o| o.0).collect());
    let run = median(ours.iter().map(|o| o.1).collect());
    let overheads: Vec<f64> = ours.iter().map(|(w, r)| (w - r) / r).collect();
    println!(
        "Dokuei: {wall:.2} s end to end, session.run {run:.2} s, overhead {:.0}% of run time (median of the runs), peak RSS {:.0} MiB",
        100.0 * median(overheads),
        peak_rss().unwrap_or(0) as f64 / 1048576.0
    );
    if !theirs.is_empty() {
        let py = median(theirs.clone());
        let ratios: Vec<f64> = theirs.iter().zip(&ours).map(|(p, o)| p / o.0).collect();
        println!(
            "Python: {py:.2} s end to end; Dokuei is {:.2}× faster (median of the per-run ratios)",
            median(ratios)
        );
    }
    println!(
        "targets: overhead ≤ 10% of session.run; Dokuei ≥ 1.5× faster than the Python pipeline"
    );
    Ok(())
}
