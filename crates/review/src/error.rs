//! The error shape that crosses every boundary to a user: a stable `code` the UI and scripts
//! branch on, and a `message` a person reads. Library errors keep their own types; they are
//! mapped here, once.

use serde::Serialize;

/// What went wrong, as a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The ONNX Runtime library is not where Dokuei looks for it.
    OnnxRuntimeMissing,
    /// A file was found but could not be loaded as ONNX Runtime.
    OnnxRuntimeLoadFailed,
    /// ONNX Runtime was found but is too old for this build.
    OnnxRuntimeWrongVersion,
    /// ONNX Runtime loaded but its environment could not be created.
    OnnxRuntimeStartFailed,
    /// Nothing readable was found at the paths given.
    StudyNotFound,
    /// A file could not be read or parsed as DICOM.
    DicomUnreadable,
    /// Pixel data could not be decoded (unsupported transfer syntax, corrupt data).
    DecodeFailed,
    /// The request names a series, stack, slice or preset that does not exist.
    NotFound,
    /// A file could not be written.
    WriteFailed,
    /// An argument is malformed (e.g. a window that is not CENTER,WIDTH).
    InvalidArgument,
    /// The ledger cannot be opened, read or written.
    LedgerUnavailable,
    /// The ledger was written by a newer Dokuei.
    LedgerTooNew,
    /// Verification found a row changed, deleted, inserted or reordered outside Dokuei.
    LedgerTampered,
    /// A model file does not match the SHA-256 in its manifest.
    ModelIntegrity,
    /// A model's manifest is malformed or does not match the model.
    ModelInvalid,
    /// A model could not be loaded or run.
    ModelFailed,
    /// The model is not meant for this series (modality, slice count, output kind).
    ModelNotApplicable,
    /// The user cancelled; nothing partial was kept.
    Cancelled,
    /// The action is not allowed now (e.g. sign-off with undecided findings, a QA reader
    /// deciding, a decision before commit-then-reveal's reveal).
    NotAllowed,
    /// The study has been signed off and can no longer be changed.
    ReadOnly,
    /// A PACS node could not be reached, refused the association, or failed the exchange.
    NodeFailed,
}

impl ErrorCode {
    /// The code as the UI and logs spell it (the same string serde writes).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnnxRuntimeMissing => "onnx_runtime_missing",
            Self::OnnxRuntimeLoadFailed => "onnx_runtime_load_failed",
            Self::OnnxRuntimeWrongVersion => "onnx_runtime_wrong_version",
            Self::OnnxRuntimeStartFailed => "onnx_runtime_start_failed",
            Self::StudyNotFound => "study_not_found",
            Self::DicomUnreadable => "dicom_unreadable",
            Self::DecodeFailed => "decode_failed",
            Self::NotFound => "not_found",
            Self::WriteFailed => "write_failed",
            Self::InvalidArgument => "invalid_argument",
            Self::LedgerUnavailable => "ledger_unavailable",
            Self::LedgerTooNew => "ledger_too_new",
            Self::LedgerTampered => "ledger_tampered",
            Self::ModelIntegrity => "model_integrity",
            Self::ModelInvalid => "model_invalid",
            Self::ModelFailed => "model_failed",
            Self::ModelNotApplicable => "model_not_applicable",
            Self::Cancelled => "cancelled",
            Self::NotAllowed => "not_allowed",
            Self::ReadOnly => "read_only",
            Self::NodeFailed => "node_failed",
        }
    }

    /// The process exit code a command-line tool returns for this error.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::OnnxRuntimeMissing
            | Self::OnnxRuntimeLoadFailed
            | Self::OnnxRuntimeWrongVersion
            | Self::OnnxRuntimeStartFailed => 3,
            Self::StudyNotFound | Self::NotFound => 4,
            Self::DicomUnreadable | Self::DecodeFailed => 5,
            Self::WriteFailed => 6,
            Self::InvalidArgument => 2,
            Self::LedgerUnavailable | Self::LedgerTooNew => 7,
            Self::LedgerTampered => 8,
            Self::ModelIntegrity
            | Self::ModelInvalid
            | Self::ModelFailed
            | Self::ModelNotApplicable => 9,
            Self::Cancelled => 130,
            Self::NotAllowed | Self::ReadOnly => 10,
            Self::NodeFailed => 11,
        }
    }
}

/// An error as the UI and the CLI see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
        }
    }
}

impl From<dokuei_net::NetError> for AppError {
    fn from(e: dokuei_net::NetError) -> Self {
        AppError::new(ErrorCode::NodeFailed, e.to_string())
    }
}

impl From<dokuei_dicom::DicomError> for AppError {
    fn from(e: dokuei_dicom::DicomError) -> Self {
        use dokuei_dicom::DicomError as E;
        let code = match &e {
            E::UnsupportedTransferSyntax { .. } | E::Decode { .. } | E::Unsupported { .. } => {
                ErrorCode::DecodeFailed
            }
            E::NoSuchFrame { .. } => ErrorCode::NotFound,
            _ => ErrorCode::DicomUnreadable,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<dokuei_ledger::LedgerError> for AppError {
    fn from(e: dokuei_ledger::LedgerError) -> Self {
        let code = match &e {
            dokuei_ledger::LedgerError::NewerSchema { .. } => ErrorCode::LedgerTooNew,
            _ => ErrorCode::LedgerUnavailable,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<dokuei_infer::RuntimeError> for AppError {
    fn from(e: dokuei_infer::RuntimeError) -> Self {
        use dokuei_infer::RuntimeError as E;
        let code = match &e {
            E::NotFound { .. } => ErrorCode::OnnxRuntimeMissing,
            E::LoadFailed { .. } => ErrorCode::OnnxRuntimeLoadFailed,
            E::WrongVersion { .. } => ErrorCode::OnnxRuntimeWrongVersion,
            E::Environment { .. } => ErrorCode::OnnxRuntimeStartFailed,
        };
        AppError {
            code,
            message: e.to_string(),
        }
    }
}
