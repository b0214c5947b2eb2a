//! Finding and loading the ONNX Runtime shared library, and choosing an execution provider.
//!
//! `ort` is built with `load-dynamic`: nothing is linked at build time, and the library is
//! opened here with [`ort::init_from`], which returns an error instead of panicking when the
//! file is missing or of the wrong version. The search order is:
//!
//! 1. an explicit path (a setting, or the `DOKUEI_ORT_LIB` environment variable): when one is
//!    given it is the only candidate, so a wrong setting is reported rather than papered over;
//! 2. next to the executable (how an installed app ships it);
//! 3. the project's set-up folder `.dokuei/onnxruntime/` (where `scripts/setup.sh` puts it).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::ep::ExecutionProvider as _;
use serde::Serialize;

/// The ONNX Runtime release this build is made for (the `api-31` feature of `ort`).
pub const ORT_VERSION: &str = "1.31.1";
/// Environment variable naming the library file (or a folder holding it) to load.
pub const ORT_LIB_ENV: &str = "DOKUEI_ORT_LIB";
/// What a user runs to put the library where Dokuei looks for it.
pub const ORT_FIX_HINT: &str = "run `bash scripts/setup.sh` in the Dokuei folder (it installs \
ONNX Runtime 1.31.1 into .dokuei/onnxruntime/), or set DOKUEI_ORT_LIB to the path of \
libonnxruntime.so.1.31.1";

const LIB_FILE_NAMES: &[&str] = &[
    "libonnxruntime.so.1.31.1",
    "libonnxruntime.so",
    "libonnxruntime.1.31.1.dylib",
    "libonnxruntime.dylib",
    "onnxruntime.dll",
];

/// Where a candidate path for the library came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum LibrarySource {
    /// An explicit path given by a setting or by `DOKUEI_ORT_LIB`.
    Explicit,
    /// The folder that holds the running executable.
    NextToExecutable,
    /// The project's set-up folder, `.dokuei/onnxruntime/`.
    ProjectSetup,
}

/// One place the library may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub source: LibrarySource,
}

/// Why ONNX Runtime could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime library not found; looked for {}. To fix it, {ORT_FIX_HINT}",
        display_paths(tried)
    )]
    NotFound { tried: Vec<PathBuf> },
    #[error("failed to load ONNX Runtime from `{}`: {reason}. To fix it, {ORT_FIX_HINT}", path.display())]
    LoadFailed { path: PathBuf, reason: String },
    #[error(
        "`{}` is ONNX Runtime {found}, but Dokuei needs {ORT_VERSION} (1.31 or newer). To fix it, {ORT_FIX_HINT}",
        path.display()
    )]
    WrongVersion { path: PathBuf, found: String },
    #[error("ONNX Runtime loaded from `{}` but could not start: {reason}", path.display())]
    Environment { path: PathBuf, reason: String },
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An execution provider Dokuei knows how to ask for, in the order it prefers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
pub enum ExecutionProviderKind {
    #[serde(rename = "CUDA")]
    Cuda,
    #[serde(rename = "TensorRT")]
    TensorRt,
    #[serde(rename = "DirectML")]
    DirectMl,
    #[serde(rename = "CoreML")]
    CoreMl,
    #[serde(rename = "CPU")]
    Cpu,
}

impl ExecutionProviderKind {
    /// GPU providers first, CPU last. TensorRT is asked for after CUDA: it needs CUDA's
    /// libraries anyway and builds engines slowly the first time.
    pub const PREFERENCE: [ExecutionProviderKind; 5] = [
        Self::Cuda,
        Self::TensorRt,
        Self::DirectMl,
        Self::CoreMl,
        Self::Cpu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Cuda => "CUDA",
            Self::TensorRt => "TensorRT",
            Self::DirectMl => "DirectML",
            Self::CoreMl => "CoreML",
            Self::Cpu => "CPU",
        }
    }

    /// Whether this build of Dokuei contains the code to register the provider.
    pub fn compiled_in(self) -> bool {
        match self {
            Self::Cuda => cfg!(feature = "cuda"),
            Self::TensorRt => cfg!(feature = "tensorrt"),
            Self::DirectMl => cfg!(feature = "directml"),
            Self::CoreMl => cfg!(feature = "coreml"),
            Self::Cpu => true,
        }
    }

    /// Whether the loaded ONNX Runtime library was built with this provider. Only meaningful
    /// after [`OnnxRuntime::load`] succeeded.
    fn in_library(self) -> Result<bool, ort::Error> {
        match self {
            #[cfg(feature = "cuda")]
            Self::Cuda => ort::ep::CUDA::is_available(),
            #[cfg(feature = "tensorrt")]
            Self::TensorRt => ort::ep::TensorRT::is_available(),
            #[cfg(feature = "directml")]
            Self::DirectMl => ort::ep::DirectML::is_available(),
            #[cfg(feature = "coreml")]
            Self::CoreMl => ort::ep::CoreML::is_available(),
            Self::Cpu => Ok(true),
            #[allow(unreachable_patterns)]
            _ => Ok(false),
        }
    }

    /// Registers the provider on a session builder, failing (instead of silently falling back
    /// to the CPU) when the provider cannot start.
    pub fn register(self, builder: &mut ort::session::builder::SessionBuilder) -> ort::Result<()> {
        match self {
            #[cfg(feature = "cuda")]
            Self::Cuda => ort::ep::CUDA::default().register(builder),
            #[cfg(feature = "tensorrt")]
            Self::TensorRt => ort::ep::TensorRT::default().register(builder),
            #[cfg(feature = "directml")]
            Self::DirectMl => ort::ep::DirectML::default().register(builder),
            #[cfg(feature = "coreml")]
            Self::CoreMl => ort::ep::CoreML::default().register(builder),
            // The arena allocator, as ONNX Runtime itself defaults to (ort's wrapper turns it off):
            // without it every intermediate tensor is a fresh allocation, and large ones are
            // fresh pages from the kernel each time.
            Self::Cpu => ort::ep::CPU::default()
                .with_arena_allocator(true)
                .register(builder),
            #[allow(unreachable_patterns)]
            other => Err(ort::Error::new(format!(
                "this build of Dokuei was compiled without the {} execution provider",
                other.name()
            ))),
        }
    }
}

/// What one execution provider looks like on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct ProviderStatus {
    pub kind: ExecutionProviderKind,
    /// Dokuei was compiled with the code to use it.
    pub compiled_in: bool,
    /// The loaded ONNX Runtime library contains it.
    pub in_library: bool,
}

/// The result of [`OnnxRuntime::choose_provider`]: which provider a session got, and why the
/// ones preferred over it were passed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct ProviderChoice {
    pub used: ExecutionProviderKind,
    pub skipped: Vec<SkippedProvider>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct SkippedProvider {
    pub kind: ExecutionProviderKind,
    pub reason: String,
}

/// A loaded ONNX Runtime: the library, its version, and its environment.
#[derive(Debug, Clone)]
pub struct OnnxRuntime {
    inner: Arc<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    path: PathBuf,
    source: LibrarySource,
    version: String,
    environment: ort::environment::Environment,
}

static LOADED: Mutex<Option<OnnxRuntime>> = Mutex::new(None);

impl OnnxRuntime {
    /// Loads ONNX Runtime once per process, searching the usual places (see the module docs).
    /// `explicit` is a path from the user's settings; when `None`, `DOKUEI_ORT_LIB` is read.
    ///
    /// A failure leaves nothing half-loaded, so a later call (after the user ran the set-up)
    /// can succeed.
    pub fn load(explicit: Option<&Path>) -> Result<OnnxRuntime, RuntimeError> {
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(runtime) = loaded.as_ref() {
            return Ok(runtime.clone());
        }
        let explicit = explicit.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(ORT_LIB_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        let candidates = candidates(
            explicit.as_deref(),
            exe_dir.as_deref(),
            &project_setup_dir(),
        );
        let runtime = Self::load_first(&candidates)?;
        *loaded = Some(runtime.clone());
        Ok(runtime)
    }

    fn load_first(candidates: &[Candidate]) -> Result<OnnxRuntime, RuntimeError> {
        let Some(found) = candidates.iter().find(|c| c.path.is_file()) else {
            return Err(RuntimeError::NotFound {
                tried: candidates.iter().map(|c| c.path.clone()).collect(),
            });
        };
        let path = found.path.clone();
        let builder = ort::init_from(&path).map_err(|e| match e {
            ort::LoadDynamicError::BadVersion { version_str, path } => RuntimeError::WrongVersion {
                path,
                found: version_str,
            },
            other => RuntimeError::LoadFailed {
                path: path.clone(),
                reason: other.to_string(),
            },
        })?;
        let environment =
            builder
                .with_name("dokuei")
                .build()
                .map_err(|e| RuntimeError::Environment {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
        let version = library_version(&path).map_err(|reason| RuntimeError::LoadFailed {
            path: path.clone(),
            reason,
        })?;
        Ok(OnnxRuntime {
            inner: Arc::new(Loaded {
                path,
                source: found.source,
                version,
                environment,
            }),
        })
    }

    pub fn version(&self) -> &str {
        &self.inner.version
    }

    pub fn library_path(&self) -> &Path {
        &self.inner.path
    }

    pub fn library_source(&self) -> LibrarySource {
        self.inner.source
    }

    pub fn environment(&self) -> &ort::environment::Environment {
        &self.inner.environment
    }

    /// Every provider Dokuei knows, with whether it was compiled in and whether the loaded
    /// library has it, in order of preference.
    pub fn providers(&self) -> Vec<ProviderStatus> {
        ExecutionProviderKind::PREFERENCE
            .iter()
            .map(|&kind| ProviderStatus {
                kind,
                compiled_in: kind.compiled_in(),
                in_library: kind.compiled_in() && kind.in_library().unwrap_or(false),
            })
            .collect()
    }

    /// The provider a session would use right now: the first in order of preference that is
    /// both compiled in and present in the library. Whether it really starts is only known when
    /// a session registers it; see [`OnnxRuntime::choose_provider`].
    pub fn preferred_provider(&self) -> ExecutionProviderKind {
        self.providers()
            .into_iter()
            .find(|p| p.compiled_in && p.in_library)
            .map_or(ExecutionProviderKind::Cpu, |p| p.kind)
    }

    /// Registers the first provider that starts, in order of preference, on `builder`. Each
    /// GPU provider is registered so that failure is an error (ONNX Runtime would otherwise
    /// fall back to the CPU without saying so); the failure is kept as the reason it was
    /// skipped, and the choice says which provider the session really got.
    pub fn choose_provider(
        &self,
        builder: &mut ort::session::builder::SessionBuilder,
        wanted: &[ExecutionProviderKind],
    ) -> ProviderChoice {
        let mut skipped = Vec::new();
        for &kind in wanted {
            if kind == ExecutionProviderKind::Cpu {
                break;
            }
            let reason = if !kind.compiled_in() {
                "not compiled into this build of Dokuei".to_owned()
            } else if !kind.in_library().unwrap_or(false) {
                format!(
                    "the ONNX Runtime library at `{}` was built without it",
                    self.library_path().display()
                )
            } else {
                match kind.register(builder) {
                    Ok(()) => {
                        return ProviderChoice {
                            used: kind,
                            skipped,
                        };
                    }
                    Err(e) => format!("failed to start: {e}"),
                }
            };
            skipped.push(SkippedProvider { kind, reason });
        }
        // The CPU provider cannot fail to exist; its registration only sets the arena option.
        let _ = ExecutionProviderKind::Cpu.register(builder);
        ProviderChoice {
            used: ExecutionProviderKind::Cpu,
            skipped,
        }
    }
}

/// The project's set-up folder for ONNX Runtime, `.dokuei/onnxruntime/` at the workspace root:
/// the nearest one above the current folder that holds the library, else the one of the
/// checkout this was compiled in. It serves a source checkout; an installed app ships the
/// library next to its executable instead. (The compile-time path alone goes stale when a
/// target folder is shared between checkouts: cargo does not rebuild when a checkout moves.)
pub fn project_setup_dir() -> PathBuf {
    let setup = |root: &Path| root.join(".dokuei").join("onnxruntime");
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            cwd.ancestors()
                .map(setup)
                .find(|dir| dir.join(LIB_FILE_NAMES[0]).is_file())
        })
        .unwrap_or_else(|| setup(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")))
}

/// The places to look for the library, in order. An explicit path is the only candidate when
/// given; it may name the file or a folder holding it.
pub fn candidates(
    explicit: Option<&Path>,
    exe_dir: Option<&Path>,
    setup_dir: &Path,
) -> Vec<Candidate> {
    if let Some(path) = explicit {
        let path = if path.is_dir() {
            path.join(LIB_FILE_NAMES[0])
        } else {
            path.to_path_buf()
        };
        return vec![Candidate {
            path,
            source: LibrarySource::Explicit,
        }];
    }
    let mut out = Vec::new();
    if let Some(dir) = exe_dir {
        out.extend(LIB_FILE_NAMES.iter().map(|name| Candidate {
            path: dir.join(name),
            source: LibrarySource::NextToExecutable,
        }));
    }
    out.push(Candidate {
        path: normalize(&setup_dir.join(LIB_FILE_NAMES[0])),
        source: LibrarySource::ProjectSetup,
    });
    out
}

/// Removes `..` components lexically so that paths shown to users read cleanly.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Reads the version string the library reports about itself (`OrtGetApiBase()->GetVersionString()`).
/// `ort` checks the version on load but does not expose the string.
#[allow(unsafe_code)]
fn library_version(path: &Path) -> Result<String, String> {
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: the library is already loaded (and kept loaded) by `ort::init_from`, which
    // checked that it exports `OrtGetApiBase`; opening it again only bumps its reference
    // count. `OrtGetApiBase` returns a pointer to a static struct whose `GetVersionString`
    // returns a static NUL-terminated string.
    unsafe {
        let lib = libloading::Library::new(path).map_err(|e| e.to_string())?;
        let get_base: libloading::Symbol<GetApiBase> =
            lib.get(b"OrtGetApiBase").map_err(|e| e.to_string())?;
        let base = get_base();
        if base.is_null() {
            return Err("OrtGetApiBase returned null".to_owned());
        }
        let version = ((*base).GetVersionString)();
        Ok(std::ffi::CStr::from_ptr(version)
            .to_string_lossy()
            .into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_is_the_only_candidate() {
        let c = candidates(
            Some(Path::new("/opt/ort/libonnxruntime.so.1.31.1")),
            Some(Path::new("/usr/bin")),
            Path::new("/src/.dokuei/onnxruntime"),
        );
        assert_eq!(
            c,
            vec![Candidate {
                path: PathBuf::from("/opt/ort/libonnxruntime.so.1.31.1"),
                source: LibrarySource::Explicit
            }]
        );
    }

    #[test]
    fn explicit_folder_means_the_versioned_file_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = candidates(Some(dir.path()), None, Path::new("/x"));
        assert_eq!(c[0].path, dir.path().join("libonnxruntime.so.1.31.1"));
    }

    #[test]
    fn executable_folder_comes_before_project_setup() {
        let c = candidates(
            None,
            Some(Path::new("/app")),
            Path::new("/src/crates/infer/../../.dokuei/onnxruntime"),
        );
        assert_eq!(c.first().unwrap().source, LibrarySource::NextToExecutable);
        assert_eq!(
            c.first().unwrap().path,
            PathBuf::from("/app/libonnxruntime.so.1.31.1")
        );
        let last = c.last().unwrap();
        assert_eq!(last.source, LibrarySource::ProjectSetup);
        assert_eq!(
            last.path,
            PathBuf::from("/src/.dokuei/onnxruntime/libonnxruntime.so.1.31.1")
        );
    }

    #[test]
    fn missing_library_error_names_every_path_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let tried = candidates(None, Some(dir.path()), &dir.path().join("setup"));
        let err = OnnxRuntime::load_first(&tried).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, RuntimeError::NotFound { .. }));
        for c in &tried {
            assert!(text.contains(&c.path.display().to_string()), "{text}");
        }
        assert!(text.contains("scripts/setup.sh"), "{text}");
    }

    #[test]
    fn a_file_that_is_not_a_library_is_a_load_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let err = OnnxRuntime::load_first(&candidates(Some(&fake), None, dir.path())).unwrap_err();
        assert!(matches!(err, RuntimeError::LoadFailed { .. }), "{err:?}");
        assert!(err.to_string().contains(&fake.display().to_string()));
    }
}
