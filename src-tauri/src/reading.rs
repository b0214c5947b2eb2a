//! The AI review workflow's commands: readers, settings, models, analyse (with progress and
//! cancel), decisions, sign-off, commit-then-reveal, results as DICOM, and the QA view. Each one
//! calls `dokuei_review::workstation::Workstation` (the state) or `dokuei_review::reading` (the
//! rules) and returns; the ledger is written there at once.

use dokuei_review::audit::{AuditExport, AuditSettings};
use dokuei_review::ledger::{DecisionFilter, ExportedDecision, Role};
use dokuei_review::pacs::SendOutcome;
use dokuei_review::reading::{
    self, DecisionInput, KeyImageView, ModelSummary, Reader, StudyReview,
};
use dokuei_review::workstation::{
    AnalyseProgress, AnalyseResult, DecisionResult, Settings, VerifyResult, Workstation,
};
use dokuei_review::{AppError, ErrorCode, results};
use tauri::Manager;
use tauri::ipc::Channel;

type Ws<'a> = tauri::State<'a, Workstation>;

/// Runs a blocking use case off the async runtime's threads.
pub(crate) async fn blocking<T: Send + 'static>(
    app: tauri::AppHandle,
    f: impl FnOnce(&Workstation) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tauri::async_runtime::spawn_blocking(move || f(&app.state::<Workstation>()))
        .await
        .map_err(|_| {
            // The panic hook has written the crash to the log.
            AppError::new(
                ErrorCode::WriteFailed,
                format!(
                    "Dokuei hit an internal error (a bug) and did not finish this action; the details are in the log in {}",
                    dokuei_review::logging::log_dir()
                        .map_or_else(|| "(no log)".into(), |d| d.display().to_string())
                ),
            )
        })?
}

#[tauri::command]
#[specta::specta]
pub fn settings(ws: Ws<'_>) -> Settings {
    ws.settings()
}

/// Saves the settings (written to a temporary file and renamed).
#[tauri::command]
#[specta::specta]
pub fn save_settings(ws: Ws<'_>, settings: Settings) -> Result<Settings, AppError> {
    ws.save_settings(settings)
}

#[tauri::command]
#[specta::specta]
pub async fn readers(ws: Ws<'_>) -> Result<Vec<Reader>, AppError> {
    ws.with_ledger(reading::readers)
}

#[tauri::command]
#[specta::specta]
pub async fn create_reader(
    app: tauri::AppHandle,
    display_name: String,
    role: Role,
    passphrase: String,
) -> Result<Reader, AppError> {
    // Argon2id takes a moment: off the async runtime's threads.
    blocking(app, move |ws| {
        ws.with_ledger(|l| reading::add_reader(l, &display_name, role, &passphrase))
    })
    .await
}

/// Sets a reader's passphrase: the first for a profile made before passphrases, or a change
/// (with the current one).
#[tauri::command]
#[specta::specta]
pub async fn set_passphrase(
    app: tauri::AppHandle,
    reader_id: i32,
    current: Option<String>,
    passphrase: String,
) -> Result<(), AppError> {
    blocking(app, move |ws| {
        ws.with_ledger(|l| {
            reading::set_passphrase(l, i64::from(reader_id), current.as_deref(), &passphrase)
        })
    })
    .await
}

/// The models on offer, each with its integrity check and model card.
#[tauri::command]
#[specta::specta]
pub async fn models(app: tauri::AppHandle) -> Result<Vec<ModelSummary>, AppError> {
    blocking(app, |ws| Ok(ws.models())).await
}

/// Where the ledger file is (shown in the QA view).
#[tauri::command]
#[specta::specta]
pub fn ledger_location() -> Result<String, AppError> {
    Ok(dokuei_review::ledger::ledger_path(None)?
        .display()
        .to_string())
}

/// What has been recorded about the study that series `series` belongs to.
#[tauri::command]
#[specta::specta]
pub async fn study_review(ws: Ws<'_>, series: u32) -> Result<StudyReview, AppError> {
    ws.study_review(series)
}

/// Runs the model in `model_dir` on stack `stack` of series `series`, streaming progress, and
/// records the analysis and its findings in the ledger once it has finished. Cancelled or
/// failed analyses record nothing.
#[tauri::command]
#[specta::specta]
pub async fn analyse(
    app: tauri::AppHandle,
    series: u32,
    stack: u32,
    model_dir: String,
    on_progress: Channel<AnalyseProgress>,
) -> Result<AnalyseResult, AppError> {
    blocking(app, move |ws| {
        // At most two updates a second (and always the last): each one re-renders and repaints
        // the window, which costs tens of ms of CPU under software rendering, taken from the model.
        let mut last = std::time::Instant::now() - std::time::Duration::from_secs(1);
        ws.analyse(series, stack, std::path::Path::new(&model_dir), &mut |p| {
            if p.done == p.total || last.elapsed() >= std::time::Duration::from_millis(500) {
                last = std::time::Instant::now();
                let _ = on_progress.send(p);
            }
        })
    })
    .await
}

/// Cancels the running analysis (it stops between batches and records nothing).
#[tauri::command]
#[specta::specta]
pub fn cancel_analysis(ws: Ws<'_>) -> bool {
    ws.cancel_analysis()
}

#[tauri::command]
#[specta::specta]
pub async fn decide(
    ws: Ws<'_>,
    series: u32,
    stack: u32,
    reader_id: i32,
    decision: DecisionInput,
    passphrase: Option<String>,
) -> Result<DecisionResult, AppError> {
    ws.decide(series, stack, reader_id, &decision, passphrase.as_deref())
}

/// Marks (or unmarks) a slice as a key image of its study, with a note.
#[tauri::command]
#[specta::specta]
pub async fn mark_key_image(
    ws: Ws<'_>,
    series: u32,
    stack: u32,
    slice: u32,
    reader_id: i32,
    note: String,
    mark: bool,
) -> Result<Vec<KeyImageView>, AppError> {
    ws.mark_key_image(series, stack, slice, reader_id, &note, mark)
}

/// The key images of the study of series `series`, placed in stack `stack`.
#[tauri::command]
#[specta::specta]
pub async fn key_images(
    ws: Ws<'_>,
    series: u32,
    stack: u32,
) -> Result<Vec<KeyImageView>, AppError> {
    ws.key_images(series, stack)
}

/// Whether every decision needs the reader's passphrase (the installation's policy).
#[tauri::command]
#[specta::specta]
pub async fn decision_passphrase_required(ws: Ws<'_>) -> Result<bool, AppError> {
    ws.decision_passphrase_required()
}

#[tauri::command]
#[specta::specta]
pub async fn sign_off(
    app: tauri::AppHandle,
    series: u32,
    reader_id: i32,
    impression: String,
    passphrase: String,
) -> Result<StudyReview, AppError> {
    blocking(app, move |ws| {
        ws.sign_off(series, reader_id, &impression, &passphrase)
    })
    .await
}

/// Writes the study's results as DICOM (AI SEG and SR; after sign-off the physician's
/// assessment SR and the readers' SEG) into `folder`, and records each object in the ledger.
#[tauri::command]
#[specta::specta]
pub async fn export_results(
    ws: Ws<'_>,
    series: u32,
    folder: String,
) -> Result<results::ResultsExport, AppError> {
    ws.export_results(series, std::path::Path::new(&folder))
}

/// Writes a de-identified copy (DICOM PS3.15 Basic Profile and the chosen options) of the whole
/// study that `series` belongs to into `folder`, streaming progress; `cancel_analysis` stops it
/// between files (what was written stays). Recorded in the access audit.
#[tauri::command]
#[specta::specta]
pub async fn export_deidentified(
    app: tauri::AppHandle,
    series: u32,
    folder: String,
    settings: dokuei_review::deid::DeidSettings,
    on_progress: Channel<dokuei_review::deid::DeidProgress>,
) -> Result<dokuei_review::deid::DeidExport, AppError> {
    blocking(app, move |ws| {
        let mut last = std::time::Instant::now() - std::time::Duration::from_secs(1);
        ws.export_deidentified(series, std::path::Path::new(&folder), &settings, &mut |p| {
            if p.done == p.total || last.elapsed() >= std::time::Duration::from_millis(250) {
                last = std::time::Instant::now();
                let _ = on_progress.send(p);
            }
        })
    })
    .await
}

/// Writes training data (de-identified DICOM with a SEG of the final labels, an nnU-Net v2
/// dataset, a MONAI datalist, findings.jsonl, splits and provenance) from the signed-off
/// studies among the open and recent studies, streaming progress; `cancel_analysis` stops it.
/// Recorded in the access audit.
#[tauri::command]
#[specta::specta]
pub async fn export_training(
    app: tauri::AppHandle,
    folder: String,
    settings: dokuei_review::training::TrainingSettings,
    on_progress: Channel<dokuei_review::training::TrainingProgress>,
) -> Result<dokuei_review::training::TrainingExport, AppError> {
    blocking(app, move |ws| {
        let mut last = std::time::Instant::now() - std::time::Duration::from_secs(1);
        ws.export_training(std::path::Path::new(&folder), &settings, &mut |p| {
            if p.done == p.total || last.elapsed() >= std::time::Duration::from_millis(250) {
                last = std::time::Instant::now();
                let _ = on_progress.send(p);
            }
        })
    })
    .await
}

/// Exports the study's results into the outbox and sends them to PACS node `node`; each object
/// written and each instance sent is recorded in the ledger.
#[tauri::command]
#[specta::specta]
pub async fn send_results(
    app: tauri::AppHandle,
    series: u32,
    node: String,
) -> Result<Vec<SendOutcome>, AppError> {
    blocking(app, move |ws| ws.send_results(series, &node)).await
}

/// Results other tools (or an earlier export) wrote that are among the open study's files: SEG
/// findings placed on their series, with the SR's measurements, and what could not be placed.
#[tauri::command]
#[specta::specta]
pub async fn imported_results(ws: Ws<'_>) -> Result<results::ImportedResults, AppError> {
    ws.imported_results()
}

/// Records the imported results of `series`' study in the ledger (once per SEG), so that they
/// are listed and decided on like the study's own AI findings.
#[tauri::command]
#[specta::specta]
pub async fn review_imported_results(ws: Ws<'_>, series: u32) -> Result<StudyReview, AppError> {
    ws.review_imported_results(series)
}

#[tauri::command]
#[specta::specta]
pub async fn record_impression(
    ws: Ws<'_>,
    series: u32,
    reader_id: i32,
    impression: String,
) -> Result<StudyReview, AppError> {
    ws.record_impression(series, reader_id, &impression)
}

#[tauri::command]
#[specta::specta]
pub async fn reveal_ai(ws: Ws<'_>, series: u32, reader_id: i32) -> Result<StudyReview, AppError> {
    ws.reveal_ai(series, reader_id)
}

/// The decisions that match `filter`, newest last (identifiers as recorded: this view stays
/// on the machine; exports are pseudonymised unless asked otherwise).
#[tauri::command]
#[specta::specta]
pub async fn qa_decisions(
    ws: Ws<'_>,
    filter: DecisionFilter,
) -> Result<Vec<ExportedDecision>, AppError> {
    ws.qa_decisions(&filter)
}

/// Exports the decisions that match `filter` to `path` (CSV or JSON Lines), de-identified
/// unless `identified`. Returns how many were written.
#[tauri::command]
#[specta::specta]
pub async fn qa_export(
    ws: Ws<'_>,
    filter: DecisionFilter,
    format: String,
    identified: bool,
    path: String,
) -> Result<u32, AppError> {
    ws.qa_export(&filter, &format, identified, std::path::Path::new(&path))
}

/// The shadow-run candidates QA set.
#[tauri::command]
#[specta::specta]
pub async fn shadow_settings(
    ws: Ws<'_>,
) -> Result<dokuei_review::workstation::ShadowSettings, AppError> {
    Ok(ws.shadow_settings())
}

/// Saves the shadow-run candidates (recorded in the access audit).
#[tauri::command]
#[specta::specta]
pub async fn save_shadow_settings(
    ws: Ws<'_>,
    settings: dokuei_review::workstation::ShadowSettings,
) -> Result<dokuei_review::workstation::ShadowSettings, AppError> {
    ws.save_shadow_settings(settings)
}

/// The model-version watch: each version's scores and decision rates, each version against
/// the one before it, and the alerts under QA's thresholds.
#[tauri::command]
#[specta::specta]
pub async fn model_watch(
    app: tauri::AppHandle,
    thresholds: dokuei_review::ledger::WatchThresholds,
) -> Result<dokuei_review::ledger::Watch, AppError> {
    blocking(app, move |ws| ws.model_watch(&thresholds)).await
}

/// Writes the model-version watch's report for a QA committee (HTML with plots) to `path`.
#[tauri::command]
#[specta::specta]
pub async fn model_watch_report(
    app: tauri::AppHandle,
    thresholds: dokuei_review::ledger::WatchThresholds,
    path: String,
) -> Result<(), AppError> {
    blocking(app, move |ws| {
        ws.model_watch_report(&thresholds, std::path::Path::new(&path))
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn qa_verify(ws: Ws<'_>) -> Result<VerifyResult, AppError> {
    ws.qa_verify()
}

/// The audit repository settings (beside the ledger).
#[tauri::command]
#[specta::specta]
pub async fn audit_settings(app: tauri::AppHandle) -> Result<AuditSettings, AppError> {
    blocking(app, |ws| ws.audit_settings()).await
}

/// Saves the audit repository settings (the change is itself recorded) and sends what is
/// pending.
#[tauri::command]
#[specta::specta]
pub async fn save_audit_settings(
    app: tauri::AppHandle,
    settings: AuditSettings,
) -> Result<AuditSettings, AppError> {
    blocking(app, move |ws| {
        let saved = ws.save_audit_settings(settings)?;
        ws.nudge_audit();
        Ok(saved)
    })
    .await
}

/// Writes the access audit to `folder` as DICOM PS3.15 audit messages (one XML file each).
#[tauri::command]
#[specta::specta]
pub async fn export_audit(app: tauri::AppHandle, folder: String) -> Result<AuditExport, AppError> {
    blocking(app, move |ws| {
        ws.export_audit(std::path::Path::new(&folder))
    })
    .await
}
