//! The use cases Dokuei offers, in the words of the people who use it. The desktop shell and
//! the command-line tool call this crate and nothing below it, so both behave the same.

pub mod analysis;
pub mod audit;
pub mod deface;
pub mod deid;
mod error;
pub mod ledger;
pub mod logging;
pub mod pacs;
pub mod reading;
pub mod results;
pub mod study;
pub mod system;
pub mod training;
pub mod viewer;
pub mod watch;
pub mod workstation;

/// The study engine's types, for callers (the CLI, the shell) that show them.
pub use dokuei_dicom as dicom;
pub use dokuei_infer as infer;
pub use dokuei_infer::OnnxRuntime;
pub use dokuei_results as dicom_results;
pub use error::{AppError, ErrorCode};
pub use system::{AppInfo, OnnxRuntimeInfo, app_info, onnx_runtime_info};
