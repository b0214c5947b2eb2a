//! Errors of the study engine. Each names the file (or zip entry) it concerns, and never a
//! patient identifier.

/// What went wrong while reading or decoding a DICOM instance.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DicomError {
    #[error("cannot read `{source_name}`: {reason}")]
    Io { source_name: String, reason: String },
    #[error(
        "`{source_name}` is {bytes} bytes, more than Dokuei reads into memory ({cap_mib} MiB; DOKUEI_MAX_DECODE_MB sets the cap)"
    )]
    TooLarge {
        source_name: String,
        bytes: u64,
        cap_mib: u64,
    },
    #[error("`{source_name}` is not a DICOM file")]
    NotDicom { source_name: String },
    #[error("`{source_name}` is not valid DICOM: {reason}")]
    Parse { source_name: String, reason: String },
    #[error("`{source_name}` has no pixel data")]
    NoPixelData { source_name: String },
    #[error("`{source_name}` has an implausible image: {reason}")]
    ImplausibleImage { source_name: String, reason: String },
    #[error(
        "cannot decode the pixel data of `{source_name}`: unsupported transfer syntax {ts_uid} ({ts_name})"
    )]
    UnsupportedTransferSyntax {
        source_name: String,
        ts_uid: String,
        ts_name: String,
    },
    #[error("failed to decode the pixel data of `{source_name}` ({ts_name}): {reason}")]
    Decode {
        source_name: String,
        ts_name: String,
        reason: String,
    },
    #[error("`{source_name}` uses {what}, which Dokuei does not display yet")]
    Unsupported { source_name: String, what: String },
    #[error("frame {frame} of `{source_name}` does not exist: it has {frames} frame(s)")]
    NoSuchFrame {
        source_name: String,
        frame: u32,
        frames: u32,
    },
    #[error("the DICOMDIR `{source_name}` cannot be used: {reason}")]
    Dicomdir { source_name: String, reason: String },
}

impl DicomError {
    /// A short stable name for the kind of error, for tests and machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            DicomError::Io { .. } => "io",
            DicomError::TooLarge { .. } => "too_large",
            DicomError::NotDicom { .. } => "not_dicom",
            DicomError::Parse { .. } => "parse",
            DicomError::NoPixelData { .. } => "no_pixel_data",
            DicomError::ImplausibleImage { .. } => "implausible_image",
            DicomError::UnsupportedTransferSyntax { .. } => "unsupported_transfer_syntax",
            DicomError::Decode { .. } => "decode",
            DicomError::Unsupported { .. } => "unsupported",
            DicomError::NoSuchFrame { .. } => "no_such_frame",
            DicomError::Dicomdir { .. } => "dicomdir",
        }
    }
}
