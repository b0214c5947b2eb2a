//! Dokuei's desktop shell. Each command deserialises its arguments, calls `dokuei-review`, and
//! returns; errors cross as `{code, message}`. The TypeScript bindings in `ui/src/bindings.ts`
//! are generated from these signatures (see `bindings_are_up_to_date`).

use dokuei_review::viewer::StackView;
use dokuei_review::workstation::{OpenedStudy, RecentStudy, Workstation};
use dokuei_review::{AppError, AppInfo, OnnxRuntimeInfo};
use tauri::Manager;

mod pacs;
mod pixel_server;
mod reading;

type Ws<'a> = tauri::State<'a, Workstation>;

/// Opens folders, files, DICOMDIRs or zip archives (headers only; unreadable files are listed,
/// never fatal unless nothing at all can be read). The dialog, drag and drop, the recent list
/// and the PACS screen all come here.
#[tauri::command]
#[specta::specta]
async fn open_study(app: tauri::AppHandle, paths: Vec<String>) -> Result<OpenedStudy, AppError> {
    reading::blocking(app, move |ws| ws.open_study(paths)).await
}

/// How to show stack `stack` of series `series` of the open study.
#[tauri::command]
#[specta::specta]
async fn stack_view(app: tauri::AppHandle, series: u32, stack: u32) -> Result<StackView, AppError> {
    reading::blocking(app, move |ws| ws.stack_view(series, stack)).await
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
fn recent_studies(ws: Ws<'_>) -> Vec<RecentStudy> {
    ws.recent_studies()
}

/// Serves `dokuei://localhost/slice/{generation}/{series}/{stack}/{slice}` (raw modality
/// values, see `StackView::format`), `dokuei://localhost/thumb/{generation}/{series}` (PNG) and
/// `dokuei://localhost/map/{analysis}/{index}/{slice}` (a heatmap slice, u8).
/// Errors are plain-text bodies with a status: the file at fault is in the message.
fn serve_pixels(app: &tauri::AppHandle, path: &str) -> tauri::http::Response<Vec<u8>> {
    let (status, kind, body) = app.state::<Workstation>().pixels(path);
    tauri::http::Response::builder()
        .status(status)
        .header("Content-Type", kind)
        .header("Access-Control-Allow-Origin", "*")
        .header("Cache-Control", "no-store")
        .body(body)
        .unwrap_or_default()
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
        *server = pixel_server::start(move |path| app.state::<Workstation>().pixels(path))
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
        reading::mark_key_image,
        reading::key_images,
        reading::sign_off,
        reading::export_results,
        reading::export_deidentified,
        reading::export_training,
        reading::send_results,
        reading::imported_results,
        reading::review_imported_results,
        reading::record_impression,
        reading::reveal_ai,
        reading::qa_decisions,
        reading::qa_export,
        reading::qa_verify,
        reading::model_watch,
        reading::shadow_settings,
        reading::save_shadow_settings,
        reading::model_watch_report,
        reading::audit_settings,
        reading::decision_passphrase_required,
        reading::save_audit_settings,
        reading::export_audit,
        reading::set_passphrase,
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

/// The web-process extension (src-tauri/webext, built by build.rs): gives the page
/// `dokueiShm(name)`, which takes a stack's slices from shared memory in one copy instead of
/// through WebKit's network process (ui/src/viewer/bulk.ts; measured by scripts/bench-viewer.sh).
#[cfg(target_os = "linux")]
const WEB_EXTENSION: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libdokuei_shm.so"));

/// The folder WebKitGTK loads web-process extensions from: the extension written into
/// `cache/webext/{its hash}` (once per build), or the folder DOKUEI_WEB_EXTENSIONS names
/// ("none": no extension, the page then fetches slices one by one). None when it cannot be
/// written; the viewer works without it.
fn web_extensions(cache: &std::path::Path) -> Option<std::path::PathBuf> {
    match std::env::var_os("DOKUEI_WEB_EXTENSIONS") {
        Some(dir) if dir == "none" => return None,
        Some(dir) => return Some(dir.into()),
        None => {}
    }
    #[cfg(target_os = "linux")]
    match install_web_extension(&cache.join("webext")) {
        Ok(dir) => Some(dir),
        Err(e) => {
            eprintln!(
                "dokuei: cannot install the web-process extension in {}: {e}; slices are fetched one by one",
                cache.join("webext").display()
            );
            None
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cache;
        None
    }
}

/// Writes the extension into `root/{its hash}` (0700 folders of this user, code only this user
/// can change) unless it is there already, and removes other builds' folders unused for a
/// week.
#[cfg(target_os = "linux")]
fn install_web_extension(root: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // FNV-1a: a name that changes with the build, so that two versions never share a file.
    let hash = WEB_EXTENSION
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let dir = root.join(format!("{hash:016x}"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let me = std::fs::metadata("/proc/self")?.uid();
    for d in [root, dir.as_path()] {
        let m = std::fs::symlink_metadata(d)?;
        if !m.is_dir() || m.uid() != me || m.permissions().mode() & 0o022 != 0 {
            return Err(std::io::Error::other(format!(
                "{} is not a folder only this user can write",
                d.display()
            )));
        }
    }
    // Other builds' extensions, once no build has started with them for a week: a build
    // running now (a development build beside an installed one) may start a web process yet.
    // This build's folder is marked as used now (where that fails, it is only removed the
    // sooner by another build).
    const UNUSED: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
    let _ = std::fs::File::open(&dir).and_then(|d| d.set_modified(std::time::SystemTime::now()));
    for entry in std::fs::read_dir(root)?.flatten() {
        let unused = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= UNUSED));
        if entry.path() != dir && unused {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let file = dir.join("libdokuei_shm.so");
    if std::fs::read(&file).is_ok_and(|b| b == WEB_EXTENSION) {
        return Ok(dir);
    }
    let part = dir.join(format!("libdokuei_shm.so.{}.part", std::process::id()));
    std::fs::write(&part, WEB_EXTENSION)?;
    std::fs::rename(&part, &file)?;
    Ok(dir)
}

/// Starts the desktop app.
pub fn run() -> Result<(), tauri::Error> {
    let builder = specta_builder();
    // Load ONNX Runtime in the background as the window opens, so a missing library is on
    // stderr at once (the window shows the same message when the UI asks).
    std::thread::spawn(|| {
        if let Err(e) = dokuei_review::onnx_runtime_info() {
            eprintln!("dokuei: error [{}]: {}", e.code.as_str(), e.message);
            tracing::warn!(code = e.code.as_str(), "ONNX Runtime is not available");
        }
    });
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .manage(std::sync::Mutex::new(None::<pixel_server::PixelServer>))
        .setup(|app| {
            // Settings, recent studies and PACS nodes in the app's data folder; retrieved
            // studies and the outbox in its cache folder.
            let data = app.path().app_data_dir()?;
            let cache = app.path().app_cache_dir()?;
            // The application log (no patient identifiers; see dokuei_review::logging).
            if let Err(e) = dokuei_review::logging::init(&data.join("logs")) {
                eprintln!("dokuei: {e}; continuing without a log file");
            }
            app.manage(Workstation::new(data, cache));
            // The access audit: the application started (PS3.15 Application Activity).
            app.state::<Workstation>().record_application(true);
            // Instances pushed to the receiver go into the access audit as they arrive.
            let handle = app.handle().clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    handle.state::<Workstation>().audit_received();
                }
            });
            // A checkpoint of the ledger at least hourly while it is in use (the ledger makes
            // one at every sign-off by itself).
            let handle = app.handle().clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(300));
                    let ws = handle.state::<Workstation>();
                    if let Err(e) = ws.checkpoint_if_due(false) {
                        eprintln!("dokuei: error [{}]: {}", e.code.as_str(), e.message);
                    }
                    // Audit events the repository could not take yet.
                    ws.nudge_audit();
                    // Shared-memory files a page asked for and never took.
                    dokuei_review::viewer::sweep_shared_memory(
                        std::path::Path::new(dokuei_review::viewer::SHARED_MEMORY_DIR),
                        Some(std::time::Duration::from_secs(60)),
                    );
                }
            });
            // Shared-memory files that pages of ended sessions did not take.
            std::thread::spawn(|| {
                dokuei_review::viewer::sweep_shared_memory(
                    std::path::Path::new(dokuei_review::viewer::SHARED_MEMORY_DIR),
                    None,
                );
            });
            // The main window, as tauri.conf.json describes it; made here so that the
            // web-process extension (src-tauri/webext) is loaded into it.
            let config = app
                .config()
                .app
                .windows
                .iter()
                .find(|w| w.label == "main")
                .cloned()
                .ok_or("tauri.conf.json has no main window")?;
            let mut window = tauri::WebviewWindowBuilder::from_config(app.handle(), &config)?;
            if let Some(dir) = web_extensions(&app.path().app_cache_dir()?) {
                window = window.extensions_path(dir);
            }
            window.build()?;
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
        .build(tauri::generate_context!())?
        .run(|app, event| {
            // On the way out: the application's stop in the audit, then a checkpoint of
            // whatever was recorded since the last one.
            if let tauri::RunEvent::Exit = event {
                let ws = app.state::<Workstation>();
                ws.record_application(false);
                dokuei_review::viewer::sweep_shared_memory(
                    std::path::Path::new(dokuei_review::viewer::SHARED_MEMORY_DIR),
                    Some(std::time::Duration::ZERO),
                );
                if let Err(e) = ws.checkpoint_if_due(true) {
                    eprintln!("dokuei: error [{}]: {}", e.code.as_str(), e.message);
                }
            }
        });
    Ok(())
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

    /// The web-process extension gives `dokueiShm` to the app's own page only
    /// (`own_page` in webext/dokuei_shm.c, run through the test program build.rs makes).
    #[cfg(target_os = "linux")]
    #[test]
    fn only_the_apps_own_page_gets_shared_memory() {
        let dev = !cfg!(feature = "custom-protocol");
        let cases = [
            ("tauri://localhost", true),
            ("tauri://localhost/", true),
            ("tauri://localhost/index.html?study=1#mpr", true),
            ("http://tauri.localhost/", true),
            ("http://localhost:1420/", dev),
            ("http://127.0.0.1:1420/", dev),
            ("http://localhost:1@elsewhere.example/", false),
            ("tauri://user@localhost/", false),
            ("tauri://localhost.elsewhere.example/", false),
            ("tauri://localhost:8080/", false),
            ("http://tauri.localhost.elsewhere.example/", false),
            ("http://tauri.localhost:8042/", false),
            ("http://localhost:8042/", false),
            ("https://tauri.localhost/", false),
            ("file:///tmp/page.html", false),
            ("about:blank", false),
            ("not a uri", false),
        ];
        let out = std::process::Command::new(concat!(env!("OUT_DIR"), "/own_page_test"))
            .args(cases.map(|(uri, _)| uri))
            .output()
            .unwrap();
        assert!(out.status.success());
        let got: Vec<bool> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l == "1")
            .collect();
        for ((uri, want), got) in cases.iter().zip(&got) {
            assert_eq!(want, got, "{uri}");
        }
        assert_eq!(got.len(), cases.len());
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dokuei-bindings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
