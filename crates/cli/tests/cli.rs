//! The `dokuei` binary as a user runs it. All integration tests of the CLI live in this file.

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
