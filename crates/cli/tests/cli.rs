//! The `dokuei` binary as a user runs it. All integration tests of the CLI live in this file.

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use dokuei_review::dicom::synth::{explicit_le_element, explicit_le_header};

fn dokuei() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dokuei"))
}

#[test]
fn system_prints_the_onnx_runtime_in_use() {
    let out = dokuei().arg("system").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ONNX Runtime 1.31.1 from "), "{stdout}");
    assert!(stdout.contains("models will run on: CPU"), "{stdout}");
    assert!(stdout.contains("not for clinical use"), "{stdout}");
}

#[test]
fn system_json_is_machine_readable() {
    let out = dokuei().args(["system", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["onnx_runtime"]["version"], "1.31.1");
    assert_eq!(v["app"]["name"], "Dokuei");
}

#[test]
fn a_missing_library_is_a_clear_error_and_exit_code_3() {
    let missing = "/nonexistent/dokuei-cli-test/libonnxruntime.so.1.31.1";
    let out = dokuei()
        .arg("system")
        .env("DOKUEI_ORT_LIB", missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("[onnx_runtime_missing]"), "{stderr}");
    assert!(stderr.contains(missing), "{stderr}");
    assert!(stderr.contains("scripts/setup.sh"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_library_of_the_wrong_kind_is_named_in_the_error() {
    let dir = std::env::temp_dir().join(format!("dokuei-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, b"\x7fELF but not really").unwrap();
    let out = dokuei()
        .arg("system")
        .env("DOKUEI_ORT_LIB", &fake)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("[onnx_runtime_load_failed]"), "{stderr}");
    assert!(stderr.contains(&fake.display().to_string()), "{stderr}");
}

fn synthetic_series(dir: &std::path::Path, slices: usize) {
    let out = dokuei()
        .args([
            "synth-ct",
            &dir.display().to_string(),
            "--slices",
            &slices.to_string(),
            "--size",
            "128",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn info_lists_the_study_tree_and_names_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_series(dir.path(), 10);
    std::fs::write(dir.path().join("corrupt.dcm"), [0u8; 10]).unwrap();
    let out = dokuei().arg("info").arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Patient Synthetic^Phantom"), "{stdout}");
    assert!(
        stdout.contains("stack 1: axial 128×128, 10 slice(s), spacing 2.50 mm"),
        "{stdout}"
    );
    assert!(stdout.contains("Problems (1 file(s)):"), "{stdout}");
    assert!(stdout.contains("corrupt.dcm: not a DICOM file"), "{stdout}");
}

#[test]
fn render_writes_a_png_with_the_lung_window() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_series(&dir.path().join("ct"), 6);
    let png = dir.path().join("slice.png");
    let out = dokuei()
        .arg("render")
        .arg(dir.path().join("ct"))
        .args(["--slice", "3", "--window", "lung", "-o"])
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("window centre -600 width 1500"));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 128);
}

#[test]
fn render_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_series(dir.path(), 3);
    let run = |args: &[&str]| {
        let out = dokuei()
            .arg("render")
            .arg(dir.path())
            .args(args)
            .args(["-o", "/tmp/never.png"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--slice", "9"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("the stack has 3 slice(s); slice 9 does not exist"),
        "{err}"
    );
    let (code, err) = run(&["--window", "sideways"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("no window preset `sideways`"), "{err}");
    let (code, err) = run(&["--window", "40,-5"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid_argument"), "{err}");
}

/// A Part 10 file in Deflated Explicit VR Little Endian whose data set inflates to `data_set`.
fn deflated_file(data_set: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut meta = Vec::new();
    meta.extend(explicit_le_element(0x0002, 0x0001, b"OB", &[0, 1]));
    meta.extend(explicit_le_element(
        0x0002,
        0x0002,
        b"UI",
        b"1.2.840.10008.5.1.4.1.1.2\0",
    ));
    meta.extend(explicit_le_element(0x0002, 0x0003, b"UI", b"2.25.1234\0"));
    meta.extend(explicit_le_element(
        0x0002,
        0x0010,
        b"UI",
        b"1.2.840.10008.1.2.1.99",
    ));
    let mut out = vec![0u8; 128];
    out.extend(b"DICM");
    out.extend(explicit_le_element(
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    ));
    out.extend(meta);
    let mut z = flate2::write::DeflateEncoder::new(out, flate2::Compression::best());
    z.write_all(data_set).unwrap();
    z.finish().unwrap()
}

/// Runs `dokuei ARGS` under GNU time; returns its exit code, stderr and peak RSS in MiB.
fn dokuei_peak_rss(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> (Option<i32>, String, f64) {
    let dir = tempfile::tempdir().unwrap();
    let rss = dir.path().join("rss");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_dokuei"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("GNU time is missing: run `bash scripts/setup.sh --test`");
    let kib: f64 = std::fs::read_to_string(&rss)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        kib / 1024.0,
    )
}

/// Issue 13: a 5.8 KB deflated file made `dokuei render` grow to 3.1 GB before it said "not
/// valid DICOM". Inflation is now Dokuei's own, under a cap, and the inflated data set's lengths
/// are checked before anything is parsed; a header that declares a huge image over a few bytes
/// of pixel data is refused before anything is allocated. Peak RSS is measured for each.
#[test]
fn bombs_are_refused_quickly_within_the_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = {
        let ok = dir.path().join("ok");
        synthetic_series(&ok, 1);
        dokuei_peak_rss(&["info".as_ref(), ok.as_os_str()], &[]).2
    };

    // An element inside the deflated data set declares 4 GiB over 64 KiB of zeros.
    let mut data = explicit_le_element(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0");
    data.extend(explicit_le_header(0x7FE0, 0x0010, b"OB", 0xFFFF_FF00));
    data.extend(vec![0u8; 65_536]);
    let liar = dir.path().join("liar.dcm");
    std::fs::write(&liar, deflated_file(&data)).unwrap();
    assert!(std::fs::metadata(&liar).unwrap().len() < 10_000);
    let (code, out, rss) = dokuei_peak_rss(&["info".as_ref(), liar.as_os_str()], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("liar.dcm") && out.contains("declares 4294967040 bytes"),
        "{out}"
    );
    println!(
        "deflated length bomb: peak RSS {rss:.1} MiB (a valid one-slice study: {baseline:.1} MiB)"
    );
    assert!(rss < baseline + 32.0, "peak RSS {rss:.1} MiB");

    // 256 MiB of zeros in a private element, deflated to a few hundred KiB, under a 64 MiB cap.
    let mut data = explicit_le_element(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0");
    data.extend(explicit_le_element(
        0x0009,
        0x1010,
        b"OB",
        &vec![0u8; 256 << 20],
    ));
    let zeros = dir.path().join("zeros.dcm");
    std::fs::write(&zeros, deflated_file(&data)).unwrap();
    drop(data);
    let (code, out, rss) = dokuei_peak_rss(
        &["info".as_ref(), zeros.as_os_str()],
        &[("DOKUEI_MAX_DECODE_MB", "64")],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("zeros.dcm") && out.contains("more than Dokuei reads"),
        "{out}"
    );
    println!(
        "deflate bomb of {} KiB (256 MiB inflated), cap 64 MiB: peak RSS {rss:.1} MiB",
        std::fs::metadata(&zeros).unwrap().len() >> 10
    );
    assert!(rss < baseline + 64.0 + 32.0, "peak RSS {rss:.1} MiB");

    // 65535 × 65535 × 1000 frames declared over 200 bytes of pixel data.
    let mut slice = std::fs::read_dir(dir.path().join("ok"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "dcm"))
        .map(|p| std::fs::read(p).unwrap())
        .unwrap();
    let rows = slice
        .windows(4)
        .position(|w| w == [0x28, 0, 0x10, 0])
        .unwrap();
    slice[rows + 8..rows + 10].copy_from_slice(&u16::MAX.to_le_bytes());
    slice[rows + 18..rows + 20].copy_from_slice(&u16::MAX.to_le_bytes());
    let pixels = slice
        .windows(4)
        .position(|w| w == [0xE0, 0x7F, 0x10, 0])
        .unwrap();
    slice.truncate(pixels + 12 + 200);
    slice[pixels + 8..pixels + 12].copy_from_slice(&200u32.to_le_bytes());
    let huge = dir.path().join("huge");
    std::fs::create_dir(&huge).unwrap();
    std::fs::write(huge.join("huge.dcm"), &slice).unwrap();
    let png = dir.path().join("never.png");
    let (code, out, rss) = dokuei_peak_rss(
        &[
            "render".as_ref(),
            huge.as_os_str(),
            "-o".as_ref(),
            png.as_os_str(),
        ],
        &[],
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("huge.dcm") && out.contains("implausible"),
        "{out}"
    );
    println!("65535² image over 200 bytes: peak RSS {rss:.1} MiB");
    assert!(rss < baseline + 32.0, "peak RSS {rss:.1} MiB");
}

/// A ledger with one study, one analysis, two findings and their decisions, made through the
/// library as the app would.
fn small_ledger(path: &std::path::Path) {
    use dokuei_ledger::*;
    let ledger = Ledger::open(path).unwrap();
    let reader = ledger.add_reader("Dr. Tanaka", Role::Radiologist).unwrap();
    let study = ledger
        .record_study(&StudyRecord {
            study_uid: "1.2.392.200036.9116.2.1".into(),
            accession: "A-77".into(),
            modality: "CT".into(),
            study_date: "20260102".into(),
            patient_key: "k".into(),
        })
        .unwrap();
    let analysis = ledger
        .record_analysis(&AnalysisRecord {
            study_id: study,
            series_uid: "1.2.392.200036.9116.2.1.1".into(),
            model_id: "ct-nodule-demo".into(),
            model_version: "1.0.0".into(),
            model_sha256: "e3".repeat(32),
            execution_provider: "CPU".into(),
            thresholds_json: "{}".into(),
            started_at: "2026-01-02T10:00:00.000Z".into(),
            finished_at: "2026-01-02T10:00:03.000Z".into(),
        })
        .unwrap();
    for (score, action) in [(0.9, Action::Confirm), (0.6, Action::Reject)] {
        let finding = ledger
            .record_finding(&FindingRecord {
                analysis_id: analysis,
                label: "nodule".into(),
                score,
                geometry_json: "{}".into(),
                mask_sha256: "00".repeat(32),
                shown_at: "2026-01-02T10:00:04.000Z".into(),
            })
            .unwrap();
        ledger
            .record_decision(&DecisionRecord {
                study_id: study,
                finding_id: Some(finding),
                action,
                label: "nodule".into(),
                reject_reason: (action == Action::Reject).then_some(RejectReason::Artefact),
                reason_text: String::new(),
                geometry_json: String::new(),
                reader_id: reader,
                supersedes_id: None,
            })
            .unwrap();
    }
}

#[test]
fn ledger_verify_passes_then_names_a_row_changed_with_sqlite3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    small_ledger(&path);
    let out = dokuei()
        .args(["ledger", "verify", "--ledger"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("is internally consistent: 7 chain entries verified")
            && stdout.contains("internal consistency only; no external checkpoint checked"),
        "{stdout}"
    );

    // Behind Dokuei's back, with the sqlite3 command-line tool.
    let sql = "DROP TRIGGER decisions_no_update; UPDATE decisions SET action = 'confirm', reject_reason = NULL WHERE id = 2;";
    let status = Command::new("sqlite3")
        .arg(&path)
        .arg(sql)
        .status()
        .expect("sqlite3 is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success());
    let out = dokuei()
        .args(["ledger", "verify", "--ledger"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("[ledger_tampered]") && stderr.contains("decisions row 2"),
        "{stderr}"
    );
}

/// The attack of issue 16: with the stock sqlite3 tool, drop the triggers, delete the last
/// decision with its chain entry (and the checkpoints of it), put the triggers back. Without a
/// witness the ledger is internally consistent, and `verify` says that is all it checked; with
/// the checkpoint log as witness it fails, naming the truncation.
#[test]
fn ledger_verify_with_the_checkpoint_log_detects_a_truncation_made_with_sqlite3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let log = dir.path().join("elsewhere/checkpoints.log");
    small_ledger(&path);
    let run = |args: &[&str], witness: bool| {
        let mut cmd = dokuei();
        cmd.args(args).arg("--ledger").arg(&path);
        if witness {
            cmd.arg("--witness").arg(&log);
        }
        cmd.env("DOKUEI_CHECKPOINT_LOG", dir.path().join("unused.log"))
            .output()
            .unwrap()
    };
    let mut cmd = dokuei();
    let out = cmd
        .args(["ledger", "checkpoint", "--ledger"])
        .arg(&path)
        .env("DOKUEI_CHECKPOINT_LOG", &log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        line.starts_with("dokuei-checkpoint/1 ") && line.contains(" 7 "),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), line);
    let key = run(&["ledger", "key"], false);
    assert!(
        String::from_utf8_lossy(&key.stdout).contains(&line.split(' ').nth(5).unwrap().to_owned())
    );

    let ok = run(&["ledger", "verify"], true);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success() && stdout.contains("is intact: 7 chain entries verified"),
        "{stdout}"
    );

    let triggers: String = {
        let out = Command::new("sqlite3")
            .arg(&path)
            .arg("SELECT sql || ';' FROM sqlite_schema WHERE type = 'trigger'")
            .output()
            .expect("sqlite3 is missing: run `bash scripts/setup.sh --test`");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let drop: String = triggers
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|name| format!("DROP TRIGGER {name};"))
        .collect();
    let sql = format!(
        "{drop} DELETE FROM chain WHERE seq = 7; DELETE FROM decisions WHERE id = 2; DELETE FROM checkpoints;"
    );
    assert!(
        Command::new("sqlite3")
            .arg(&path)
            .arg(&sql)
            .status()
            .unwrap()
            .success()
    );
    // The triggers gone: the schema check fails even without a witness.
    let out = run(&["ledger", "verify"], false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("has been dropped"), "{stderr}");
    // Put back: internally consistent, and said to be no more than that.
    assert!(
        Command::new("sqlite3")
            .arg(&path)
            .arg(&triggers)
            .status()
            .unwrap()
            .success()
    );
    let out = run(&["ledger", "verify"], false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("no external checkpoint checked"),
        "{stdout}"
    );
    let out = run(&["ledger", "verify"], true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("covers 7 chain entries but the ledger now has 6"),
        "{stderr}"
    );
}

#[test]
fn ledger_export_is_pseudonymised_unless_asked_and_stats_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    small_ledger(&path);
    let csv = dir.path().join("out.csv");
    let out = dokuei()
        .args([
            "ledger", "export", "--format", "csv", "--action", "reject", "--ledger",
        ])
        .arg(&path)
        .arg("-o")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("exported 1 decision(s)"));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        !text.contains("1.2.392.200036.9116.2.1")
            && text.contains("psn-")
            && text.contains("artefact"),
        "{text}"
    );

    let jsonl = dir.path().join("out.jsonl");
    let out = dokuei()
        .args([
            "ledger",
            "export",
            "--format",
            "jsonl",
            "--identified",
            "--ledger",
        ])
        .arg(&path)
        .arg("-o")
        .arg(&jsonl)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&jsonl).unwrap();
    // Two decisions, then the trailer: a signed checkpoint of the ledger as exported.
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("{\"checkpoint\":\"dokuei-checkpoint/1 "),
        "{text}"
    );
    assert!(
        text.contains("\"study\":\"1.2.392.200036.9116.2.1\""),
        "{text}"
    );

    let out = dokuei()
        .args(["ledger", "stats", "--ledger"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("ct-nodule-demo")
            && stdout.contains("50%")
            && stdout.contains("rejected as artefact: 1"),
        "{stdout}"
    );
}

#[test]
fn a_ledger_from_a_newer_dokuei_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    small_ledger(&path);
    Command::new("sqlite3")
        .arg(&path)
        .arg("PRAGMA user_version = 42;")
        .status()
        .unwrap();
    let out = dokuei()
        .args(["ledger", "verify", "--ledger"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("[ledger_too_new]") && stderr.contains("schema version 42"),
        "{stderr}"
    );
}

/// A fixed-weight test segmenter (a soft threshold at 1000–1500 HU; never shipped) with its
/// manifest, in `dir`.
fn test_segmenter(dir: &std::path::Path) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let onnx = dir.join("model.onnx");
    let status = Command::new(root.join(".dokuei/venv/bin/python"))
        .arg(root.join("scripts/reference/make_test_model.py"))
        .arg(&onnx)
        .args(["segmenter", "1"])
        .status()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success());
    let out = Command::new("sha256sum").arg(&onnx).output().unwrap();
    let sha = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let manifest = format!(
        r#"[model]
id = "test-segmenter"
name = "Test segmenter (fixed weights)"
version = "0.0.1"
sha256 = "{sha}"
file = "model.onnx"
publisher = "Dokuei tests"
intended_use = "Testing dokuei analyse"
modality = "CT"
body_part = "CHEST"
clinical_use = "demonstration — not for clinical use"
model_card = "MODEL_CARD.md"

[input]
name = "image"
layout = "NCHW"
dtype = "float32"
shape = [-1, 1, -1, -1]
channels = "one_window"

[preprocess]
windows = [{{ center = 1250.0, width = 500.0 }}]
normalise = {{ kind = "min_max" }}

[output]
kind = "segmentation"
names = ["probabilities"]

[[labels]]
name = "dense nodule"
color = [255, 60, 60, 150]
threshold = 0.5
min_size = 50.0

[postprocess]
components_3d = true
"#
    );
    std::fs::write(dir.join("manifest.toml"), manifest).unwrap();
}

#[test]
fn analyse_finds_a_planted_sphere_in_a_dicom_series() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("ct");
    let out = dokuei()
        .args([
            "synth-ct",
            &series.display().to_string(),
            "--slices",
            "20",
            "--size",
            "64",
            "--sphere",
            "3,-2,-376,6,1500",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    test_segmenter(&model);
    let json = dir.path().join("findings.json");
    let out = dokuei()
        .arg("analyse")
        .arg(&series)
        .arg("--model")
        .arg(&model)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("dense nodule")
            && stdout.contains("on CPU")
            && stdout.contains("NOT FOR CLINICAL USE"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("analysing: 20/20 slices"));
    let findings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let f = &findings.as_array().unwrap()[0];
    assert_eq!(findings.as_array().unwrap().len(), 1, "{findings:#}");
    let c: Vec<f64> = f["centroid_lps_mm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let off = ((c[0] - 3.0).powi(2) + (c[1] + 2.0).powi(2) + (c[2] + 376.0).powi(2)).sqrt();
    assert!(
        off < 1.5,
        "centroid {c:?} is {off:.2} mm from the sphere's centre"
    );
    assert_eq!(f["model"]["id"], "test-segmenter");
    assert_eq!(
        f["instance_uids"].as_array().unwrap().len() as u64,
        f["slices"][1].as_u64().unwrap() - f["slices"][0].as_u64().unwrap() + 1
    );
}

#[test]
fn analyse_refuses_a_model_whose_file_was_changed() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("ct");
    assert!(
        dokuei()
            .args([
                "synth-ct",
                &series.display().to_string(),
                "--slices",
                "3",
                "--size",
                "32"
            ])
            .status()
            .unwrap()
            .success()
    );
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    test_segmenter(&model);
    // Append a byte: the file no longer matches its manifest's SHA-256.
    let mut bytes = std::fs::read(model.join("model.onnx")).unwrap();
    bytes.push(0);
    std::fs::write(model.join("model.onnx"), bytes).unwrap();
    let out = dokuei()
        .arg("analyse")
        .arg(&series)
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(
        stderr.contains("[model_integrity]")
            && stderr.contains("model.onnx")
            && stderr.contains("refusing"),
        "{stderr}"
    );
}

/// The shipped demonstration model finds the planted nodules of phantoms it never saw
/// (seeds 3000–3002; training used 1000–1011, the model card 2000–2007): sensitivity ≥ 0.9 at
/// ≤ 1 false positive per scan, and every true finding's centroid lies inside its nodule.
#[test]
fn ct_nodule_demo_finds_planted_nodules_on_held_out_phantoms() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let (mut found, mut total, mut false_positives) = (0, 0, 0);
    let seeds = [3000, 3001, 3002];
    for seed in seeds {
        let study = dir.path().join(format!("study-{seed}"));
        let status = Command::new("python3")
            .arg(root.join("sample-studies/generate.py"))
            .arg(env!("CARGO_BIN_EXE_dokuei"))
            .arg(&study)
            .args([
                "--seed",
                &seed.to_string(),
                "--slices",
                "40",
                "--size",
                "256",
                "--nodules",
                "6",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let truth: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(study.join("ground_truth.json")).unwrap(),
        )
        .unwrap();
        let json = study.join("findings.json");
        let out = dokuei()
            .arg("analyse")
            .arg(study.join("series"))
            .arg("--model")
            .arg(root.join("models/ct-nodule-demo"))
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let findings: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let nodules = truth["nodules"].as_array().unwrap();
        let mut hit = vec![false; nodules.len()];
        for f in findings.as_array().unwrap() {
            let c: Vec<f64> = f["centroid_lps_mm"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let inside = nodules.iter().position(|n| {
                let d2 = (c[0] - n["x"].as_f64().unwrap()).powi(2)
                    + (c[1] - n["y"].as_f64().unwrap()).powi(2)
                    + (c[2] - n["z"].as_f64().unwrap()).powi(2);
                d2 <= n["radius"].as_f64().unwrap().powi(2)
            });
            match inside {
                Some(i) => hit[i] = true,
                None => false_positives += 1,
            }
        }
        found += hit.iter().filter(|h| **h).count();
        total += nodules.len();
    }
    let sensitivity = found as f64 / total as f64;
    let fp_per_scan = false_positives as f64 / seeds.len() as f64;
    eprintln!(
        "held-out: sensitivity {sensitivity:.3} ({found}/{total}), {fp_per_scan:.2} false positives per scan"
    );
    assert!(
        sensitivity >= 0.9,
        "sensitivity {sensitivity:.3} ({found}/{total})"
    );
    assert!(
        fp_per_scan <= 1.0,
        "{fp_per_scan:.2} false positives per scan"
    );
}

fn f32_file(path: &std::path::Path, values: &[f32]) {
    std::fs::write(
        path,
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
}

fn read_f32_file(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

/// For each demonstration model on a sample study of its kind: Dokuei's pre-processing equals
/// the numpy reference for the model's own manifest (≤ 1e-5), and every raw output equals
/// Python onnxruntime's on the same input (≤ 1e-4).
#[test]
fn demo_models_agree_with_python_on_sample_studies() {
    use dokuei_review::infer::model::Model;
    use dokuei_review::infer::preprocess::{SliceValues, prepare};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = dokuei_review::dicom::testdata::reference_python();
    let dir = tempfile::tempdir().unwrap();
    let runtime = dokuei_review::OnnxRuntime::load(None).unwrap();
    // (model, generator arguments, slice to compare)
    let cases: [(&str, &[&str], usize); 2] = [
        (
            "ct-nodule-demo",
            &[
                "--seed",
                "1",
                "--slices",
                "24",
                "--size",
                "256",
                "--nodules",
                "4",
            ],
            12,
        ),
        (
            "cxr-opacity-demo",
            &[
                "--radiograph",
                "--seed",
                "11",
                "--size",
                "512",
                "--opacities",
                "1",
            ],
            0,
        ),
    ];
    for (id, args, slice) in cases {
        let study = dir.path().join(id);
        let status = Command::new("python3")
            .arg(root.join("sample-studies/generate.py"))
            .arg(env!("CARGO_BIN_EXE_dokuei"))
            .arg(&study)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success());
        let index = dokuei_review::study::open_study(&[study.join("series")]).unwrap();
        let series = dokuei_review::study::series_by_number(&index, 1).unwrap();
        let stack = dokuei_review::study::stack_of(series, 0).unwrap();
        let volume = dokuei_review::dicom::volume::load_volume(
            series,
            &stack,
            &|_, _| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
        let values = volume.slice_values(slice).unwrap();
        let (rows, columns) = (stack.rows as usize, stack.columns as usize);
        let model_dir = root.join("models").join(id);
        let mut model = Model::load(&runtime, &model_dir, Some(1)).unwrap();
        let m = model.manifest.clone();
        let (shape, input, _) = prepare(
            &m.preprocess,
            m.input.layout,
            1,
            &[SliceValues {
                rows,
                columns,
                values: &values,
            }],
        )
        .unwrap();
        // Pre-processing against numpy.
        let (src, pre) = (study.join("values.f32"), study.join("pre.f32"));
        f32_file(&src, &values);
        let status = Command::new(&python)
            .arg(root.join("scripts/reference/preprocess.py"))
            .arg(model_dir.join("manifest.toml"))
            .args([rows.to_string(), columns.to_string(), "1".into()])
            .arg(&src)
            .arg(&pre)
            .status()
            .unwrap();
        assert!(status.success(), "{id}: preprocess.py failed");
        let worst = max_abs_diff(&input, &read_f32_file(&pre));
        eprintln!("{id}: pre-processing max abs difference {worst:e}");
        assert!(worst <= 1e-5, "{id}: pre-processing differs by {worst}");
        // Raw outputs against Python onnxruntime.
        let ours = model.run_f32(&shape, input.clone()).unwrap();
        let x = study.join("x.f32");
        f32_file(&x, &input);
        let dims = shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        for (name, out) in m.output.names.iter().zip(&ours) {
            let y = study.join(format!("{name}.f32"));
            let status = Command::new(&python)
                .arg(root.join("scripts/reference/ort_run.py"))
                .arg(model_dir.join(&m.model.file))
                .arg(&m.input.name)
                .arg(&x)
                .arg(&dims)
                .arg(name)
                .arg(&y)
                .status()
                .unwrap();
            assert!(status.success(), "{id}: ort_run.py failed");
            let worst = max_abs_diff(&out.values, &read_f32_file(&y));
            eprintln!("{id}: output `{name}` max abs difference {worst:e}");
            assert!(worst <= 1e-4, "{id}: output `{name}` differs by {worst}");
        }
    }
}

/// The radiograph demo on held-out radiographs (seeds 6000–6009; training used 3000–3059, the
/// model card 5000–5039): each opacity is found by a finding whose centroid lies inside it, with
/// an image-level score ≥ 0.5; clear radiographs have no finding. The sample studies behave the
/// same way.
#[test]
fn cxr_opacity_demo_marks_opacities_on_held_out_radiographs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let (mut found, mut total, mut false_positives, mut images) = (0, 0, 0, 0);
    for seed in 6000..6010u64 {
        let opacities = if seed % 2 == 0 { 1 } else { 0 };
        let study = dir.path().join(format!("cxr-{seed}"));
        let status = Command::new("python3")
            .arg(root.join("sample-studies/generate.py"))
            .arg(env!("CARGO_BIN_EXE_dokuei"))
            .arg(&study)
            .args(["--radiograph", "--seed", &seed.to_string()])
            .args(["--opacities", &opacities.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let truth: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(study.join("ground_truth.json")).unwrap(),
        )
        .unwrap();
        let json = study.join("findings.json");
        let out = dokuei()
            .arg("analyse")
            .arg(study.join("series"))
            .arg("--model")
            .arg(root.join("models/cxr-opacity-demo"))
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("DEMONSTRATION MODEL"), "{stdout}");
        let findings: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let planted = truth["opacities"].as_array().unwrap();
        let mut hit = vec![false; planted.len()];
        for f in findings.as_array().unwrap() {
            assert_eq!(f["label"], "opacity");
            assert!(f["image_score"].as_f64().unwrap() >= 0.5, "{f}");
            assert!(f["mask"].as_array().is_some_and(|m| !m.is_empty()));
            let c = &f["centroid_voxels"];
            let (row, col) = (c[1].as_f64().unwrap(), c[2].as_f64().unwrap());
            let inside = planted.iter().position(|o| {
                (row - o["row"].as_f64().unwrap()).powi(2)
                    + (col - o["column"].as_f64().unwrap()).powi(2)
                    <= o["radius_px"].as_f64().unwrap().powi(2)
            });
            match inside {
                Some(i) => hit[i] = true,
                None => false_positives += 1,
            }
        }
        found += hit.iter().filter(|h| **h).count();
        total += planted.len();
        images += 1;
    }
    eprintln!(
        "held-out radiographs: {found}/{total} opacities found, {false_positives} false positive(s) in {images} images"
    );
    assert!(
        found as f64 >= 0.8 * total as f64,
        "{found}/{total} opacities found"
    );
    assert!(
        false_positives <= images / 5,
        "{false_positives} false positives in {images} images"
    );
}

/// Administrators on the command line: the first is granted by nobody; a reset needs the
/// administrator's passphrase (from stdin) and gives the reader a key the ledger verifies.
#[test]
fn readers_grant_admin_and_reset_a_passphrase_read_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    {
        let ledger = dokuei_review::ledger::open_ledger(Some(&path)).unwrap();
        let role = dokuei_review::ledger::Role::Radiologist;
        dokuei_review::reading::add_reader(&ledger, "Dr. Lost", role, "forgotten phrase").unwrap();
        dokuei_review::reading::add_reader(&ledger, "QA Admin", role, "admin passphrase").unwrap();
    }
    let run = |args: &[&str], stdin: &str| {
        with_stdin(dokuei().args(args).arg("--ledger").arg(&path), stdin)
    };
    let out = run(
        &["readers", "grant-admin", "--reader", "2"],
        "admin passphrase\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["readers", "reset", "--reader", "1", "--by", "2"],
        "not the admin's\nnew passphrase\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    let out = run(
        &["readers", "reset", "--reader", "1", "--by", "2"],
        "admin passphrase\nnew passphrase\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = run(&["readers", "list"], "");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("QA Admin") && list.contains("administrator"),
        "{list}"
    );
    let verify = run(&["ledger", "verify"], "");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn deid_exports_a_series_under_a_stable_pseudonym_and_audits_it() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series");
    synthetic_series(&series, 6);
    std::fs::write(series.join("corrupt.dcm"), [0u8; 10]).unwrap();
    let ledger = dir.path().join("ledger.sqlite3");
    // Re-identification set up first: each new patient's identity is sealed as exports run.
    let (ok, _, stderr) = outcome(with_stdin(
        dokuei()
            .args(["reidentify", "init", "--ledger"])
            .arg(&ledger),
        "a long enough passphrase\n",
    ));
    assert!(ok, "{stderr}");
    let export = |out: &std::path::Path| {
        let out = dokuei()
            .arg("deid")
            .arg(&series)
            .arg("-o")
            .arg(out)
            .arg("--ledger")
            .arg(&ledger)
            .args(["--dates", "modified"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let first = dir.path().join("first");
    let stdout = export(&first);
    assert!(
        stdout.contains("6 written, 0 refused, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("corrupt.dcm: not a DICOM file"), "{stdout}");
    // The report names the standard and options, and no input path or patient.
    let report = std::fs::read_to_string(first.join("deid-report.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(json["written"], 6);
    assert!(report.contains("PS3.15 2023b"), "{report}");
    assert!(report.contains("Modified Dates"), "{report}");
    assert!(!report.contains(&series.display().to_string()), "{report}");
    assert!(!report.contains("Phantom"), "{report}");
    // The copy reads as the same series under the pseudonym.
    let info = dokuei().arg("info").arg(&first).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Patient DOKUEI-000001"), "{info}");
    assert!(
        info.contains("stack 1: axial 128×128, 6 slice(s), spacing 2.50 mm"),
        "{info}"
    );
    // A second export: the same pseudonym (the store beside the ledger) and the same files.
    let second = dir.path().join("second");
    export(&second);
    let files = |d: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = walk(d)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(files(&first), files(&second));
    assert!(files(&first)[0].starts_with("DOKUEI-000001/"));
    for f in files(&first) {
        assert_eq!(
            std::fs::read(first.join(&f)).unwrap(),
            std::fs::read(second.join(&f)).unwrap(),
            "{f}"
        );
    }
    // Each export is in the access audit.
    let out = Command::new("sqlite3")
        .arg(&ledger)
        .arg("SELECT object, study_uid FROM access_events WHERE object LIKE 'de-identified%'")
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&out.stdout);
    assert_eq!(rows.lines().count(), 2, "{rows}");
    assert!(
        rows.contains("Retain Longitudinal Temporal Information Modified Dates"),
        "{rows}"
    );

    // Who is DOKUEI-000001: with the passphrase, the source's name and ID; without it, no.
    let sealed = std::fs::read_to_string(dir.path().join("deid/identities")).unwrap();
    assert_eq!(sealed.lines().count(), 1, "one patient, sealed once");
    assert!(
        !sealed.contains("Phantom") && !sealed.contains("SYN-1"),
        "{sealed}"
    );
    let show = |passphrase: &str| {
        outcome(with_stdin(
            dokuei()
                .args(["reidentify", "show", "DOKUEI-000001", "--ledger"])
                .arg(&ledger),
            &format!("{passphrase}\n"),
        ))
    };
    let (ok, stdout, stderr) = show("a long enough passphrase");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("Patient ID SYN-1") && stdout.contains("Synthetic^Phantom"),
        "{stdout}"
    );
    let (ok, _, stderr) = show("not the passphrase");
    assert!(!ok);
    assert!(stderr.contains("passphrase is wrong"), "{stderr}");
    // Both attempts are in the access audit, the failed one as a failure.
    let out = Command::new("sqlite3")
        .arg(&ledger)
        .arg("SELECT outcome FROM access_events WHERE object = 're-identification of pseudonym DOKUEI-000001' ORDER BY id")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n4\n");
}

/// Runs `cmd` with `input` on standard input.
fn with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// (success, stdout, stderr) of a finished command.
fn outcome(out: std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
