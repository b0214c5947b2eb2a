//! "About / system": what this installation is and what it can run on.

use dokuei_infer::OnnxRuntime;
pub use dokuei_infer::{ExecutionProviderKind, LibrarySource, ProviderStatus};
use serde::Serialize;

use crate::AppError;

/// Shown wherever Dokuei describes itself: the models it ships are demonstrations.
pub const CLINICAL_USE_NOTICE: &str = "Dokuei is research software. The models it ships are \
demonstration models trained on synthetic data: not for clinical use.";

/// The application itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct AppInfo {
    pub name: String,
    pub version: String,
    /// Operating system and CPU architecture, e.g. `linux x86_64`.
    pub platform: String,
    pub clinical_use_notice: String,
    /// The folder of the application log (empty when it could not be opened).
    pub log_dir: String,
}

pub fn app_info() -> AppInfo {
    AppInfo {
        name: "Dokuei".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        platform: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        clinical_use_notice: CLINICAL_USE_NOTICE.to_owned(),
        log_dir: crate::logging::log_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    }
}

/// The ONNX Runtime library in use and the execution providers it offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct OnnxRuntimeInfo {
    pub version: String,
    pub library_path: String,
    pub library_source: LibrarySource,
    /// Every provider Dokuei knows, in order of preference.
    pub providers: Vec<ProviderStatus>,
    /// The provider a model would run on now (GPU when one is usable, else CPU).
    pub preferred_provider: ExecutionProviderKind,
}

/// Loads ONNX Runtime (once per process) and describes it.
pub fn onnx_runtime_info() -> Result<OnnxRuntimeInfo, AppError> {
    let runtime = OnnxRuntime::load(None)?;
    Ok(describe(&runtime))
}

fn describe(runtime: &OnnxRuntime) -> OnnxRuntimeInfo {
    OnnxRuntimeInfo {
        version: runtime.version().to_owned(),
        library_path: runtime.library_path().display().to_string(),
        library_source: runtime.library_source(),
        providers: runtime.providers(),
        preferred_provider: runtime.preferred_provider(),
    }
}
