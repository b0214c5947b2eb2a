//! The PACS commands: each one a call into the workstation's `PacsService`
//! (`dokuei_review::pacs`), which holds the nodes, the receiver, the cache and the running
//! transfer.

use std::path::PathBuf;

use dokuei_review::AppError;
use dokuei_review::pacs::{
    PacsService, PacsSettings, PacsStatus, Progress, Query, QueryRow, RetrieveRequest, Retrieved,
    SendOutcome,
};
use dokuei_review::workstation::Workstation;
use tauri::ipc::Channel;

type Ws<'a> = tauri::State<'a, Workstation>;

/// Runs a blocking PACS call off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    app: tauri::AppHandle,
    f: impl FnOnce(&PacsService) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    crate::reading::blocking(app, move |ws| f(&ws.pacs)).await
}

#[tauri::command]
#[specta::specta]
pub fn pacs_settings(ws: Ws<'_>) -> Result<PacsSettings, AppError> {
    ws.pacs.settings()
}

/// Saves the nodes, receiver and cache settings and applies them (the receiver starts or stops).
#[tauri::command]
#[specta::specta]
pub async fn save_pacs_settings(
    app: tauri::AppHandle,
    settings: PacsSettings,
) -> Result<PacsStatus, AppError> {
    crate::reading::blocking(app, move |ws| ws.save_pacs_settings(settings)).await
}

/// The receiver's state, what it received, and the cache's content.
#[tauri::command]
#[specta::specta]
pub async fn pacs_status(app: tauri::AppHandle) -> Result<PacsStatus, AppError> {
    blocking(app, |p| p.status()).await
}

/// Test connection: C-ECHO or a QIDO-RS probe.
#[tauri::command]
#[specta::specta]
pub async fn pacs_test(app: tauri::AppHandle, node: String) -> Result<String, AppError> {
    blocking(app, move |p| p.test(&node)).await
}

#[tauri::command]
#[specta::specta]
pub async fn pacs_find(
    app: tauri::AppHandle,
    node: String,
    query: Query,
) -> Result<Vec<QueryRow>, AppError> {
    crate::reading::blocking(app, move |ws| ws.pacs_find(&node, &query)).await
}

/// Retrieves a study (or some of its series) into the cache, streaming progress after each
/// instance; what arrived is kept if it fails part way.
#[tauri::command]
#[specta::specta]
pub async fn pacs_retrieve(
    app: tauri::AppHandle,
    node: String,
    request: RetrieveRequest,
    by_move: bool,
    on_progress: Channel<Progress>,
) -> Result<Retrieved, AppError> {
    crate::reading::blocking(app, move |ws| {
        let mut last = std::time::Instant::now() - std::time::Duration::from_secs(1);
        ws.retrieve(&node, &request, by_move, &mut |progress| {
            // At most four updates a second, and every series' end.
            if progress.series_complete || last.elapsed().as_millis() >= 250 {
                last = std::time::Instant::now();
                let _ = on_progress.send(progress.clone());
            }
        })
    })
    .await
}

/// Cancels the running retrieve (what arrived is kept).
#[tauri::command]
#[specta::specta]
pub fn pacs_cancel(ws: Ws<'_>) -> bool {
    ws.pacs.cancel()
}

/// Empties the cache, or removes one study from it.
#[tauri::command]
#[specta::specta]
pub async fn pacs_clear_cache(
    app: tauri::AppHandle,
    study_uid: Option<String>,
) -> Result<PacsStatus, AppError> {
    blocking(app, move |p| p.clear_cache(study_uid.as_deref())).await
}

/// Sends the DICOM files in `folder` (the exported results) to `node`; each instance and its
/// outcome is recorded in the ledger.
#[tauri::command]
#[specta::specta]
pub async fn pacs_send(
    app: tauri::AppHandle,
    node: String,
    folder: String,
) -> Result<Vec<SendOutcome>, AppError> {
    crate::reading::blocking(app, move |ws| {
        ws.send_folder(&node, &PathBuf::from(&folder))
    })
    .await
}
