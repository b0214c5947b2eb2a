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
    // A build that shows the development server (no custom-protocol) lets that server's page
    // have the extension's function too; the port is devUrl's.
    println!("cargo:rerun-if-changed=tauri.conf.json");
    let dev_port = if std::env::var_os("CARGO_FEATURE_CUSTOM_PROTOCOL").is_some() {
        None
    } else {
        Some(dev_server_port())
    };
    let compiler = cc::Build::new().pic(true).get_compiler();
    // The extension, and a test program that prints which pages own_page lets in (run by
    // this crate's tests, `OWN_PAGE_TEST`).
    for (output, extra) in [
        ("libdokuei_shm.so", &["-shared"][..]),
        ("own_page_test", &["-DDOKUEI_OWN_PAGE_TEST"][..]),
    ] {
        let mut command = compiler.to_command();
        command
            .args(["-O2", "-Wall", "-Wextra", "-Werror"])
            .args(extra)
            .arg("-o")
            .arg(out.join(output))
            .arg(SOURCE);
        if let Some(port) = dev_port {
            command.arg(format!("-DDOKUEI_DEV_SERVER_PORT={port}"));
        }
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
}

/// The port of tauri.conf.json's `devUrl` (`http://localhost:{port}`).
fn dev_server_port() -> u16 {
    let conf = std::fs::read_to_string("tauri.conf.json").unwrap_or_default();
    let port = conf
        .split_once("\"devUrl\"")
        .and_then(|(_, rest)| rest.split_once("http://localhost:"))
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        });
    match port {
        Some(port) => port,
        None => {
            eprintln!("tauri.conf.json has no devUrl of the form http://localhost:{{port}}");
            std::process::exit(1);
        }
    }
}
