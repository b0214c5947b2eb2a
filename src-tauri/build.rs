fn main() {
    // Declaring the app's commands generates one permission per command, so the capability
    // file can allow exactly these and nothing else.
    let manifest = tauri_build::AppManifest::new().commands(&[
        "app_info",
        "onnx_runtime_info",
        "open_study",
        "stack_view",
        "recent_studies",
        "startup_paths",
        "settings",
        "save_settings",
        "readers",
        "create_reader",
        "models",
        "ledger_location",
        "study_review",
        "analyse",
        "cancel_analysis",
        "decide",
        "mark_key_image",
        "key_images",
        "sign_off",
        "export_results",
        "export_deidentified",
        "export_training",
        "send_results",
        "imported_results",
        "review_imported_results",
        "record_impression",
        "reveal_ai",
        "qa_decisions",
        "qa_export",
        "qa_verify",
        "model_watch",
        "shadow_settings",
        "save_shadow_settings",
        "model_watch_report",
        "audit_settings",
        "decision_passphrase_required",
        "save_audit_settings",
        "export_audit",
        "set_passphrase",
        "pixel_server",
        "pacs_settings",
        "save_pacs_settings",
        "pacs_status",
        "pacs_test",
        "pacs_find",
        "pacs_retrieve",
        "pacs_cancel",
        "pacs_clear_cache",
        "pacs_send",
    ]);
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest)) {
        eprintln!("tauri-build failed: {e:#}");
        std::process::exit(1);
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        web_extension();
    }
}

/// Builds the web-process extension (webext/dokuei_shm.c) into OUT_DIR; the app carries it
/// (include_bytes!) and hands it to WebKitGTK at start (lib.rs). It needs the same
/// WebKitGTK development files as Tauri itself (libwebkit2gtk-4.1-dev).
fn web_extension() {
    use std::process::Command;
    const SOURCE: &str = "webext/dokuei_shm.c";
    println!("cargo:rerun-if-changed={SOURCE}");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "webkit2gtk-web-extension-4.1"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let Some(flags) = flags else {
        eprintln!(
            "pkg-config finds no webkit2gtk-web-extension-4.1: install libwebkit2gtk-4.1-dev (scripts/setup.sh does)"
        );
        std::process::exit(1);
    };
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args([
            "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o",
        ])
        .arg(out.join("libdokuei_shm.so"))
        .arg(SOURCE)
        .args(flags.split_whitespace())
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("{compiler} could not build {SOURCE}: {other:?}");
            std::process::exit(1);
        }
    }
}
