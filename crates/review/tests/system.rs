//! The system panel's data, from the real ONNX Runtime library installed by the set-up.

use dokuei_review::{ErrorCode, onnx_runtime_info};

#[test]
fn onnx_runtime_info_reports_the_set_up_library() {
    let info = onnx_runtime_info().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.version, "1.31.1");
    assert!(
        info.library_path.ends_with("libonnxruntime.so.1.31.1"),
        "{}",
        info.library_path
    );
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["preferred_provider"], "CPU");
    assert_eq!(json["providers"][0]["kind"], "CUDA");
}

#[test]
fn error_codes_serialise_as_the_ui_expects() {
    for code in [
        ErrorCode::OnnxRuntimeMissing,
        ErrorCode::OnnxRuntimeLoadFailed,
        ErrorCode::OnnxRuntimeWrongVersion,
        ErrorCode::OnnxRuntimeStartFailed,
        ErrorCode::StudyNotFound,
        ErrorCode::DicomUnreadable,
        ErrorCode::DecodeFailed,
        ErrorCode::NotFound,
        ErrorCode::WriteFailed,
        ErrorCode::InvalidArgument,
        ErrorCode::LedgerUnavailable,
        ErrorCode::LedgerTooNew,
        ErrorCode::LedgerTampered,
        ErrorCode::ModelIntegrity,
        ErrorCode::ModelInvalid,
        ErrorCode::ModelFailed,
        ErrorCode::ModelNotApplicable,
        ErrorCode::Cancelled,
    ] {
        assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
    }
}
