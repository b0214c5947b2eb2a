//! The `dokuei` binary as a user runs it. All integration tests of the CLI live in this file.

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

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
