//! The AI review workflow's commands: readers, settings, models, analyse (with progress and
//! cancel), decisions, sign-off, commit-then-reveal, and the QA view. Each command calls
//! `dokuei_review::reading` (where the rules are) and returns; the ledger is written there at
//! once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use dokuei_review::infer::pipeline::LabelMap;
use dokuei_review::ledger::{DecisionFilter, ExportedDecision, Format, Identifiers, Ledger, Role};
use dokuei_review::reading::{
    self, DecisionContext, DecisionInput, ModelSummary, Reader, StudyIdentity, StudyReview,
};
use dokuei_review::{AppError, ErrorCode, results};
use serde::{Deserialize, Serialize};
use tauri::Manager;
use tauri::ipc::Channel;

use crate::Viewer;

/// The review workflow's state: the ledger (opened on first use), the running analysis's
/// cancel flag, and the heatmaps of the analyses shown (by analysis id; display only, the
/// ledger keeps the findings).
#[derive(Default)]
pub struct Reading {
    ledger: Mutex<Option<Ledger>>,
    cancel: Mutex<Option<Arc<AtomicBool>>>,
    pub(crate) maps: Mutex<HashMap<i64, Vec<LabelMap>>>,
    /// Model sessions kept between analyses (by SHA-256; reloaded when the files change).
    models: dokuei_review::infer::cache::ModelCache,
}

fn unavailable(what: &str) -> AppError {
    AppError::new(
        ErrorCode::LedgerUnavailable,
        format!("the {what} is unavailable (a previous action failed while holding it)"),
    )
}

impl Reading {
    /// Runs `f` with the ledger, opening it the first time (`DOKUEI_LEDGER`, else the OS data
    /// folder).
    pub(crate) fn with_ledger<T>(
        &self,
        f: impl FnOnce(&Ledger) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let mut guard = self.ledger.lock().map_err(|_| unavailable("ledger"))?;
        if guard.is_none() {
            *guard = Some(dokuei_review::ledger::open_ledger(None)?);
        }
        match guard.as_ref() {
            Some(ledger) => f(ledger),
            None => Err(unavailable("ledger")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

/// The reader's preferences, kept in the app's data folder (`settings.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, specta::Type)]
#[serde(default)]
pub struct Settings {
    /// The current reader (a ledger reader id).
    pub reader_id: Option<i32>,
    /// Commit-then-reveal: record one's own impression before AI results are shown.
    pub commit_then_reveal: bool,
    /// "standard", or "cvd" for a palette that stays distinguishable with common colour-vision
    /// deficiencies.
    pub palette: String,
    /// Extra folders to look for models in.
    pub model_folders: Vec<String>,
}

const SETTINGS_FILE: &str = "settings.json";

fn settings_path(app: &tauri::AppHandle) -> Option<PathBuf> {
    app.path()
        .app_data_dir()
        .ok()
        .map(|d| d.join(SETTINGS_FILE))
}

fn read_settings(app: &tauri::AppHandle) -> Settings {
    settings_path(app)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

#[tauri::command]
#[specta::specta]
pub fn settings(app: tauri::AppHandle) -> Settings {
    read_settings(&app)
}

/// Saves the settings (written to a temporary file and renamed, so a crash never leaves half
/// a file).
#[tauri::command]
#[specta::specta]
pub fn save_settings(app: tauri::AppHandle, settings: Settings) -> Result<Settings, AppError> {
    let path = settings_path(&app)
        .ok_or_else(|| AppError::new(ErrorCode::WriteFailed, "no data folder for settings"))?;
    let fail = |e: &dyn std::fmt::Display| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!("cannot save the settings `{}`: {e}", path.display()),
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let text = serde_json::to_string_pretty(&settings).map_err(|e| fail(&e))?;
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, text).map_err(|e| fail(&e))?;
    std::fs::rename(&tmp, &path).map_err(|e| fail(&e))?;
    Ok(settings)
}

// ---------------------------------------------------------------------------------------------
// Readers and models

#[tauri::command]
#[specta::specta]
pub async fn readers(state: tauri::State<'_, Reading>) -> Result<Vec<Reader>, AppError> {
    state.with_ledger(reading::readers)
}

#[tauri::command]
#[specta::specta]
pub async fn create_reader(
    state: tauri::State<'_, Reading>,
    display_name: String,
    role: Role,
) -> Result<Reader, AppError> {
    state.with_ledger(|l| reading::add_reader(l, &display_name, role))
}

/// Where models are looked for: the user's configured folders and the defaults.
fn model_roots(app: &tauri::AppHandle) -> Vec<PathBuf> {
    let configured: Vec<PathBuf> = read_settings(app)
        .model_folders
        .iter()
        .map(PathBuf::from)
        .collect();
    reading::model_roots(&configured)
}

/// The models on offer, each with its integrity check and model card.
#[tauri::command]
#[specta::specta]
pub async fn models(app: tauri::AppHandle) -> Result<Vec<ModelSummary>, AppError> {
    let roots = model_roots(&app);
    tauri::async_runtime::spawn_blocking(move || {
        let provider = match dokuei_review::onnx_runtime_info() {
            Ok(info) => info.preferred_provider.name().to_owned(),
            Err(_) => "unavailable (ONNX Runtime not loaded)".to_owned(),
        };
        let mut list = reading::list_models(&roots);
        for m in &mut list {
            m.execution_provider = provider.clone();
        }
        list
    })
    .await
    .map_err(|e| AppError::new(ErrorCode::ModelFailed, e.to_string()))
}

/// Where the ledger file is (shown in the QA view).
#[tauri::command]
#[specta::specta]
pub fn ledger_location() -> Result<String, AppError> {
    Ok(dokuei_review::ledger::ledger_path(None)?
        .display()
        .to_string())
}

// ---------------------------------------------------------------------------------------------
// The study under review

/// The open study's identity for the ledger, with the series and stack a geometry refers to.
fn with_series<T>(
    viewer: &Viewer,
    series: u32,
    stack: u32,
    f: impl FnOnce(&StudyIdentity, &DecisionContext<'_>) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let (_, study) = viewer.current()?;
    let s = study.series(series)?;
    let st = study.stack(series, stack)?;
    let identity = reading::study_identity(&study.index, &s.uid)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "the series' study is not open"))?;
    let ctx = DecisionContext {
        study: &identity,
        series: s,
        stack: st,
    };
    f(&identity, &ctx)
}

/// What has been recorded about the study that series `series` belongs to.
#[tauri::command]
#[specta::specta]
pub async fn study_review(
    viewer: tauri::State<'_, Viewer>,
    state: tauri::State<'_, Reading>,
    series: u32,
) -> Result<StudyReview, AppError> {
    with_series(&viewer, series, 0, |identity, _| {
        state.with_ledger(|l| reading::review(l, &identity.study_uid))
    })
}

/// Progress of a running analysis.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct AnalyseProgress {
    /// Positions run so far and in all.
    pub done: u32,
    pub total: u32,
    /// Estimated seconds left (negative while unknown).
    pub eta_seconds: f32,
}

/// A heatmap kept for display: `dokuei://localhost/map/{analysis}/{index}/{slice}` serves one
/// slice (u8, probability × 255).
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct MapInfo {
    pub index: u32,
    pub label: String,
    pub slices: u32,
    pub rows: u32,
    pub columns: u32,
}

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct AnalyseResult {
    pub review: StudyReview,
    /// The analysis these findings came from (its heatmaps, if any, are in `maps`).
    #[specta(type = i32)]
    pub analysis_id: i64,
    pub maps: Vec<MapInfo>,
    /// Heatmap and classification models: the image-level score per slice and label.
    pub image_scores: Vec<Vec<f32>>,
    /// The engine's own time: model load, series load and the pipeline (seconds).
    pub engine_seconds: f32,
    /// Time inside `session.run`.
    pub inference_seconds: f32,
    pub execution_provider: String,
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
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let state = app.state::<Reading>();
        let mut slot = state.cancel.lock().map_err(|_| unavailable("analysis"))?;
        if slot.as_ref().is_some_and(|c| !c.load(Ordering::Relaxed)) {
            return Err(AppError::new(
                ErrorCode::NotAllowed,
                "an analysis is already running; cancel it or wait for it to finish",
            ));
        }
        *slot = Some(cancel.clone());
    }
    let task_app = app.clone();
    let task_cancel = cancel.clone();
    let result = tauri::async_runtime::spawn_blocking(move || {
        run_analysis(
            &task_app,
            series,
            stack,
            &model_dir,
            &on_progress,
            &task_cancel,
        )
    })
    .await
    .map_err(|e| AppError::new(ErrorCode::ModelFailed, e.to_string()))
    .and_then(|r| r);
    if let Ok(mut slot) = app.state::<Reading>().cancel.lock() {
        *slot = None;
    }
    result
}

fn run_analysis(
    app: &tauri::AppHandle,
    series: u32,
    stack: u32,
    model_dir: &str,
    on_progress: &Channel<AnalyseProgress>,
    cancel: &AtomicBool,
) -> Result<AnalyseResult, AppError> {
    let started = std::time::Instant::now();
    let started_at = dokuei_review::ledger::now_utc();
    let runtime = dokuei_review::OnnxRuntime::load(None)?;
    let viewer = app.state::<Viewer>();
    let (_, study) = viewer.current()?;
    let s = study.series(series)?;
    let identity = reading::study_identity(&study.index, &s.uid)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "the series' study is not open"))?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut last_sent = started - std::time::Duration::from_secs(1);
    let (model, analysis) = dokuei_review::analysis::analyse_series(
        &runtime,
        &app.state::<Reading>().models,
        std::path::Path::new(model_dir),
        s,
        stack as usize,
        Some(threads),
        &mut |p| {
            // At most two updates a second (and always the last): each one re-renders and repaints the
            // window, which costs tens of ms of CPU under software rendering, taken from the model.
            let now = std::time::Instant::now();
            if p.done < p.total
                && now.duration_since(last_sent) < std::time::Duration::from_millis(500)
            {
                return;
            }
            last_sent = now;
            let _ = on_progress.send(AnalyseProgress {
                done: p.done as u32,
                total: p.total as u32,
                eta_seconds: p.eta_seconds as f32,
            });
        },
        cancel,
    )?;
    let model = model.lock().unwrap_or_else(|e| e.into_inner());
    let engine_seconds = started.elapsed().as_secs_f32();
    if cancel.load(Ordering::Relaxed) {
        return Err(AppError::new(
            ErrorCode::Cancelled,
            "the analysis was cancelled; nothing was recorded",
        ));
    }
    let finished_at = dokuei_review::ledger::now_utc();
    let state = app.state::<Reading>();
    let review = state.with_ledger(|l| {
        reading::record_analysis(
            l,
            &identity,
            &s.uid,
            &reading::StackIdentity::of(s, study.stack(series, stack)?, stack as usize),
            &model.reference(),
            &analysis.findings,
            &started_at,
            &finished_at,
        )
    })?;
    let analysis_id = review
        .analyses
        .iter()
        .filter(|a| a.series_uid == s.uid && a.model_id == model.manifest.model.id)
        .map(|a| a.id)
        .max()
        .unwrap_or(0);
    let maps: Vec<MapInfo> = analysis
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| MapInfo {
            index: i as u32,
            label: m.label.clone(),
            slices: m.slices as u32,
            rows: m.rows as u32,
            columns: m.columns as u32,
        })
        .collect();
    if let Ok(mut kept) = state.maps.lock() {
        kept.insert(analysis_id, analysis.maps);
    }
    Ok(AnalyseResult {
        review,
        analysis_id,
        maps,
        image_scores: analysis.image_scores,
        engine_seconds,
        inference_seconds: analysis.inference_seconds as f32,
        execution_provider: model.provider.used.name().to_owned(),
    })
}

/// Cancels the running analysis (it stops between batches and records nothing).
#[tauri::command]
#[specta::specta]
pub fn cancel_analysis(state: tauri::State<'_, Reading>) -> bool {
    match state.cancel.lock().ok().and_then(|c| c.clone()) {
        Some(flag) => {
            flag.store(true, Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// Serves one slice of a kept heatmap (u8), for `dokuei://localhost/map/…`.
pub(crate) fn map_slice(
    app: &tauri::AppHandle,
    analysis: u32,
    index: u32,
    slice: u32,
) -> Result<Vec<u8>, AppError> {
    let state = app.state::<Reading>();
    let maps = state
        .maps
        .lock()
        .map_err(|_| unavailable("heatmap store"))?;
    let m = maps
        .get(&i64::from(analysis))
        .and_then(|v| v.get(index as usize))
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "that heatmap is not in memory"))?;
    let plane = m.rows * m.columns;
    let start = slice as usize * plane;
    m.values
        .get(start..start + plane)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no heatmap slice {slice}")))
}

// ---------------------------------------------------------------------------------------------
// Decisions

/// A decision as recorded, and how long the ledger took to commit it.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct DecisionResult {
    #[specta(type = i32)]
    pub id: i64,
    pub review: StudyReview,
    /// Milliseconds from the command's start to the row being on disk.
    pub commit_ms: f32,
}

#[tauri::command]
#[specta::specta]
pub async fn decide(
    viewer: tauri::State<'_, Viewer>,
    state: tauri::State<'_, Reading>,
    series: u32,
    stack: u32,
    reader_id: i32,
    decision: DecisionInput,
) -> Result<DecisionResult, AppError> {
    let start = std::time::Instant::now();
    with_series(&viewer, series, stack, |_, ctx| {
        state.with_ledger(|l| {
            let (id, review) = reading::decide(l, ctx, i64::from(reader_id), &decision)?;
            Ok(DecisionResult {
                id,
                review,
                commit_ms: start.elapsed().as_secs_f32() * 1000.0,
            })
        })
    })
}

#[tauri::command]
#[specta::specta]
pub async fn sign_off(
    viewer: tauri::State<'_, Viewer>,
    state: tauri::State<'_, Reading>,
    series: u32,
    reader_id: i32,
    impression: String,
) -> Result<StudyReview, AppError> {
    with_series(&viewer, series, 0, |identity, _| {
        state.with_ledger(|l| {
            reading::sign_off(l, &identity.study_uid, i64::from(reader_id), &impression)
        })
    })
}

/// Writes the study's results as DICOM (AI SEG and SR; after sign-off the physician's
/// assessment SR and the readers' SEG) into `folder`, and records each object in the ledger.
#[tauri::command]
#[specta::specta]
pub async fn export_results(
    app: tauri::AppHandle,
    viewer: tauri::State<'_, Viewer>,
    state: tauri::State<'_, Reading>,
    series: u32,
    folder: String,
) -> Result<results::ResultsExport, AppError> {
    export_to(&app, &viewer, &state, series, std::path::Path::new(&folder))
}

fn export_to(
    app: &tauri::AppHandle,
    viewer: &Viewer,
    state: &Reading,
    series: u32,
    out: &std::path::Path,
) -> Result<results::ResultsExport, AppError> {
    let (roots, (_, study)) = (model_roots(app), viewer.current()?);
    // The heatmaps of this session's analyses (the ledger does not keep maps).
    let maps = state.maps.lock().map(|m| m.clone()).unwrap_or_default();
    with_series(viewer, series, 0, |id, _| {
        state.with_ledger(|l| {
            results::export_results(l, &study.index, &id.study_uid, &roots, &maps, out)
        })
    })
}

/// Exports the study's results (as `export_results` does) into the app's outbox and sends them
/// to PACS node `node`; each object written and each instance sent is recorded in the ledger.
#[tauri::command]
#[specta::specta]
pub async fn send_results(
    app: tauri::AppHandle,
    viewer: tauri::State<'_, Viewer>,
    state: tauri::State<'_, Reading>,
    pacs: tauri::State<'_, dokuei_review::pacs::PacsService>,
    series: u32,
    node: String,
) -> Result<Vec<dokuei_review::pacs::SendOutcome>, AppError> {
    let outbox = app
        .path()
        .app_cache_dir()
        .map_err(|e| AppError::new(ErrorCode::WriteFailed, format!("no cache folder: {e}")))?
        .join("outbox");
    let _ = std::fs::remove_dir_all(&outbox);
    let written = export_to(&app, &viewer, &state, series, &outbox)?;
    state.with_ledger(|l| pacs.send_folder(l, &node, std::path::Path::new(&written.folder)))
}

/// Results other tools (or an earlier export) wrote that are among the open study's files: SEG
/// findings placed on their series, with the SR's measurements, and what could not be placed.
#[tauri::command]
#[specta::specta]
pub async fn imported_results(
    viewer: tauri::State<'_, Viewer>,
) -> Result<results::ImportedResults, AppError> {
    let (_, study) = viewer.current()?;
    Ok(results::import_results(&study.index))
}

/// Records the imported results of `series`' study in the ledger (once per SEG), so that they
/// are listed and decided on like the study's own AI findings.
#[tauri::command]
#[specta::specta]
pub async fn review_imported_results(
    viewer: tauri::State<'_, Viewer>,
    state: tauri::State<'_, Reading>,
    series: u32,
) -> Result<StudyReview, AppError> {
    let (_, study) = viewer.current()?;
    with_series(&viewer, series, 0, |identity, _| {
        let imported = results::import_results_of_study(&study.index, &identity.study_uid);
        state.with_ledger(|l| reading::record_imported(l, identity, &imported))
    })
}

#[tauri::command]
#[specta::specta]
pub async fn record_impression(
    viewer: tauri::State<'_, Viewer>,
    state: tauri::State<'_, Reading>,
    series: u32,
    reader_id: i32,
    impression: String,
) -> Result<StudyReview, AppError> {
    with_series(&viewer, series, 0, |identity, _| {
        state.with_ledger(|l| {
            reading::record_impression(l, identity, i64::from(reader_id), &impression)
        })
    })
}

#[tauri::command]
#[specta::specta]
pub async fn reveal_ai(
    viewer: tauri::State<'_, Viewer>,
    state: tauri::State<'_, Reading>,
    series: u32,
    reader_id: i32,
) -> Result<StudyReview, AppError> {
    with_series(&viewer, series, 0, |identity, _| {
        state.with_ledger(|l| reading::reveal(l, &identity.study_uid, i64::from(reader_id)))
    })
}

// ---------------------------------------------------------------------------------------------
// QA

/// At most this many decisions are listed in the QA table (the export has them all).
const QA_TABLE_MAX: usize = 5000;

/// The decisions that match `filter`, newest last (identifiers as recorded: this view stays
/// on the machine; exports are pseudonymised unless asked otherwise).
#[tauri::command]
#[specta::specta]
pub async fn qa_decisions(
    state: tauri::State<'_, Reading>,
    filter: DecisionFilter,
) -> Result<Vec<ExportedDecision>, AppError> {
    state.with_ledger(|l| {
        let mut out = Vec::new();
        l.for_each_decision(&filter, &Identifiers::AsRecorded, &mut |d| {
            if out.len() < QA_TABLE_MAX {
                out.push(d.clone());
            }
            Ok(())
        })?;
        Ok(out)
    })
}

/// Exports the decisions that match `filter` to `path` (CSV or JSON Lines), de-identified
/// unless `identified`. Returns how many were written.
#[tauri::command]
#[specta::specta]
pub async fn qa_export(
    state: tauri::State<'_, Reading>,
    filter: DecisionFilter,
    format: String,
    identified: bool,
    path: String,
) -> Result<u32, AppError> {
    let format = match format.as_str() {
        "csv" => Format::Csv,
        "jsonl" => Format::JsonLines,
        other => {
            return Err(AppError::new(
                ErrorCode::InvalidArgument,
                format!("unknown export format `{other}` (csv or jsonl)"),
            ));
        }
    };
    state.with_ledger(|l| {
        dokuei_review::ledger::export(l, &filter, format, identified, std::path::Path::new(&path))
            .map(|n| n as u32)
    })
}

/// The result of checking the ledger's hash chain.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct VerifyResult {
    pub intact: bool,
    pub rows_checked: u32,
    /// The first row that does not match, in words.
    pub problem: Option<String>,
    pub ledger: String,
}

#[tauri::command]
#[specta::specta]
pub async fn qa_verify(state: tauri::State<'_, Reading>) -> Result<VerifyResult, AppError> {
    state.with_ledger(|l| {
        let report = l.verify()?;
        Ok(VerifyResult {
            intact: report.is_intact(),
            rows_checked: report.rows_checked as u32,
            problem: report.first_problem.map(|p| p.description),
            ledger: l.path().display().to_string(),
        })
    })
}
