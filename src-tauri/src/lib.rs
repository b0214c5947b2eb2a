//! Dokuei's desktop shell. Each command deserialises its arguments, calls `dokuei-review`, and
//! returns; errors cross as `{code, message}`. The TypeScript bindings in `ui/src/bindings.ts`
//! are generated from these signatures (see `bindings_are_up_to_date`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use dokuei_review::viewer::{LoadedStack, OpenStudy, StackView, StudyTree};
use dokuei_review::{AppError, AppInfo, ErrorCode, OnnxRuntimeInfo};
use serde::{Deserialize, Serialize};
use tauri::Manager;

mod pacs;
mod pixel_server;
mod reading;

/// The study open in the viewer. `generation` changes with every study opened, so pixel URLs
/// of an earlier study never resolve against a later one.
#[derive(Default)]
pub(crate) struct Viewer {
    open: RwLock<Option<(u32, Arc<OpenStudy>)>>,
    /// Stacks loaded in memory, by (generation, series, stack): the first request for a slice
    /// starts loading its whole stack in the background (in parallel); until it is there, slices
    /// are decoded one by one.
    stacks: Mutex<HashMap<(u32, u32, u32), StackState>>,
}

#[derive(Clone)]
enum StackState {
    /// One slice was asked for (the first on screen): it is decoded alone, so that it appears
    /// without waiting for a whole-stack load competing for the cores.
    FirstSlice,
    Loading,
    Ready(Arc<LoadedStack>),
    /// Colour stacks, or a load that failed: served slice by slice.
    SliceBySlice,
}

impl Viewer {
    pub(crate) fn current(&self) -> Result<(u32, Arc<OpenStudy>), AppError> {
        self.open
            .read()
            .map_err(|_| AppError::new(ErrorCode::NotFound, "the viewer state is unavailable"))?
            .clone()
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no study is open"))
    }
}

/// A study opened recently, for the start list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
struct RecentStudy {
    /// What was opened (folders, files, DICOMDIRs, zip archives).
    paths: Vec<String>,
    /// Study description and date, for the list (no patient identifiers).
    label: String,
    /// When it was opened (seconds since 1970; f64 so that TypeScript gets a plain number).
    opened: f64,
}

/// What the viewer gets when a study opens.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
struct OpenedStudy {
    /// Part of every pixel URL (`dokuei://localhost/slice/{generation}/…`).
    generation: u32,
    tree: StudyTree,
}

const RECENT_FILE: &str = "recent-studies.json";
const RECENT_MAX: usize = 10;

fn recent_path(app: &tauri::AppHandle) -> Option<PathBuf> {
    app.path().app_data_dir().ok().map(|d| d.join(RECENT_FILE))
}

fn read_recent(app: &tauri::AppHandle) -> Vec<RecentStudy> {
    recent_path(app)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn remember(app: &tauri::AppHandle, entry: RecentStudy) {
    let mut list = read_recent(app);
    list.retain(|r| r.paths != entry.paths);
    list.insert(0, entry);
    list.truncate(RECENT_MAX);
    if let (Some(path), Ok(text)) = (recent_path(app), serde_json::to_string_pretty(&list)) {
        let _ = path.parent().map(std::fs::create_dir_all);
        // The recent list is a convenience: failing to write it must not fail the open.
        let _ = std::fs::write(path, text);
    }
}

/// Opens folders, files, DICOMDIRs or zip archives (headers only; unreadable files are listed,
/// never fatal unless nothing at all can be read). The dialog, drag and drop and the recent
/// list all come here.
#[tauri::command]
#[specta::specta]
async fn open_study(
    app: tauri::AppHandle,
    viewer: tauri::State<'_, Viewer>,
    paths: Vec<String>,
) -> Result<OpenedStudy, AppError> {
    let list: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let study = tauri::async_runtime::spawn_blocking(move || OpenStudy::open(&list))
        .await
        .map_err(|e| AppError::new(ErrorCode::DicomUnreadable, e.to_string()))??;
    let tree = dokuei_review::viewer::study_tree(&study);
    let generation = {
        let mut open = viewer
            .open
            .write()
            .map_err(|_| AppError::new(ErrorCode::NotFound, "the viewer state is unavailable"))?;
        let generation = open.as_ref().map_or(1, |(g, _)| g + 1);
        *open = Some((generation, Arc::new(study)));
        if let Ok(mut stacks) = viewer.stacks.lock() {
            // The earlier study's stacks are not needed any more.
            stacks.clear();
        }
        generation
    };
    let label = tree
        .studies
        .first()
        .map(|s| {
            format!(
                "{} {}",
                if s.description.is_empty() {
                    "(no description)"
                } else {
                    &s.description
                },
                s.date
            )
        })
        .unwrap_or_default();
    let opened = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().floor());
    remember(
        &app,
        RecentStudy {
            paths,
            label,
            opened,
        },
    );
    Ok(OpenedStudy { generation, tree })
}

/// How to show stack `stack` of series `series` of the open study.
#[tauri::command]
#[specta::specta]
async fn stack_view(
    viewer: tauri::State<'_, Viewer>,
    series: u32,
    stack: u32,
) -> Result<StackView, AppError> {
    let (_, study) = viewer.current()?;
    tauri::async_runtime::spawn_blocking(move || {
        dokuei_review::viewer::stack_view(&study, series, stack)
    })
    .await
    .map_err(|e| AppError::new(ErrorCode::DicomUnreadable, e.to_string()))?
}

/// Folders or files named on the command line (`dokuei-app STUDY…`), opened at start.
#[tauri::command]
#[specta::specta]
fn startup_paths() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-') && std::path::Path::new(a).exists())
        .collect()
}

/// The studies opened recently, newest first.
#[tauri::command]
#[specta::specta]
fn recent_studies(app: tauri::AppHandle) -> Vec<RecentStudy> {
    read_recent(&app)
}

/// The stack in memory if it is loaded; otherwise starts loading it (once) and returns None.
fn loaded_stack(
    app: &tauri::AppHandle,
    generation: u32,
    study: &Arc<OpenStudy>,
    series: u32,
    stack: u32,
) -> Option<Arc<LoadedStack>> {
    let viewer = app.state::<Viewer>();
    let key = (generation, series, stack);
    let mut stacks = viewer.stacks.lock().ok()?;
    match stacks.get(&key) {
        Some(StackState::Ready(loaded)) => return Some(loaded.clone()),
        Some(StackState::Loading | StackState::SliceBySlice) => return None,
        Some(StackState::FirstSlice) => {}
        None => {
            stacks.insert(key, StackState::FirstSlice);
            return None;
        }
    }
    stacks.insert(key, StackState::Loading);
    drop(stacks);
    let (app, study) = (app.clone(), study.clone());
    std::thread::spawn(move || {
        let state =
            match dokuei_review::viewer::load_stack(&study, series, stack, &AtomicBool::new(false))
            {
                Ok(loaded) => StackState::Ready(Arc::new(loaded)),
                Err(_) => StackState::SliceBySlice,
            };
        let viewer = app.state::<Viewer>();
        if let Ok(mut stacks) = viewer.stacks.lock() {
            // Only if the study is still the one open (else the map was cleared).
            if stacks.contains_key(&key) {
                stacks.insert(key, state);
            }
        };
    });
    None
}

/// Serves `dokuei://localhost/slice/{generation}/{series}/{stack}/{slice}` (raw modality
/// values, see `StackView::format`), `dokuei://localhost/thumb/{generation}/{series}` (PNG) and
/// `dokuei://localhost/map/{analysis}/{index}/{slice}` (a heatmap slice, u8).
/// Errors are plain-text bodies with a status: the file at fault is in the message.
fn serve_pixels(app: &tauri::AppHandle, path: &str) -> tauri::http::Response<Vec<u8>> {
    let (status, kind, body) = pixels(app, path);
    tauri::http::Response::builder()
        .status(status)
        .header("Content-Type", kind)
        .header("Access-Control-Allow-Origin", "*")
        .header("Cache-Control", "no-store")
        .body(body)
        .unwrap_or_default()
}

/// The pixel resources behind both transports (the URI scheme and the loopback server):
/// (status, content type, body).
fn pixels(app: &tauri::AppHandle, path: &str) -> (u16, &'static str, Vec<u8>) {
    let fail = |e: AppError| {
        let status = if e.code == ErrorCode::NotFound {
            404
        } else {
            500
        };
        (status, "text/plain; charset=utf-8", e.message.into_bytes())
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let numbers: Vec<u32> = parts
        .iter()
        .skip(1)
        .filter_map(|p| p.parse().ok())
        .collect();
    if let (Some(&"map"), [analysis, index, slice]) = (parts.first(), &numbers[..]) {
        return match reading::map_slice(app, *analysis, *index, *slice) {
            Ok(body) => (200, "application/octet-stream", body),
            Err(e) => fail(e),
        };
    }
    let viewer = app.state::<Viewer>();
    let (generation, study) = match viewer.current() {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if numbers.first() != Some(&generation) {
        return fail(AppError::new(
            ErrorCode::NotFound,
            "that image belongs to a study that is no longer open",
        ));
    }
    let result = match (parts.first().copied(), &numbers[..]) {
        (Some("slice"), [_, series, stack, slice]) => {
            match loaded_stack(app, generation, &study, *series, *stack) {
                Some(loaded) => dokuei_review::viewer::loaded_slice_bytes(&loaded, *slice),
                None => dokuei_review::viewer::slice_bytes(&study, *series, *stack, *slice),
            }
            .map(|b| ("application/octet-stream", b))
        }
        (Some("thumb"), [_, series]) => {
            dokuei_review::viewer::thumbnail_png(&study, *series, 96).map(|b| ("image/png", b))
        }
        _ => Err(AppError::new(
            ErrorCode::NotFound,
            format!("no such pixel resource `{path}`"),
        )),
    };
    match result {
        Ok((kind, body)) => (200, kind, body),
        Err(e) => fail(e),
    }
}

/// Starts the loopback pixel server on first call (`http://127.0.0.1:{port}/{secret}/slice/…`)
/// and says where it listens; null when it cannot start. The `dokuei:` scheme is the default
/// transport: the two measured within each other's noise (README, "Pixel transport"), and a
/// port nobody uses is a port nobody can probe, so the server runs only when asked for.
#[tauri::command]
#[specta::specta]
fn pixel_server(
    app: tauri::AppHandle,
    state: tauri::State<'_, std::sync::Mutex<Option<pixel_server::PixelServer>>>,
) -> Option<pixel_server::PixelServer> {
    let mut server = state.lock().unwrap_or_else(|e| e.into_inner());
    if server.is_none() {
        *server = pixel_server::start(move |path| pixels(&app, path))
            .map_err(|e| eprintln!("dokuei: the loopback pixel server did not start: {e}"))
            .ok();
    }
    server.clone()
}

/// The application's name, version and clinical-use notice.
#[tauri::command]
#[specta::specta]
fn app_info() -> AppInfo {
    dokuei_review::app_info()
}

/// The ONNX Runtime library in use and its execution providers. Async: the first call loads
/// the library, which must not block the window.
#[tauri::command]
#[specta::specta]
async fn onnx_runtime_info() -> Result<OnnxRuntimeInfo, AppError> {
    dokuei_review::onnx_runtime_info()
}

/// The command set, shared by the running app and the bindings generator.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new().commands(tauri_specta::collect_commands![
        app_info,
        onnx_runtime_info,
        open_study,
        stack_view,
        recent_studies,
        startup_paths,
        reading::settings,
        reading::save_settings,
        reading::readers,
        reading::create_reader,
        reading::models,
        reading::ledger_location,
        reading::study_review,
        reading::analyse,
        reading::cancel_analysis,
        reading::decide,
        reading::sign_off,
        reading::export_results,
        reading::send_results,
        reading::imported_results,
        reading::review_imported_results,
        reading::record_impression,
        reading::reveal_ai,
        reading::qa_decisions,
        reading::qa_export,
        reading::qa_verify,
        pixel_server,
        pacs::pacs_settings,
        pacs::save_pacs_settings,
        pacs::pacs_status,
        pacs::pacs_test,
        pacs::pacs_find,
        pacs::pacs_retrieve,
        pacs::pacs_cancel,
        pacs::pacs_clear_cache,
        pacs::pacs_send
    ])
}

/// Where the generated TypeScript bindings are committed.
pub fn bindings_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts")
}

/// Writes the TypeScript bindings to `path`.
pub fn export_bindings(path: &std::path::Path) -> Result<(), String> {
    specta_builder()
        .export(
            specta_typescript::Typescript::default()
                .header("// Generated by `DOKUEI_UPDATE_BINDINGS=1 cargo test -p dokuei-app`; do not edit.\n"),
            path,
        )
        .map_err(|e| format!("could not write TypeScript bindings to {}: {e}", path.display()))
}

/// Starts the desktop app.
pub fn run() -> Result<(), tauri::Error> {
    let builder = specta_builder();
    // Load ONNX Runtime in the background as the window opens, so a missing library is on
    // stderr at once (the window shows the same message when the UI asks).
    std::thread::spawn(|| {
        if let Err(e) = dokuei_review::onnx_runtime_info() {
            eprintln!("dokuei: error [{}]: {}", e.code.as_str(), e.message);
        }
    });
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .manage(Viewer::default())
        .manage(reading::Reading::default())
        .manage(std::sync::Mutex::new(None::<pixel_server::PixelServer>))
        .setup(|app| {
            // Nodes, receiver (off unless switched on) and cache: settings in the app's data
            // folder, retrieved studies in its cache folder.
            let data = app.path().app_data_dir()?;
            let cache = app.path().app_cache_dir()?.join("pacs");
            app.manage(dokuei_review::pacs::PacsService::new(
                data.join("pacs.json"),
                cache,
            ));
            Ok(())
        })
        .register_asynchronous_uri_scheme_protocol("dokuei", |ctx, request, responder| {
            let app = ctx.app_handle().clone();
            let path = request.uri().path().to_owned();
            // Decoding takes milliseconds to seconds: never on the webview's thread.
            tauri::async_runtime::spawn_blocking(move || {
                responder.respond(serve_pixels(&app, &path));
            });
        })
        .invoke_handler(builder.invoke_handler())
        .run(tauri::generate_context!())
}

#[cfg(test)]
mod tests {
    /// The committed bindings must be what the current Rust signatures generate; CI fails
    /// otherwise. Regenerate with `DOKUEI_UPDATE_BINDINGS=1 cargo test -p dokuei-app`.
    #[test]
    fn bindings_are_up_to_date() {
        let committed = super::bindings_path();
        if std::env::var_os("DOKUEI_UPDATE_BINDINGS").is_some() {
            super::export_bindings(&committed).unwrap();
            return;
        }
        let dir = tempfile_dir();
        let fresh = dir.join("bindings.ts");
        super::export_bindings(&fresh).unwrap();
        let want = std::fs::read_to_string(&fresh).unwrap();
        let have = std::fs::read_to_string(&committed).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            want == have,
            "ui/src/bindings.ts is stale: run `DOKUEI_UPDATE_BINDINGS=1 cargo test -p dokuei-app` and commit it"
        );
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dokuei-bindings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
