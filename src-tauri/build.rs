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

/// Builds the web-process extension (webext/dokuei_shm.c) into OUT_DIR as a shared object; the
/// app carries it (include_bytes!) and hands it to WebKitGTK at start (lib.rs). The target's C
/// compiler (the cc crate: CC, CC_<target>, TARGET_CC) and the target's WebKitGTK flags
/// (pkg-config, which refuses a cross build it is not set up for) are used, so that a cross
/// build fails here rather than carry an extension WebKit cannot load. It needs the same
/// WebKitGTK development files as Tauri itself (libwebkit2gtk-4.1-dev).
fn web_extension() {
    const SOURCE: &str = "webext/dokuei_shm.c";
    println!("cargo:rerun-if-changed={SOURCE}");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let webkit = match pkg_config::Config::new()
        .cargo_metadata(false)
        .env_metadata(true)
        .probe("webkit2gtk-web-extension-4.1")
    {
        Ok(library) => library,
        Err(e) => {
            eprintln!(
                "the web-process extension needs WebKitGTK's development files (libwebkit2gtk-4.1-dev; scripts/setup.sh installs them): {e}"
            );
            std::process::exit(1);
        }
    };
    let compiler = cc::Build::new().pic(true).get_compiler();
    let mut command = compiler.to_command();
    command
        .args(["-O2", "-Wall", "-Wextra", "-shared", "-o"])
        .arg(out.join("libdokuei_shm.so"))
        .arg(SOURCE);
    for dir in &webkit.include_paths {
        command.arg("-I").arg(dir);
    }
    for dir in &webkit.link_paths {
        command.arg("-L").arg(dir);
    }
    for lib in &webkit.libs {
        command.arg(format!("-l{lib}"));
    }
    match command.status() {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("{command:?} could not build {SOURCE}: {other:?}");
            std::process::exit(1);
        }
    }
}
