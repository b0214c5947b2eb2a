//! The running workstation's state and its use cases, shared by the app's commands (each one a
//! call into here) and reachable without a window: the open study and its loaded stacks, the
//! recent list and the reader's settings (files in the data folder), the ledger (opened on first
//! use), the running analysis with its cancel flag and the heatmaps kept for display, the model
//! sessions, and the PACS side ([`PacsService`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dokuei_infer::pipeline::LabelMap;
use dokuei_ledger::{
    AccessAction, AccessDetail, AccessEvent, DecisionFilter, ExportedDecision, Format, Identifiers,
    Ledger, Outcome,
};
use serde::{Deserialize, Serialize};

use crate::pacs::{PacsService, SendOutcome};
use crate::reading::{self, DecisionContext, DecisionInput, StudyIdentity, StudyReview};
use crate::viewer::{LoadedStack, OpenStudy, StackView, StudyTree};
use crate::{AppError, ErrorCode, audit, results};

/// A study opened recently, for the start list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct RecentStudy {
    /// What was opened (folders, files, DICOMDIRs, zip archives).
    pub paths: Vec<String>,
    /// Study description and date, for the list (no patient identifiers).
    pub label: String,
    /// When it was opened (seconds since 1970; f64 so that TypeScript gets a plain number).
    pub opened: f64,
}

/// What the viewer gets when a study opens.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct OpenedStudy {
    /// Part of every pixel URL (`dokuei://localhost/slice/{generation}/…`).
    pub generation: u32,
    pub tree: StudyTree,
}

/// The reader's preferences, kept in the data folder (`settings.json`).
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

/// Shadow runs, as QA sets them (`shadow-models.json` in the data folder, apart from the
/// reader's settings so that neither overwrites the other): candidate model folders. When a
/// model with the same id (and another version or file) runs, each candidate runs after it on
/// the same stack; its results are recorded, never shown, and compared in the QA view's
/// model-version watch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, specta::Type)]
#[serde(default)]
pub struct ShadowSettings {
    pub model_folders: Vec<String>,
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

/// A decision as recorded, and how long the ledger took to commit it.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct DecisionResult {
    #[specta(type = i32)]
    pub id: i64,
    pub review: StudyReview,
    /// Milliseconds from the command's start to the row being on disk.
    pub commit_ms: f32,
}

/// The result of checking the ledger's hash chain.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct VerifyResult {
    pub intact: bool,
    pub rows_checked: u32,
    /// The first row that does not match, in words.
    pub problem: Option<String>,
    pub ledger: String,
    /// What was checked, in one sentence (says so when no external checkpoint was).
    pub summary: String,
    /// Checkpoints from outside the ledger file that matched (the checkpoint log's).
    pub external_checkpoints: u32,
    /// The last checkpoint could not be written to the checkpoint log (it is in the ledger).
    pub witness_error: Option<String>,
}

/// At most this many decisions are listed in the QA table (the export has them all).
const QA_TABLE_MAX: usize = 5000;
const RECENT_FILE: &str = "recent-studies.json";
const RECENT_MAX: usize = 10;
const SETTINGS_FILE: &str = "settings.json";
const SHADOW_FILE: &str = "shadow-models.json";

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

/// The heatmaps of one analysis, and the stack they were made on.
#[derive(Clone)]
struct KeptMaps {
    series_uid: String,
    stack: u32,
    maps: Arc<Vec<LabelMap>>,
}

/// The stacks by (generation, series, stack), and a signal for those waiting on a load.
#[derive(Default)]
struct StackStore {
    states: Mutex<HashMap<(u32, u32, u32), StackState>>,
    changed: std::sync::Condvar,
    /// The open study's generation, changed under `states`' lock: a request of an earlier
    /// study that passed its check just before another opened starts no load.
    generation: std::sync::atomic::AtomicU32,
}

type Stacks = Arc<StackStore>;

/// The workstation. One per running app.
pub struct Workstation {
    data_dir: PathBuf,
    cache_dir: PathBuf,
    /// The study open in the viewer. `generation` changes with every study opened, so pixel
    /// URLs of an earlier study never resolve against a later one.
    open: RwLock<Option<(u32, Arc<OpenStudy>)>>,
    /// Stacks loaded in memory, by (generation, series, stack): the first request for a slice
    /// starts loading its whole stack in the background (in parallel); until it is there,
    /// slices are decoded one by one.
    stacks: Stacks,
    ledger: Mutex<Option<Ledger>>,
    /// The ledger file (`None`: `DOKUEI_LEDGER`, else the OS data folder).
    ledger_file: Option<PathBuf>,
    cancel: Mutex<Option<Arc<AtomicBool>>>,
    /// The heatmaps of the analyses shown (by analysis id; display only, the ledger keeps the
    /// findings).
    maps: Mutex<HashMap<i64, KeptMaps>>,
    /// Model sessions kept between analyses (by SHA-256; reloaded when the files change).
    models: dokuei_infer::cache::ModelCache,
    pub pacs: PacsService,
    /// Sends the access audit to the audit repository, when one is configured.
    forwarder: Arc<audit::Forwarder>,
    /// C-MOVE retrieves running (their arrivals at the receiver are theirs to record).
    moving: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Workstation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workstation")
            .field("data_dir", &self.data_dir)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str) -> AppError {
    AppError::new(
        ErrorCode::LedgerUnavailable,
        format!("the {what} is unavailable (a previous action failed while holding it)"),
    )
}

fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

impl Workstation {
    /// `data_dir` holds the settings, the recent list and the PACS settings; `cache_dir` the
    /// retrieved studies and the outbox of results being sent.
    pub fn new(data_dir: PathBuf, cache_dir: PathBuf) -> Workstation {
        let pacs = PacsService::new(data_dir.join("pacs.json"), cache_dir.join("pacs"));
        Workstation {
            data_dir,
            cache_dir,
            open: RwLock::new(None),
            stacks: Arc::default(),
            ledger: Mutex::new(None),
            ledger_file: None,
            cancel: Mutex::new(None),
            maps: Mutex::new(HashMap::new()),
            models: Default::default(),
            pacs,
            forwarder: Arc::default(),
            moving: Default::default(),
        }
    }

    /// Uses the ledger at `path` instead of `DOKUEI_LEDGER` or the OS data folder's.
    pub fn with_ledger_file(mut self, path: PathBuf) -> Workstation {
        self.ledger_file = Some(path);
        self
    }

    // ------------------------------------------------------------------------------------------
    // The viewer

    /// The study open now, with its generation.
    pub fn current(&self) -> Result<(u32, Arc<OpenStudy>), AppError> {
        self.open
            .read()
            .map_err(|_| AppError::new(ErrorCode::NotFound, "the viewer state is unavailable"))?
            .clone()
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no study is open"))
    }

    /// Opens folders, files, DICOMDIRs or zip archives (headers only; unreadable files are
    /// listed, never fatal unless nothing at all can be read) and adds them to the recent list.
    pub fn open_study(&self, paths: Vec<String>) -> Result<OpenedStudy, AppError> {
        let started = std::time::Instant::now();
        crate::logging::outcome("open a study", started, self.open_study_inner(paths), |o| {
            let series: usize = o.tree.studies.iter().map(|s| s.series.len()).sum();
            format!("{} study(ies), {series} series", o.tree.studies.len())
        })
    }

    fn open_study_inner(&self, paths: Vec<String>) -> Result<OpenedStudy, AppError> {
        let list: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        let study = Arc::new(OpenStudy::open(&list)?);
        self.pacs.touch_opened(&list);
        let reader = self.reader();
        self.audit_with(|l| {
            audit::study_events(
                l,
                &study.index,
                &audit::event(AccessAction::StudyOpened, reader),
            )
        });
        let tree = crate::viewer::study_tree(&study);
        let generation = {
            let mut open = self.open.write().map_err(|_| {
                AppError::new(ErrorCode::NotFound, "the viewer state is unavailable")
            })?;
            let generation = open.as_ref().map_or(1, |(g, _)| g + 1);
            *open = Some((generation, study));
            if let Ok(mut stacks) = self.stacks.states.lock() {
                // The earlier study's stacks are not needed any more (and whoever waits for
                // one of them is told).
                stacks.clear();
                self.stacks
                    .generation
                    .store(generation, std::sync::atomic::Ordering::SeqCst);
                self.stacks.changed.notify_all();
            }
            generation
        };
        let label = tree
            .studies
            .first()
            .map(|s| {
                let description = if s.description.is_empty() {
                    "(no description)"
                } else {
                    &s.description
                };
                format!("{description} {}", s.date)
            })
            .unwrap_or_default();
        let opened = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64().floor());
        self.remember(RecentStudy {
            paths,
            label,
            opened,
        });
        Ok(OpenedStudy { generation, tree })
    }

    /// How to show stack `stack` of series `series` of the open study.
    pub fn stack_view(&self, series: u32, stack: u32) -> Result<StackView, AppError> {
        let (_, study) = self.current()?;
        crate::viewer::stack_view(&study, series, stack)
    }

    /// The studies opened recently, newest first.
    pub fn recent_studies(&self) -> Vec<RecentStudy> {
        read_json(&self.data_dir.join(RECENT_FILE))
    }

    fn remember(&self, entry: RecentStudy) {
        let mut list = self.recent_studies();
        list.retain(|r| r.paths != entry.paths);
        list.insert(0, entry);
        list.truncate(RECENT_MAX);
        if let Ok(text) = serde_json::to_string_pretty(&list) {
            let _ = std::fs::create_dir_all(&self.data_dir);
            // The recent list is a convenience: failing to write it must not fail the open.
            let _ = std::fs::write(self.data_dir.join(RECENT_FILE), text);
        }
    }

    /// The stack in memory if it is loaded; otherwise starts loading it (once) and returns None.
    fn loaded_stack(
        &self,
        generation: u32,
        study: &Arc<OpenStudy>,
        series: u32,
        stack: u32,
    ) -> Option<Arc<LoadedStack>> {
        let key = (generation, series, stack);
        let mut stacks = self.stacks.states.lock().ok()?;
        match stacks.get(&key) {
            Some(StackState::Ready(loaded)) => return Some(loaded.clone()),
            Some(StackState::Loading | StackState::SliceBySlice) => return None,
            Some(StackState::FirstSlice) => {}
            None if generation
                != self
                    .stacks
                    .generation
                    .load(std::sync::atomic::Ordering::SeqCst) =>
            {
                return None;
            }
            None => {
                stacks.insert(key, StackState::FirstSlice);
                return None;
            }
        }
        stacks.insert(key, StackState::Loading);
        drop(stacks);
        let (all, study) = (self.stacks.clone(), study.clone());
        std::thread::spawn(move || {
            // A load that fails, or panics (a decoder bug), leaves the stack served slice by
            // slice, so that nobody waits for it (MPR planes wait for `Ready`).
            let load = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::viewer::load_stack(&study, series, stack, &AtomicBool::new(false))
            }));
            let state = match load {
                Ok(Ok(loaded)) => StackState::Ready(Arc::new(loaded)),
                Ok(Err(_)) | Err(_) => StackState::SliceBySlice,
            };
            if let Ok(mut stacks) = all.states.lock() {
                // Only if the study is still the one open (else the map was cleared).
                if let Some(slot) = stacks.get_mut(&key) {
                    *slot = state;
                    all.changed.notify_all();
                }
            };
        });
        None
    }

    /// A stack's volume for reformatting: loaded now if it is not (or waited for while it
    /// loads). Colour stacks and stacks that could not be loaded are refused.
    fn volume(
        &self,
        generation: u32,
        study: &Arc<OpenStudy>,
        series: u32,
        stack: u32,
    ) -> Result<Arc<LoadedStack>, AppError> {
        const LIMIT: std::time::Duration = std::time::Duration::from_secs(300);
        let started = std::time::Instant::now();
        if let Some(loaded) = self.loaded_stack(generation, study, series, stack) {
            return Ok(loaded);
        }
        // The load under way (or started just now) says when it is done.
        let mut states = self
            .stacks
            .states
            .lock()
            .map_err(|_| unavailable("stack store"))?;
        loop {
            match states.get(&(generation, series, stack)) {
                Some(StackState::Ready(loaded)) => return Ok(loaded.clone()),
                Some(StackState::FirstSlice) => {
                    // Only the first slice was asked for until now: start the whole load.
                    drop(states);
                    if let Some(loaded) = self.loaded_stack(generation, study, series, stack) {
                        return Ok(loaded);
                    }
                    states = self
                        .stacks
                        .states
                        .lock()
                        .map_err(|_| unavailable("stack store"))?;
                    continue;
                }
                Some(StackState::SliceBySlice) => {
                    return Err(AppError::new(
                        ErrorCode::DecodeFailed,
                        format!(
                            "series {} could not be loaded as a volume (colour, or a slice failed to decode): it cannot be reformatted",
                            series + 1
                        ),
                    ));
                }
                None => {
                    return Err(AppError::new(
                        ErrorCode::NotFound,
                        "that image belongs to a study that is no longer open",
                    ));
                }
                Some(StackState::Loading) => {
                    let Some(left) = LIMIT.checked_sub(started.elapsed()) else {
                        return Err(AppError::new(
                            ErrorCode::DecodeFailed,
                            format!("series {} took over 5 minutes to load", series + 1),
                        ));
                    };
                    states = self
                        .stacks
                        .changed
                        .wait_timeout(states, left)
                        .map_err(|_| unavailable("stack store"))?
                        .0;
                }
            }
        }
    }

    /// The pixel resources behind both transports (the URI scheme and the loopback server):
    /// `slice/{generation}/{series}/{stack}/{slice}` (raw modality values, see
    /// `StackView::format`), `plane/{generation}/{series}/{stack}/{plane}` (a reformatted
    /// plane in the same format, see `viewer::parse_plane_request`),
    /// `mapplane/{generation}/{series}/{stack}/{analysis}/{index}/{plane}` (a kept heatmap
    /// reformatted onto that plane, u8, see `viewer::map_plane_bytes`),
    /// `shm/{generation}/{series}/{stack}/{from}/{count}` (slices `from..from+count` written
    /// to shared memory for the web-process extension; the body is the file's name, see
    /// `viewer::slices_to_shared_memory`), `thumb/{generation}/{series}` (PNG) and
    /// `map/{analysis}/{index}/{slice}` (a heatmap slice, u8). Returns (status, content type,
    /// body); errors are plain text naming the file at fault.
    pub fn pixels(&self, path: &str) -> (u16, &'static str, Vec<u8>) {
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
            return match self.map_slice(*analysis, *index, *slice) {
                Ok(body) => (200, "application/octet-stream", body),
                Err(e) => fail(e),
            };
        }
        let (generation, study) = match self.current() {
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
                match self.loaded_stack(generation, &study, *series, *stack) {
                    Some(loaded) => crate::viewer::loaded_slice_bytes(&loaded, *slice),
                    None => crate::viewer::slice_bytes(&study, *series, *stack, *slice),
                }
                .map(|b| ("application/octet-stream", b))
            }
            (Some("plane"), [_, series, stack]) => parts
                .get(4)
                .ok_or_else(|| AppError::new(ErrorCode::NotFound, "the plane is missing"))
                .and_then(|spec| crate::viewer::parse_plane_request(spec))
                .and_then(|request| {
                    let loaded = self.volume(generation, &study, *series, *stack)?;
                    crate::viewer::plane_bytes(&study, *series, *stack, &loaded, &request)
                })
                .map(|b| ("application/octet-stream", b)),
            (Some("mapplane"), [_, series, stack, analysis, index]) => parts
                .get(6)
                .ok_or_else(|| AppError::new(ErrorCode::NotFound, "the plane is missing"))
                .and_then(|spec| crate::viewer::parse_plane_request(spec))
                .and_then(|request| {
                    let kept = self.kept_maps(*analysis, *index)?;
                    // Only onto the stack the heatmap was made on (another series of the same
                    // size would take it silently).
                    let uid = &study.series(*series)?.uid;
                    if kept.series_uid != *uid || kept.stack != *stack {
                        return Err(AppError::new(
                            ErrorCode::InvalidArgument,
                            format!(
                                "heatmap {analysis} was made on another stack than series {} stack {}",
                                series + 1,
                                stack + 1
                            ),
                        ));
                    }
                    let map = &kept.maps[*index as usize];
                    crate::viewer::map_plane_bytes(&study, *series, *stack, map, &request)
                })
                .map(|b| ("application/octet-stream", b)),
            (Some("shm"), [_, series, stack, from, count]) => {
                // From the stack in memory, waiting for its load (which decodes on every core:
                // decoding the piece beside it would do the work twice); slice by slice, as
                // `slice/` serves them, when it cannot be loaded.
                let loaded = match self.volume(generation, &study, *series, *stack) {
                    Ok(loaded) => Some(loaded),
                    Err(e) if e.code == ErrorCode::DecodeFailed => None,
                    Err(e) => return fail(e),
                };
                crate::viewer::slices_to_shared_memory(
                    std::path::Path::new(crate::viewer::SHARED_MEMORY_DIR),
                    *from..from.saturating_add(*count),
                    |k| match &loaded {
                        Some(loaded) => crate::viewer::loaded_slice_bytes(loaded, k),
                        None => crate::viewer::slice_bytes(&study, *series, *stack, k),
                    },
                )
                .map(|name| ("text/plain; charset=utf-8", name.into_bytes()))
            }
            (Some("thumb"), [_, series]) => {
                crate::viewer::thumbnail_png(&study, *series, 96).map(|b| ("image/png", b))
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

    /// The kept heatmaps of `analysis`, of which map `index` exists. The store is not held
    /// while a caller reads them (a plane through a thick slab takes a while).
    fn kept_maps(&self, analysis: u32, index: u32) -> Result<KeptMaps, AppError> {
        self.maps
            .lock()
            .map_err(|_| unavailable("heatmap store"))?
            .get(&i64::from(analysis))
            .filter(|v| (index as usize) < v.maps.len())
            .cloned()
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "that heatmap is not in memory"))
    }

    /// One slice of a kept heatmap (u8).
    fn map_slice(&self, analysis: u32, index: u32, slice: u32) -> Result<Vec<u8>, AppError> {
        let kept = self.kept_maps(analysis, index)?;
        let m = &kept.maps[index as usize];
        let plane = m.rows * m.columns;
        let start = slice as usize * plane;
        m.values
            .get(start..start + plane)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no heatmap slice {slice}")))
    }

    // ------------------------------------------------------------------------------------------
    // Settings, ledger, models

    pub fn settings(&self) -> Settings {
        read_json(&self.data_dir.join(SETTINGS_FILE))
    }

    /// Saves the settings (written to a temporary file and renamed, so a crash never leaves half
    /// a file).
    pub fn save_settings(&self, settings: Settings) -> Result<Settings, AppError> {
        let before = self.settings();
        self.save_json(
            SETTINGS_FILE,
            "the settings",
            "reader settings",
            &before,
            &settings,
        )?;
        Ok(settings)
    }

    /// Writes `after` to `file` in the data folder (a temporary file, then renamed) and
    /// records the change from `before` in the access audit as `audited_as`.
    fn save_json<T: Serialize>(
        &self,
        file: &str,
        what: &str,
        audited_as: &str,
        before: &T,
        after: &T,
    ) -> Result<(), AppError> {
        let path = self.data_dir.join(file);
        let fail = |e: &dyn std::fmt::Display| {
            AppError::new(
                ErrorCode::WriteFailed,
                format!("cannot save {what} `{}`: {e}", path.display()),
            )
        };
        std::fs::create_dir_all(&self.data_dir).map_err(|e| fail(&e))?;
        let text = serde_json::to_string_pretty(after).map_err(|e| fail(&e))?;
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, text).map_err(|e| fail(&e))?;
        std::fs::rename(&tmp, &path).map_err(|e| fail(&e))?;
        self.audit_setting(audited_as, &path, before, after);
        Ok(())
    }

    /// The shadow-run candidates.
    pub fn shadow_settings(&self) -> ShadowSettings {
        read_json(&self.data_dir.join(SHADOW_FILE))
    }

    /// Saves the shadow-run candidates (recorded in the access audit).
    pub fn save_shadow_settings(
        &self,
        settings: ShadowSettings,
    ) -> Result<ShadowSettings, AppError> {
        let before = self.shadow_settings();
        self.save_json(
            SHADOW_FILE,
            "the shadow-run settings",
            "shadow runs",
            &before,
            &settings,
        )?;
        Ok(settings)
    }

    /// Runs `f` with the ledger, opening it the first time (the file given, else
    /// `DOKUEI_LEDGER`, else the OS data folder).
    pub fn with_ledger<T>(
        &self,
        f: impl FnOnce(&Ledger) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let mut guard = self.ledger.lock().map_err(|_| unavailable("ledger"))?;
        if guard.is_none() {
            *guard = Some(crate::ledger::open_ledger(self.ledger_file.as_deref())?);
        }
        match guard.as_ref() {
            Some(ledger) => f(ledger),
            None => Err(unavailable("ledger")),
        }
    }

    /// Where models are looked for: the user's configured folders and the defaults.
    pub fn model_roots(&self) -> Vec<PathBuf> {
        let configured: Vec<PathBuf> = self
            .settings()
            .model_folders
            .iter()
            .map(PathBuf::from)
            .collect();
        reading::model_roots(&configured)
    }

    /// The models on offer, each with its integrity check, model card and where it would run.
    pub fn models(&self) -> Vec<reading::ModelSummary> {
        let provider = match crate::onnx_runtime_info() {
            Ok(info) => info.preferred_provider.name().to_owned(),
            Err(_) => "unavailable (ONNX Runtime not loaded)".to_owned(),
        };
        let mut list = reading::list_models(&self.model_roots());
        for m in &mut list {
            m.execution_provider = provider.clone();
        }
        list
    }

    // ------------------------------------------------------------------------------------------
    // The study under review

    /// Runs `f` with the open study's identity for the ledger and the series and stack a
    /// geometry refers to.
    pub fn with_series<T>(
        &self,
        series: u32,
        stack: u32,
        f: impl FnOnce(&StudyIdentity, &DecisionContext<'_>) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let (_, study) = self.current()?;
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
    pub fn study_review(&self, series: u32) -> Result<StudyReview, AppError> {
        self.with_series(series, 0, |identity, _| {
            self.with_ledger(|l| reading::review(l, &identity.study_uid))
        })
    }

    /// Runs the model in `model_dir` on stack `stack` of series `series`, reporting progress,
    /// and records the analysis and its findings in the ledger once it has finished; its
    /// heatmaps are kept for display. One analysis at a time; a cancelled or failed analysis
    /// records nothing.
    pub fn analyse(
        &self,
        series: u32,
        stack: u32,
        model_dir: &Path,
        progress: &mut dyn FnMut(AnalyseProgress),
    ) -> Result<AnalyseResult, AppError> {
        let cancel = self.claim_cancel_slot()?;
        let started = std::time::Instant::now();
        // The study the analysis runs on, whatever is opened meanwhile.
        let study = self.current().map(|(_, s)| s);
        let result = study.clone().and_then(|study| {
            self.run_analysis(&study, series, stack, model_dir, progress, &cancel)
        });
        if let Ok(mut slot) = self.cancel.lock() {
            *slot = None;
        }
        if let (Err(e), Ok(study)) = (&result, &study) {
            // The run that succeeded is recorded with its analysis (run_analysis).
            let model = model_dir.display().to_string();
            self.audit_series(study, series, AccessAction::ModelRun, |event| AccessEvent {
                outcome: Outcome::MinorFailure,
                object: model,
                detail: AccessDetail {
                    error: e.message.clone(),
                    ..event.detail
                },
                ..event
            });
        }
        crate::logging::outcome("analyse", started, result, |r| {
            format!(
                "analysis {} on {}: {} finding(s), engine {:.2} s, inference {:.2} s",
                r.analysis_id,
                r.execution_provider,
                r.review.findings.len(),
                r.engine_seconds,
                r.inference_seconds
            )
        })
    }

    fn run_analysis(
        &self,
        study: &Arc<OpenStudy>,
        series: u32,
        stack: u32,
        model_dir: &Path,
        progress: &mut dyn FnMut(AnalyseProgress),
        cancel: &AtomicBool,
    ) -> Result<AnalyseResult, AppError> {
        let started = std::time::Instant::now();
        let started_at = crate::ledger::now_utc();
        let (s, identity, model, analysis) = self.infer(
            study,
            series,
            stack,
            model_dir,
            &mut |p| {
                progress(AnalyseProgress {
                    done: p.done as u32,
                    total: p.total as u32,
                    eta_seconds: p.eta_seconds as f32,
                })
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
        let finished_at = crate::ledger::now_utc();
        let reference = model.reference();
        let review = self.with_ledger(|l| {
            reading::record_analysis(
                l,
                &identity,
                &s.uid,
                &reading::StackIdentity::of(s, study.stack(series, stack)?, stack as usize),
                &reference,
                &analysis.findings,
                &started_at,
                &finished_at,
            )
        })?;
        self.audit_series(study, series, AccessAction::ModelRun, |event| AccessEvent {
            object: format!(
                "{} {} sha256:{} on {}",
                reference.id, reference.version, reference.sha256, reference.execution_provider
            ),
            ..event
        });
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
        if let Ok(mut kept) = self.maps.lock() {
            kept.insert(
                analysis_id,
                KeptMaps {
                    series_uid: s.uid.clone(),
                    stack,
                    maps: Arc::new(analysis.maps),
                },
            );
        }
        let execution_provider = model.provider.used.name().to_owned();
        // A candidate may share this model's session (same file): release it first.
        drop(model);
        self.shadow_runs(study, series, stack, &reference, analysis_id, cancel);
        Ok(AnalyseResult {
            review,
            analysis_id,
            maps,
            image_scores: analysis.image_scores,
            engine_seconds,
            inference_seconds: analysis.inference_seconds as f32,
            execution_provider,
        })
    }

    /// Runs the shadow candidates for `seen` (the analysis readers see, `analysis_id`) on the
    /// same stack and records them. A candidate that fails is logged and audited; it never
    /// undoes the analysis readers see, which is recorded already.
    fn shadow_runs(
        &self,
        study: &Arc<OpenStudy>,
        series: u32,
        stack: u32,
        seen: &dokuei_infer::findings::ModelRef,
        analysis_id: i64,
        cancel: &AtomicBool,
    ) {
        let candidates: Vec<PathBuf> = self
            .shadow_settings()
            .model_folders
            .iter()
            .map(PathBuf::from)
            .filter(|dir| {
                dokuei_infer::manifest::Manifest::read(dir).is_ok_and(|(m, _)| {
                    m.model.id == seen.id
                        && (m.model.version != seen.version
                            || !m.model.sha256.eq_ignore_ascii_case(&seen.sha256))
                })
            })
            .collect();
        for dir in candidates {
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            let result = self.shadow_run(study, series, stack, &dir, analysis_id, cancel);
            let object = match &result {
                Ok(r) => format!(
                    "{} {} sha256:{} on {} (shadow of analysis {analysis_id}, not shown)",
                    r.id, r.version, r.sha256, r.execution_provider
                ),
                Err(_) => format!("{} (shadow of analysis {analysis_id})", dir.display()),
            };
            let error = result.as_ref().err().map(|e| e.message.clone());
            if let Some(e) = &error {
                tracing::warn!("a shadow run failed: {e}");
            }
            self.audit_series(study, series, AccessAction::ModelRun, |event| AccessEvent {
                outcome: if error.is_some() {
                    Outcome::MinorFailure
                } else {
                    event.outcome
                },
                object,
                detail: AccessDetail {
                    error: error.unwrap_or_default(),
                    ..event.detail
                },
                ..event
            });
        }
    }

    /// Runs the model in `model_dir` on stack `stack` of series `series` of the open study:
    /// the series, its study as the ledger knows it, the model and what it found.
    #[allow(clippy::type_complexity)]
    fn infer<'s>(
        &self,
        study: &'s OpenStudy,
        series: u32,
        stack: u32,
        model_dir: &Path,
        progress: &mut dyn FnMut(dokuei_infer::pipeline::AnalysisProgress),
        cancel: &AtomicBool,
    ) -> Result<
        (
            &'s dokuei_dicom::Series,
            StudyIdentity,
            Arc<Mutex<dokuei_infer::model::Model>>,
            dokuei_infer::pipeline::Analysis,
        ),
        AppError,
    > {
        let runtime = crate::OnnxRuntime::load(None)?;
        let s = study.series(series)?;
        let identity = reading::study_identity(&study.index, &s.uid)
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "the series' study is not open"))?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (model, analysis) = crate::analysis::analyse_series(
            &runtime,
            &self.models,
            model_dir,
            s,
            stack as usize,
            Some(threads),
            progress,
            cancel,
        )?;
        Ok((s, identity, model, analysis))
    }

    fn shadow_run(
        &self,
        study: &Arc<OpenStudy>,
        series: u32,
        stack: u32,
        model_dir: &Path,
        shadows: i64,
        cancel: &AtomicBool,
    ) -> Result<dokuei_infer::findings::ModelRef, AppError> {
        let started_at = crate::ledger::now_utc();
        let (s, identity, model, analysis) =
            self.infer(study, series, stack, model_dir, &mut |_| {}, cancel)?;
        if cancel.load(Ordering::Relaxed) {
            return Err(AppError::new(
                ErrorCode::Cancelled,
                "the shadow run was cancelled; nothing was recorded",
            ));
        }
        let reference = model.lock().unwrap_or_else(|e| e.into_inner()).reference();
        let finished_at = crate::ledger::now_utc();
        self.with_ledger(|l| {
            reading::record_shadow_run(
                l,
                &identity,
                &s.uid,
                &reading::StackIdentity::of(s, study.stack(series, stack)?, stack as usize),
                &reference,
                &analysis.findings,
                &started_at,
                &finished_at,
                shadows,
            )
        })?;
        Ok(reference)
    }

    /// Cancels the running analysis (it stops between batches and records nothing).
    /// Writes a de-identified copy of the whole study that series `series` belongs to (its
    /// images and the result objects about it) into `out`, reporting progress per file;
    /// [`Workstation::cancel_analysis`] stops it between files. Recorded in the access audit.
    pub fn export_deidentified(
        &self,
        series: u32,
        out: &Path,
        settings: &crate::deid::DeidSettings,
        progress: &mut dyn FnMut(crate::deid::DeidProgress),
    ) -> Result<crate::deid::DeidExport, AppError> {
        let started = std::time::Instant::now();
        let (_, study) = self.current()?;
        let study_uid = study
            .series(series)
            .ok()
            .and_then(|s| reading::study_identity(&study.index, &s.uid))
            .map(|i| i.study_uid)
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such series"))?;
        let index = &study.index;
        let mut sources: Vec<dokuei_dicom::Source> = index
            .patients
            .iter()
            .flat_map(|p| &p.studies)
            .filter(|s| s.uid == study_uid)
            .flat_map(|s| &s.series)
            .flat_map(|s| &s.instances)
            .map(|i| i.source.clone())
            .collect();
        sources.extend(
            index
                .results
                .iter()
                .filter(|r| r.study_uid == study_uid)
                .map(|r| r.instance.source.clone()),
        );
        let flag = self.claim_cancel_slot()?;
        let request = settings.request();
        let reader = self.reader();
        // The ledger is held only to find its folder and, after, to record the export: other
        // commands need it meanwhile.
        let result = self
            .with_ledger(|l| Ok(l.path().to_path_buf()))
            .and_then(|ledger_path| {
                crate::deid::run_export(
                    &ledger_path,
                    &sources,
                    Vec::new(),
                    out,
                    &request,
                    &flag,
                    |done, total| {
                        progress(crate::deid::DeidProgress {
                            done: done as u32,
                            total: total as u32,
                        })
                    },
                )
            })
            .and_then(|report| {
                self.with_ledger(|l| {
                    crate::deid::audit_export(l, &report, out, reader);
                    Ok(())
                })?;
                report.map_err(|e| AppError::new(ErrorCode::WriteFailed, e.to_string()))
            });
        if let Ok(mut c) = self.cancel.lock() {
            *c = None;
        }
        crate::logging::outcome(
            "export a de-identified study",
            started,
            result.map(|r| crate::deid::DeidExport::of(&r, out)),
            |e| {
                format!(
                    "{} written, {} refused, {} failed",
                    e.written, e.refused, e.failed
                )
            },
        )
    }

    /// Writes training data (see [`crate::training`]) from the signed-off studies among the
    /// open study's files and the recent studies' (those still on disk), reporting progress;
    /// [`Workstation::cancel_analysis`] stops it. The ledger is held only to plan and, after,
    /// to record the export in the access audit.
    pub fn export_training(
        &self,
        out: &Path,
        settings: &crate::training::TrainingSettings,
        progress: &mut dyn FnMut(crate::training::TrainingProgress),
    ) -> Result<crate::training::TrainingExport, AppError> {
        let started = std::time::Instant::now();
        let mut paths: Vec<PathBuf> = self
            .current()
            .map(|(_, s)| s.paths.clone())
            .unwrap_or_default();
        for r in self.recent_studies() {
            for p in r.paths.iter().map(PathBuf::from) {
                if p.exists() && !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        if paths.is_empty() {
            return Err(AppError::new(
                ErrorCode::NotFound,
                "no study is open and none was opened recently: open the studies to export",
            ));
        }
        let index = crate::study::open_study(&paths)?;
        let flag = self.claim_cancel_slot()?;
        let roots = self.model_roots();
        let reader = self.reader();
        let result = self
            .with_ledger(|l| crate::training::plan_training(l, &index, settings, &roots))
            .and_then(|plan| {
                let result =
                    crate::training::write_training(&plan, out, settings, &flag, &mut *progress);
                self.with_ledger(|l| {
                    crate::training::audit_training(l, &plan, &result, out, reader);
                    Ok(())
                })?;
                result
            });
        if let Ok(mut c) = self.cancel.lock() {
            *c = None;
        }
        crate::logging::outcome("export training data", started, result, |e| {
            format!(
                "{} case(s), {} file(s){}",
                e.cases,
                e.files,
                if e.cancelled { ", cancelled" } else { "" }
            )
        })
    }

    /// The cancel flag of a new long task (analysis or export), refused while another runs:
    /// one Cancel button stops one task.
    fn claim_cancel_slot(&self) -> Result<Arc<AtomicBool>, AppError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut slot = self.cancel.lock().map_err(|_| unavailable("analysis"))?;
        if slot.as_ref().is_some_and(|c| !c.load(Ordering::Relaxed)) {
            return Err(AppError::new(
                ErrorCode::NotAllowed,
                "an analysis or export is already running; cancel it or wait for it to finish",
            ));
        }
        *slot = Some(cancel.clone());
        Ok(cancel)
    }

    pub fn cancel_analysis(&self) -> bool {
        match self.cancel.lock().ok().and_then(|c| c.clone()) {
            Some(flag) => {
                flag.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Whether the installation asks for the reader's passphrase with every decision.
    pub fn decision_passphrase_required(&self) -> Result<bool, AppError> {
        self.with_ledger(reading::decision_passphrase_required)
    }

    /// Records a decision on a finding, and how long the ledger took to commit it (with the
    /// reader's passphrase when the installation's policy asks for one with every decision).
    pub fn decide(
        &self,
        series: u32,
        stack: u32,
        reader_id: i32,
        decision: &DecisionInput,
        passphrase: Option<&str>,
    ) -> Result<DecisionResult, AppError> {
        let start = std::time::Instant::now();
        let result = self.with_series(series, stack, |_, ctx| {
            self.with_ledger(|l| {
                let (id, review) = reading::decide_with_passphrase(
                    l,
                    ctx,
                    i64::from(reader_id),
                    decision,
                    passphrase,
                )?;
                Ok(DecisionResult {
                    id,
                    review,
                    commit_ms: start.elapsed().as_secs_f32() * 1000.0,
                })
            })
        });
        crate::logging::outcome("decide", start, result, |r| {
            format!(
                "decision {} ({:?}) by reader {reader_id} recorded",
                r.id, decision.action
            )
        })
    }

    /// Marks (or unmarks) slice `slice` of a stack as a key image of its study, with a note;
    /// returns the study's key images placed in that stack.
    pub fn mark_key_image(
        &self,
        series: u32,
        stack: u32,
        slice: u32,
        reader_id: i32,
        note: &str,
        mark: bool,
    ) -> Result<Vec<reading::KeyImageView>, AppError> {
        let start = std::time::Instant::now();
        let result = self.with_series(series, stack, |_, ctx| {
            self.with_ledger(|l| {
                reading::mark_key_image(l, ctx, i64::from(reader_id), slice, note, mark)
            })
        });
        crate::logging::outcome("key image", start, result, |list| {
            format!(
                "key image {} by reader {reader_id}: {} now",
                if mark { "marked" } else { "unmarked" },
                list.len()
            )
        })
    }

    /// The key images of the study of series `series`, placed in stack `stack`.
    pub fn key_images(
        &self,
        series: u32,
        stack: u32,
    ) -> Result<Vec<reading::KeyImageView>, AppError> {
        self.with_series(series, stack, |_, ctx| {
            self.with_ledger(|l| reading::key_images(l, ctx))
        })
    }

    /// Signs the study off with the reader's key, opened with `passphrase`.
    pub fn sign_off(
        &self,
        series: u32,
        reader_id: i32,
        impression: &str,
        passphrase: &str,
    ) -> Result<StudyReview, AppError> {
        let started = std::time::Instant::now();
        let result = self.with_series(series, 0, |identity, _| {
            self.with_ledger(|l| {
                let review = reading::sign_off(
                    l,
                    &identity.study_uid,
                    i64::from(reader_id),
                    impression,
                    passphrase,
                )?;
                if let Some(e) = l.witness_error() {
                    // Names the checkpoint log only (no study path, no identifier).
                    tracing::warn!("{e}");
                }
                Ok(review)
            })
        });
        crate::logging::outcome("sign off", started, result, |r| {
            format!(
                "signed off by reader {reader_id}: {} finding(s) decided",
                r.findings.len()
            )
        })
    }

    pub fn record_impression(
        &self,
        series: u32,
        reader_id: i32,
        impression: &str,
    ) -> Result<StudyReview, AppError> {
        self.with_series(series, 0, |identity, _| {
            self.with_ledger(|l| {
                reading::record_impression(l, identity, i64::from(reader_id), impression)
            })
        })
    }

    pub fn reveal_ai(&self, series: u32, reader_id: i32) -> Result<StudyReview, AppError> {
        self.with_series(series, 0, |identity, _| {
            self.with_ledger(|l| reading::reveal(l, &identity.study_uid, i64::from(reader_id)))
        })
    }

    // ------------------------------------------------------------------------------------------
    // Results as DICOM, and imported results

    /// Writes the study's results as DICOM (AI SEG and SR, with this session's heatmaps as
    /// parametric maps; after sign-off the physician's assessment SR and the readers' SEG) into
    /// `out`, and records each object in the ledger.
    pub fn export_results(
        &self,
        series: u32,
        out: &Path,
    ) -> Result<results::ResultsExport, AppError> {
        let (roots, (_, study)) = (self.model_roots(), self.current()?);
        // The heatmaps of this session's analyses (the ledger does not keep maps).
        let maps: HashMap<i64, Vec<LabelMap>> = self
            .maps
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (*k, v.maps.as_ref().clone()))
                    .collect()
            })
            .unwrap_or_default();
        let started = std::time::Instant::now();
        let result = self.with_series(series, 0, |id, _| {
            self.with_ledger(|l| {
                results::export_results(l, &study.index, &id.study_uid, &roots, &maps, out)
            })
        });
        // The study the export ran on (the one open when it started).
        let id = study
            .series(series)
            .ok()
            .and_then(|s| reading::study_identity(&study.index, &s.uid))
            .map(|i| i.study_uid);
        if let Some(id) = id {
            let reader = self.reader();
            self.audit_with(|l| {
                Ok(vec![audit::results_exported_event(
                    l,
                    &study.index,
                    &id,
                    &result,
                    out,
                    reader,
                )?])
            });
        }
        crate::logging::outcome("export results", started, result, |r| {
            let kinds: Vec<&str> = r.objects.iter().map(|o| o.kind.as_str()).collect();
            format!("{} object(s): {}", kinds.len(), kinds.join(", "))
        })
    }

    /// Exports the study's results into the outbox and sends them to PACS node `node`; each
    /// object written and each instance sent is recorded in the ledger.
    pub fn send_results(&self, series: u32, node: &str) -> Result<Vec<SendOutcome>, AppError> {
        let outbox = self.cache_dir.join("outbox");
        let _ = std::fs::remove_dir_all(&outbox);
        let written = self.export_results(series, &outbox)?;
        // The ledger is taken to record, not for the whole transfer.
        let started = std::time::Instant::now();
        let result = self
            .pacs
            .send_folder(node, Path::new(&written.folder))
            .inspect_err(|e| self.audit_send_failure(node, e))
            .and_then(|(node, outcomes)| {
                self.with_ledger(|l| crate::pacs::record_sends(l, &node, &outcomes))?;
                self.audit_sends(&node, &outcomes);
                Ok(outcomes)
            });
        crate::logging::outcome("send results", started, result, |o| {
            let stored = o.iter().filter(|s| s.stored).count();
            format!("{stored} of {} instance(s) stored on node {node}", o.len())
        })
    }

    /// Sends the DICOM files in `folder` to PACS node `node`, recording each instance sent.
    pub fn send_folder(&self, node: &str, folder: &Path) -> Result<Vec<SendOutcome>, AppError> {
        let (node, outcomes) = self
            .pacs
            .send_folder(node, folder)
            .inspect_err(|e| self.audit_send_failure(node, e))?;
        self.with_ledger(|l| crate::pacs::record_sends(l, &node, &outcomes))?;
        self.audit_sends(&node, &outcomes);
        Ok(outcomes)
    }

    /// Retrieves a study (or some of its series) from PACS node `node` into the cache; the
    /// study open in the viewer is never evicted to make room.
    pub fn retrieve(
        &self,
        node: &str,
        request: &crate::pacs::RetrieveRequest,
        by_move: bool,
        progress: &mut dyn FnMut(&crate::pacs::Progress),
    ) -> Result<crate::pacs::Retrieved, AppError> {
        let open: Vec<String> = self
            .current()
            .map(|(_, s)| {
                s.index
                    .patients
                    .iter()
                    .flat_map(|p| p.studies.iter().map(|st| st.uid.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let started = std::time::Instant::now();
        // During a C-MOVE the receiver's arrivals are the retrieve's: the poller leaves them.
        if by_move {
            self.moving.fetch_add(1, Ordering::SeqCst);
        }
        let result = self.pacs.retrieve(node, request, by_move, &open, progress);
        let mut arrived = Vec::new();
        if by_move {
            arrived = self.pacs.unaudited_received();
            self.moving.fetch_sub(1, Ordering::SeqCst);
        }
        // What the node sent for this retrieve (for a C-MOVE that failed part-way, whatever
        // its AE sent meanwhile), and anything else pushed meanwhile.
        let mine: std::collections::HashSet<&str> = match &result {
            Ok(r) => r
                .report
                .instances
                .iter()
                .map(|i| i.sop_instance_uid.as_str())
                .collect(),
            Err(_) => Default::default(),
        };
        let called = self
            .pacs
            .settings()
            .ok()
            .and_then(|s| match s.node(node) {
                Ok(crate::pacs::Node::Dimse(n)) => Some(n.called_ae_title.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let (partial, others): (Vec<_>, Vec<_>) = arrived.into_iter().partition(|r| {
            mine.contains(r.instance.sop_instance_uid.as_str())
                || (result.is_err() && r.calling_ae_title == called)
        });
        let partial: Vec<PathBuf> = match &result {
            Ok(_) => Vec::new(),
            Err(_) => partial.into_iter().map(|r| r.instance.path).collect(),
        };
        self.audit_retrieve(node, request, &result, partial);
        self.audit_received_items(others);
        crate::logging::outcome("retrieve", started, result, |r| {
            format!(
                "{} instance(s), {} series, {} bytes in {:.2} s from node {node} ({}){}",
                r.report.instances.len(),
                r.report.series.len(),
                r.report.bytes,
                r.report.seconds,
                if by_move {
                    "C-MOVE"
                } else {
                    "C-GET or WADO-RS"
                },
                if r.report.cancelled {
                    ", cancelled"
                } else {
                    ""
                }
            )
        })
    }

    /// Results other tools (or an earlier export) wrote that are among the open study's files.
    pub fn imported_results(&self) -> Result<results::ImportedResults, AppError> {
        let (_, study) = self.current()?;
        Ok(results::import_results(&study.index))
    }

    /// Records the imported results of `series`' study in the ledger (once per SEG), so that
    /// they are listed and decided on like the study's own AI findings.
    pub fn review_imported_results(&self, series: u32) -> Result<StudyReview, AppError> {
        let (_, study) = self.current()?;
        self.with_series(series, 0, |identity, _| {
            let imported = results::import_results_of_study(&study.index, &identity.study_uid);
            self.with_ledger(|l| reading::record_imported(l, identity, &imported))
        })
    }

    // ------------------------------------------------------------------------------------------
    // QA

    /// The decisions that match `filter`, newest last (identifiers as recorded: this view stays
    /// on the machine; exports are pseudonymised unless asked otherwise).
    pub fn qa_decisions(&self, filter: &DecisionFilter) -> Result<Vec<ExportedDecision>, AppError> {
        self.with_ledger(|l| {
            let mut out = Vec::new();
            l.for_each_decision(filter, &Identifiers::AsRecorded, &mut |d| {
                if out.len() < QA_TABLE_MAX {
                    out.push(d.clone());
                }
                Ok(())
            })?;
            Ok(out)
        })
    }

    /// Exports the decisions that match `filter` to `path` (`csv` or `jsonl`), de-identified
    /// unless `identified`. Returns how many were written.
    pub fn qa_export(
        &self,
        filter: &DecisionFilter,
        format: &str,
        identified: bool,
        path: &Path,
    ) -> Result<u32, AppError> {
        let format = match format {
            "csv" => Format::Csv,
            "jsonl" => Format::JsonLines,
            other => {
                return Err(AppError::new(
                    ErrorCode::InvalidArgument,
                    format!("unknown export format `{other}` (csv or jsonl)"),
                ));
            }
        };
        let started = std::time::Instant::now();
        let reader = self.reader();
        let result = self.with_ledger(|l| {
            crate::ledger::export(l, filter, format, identified, path, reader).map(|n| n as u32)
        });
        self.nudge_audit();
        crate::logging::outcome("QA export", started, result, |n| {
            format!(
                "{n} decision(s), {}",
                if identified {
                    "identified"
                } else {
                    "pseudonymised"
                }
            )
        })
    }

    /// The model-version watch under QA's thresholds.
    pub fn model_watch(
        &self,
        thresholds: &crate::ledger::WatchThresholds,
    ) -> Result<crate::ledger::Watch, AppError> {
        self.with_ledger(|l| Ok(l.watch(None, thresholds)?))
    }

    /// Writes the model-version watch's report (HTML with plots) to `path`.
    pub fn model_watch_report(
        &self,
        thresholds: &crate::ledger::WatchThresholds,
        path: &Path,
    ) -> Result<(), AppError> {
        let watch = self.model_watch(thresholds)?;
        crate::watch::write_report(&watch, thresholds, path)
    }

    pub fn qa_verify(&self) -> Result<VerifyResult, AppError> {
        self.with_ledger(|l| {
            let witnesses: Vec<_> = crate::ledger::checkpoint_log_witness(l.path())?
                .into_iter()
                .collect();
            let report = l.verify_with(&witnesses, None)?;
            Ok(VerifyResult {
                intact: report.is_intact(),
                rows_checked: report.rows_checked as u32,
                summary: report.summary(),
                external_checkpoints: report.external_checkpoints() as u32,
                problem: report.first_problem.map(|p| p.description),
                ledger: l.path().display().to_string(),
                witness_error: l.witness_error(),
            })
        })
    }

    // ------------------------------------------------------------------------------------------
    // The access audit

    /// The reader selected in the settings, if any.
    fn reader(&self) -> Option<i64> {
        self.settings().reader_id.map(i64::from)
    }

    /// Dokuei's AE titles (the receiver's and those it calls nodes with), for audit messages.
    fn ae_titles(&self) -> Vec<String> {
        let Ok(settings) = self.pacs.settings() else {
            return Vec::new();
        };
        let mut titles = vec![settings.receiver.ae_title.clone()];
        for node in &settings.nodes {
            if let crate::pacs::Node::Dimse(n) = node {
                titles.push(n.calling_ae_title.clone());
            }
        }
        titles.retain(|t| !t.trim().is_empty());
        titles.sort();
        titles.dedup();
        titles
    }

    /// Records the access events `make` builds, then nudges the forwarder. The action they
    /// describe has happened either way: a ledger that cannot take them is logged (without
    /// patient identifiers), not made the action's failure.
    fn audit_with(&self, make: impl FnOnce(&Ledger) -> Result<Vec<AccessEvent>, AppError>) {
        let result = self.with_ledger(|l| {
            for event in make(l)? {
                l.record_access(&event)?;
            }
            Ok(l.path().to_path_buf())
        });
        match result {
            Ok(path) => self.forwarder.nudge(path, self.ae_titles()),
            Err(e) => tracing::error!("the access audit could not record an event: {}", e.message),
        }
    }

    /// Records an event about the study of `series` in `study` (the one the action ran on, not
    /// whatever is open by now), with the series' instances; `finish` fills in the rest.
    fn audit_series(
        &self,
        study: &OpenStudy,
        series: u32,
        action: AccessAction,
        finish: impl FnOnce(AccessEvent) -> AccessEvent,
    ) {
        let Ok(s) = study.series(series) else { return };
        let Some(identity) = reading::study_identity(&study.index, &s.uid) else {
            return;
        };
        let reader = self.reader();
        self.audit_with(|l| {
            let mut event = audit::event(action, reader);
            event.study_uid = identity.study_uid.clone();
            event.patient_key = audit::patient_key(l, &identity.patient_id)?;
            event.detail = AccessDetail::default().with_instances(
                s.instances
                    .iter()
                    .map(|i| (i.sop_class_uid.as_str(), i.sop_instance_uid.as_str())),
            );
            Ok(vec![finish(event)])
        });
    }

    /// One event per study for the instances a node took, and one per study for those it did
    /// not (PS3.15: mixed results are separate messages).
    fn audit_sends(&self, node: &crate::pacs::Node, outcomes: &[SendOutcome]) {
        let files: Vec<PathBuf> = outcomes.iter().map(|o| o.path.clone()).collect();
        // Headers are read before the ledger is taken.
        let index = dokuei_dicom::index::index(&files);
        let reader = self.reader();
        self.audit_with(|l| audit::sent_events(l, node, outcomes, &index, reader));
    }

    /// One event per study that arrived, or the failure.
    /// `node` as the audit names it: `name AE@host:port` or `name URL`.
    fn node_peer(&self, node: &str) -> String {
        match self.pacs.settings().and_then(|s| s.node(node).cloned()) {
            Ok(n) => audit::node_peer(&n),
            Err(_) => node.to_owned(),
        }
    }

    /// A send that failed before any instance went (no association, a folder without DICOM).
    fn audit_send_failure(&self, node: &str, error: &AppError) {
        let event = audit::send_failure_event(self.node_peer(node), error, self.reader());
        self.audit_with(|_| Ok(vec![event]));
    }

    /// The instances a retrieve brought (one event per study), and, when it was cancelled,
    /// failed part-way or brought nothing, a failure event saying so. `partial`: files that
    /// arrived for a C-MOVE that then failed.
    fn audit_retrieve(
        &self,
        node: &str,
        request: &crate::pacs::RetrieveRequest,
        result: &Result<crate::pacs::Retrieved, AppError>,
        partial: Vec<PathBuf>,
    ) {
        let peer = self.node_peer(node);
        let reader = self.reader();
        let (files, failure) = match result {
            Ok(r) => {
                let failed: u32 = r.report.series.iter().map(|s| s.failed).sum();
                let incomplete = r.report.series.iter().filter(|s| !s.complete).count();
                let failure = if r.report.cancelled {
                    Some("cancelled by the user; what arrived is kept".to_owned())
                } else if r.report.instances.is_empty() {
                    Some("the node sent no instance".to_owned())
                } else if failed > 0 || incomplete > 0 {
                    Some(format!(
                        "{failed} instance(s) failed, {incomplete} series incomplete"
                    ))
                } else {
                    None
                };
                (
                    r.report.instances.iter().map(|i| i.path.clone()).collect(),
                    failure,
                )
            }
            Err(e) => (partial, Some(e.message.clone())),
        };
        // Headers are read before the ledger is taken.
        let index = dokuei_dicom::index::index(&files);
        self.audit_with(|l| {
            let template = AccessEvent {
                peer,
                ..audit::event(AccessAction::Received, reader)
            };
            let mut events = if files.is_empty() {
                Vec::new()
            } else {
                audit::study_events(l, &index, &template)?
            };
            if let Some(error) = failure {
                events.push(AccessEvent {
                    outcome: Outcome::MinorFailure,
                    study_uid: request.study_uid.clone(),
                    detail: AccessDetail {
                        error,
                        ..AccessDetail::default()
                    },
                    ..template
                });
            }
            Ok(events)
        });
    }

    /// Records what the receiver took since the last call, one event per study and sender
    /// (the app calls this every few seconds).
    pub fn audit_received(&self) {
        // A C-MOVE in progress: its arrivals are recorded with the retrieve.
        if self.moving.load(Ordering::SeqCst) > 0 {
            return;
        }
        self.audit_received_items(self.pacs.unaudited_received());
    }

    fn audit_received_items(&self, items: Vec<dokuei_net::Received>) {
        if items.is_empty() {
            return;
        }
        let ours = self
            .pacs
            .settings()
            .map(|s| s.receiver.ae_title)
            .unwrap_or_default();
        let mut senders: Vec<&str> = items.iter().map(|r| r.calling_ae_title.as_str()).collect();
        senders.sort_unstable();
        senders.dedup();
        // Headers are read before the ledger is taken.
        let indexes: Vec<(&str, dokuei_dicom::StudyIndex)> = senders
            .into_iter()
            .map(|sender| {
                let files: Vec<PathBuf> = items
                    .iter()
                    .filter(|r| r.calling_ae_title == sender)
                    .map(|r| r.instance.path.clone())
                    .collect();
                (sender, dokuei_dicom::index::index(&files))
            })
            .collect();
        self.audit_with(|l| {
            let mut events = Vec::new();
            for (sender, index) in &indexes {
                let mut template = audit::event(AccessAction::Received, None);
                // Nobody at this workstation asked for these.
                template.os_account = String::new();
                template.peer = format!("AE {sender}");
                template.detail.note = format!("pushed to Dokuei's receiver (AE {ours})");
                events.extend(audit::study_events(l, index, &template)?);
            }
            Ok(events)
        });
    }

    fn audit_setting<T: Serialize>(&self, what: &str, file: &Path, before: &T, after: &T) {
        if let Some(e) = audit::setting_change(what, file, before, after, self.reader()) {
            self.audit_with(|_| Ok(vec![e]));
        }
    }

    /// Queries a PACS node, recording that the query was made (the patient ID searched for by
    /// its pseudonym, a name only as given or not).
    pub fn pacs_find(
        &self,
        node: &str,
        query: &crate::pacs::Query,
    ) -> Result<Vec<crate::pacs::QueryRow>, AppError> {
        let result = self.pacs.find(node, query);
        let peer = self.node_peer(node);
        let reader = self.reader();
        self.audit_with(|l| {
            let mut e = audit::event(AccessAction::Queried, reader);
            let mut keys = serde_json::to_value(query).unwrap_or_default();
            if let Some(map) = keys.as_object_mut() {
                for field in ["patient_name", "patient_id"] {
                    if map
                        .get(field)
                        .and_then(|v| v.as_str())
                        .is_some_and(|v| !v.is_empty())
                    {
                        map.insert(field.into(), "(given)".into());
                    }
                }
            }
            if !query.patient_id.is_empty() {
                e.patient_key = audit::patient_key(l, &query.patient_id)?;
            }
            e.study_uid = query.study_uid.clone();
            e.detail.note = keys.to_string();
            // Study Root Query/Retrieve FIND (QIDO-RS is its web form).
            e.object = "1.2.840.10008.5.1.4.1.2.2.1".into();
            e.peer = peer;
            if let Err(err) = &result {
                e.outcome = Outcome::MinorFailure;
                e.detail.error = err.message.clone();
            }
            Ok(vec![e])
        });
        result
    }

    /// Saves and applies the PACS settings, recording what changed.
    pub fn save_pacs_settings(
        &self,
        settings: crate::pacs::PacsSettings,
    ) -> Result<crate::pacs::PacsStatus, AppError> {
        let before = self.pacs.settings().unwrap_or_default();
        let status = self.pacs.save_settings(settings.clone())?;
        self.audit_setting(
            "pacs settings",
            &self.data_dir.join("pacs.json"),
            &before,
            &settings,
        );
        Ok(status)
    }

    /// The audit repository settings (beside the ledger).
    pub fn audit_settings(&self) -> Result<audit::AuditSettings, AppError> {
        self.with_ledger(|l| audit::load_settings(l.path()))
    }

    /// Saves the audit repository settings, recording the change, and sends what is pending.
    pub fn save_audit_settings(
        &self,
        settings: audit::AuditSettings,
    ) -> Result<audit::AuditSettings, AppError> {
        let (path, before) = self.with_ledger(|l| {
            let before = audit::load_settings(l.path()).unwrap_or_default();
            audit::save_settings(l.path(), &settings)?;
            Ok((audit::settings_path(l.path()), before))
        })?;
        self.audit_setting("audit repository", &path, &before, &settings);
        Ok(settings)
    }

    /// Writes the whole audit trail to `folder` as PS3.15 audit messages (one XML file each).
    pub fn export_audit(&self, folder: &Path) -> Result<audit::AuditExport, AppError> {
        let (reader, titles) = (self.reader(), self.ae_titles());
        let started = std::time::Instant::now();
        let result = self.with_ledger(|l| {
            let settings = audit::load_settings(l.path())?;
            audit::export(l, folder, &settings, &titles, 0, reader)
        });
        crate::logging::outcome("audit export", started, result, |r| {
            format!("{} audit message(s)", r.messages)
        })
    }

    /// Sends the audit events the repository does not have yet, in the background (the app
    /// does this after every event and on its timer; failures are logged and retried).
    pub fn nudge_audit(&self) {
        if let Ok(path) = self.with_ledger(|l| Ok(l.path().to_path_buf())) {
            self.forwarder.nudge(path, self.ae_titles());
        }
    }

    /// Records that the application started or is stopping (PS3.15 Application Activity).
    pub fn record_application(&self, started: bool) {
        let reader = self.reader();
        let titles = self.ae_titles();
        self.audit_with(|_| {
            let mut e = audit::event(
                if started {
                    AccessAction::AppStarted
                } else {
                    AccessAction::AppStopped
                },
                reader,
            );
            e.object = format!("Dokuei {}", env!("CARGO_PKG_VERSION"));
            e.detail.note = titles.join(";");
            Ok(vec![e])
        });
    }

    /// Signs a checkpoint when the ledger moved and the last checkpoint is over an hour old
    /// (`closing`: whenever it moved). For the application's timer and its exit.
    pub fn checkpoint_if_due(&self, closing: bool) -> Result<(), AppError> {
        let guard = self.ledger.lock().map_err(|_| unavailable("ledger"))?;
        if let Some(ledger) = guard.as_ref() {
            ledger.checkpoint_if_due(if closing {
                dokuei_ledger::CheckpointReason::Closing
            } else {
                dokuei_ledger::CheckpointReason::Hourly
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A request that passed its generation check just before another study opened (it holds
    /// the earlier generation and study) starts no load and leaves nothing in the stack store,
    /// and one that waits for that study's volume is told it is no longer open.
    #[test]
    fn a_request_of_an_earlier_study_starts_no_load() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("study");
        crate::dicom::synth::SyntheticCt {
            slices: 4,
            ..crate::dicom::synth::SyntheticCt::default()
        }
        .write(&study)
        .unwrap();
        let ws = Workstation::new(dir.path().join("data"), dir.path().join("cache"))
            .with_ledger_file(dir.path().join("ledger.sqlite"));
        let paths = vec![study.display().to_string()];
        let first = ws.open_study(paths.clone()).unwrap();
        let series = first.tree.studies[0].series[0].key;
        let (generation, earlier) = ws.current().unwrap();
        assert_eq!(generation, first.generation);
        // The earlier study's first slice is asked for: its stack is recorded.
        assert!(ws.loaded_stack(generation, &earlier, series, 0).is_none());
        let keys = |ws: &Workstation| -> Vec<(u32, u32, u32)> {
            ws.stacks.states.lock().unwrap().keys().copied().collect()
        };
        assert_eq!(keys(&ws), vec![(generation, series, 0)]);

        let second = ws.open_study(paths).unwrap();
        assert_eq!(second.generation, generation + 1);
        assert!(
            keys(&ws).is_empty(),
            "opening a study forgets the earlier stacks"
        );
        // The late request of the earlier study: nothing recorded, nothing loading.
        for _ in 0..2 {
            assert!(ws.loaded_stack(generation, &earlier, series, 0).is_none());
        }
        assert!(keys(&ws).is_empty(), "{:?}", keys(&ws));
        let started = std::time::Instant::now();
        let refused = ws.volume(generation, &earlier, series, 0).unwrap_err();
        assert!(refused.message.contains("no longer open"), "{refused:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The open study's own stack still loads as a volume.
        let loaded = ws.volume(second.generation, &ws.current().unwrap().1, series, 0);
        match &loaded.unwrap().pixels {
            crate::viewer::LoadedPixels::Values(volume) => assert_eq!(volume.rescale.len(), 4),
            crate::viewer::LoadedPixels::Rgb(_) => panic!("a CT stack is greyscale"),
        }
    }
}
