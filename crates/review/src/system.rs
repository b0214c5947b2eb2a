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
    /// How the viewer renders (see [`Rendering`]): `software` or `webgl`.
    pub rendering: String,
    /// The viewer draws images on the CPU (software rendering).
    pub cpu_rendering: bool,
}

/// How the window renders, chosen per machine before GTK starts ([`choose_rendering`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// WebKitGTK's defaults and Cornerstone3D on WebGL: a machine with a GPU render node.
    WebGl,
    /// No GPU render node: WebKitGTK's DMA-BUF renderer off (its buffers are emulated in
    /// software there) and Cornerstone3D on the CPU. Measured on a 2-core machine without
    /// `/dev/dri`: scroll steps of 16 ms against 50 ms with the defaults (README).
    Software,
}

/// Set by [`apply_rendering`] for the running app: `software` or `webgl`.
pub const RENDERING_ENV: &str = "DOKUEI_RENDERING";

/// The rendering for this machine: `DOKUEI_RENDERING=software|webgl` decides; `auto` (and
/// unset) is software when there is no GPU render node (`/dev/dri/renderD*`), where it steps
/// a held key at the display's rate and WebGL at a quarter of it (README).
pub fn choose_rendering(setting: Option<&str>, render_node: bool) -> Result<Rendering, String> {
    match setting.map(str::trim) {
        Some("software") => Ok(Rendering::Software),
        Some("webgl") => Ok(Rendering::WebGl),
        None | Some("") | Some("auto") => Ok(if render_node {
            Rendering::WebGl
        } else {
            Rendering::Software
        }),
        Some(other) => Err(format!(
            "{RENDERING_ENV} is `{other}`: it takes software, webgl or auto"
        )),
    }
}

/// Whether this machine has a GPU render node.
pub fn has_render_node() -> bool {
    std::fs::read_dir("/dev/dri").is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// Chooses the rendering and sets the environment for it; call in `main` before any thread
/// starts (GTK reads WebKit's variables when the window is made). A variable WebKit documents
/// that the user set already is left as it is.
#[allow(unsafe_code)] // std::env::set_var, before any other thread exists (see SAFETY)
pub fn apply_rendering() -> Result<Rendering, String> {
    let chosen = choose_rendering(
        std::env::var(RENDERING_ENV).ok().as_deref(),
        has_render_node(),
    )?;
    // SAFETY (of set_var): called from `main` before the app starts any thread.
    unsafe {
        if chosen == Rendering::Software
            && std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none()
        {
            std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
        }
        std::env::set_var(
            RENDERING_ENV,
            if chosen == Rendering::Software {
                "software"
            } else {
                "webgl"
            },
        );
    }
    Ok(chosen)
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
        rendering: std::env::var(RENDERING_ENV).unwrap_or_else(|_| "webgl".into()),
        cpu_rendering: std::env::var(RENDERING_ENV).is_ok_and(|r| r == "software"),
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

#[cfg(test)]
mod rendering_tests {
    use super::*;

    #[test]
    fn software_without_a_render_node_unless_told_otherwise() {
        assert_eq!(choose_rendering(None, false), Ok(Rendering::Software));
        assert_eq!(choose_rendering(None, true), Ok(Rendering::WebGl));
        assert_eq!(choose_rendering(Some(""), false), Ok(Rendering::Software));
        assert_eq!(choose_rendering(Some("auto"), true), Ok(Rendering::WebGl));
        assert_eq!(
            choose_rendering(Some("auto"), false),
            Ok(Rendering::Software)
        );
        assert_eq!(
            choose_rendering(Some(" webgl "), false),
            Ok(Rendering::WebGl)
        );
        assert_eq!(
            choose_rendering(Some("software"), true),
            Ok(Rendering::Software)
        );
        let e = choose_rendering(Some("fast"), true).unwrap_err();
        assert!(
            e.contains("DOKUEI_RENDERING") && e.contains("`fast`"),
            "{e}"
        );
    }
}
