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
}
