//! PACS use cases over both ways PACS speak (DIMSE and DICOMweb): nodes and their settings file,
//! test connection, query, retrieve into the cache, and send with every sent instance and its
//! outcome recorded in the ledger.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dokuei_ledger::{Ledger, SentRecord};
pub use dokuei_net::web::{Auth, WebNode};
pub use dokuei_net::{
    DimseNode, EchoReport, Level, Progress, Query, QueryRow, Receiver, ReceiverConfig,
    RetrieveReport, RetrieveRequest, SendOutcome, SeriesOutcome, Timing,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{AppError, ErrorCode};

/// A PACS node: a DIMSE peer or a DICOMweb server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub enum Node {
    Dimse(DimseNode),
    Dicomweb(WebNode),
}

impl Node {
    pub fn name(&self) -> &str {
        match self {
            Node::Dimse(n) => &n.name,
            Node::Dicomweb(n) => &n.name,
        }
    }

    pub fn protocol(&self) -> &'static str {
        match self {
            Node::Dimse(_) => "dimse",
            Node::Dicomweb(_) => "dicomweb",
        }
    }

    /// AE@host:port, or the base URL.
    pub fn address(&self) -> String {
        match self {
            Node::Dimse(n) => format!("{}@{}:{}", n.called_ae_title, n.host, n.port),
            Node::Dicomweb(n) => n.base_url.clone(),
        }
    }
}

/// The PACS settings (nodes, the receiver, the cache's limit), kept in a JSON file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(default)]
pub struct PacsSettings {
    pub nodes: Vec<Node>,
    pub receiver: ReceiverConfig,
    /// The retrieve cache's size limit, MiB (least recently used studies leave first).
    #[specta(type = f64)]
    pub cache_limit_mib: u64,
    /// Seconds for each network step.
    #[specta(type = f64)]
    pub timeout_seconds: u64,
}

impl Default for PacsSettings {
    fn default() -> Self {
        PacsSettings {
            nodes: Vec::new(),
            receiver: ReceiverConfig::default(),
            cache_limit_mib: 10 * 1024,
            timeout_seconds: 30,
        }
    }
}

impl PacsSettings {
    /// Reads the settings file; a missing file gives the defaults (no nodes, receiver off).
    pub fn load(path: &Path) -> Result<PacsSettings, AppError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                AppError::new(
                    ErrorCode::InvalidArgument,
                    format!("{}: not valid PACS settings: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PacsSettings::default()),
            Err(e) => Err(AppError::new(
                ErrorCode::NotFound,
                format!("cannot read {}: {e}", path.display()),
            )),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), AppError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| {
            AppError::new(
                ErrorCode::WriteFailed,
                format!("encoding PACS settings: {e}"),
            )
        })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                AppError::new(
                    ErrorCode::WriteFailed,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        }
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                AppError::new(
                    ErrorCode::WriteFailed,
                    format!("cannot write {}: {e}", path.display()),
                )
            })
    }

    pub fn node(&self, name: &str) -> Result<&Node, AppError> {
        self.nodes.iter().find(|n| n.name() == name).ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidArgument,
                format!("no PACS node is called {name:?}"),
            )
        })
    }

    pub fn timing(&self) -> Timing {
        Timing {
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            ..Timing::default()
        }
    }
}

fn web_error(e: dokuei_net::web::WebError) -> AppError {
    AppError::new(ErrorCode::NodeFailed, e.to_string())
}

/// C-ECHO to `node`: its status and round-trip time, or an error naming the node and the cause
/// (unreachable, association rejected with its reason, a failed exchange).
pub fn echo(node: &DimseNode, timeout: Duration) -> Result<EchoReport, AppError> {
    Ok(dokuei_net::echo(node, timeout)?)
}

/// "Test connection": C-ECHO for a DIMSE node, a QIDO-RS probe for a DICOMweb one. The answer
/// in words, and the round-trip time (ms).
pub fn test_connection(node: &Node, timing: &Timing) -> Result<(String, f64), AppError> {
    match node {
        Node::Dimse(n) => {
            let r = echo(n, timing.timeout)?;
            if r.status != 0 {
                return Err(AppError::new(
                    ErrorCode::NodeFailed,
                    format!(
                        "{} ({}): C-ECHO answered {}",
                        n.name,
                        node.address(),
                        dokuei_net::describe_status(r.status)
                    ),
                ));
            }
            Ok(("C-ECHO succeeded".into(), r.milliseconds))
        }
        Node::Dicomweb(n) => {
            let ms = dokuei_net::web::probe(n, timing.timeout).map_err(web_error)?;
            Ok(("QIDO-RS answered".into(), ms))
        }
    }
}

/// C-FIND or QIDO-RS.
pub fn find(node: &Node, query: &Query, timing: &Timing) -> Result<Vec<QueryRow>, AppError> {
    match node {
        Node::Dimse(n) => Ok(dokuei_net::find(n, query, timing)?),
        Node::Dicomweb(n) => dokuei_net::web::find(n, query, timing.timeout).map_err(web_error),
    }
}

/// How a DIMSE retrieve is done.
#[derive(Debug, Clone, Copy, Default)]
pub enum Via<'a> {
    /// C-GET (or WADO-RS for a DICOMweb node).
    #[default]
    Get,
    /// C-MOVE to Dokuei's receiver, which must be on and known to the node; `None`: it is off.
    Move(Option<&'a Receiver>),
}

/// Retrieves a study or some of its series into `cache/<study>/<series>/`. What arrived is
/// kept whatever happens; the report names what did not (retry by asking for those series).
pub fn retrieve(
    node: &Node,
    request: &RetrieveRequest,
    cache: &Path,
    via: Via<'_>,
    timing: &Timing,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<RetrieveReport, AppError> {
    match (node, via) {
        (Node::Dicomweb(n), _) => {
            dokuei_net::web::retrieve(n, request, cache, timing.timeout, progress, cancel)
                .map_err(web_error)
        }
        (Node::Dimse(n), Via::Get) => Ok(dokuei_net::get(
            n, request, cache, timing, progress, cancel,
        )?),
        (Node::Dimse(n), Via::Move(receiver)) => {
            let receiver = receiver.ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "{}: C-MOVE needs Dokuei's receiver switched on (Settings → PACS → Receive)",
                        n.name
                    ),
                )
            })?;
            Ok(dokuei_net::move_to(
                n, request, receiver, timing, progress, cancel,
            )?)
        }
    }
}

/// Sends files (Dokuei's exported results, or any DICOM files) to `node`, by C-STORE or STOW-RS,
/// and records each instance sent and its outcome in the ledger (with the exported object it
/// was, when Dokuei wrote it). Sending twice is safe: the node keeps one copy and the ledger
/// keeps both attempts.
pub fn send(
    ledger: &Ledger,
    node: &Node,
    files: &[PathBuf],
    timing: &Timing,
) -> Result<Vec<SendOutcome>, AppError> {
    let outcomes = transmit(node, files, timing).inspect_err(|e| {
        // The access audit: a send that failed before any instance went.
        let event = crate::audit::send_failure_event(crate::audit::node_peer(node), e, None);
        if let Err(err) = ledger.record_access(&event) {
            tracing::error!("the access audit could not record a failed send: {err}");
        }
    })?;
    record_sends(ledger, node, &outcomes)?;
    // The access audit (the workstation records its own, with the reader); its failure is
    // logged, never taken for the send's (the instances are on the node).
    let index = dokuei_dicom::index::index(files);
    let audited =
        crate::audit::sent_events(ledger, node, &outcomes, &index, None).and_then(|events| {
            events
                .iter()
                .try_for_each(|e| ledger.record_access(e).map(|_| ()).map_err(AppError::from))
        });
    if let Err(e) = audited {
        tracing::error!("the access audit could not record a send: {}", e.message);
    }
    Ok(outcomes)
}

/// The network half of [`send`] (no ledger: callers that share the ledger take it only to
/// record, not for the whole transfer).
pub fn transmit(
    node: &Node,
    files: &[PathBuf],
    timing: &Timing,
) -> Result<Vec<SendOutcome>, AppError> {
    match node {
        Node::Dimse(n) => Ok(dokuei_net::store(n, files, timing)?),
        Node::Dicomweb(n) => dokuei_net::web::store(n, files, timing.timeout).map_err(web_error),
    }
}

/// Records each instance sent and its outcome. Every outcome is tried even when one cannot be
/// recorded; the error then says how many were not (the instances are on the node regardless).
pub fn record_sends(
    ledger: &Ledger,
    node: &Node,
    outcomes: &[SendOutcome],
) -> Result<(), AppError> {
    let mut failures = Vec::new();
    for o in outcomes {
        if o.sop_instance_uid.is_empty() {
            continue; // not a DICOM file: nothing was sent
        }
        let sha256 = std::fs::read(&o.path)
            .map(|b| crate::reading::hex_lower(&Sha256::digest(&b)))
            .unwrap_or_default();
        let recorded =
            ledger
                .exported_object_id(&o.sop_instance_uid)
                .and_then(|exported_object_id| {
                    ledger.record_sent(&SentRecord {
                        exported_object_id,
                        sop_class_uid: o.sop_class_uid.clone(),
                        sop_instance_uid: o.sop_instance_uid.clone(),
                        sha256,
                        node: node.name().to_string(),
                        protocol: node.protocol().to_string(),
                        address: node.address(),
                        stored: o.stored,
                        status: o.status.map(i64::from),
                        detail: o.detail.clone(),
                    })
                });
        if let Err(e) = recorded {
            failures.push(e.to_string());
        }
    }
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(AppError::new(
            ErrorCode::LedgerUnavailable,
            format!(
                "{} of {} instances were sent to {} but could not be recorded in the ledger: {first}",
                failures.len(),
                outcomes.len(),
                node.name()
            ),
        )),
    }
}

/// The PACS side of a running workstation: the settings (kept in a file), the receiver (on only
/// when the settings say so), the retrieve cache, and the running transfer's cancel flag. The
/// app holds one; every method is a use case the app's commands and the CLI share.
#[derive(Debug)]
pub struct PacsService {
    settings_path: PathBuf,
    cache_root: PathBuf,
    state: std::sync::Mutex<PacsState>,
    transfer: std::sync::Mutex<Option<std::sync::Arc<AtomicBool>>>,
}

#[derive(Debug)]
struct PacsState {
    settings: PacsSettings,
    /// Shared with a C-MOVE in progress; it stops listening when the last holder lets go.
    receiver: Option<std::sync::Arc<Receiver>>,
    /// Why the receiver is not listening although switched on.
    receiver_error: Option<String>,
    /// Why the settings file could not be read (the defaults are in use until it is saved).
    settings_error: Option<String>,
    /// How many of the receiver's instances the access audit has taken, and those of a
    /// receiver since replaced that it has not taken yet.
    audited: usize,
    unaudited: Vec<dokuei_net::Received>,
}

/// What the PACS screen shows besides the settings.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct PacsStatus {
    /// Where the receiver listens (`127.0.0.1:11112`), when it is on.
    pub listening: Option<String>,
    pub receiver_error: Option<String>,
    pub settings_error: Option<String>,
    pub cache: dokuei_net::CacheUsage,
    /// Studies the receiver has been sent since it started, newest first.
    pub received: Vec<ReceivedStudy>,
}

/// A study pushed to the receiver.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct ReceivedStudy {
    pub study_uid: String,
    pub path: PathBuf,
    pub instances: u32,
    pub calling_ae_titles: Vec<String>,
}

/// A finished retrieve and where its files are.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct Retrieved {
    pub report: RetrieveReport,
    pub study_dir: PathBuf,
    /// When the cache could not be brought within its limit afterwards, why.
    pub cache_note: Option<String>,
}

/// The smallest cache limit accepted (a study of a few hundred slices must fit).
pub const MIN_CACHE_MIB: u64 = 256;

fn lock_failed() -> AppError {
    AppError::new(
        ErrorCode::NotAllowed,
        "the PACS state is unavailable (a previous action failed while holding it)",
    )
}

impl PacsService {
    /// Reads the settings (defaults when there are none) and starts the receiver if they switch
    /// it on. A settings file that cannot be read, or a receiver that cannot start, is reported
    /// by [`PacsService::status`], never fatal: the workstation still opens local studies.
    pub fn new(settings_path: PathBuf, cache_root: PathBuf) -> PacsService {
        let (settings, settings_error) = match PacsSettings::load(&settings_path) {
            Ok(s) => (s, None),
            Err(e) => (PacsSettings::default(), Some(e.message)),
        };
        let service = PacsService {
            settings_path,
            cache_root,
            state: std::sync::Mutex::new(PacsState {
                settings: PacsSettings::default(),
                receiver: None,
                receiver_error: None,
                settings_error,
                audited: 0,
                unaudited: Vec::new(),
            }),
            transfer: std::sync::Mutex::new(None),
        };
        // A fresh service's lock cannot be poisoned.
        let _ = service.apply(settings);
        service
    }

    fn apply(&self, settings: PacsSettings) -> Result<(), AppError> {
        let mut state = self.state.lock().map_err(|_| lock_failed())?;
        let restart = state.settings.receiver != settings.receiver
            || (settings.receiver.enabled && state.receiver.is_none());
        if restart {
            // What the old receiver took and the audit has not yet.
            if let Some(old) = state.receiver.take() {
                let audited = state.audited;
                state
                    .unaudited
                    .extend(old.received().into_iter().skip(audited));
            }
            state.audited = 0;
            // Dropping the last handle stops it.
            state.receiver = None;
            state.receiver_error = None;
            if settings.receiver.enabled {
                match Receiver::start(&settings.receiver, self.cache_root.clone()) {
                    Ok(r) => state.receiver = Some(std::sync::Arc::new(r)),
                    Err(e) => state.receiver_error = Some(e.to_string()),
                }
            }
        }
        state.settings = settings;
        Ok(())
    }

    /// The instances the receiver took since the last call (for the access audit).
    pub fn unaudited_received(&self) -> Vec<dokuei_net::Received> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        let mut out = std::mem::take(&mut state.unaudited);
        if let Some(r) = &state.receiver
            && r.received_count() > state.audited
        {
            let all = r.received();
            out.extend(all.iter().skip(state.audited).cloned());
            state.audited = all.len();
        }
        out
    }

    pub fn settings(&self) -> Result<PacsSettings, AppError> {
        Ok(self
            .state
            .lock()
            .map_err(|_| lock_failed())?
            .settings
            .clone())
    }

    /// Saves the settings and applies them (the receiver starts, stops or moves).
    pub fn save_settings(&self, settings: PacsSettings) -> Result<PacsStatus, AppError> {
        let mut names: Vec<&str> = settings.nodes.iter().map(Node::name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(AppError::new(
                ErrorCode::InvalidArgument,
                format!("two nodes are called {:?}", w[0]),
            ));
        }
        if names.iter().any(|n| n.trim().is_empty()) {
            return Err(AppError::new(
                ErrorCode::InvalidArgument,
                "a node has no name",
            ));
        }
        settings.save(&self.settings_path)?;
        self.apply(settings)?;
        if let Ok(mut state) = self.state.lock() {
            state.settings_error = None;
        }
        self.status()
    }

    fn cache(&self) -> Result<dokuei_net::Cache, AppError> {
        let limit = self.settings()?.cache_limit_mib.saturating_mul(1 << 20);
        Ok(dokuei_net::Cache::new(self.cache_root.clone(), limit))
    }

    pub fn status(&self) -> Result<PacsStatus, AppError> {
        let cache = self.cache()?.usage();
        let state = self.state.lock().map_err(|_| lock_failed())?;
        let mut received: Vec<ReceivedStudy> = Vec::new();
        if let Some(r) = &state.receiver {
            for item in r.received().into_iter().rev() {
                let i = item.instance;
                match received.iter_mut().find(|s| s.study_uid == i.study_uid) {
                    Some(s) => {
                        s.instances += 1;
                        if !s.calling_ae_titles.contains(&item.calling_ae_title) {
                            s.calling_ae_titles.push(item.calling_ae_title);
                        }
                    }
                    None => received.push(ReceivedStudy {
                        path: self.cache_root.join(&i.study_uid),
                        study_uid: i.study_uid,
                        instances: 1,
                        calling_ae_titles: vec![item.calling_ae_title],
                    }),
                }
            }
        }
        Ok(PacsStatus {
            listening: state.receiver.as_ref().map(|r| r.address().to_string()),
            receiver_error: state.receiver_error.clone(),
            settings_error: state.settings_error.clone(),
            cache,
            received,
        })
    }

    /// "Test connection" on a node by name.
    pub fn test(&self, node: &str) -> Result<String, AppError> {
        let settings = self.settings()?;
        let node = settings.node(node)?;
        let (what, ms) = test_connection(node, &settings.timing())?;
        Ok(format!("{what} ({} ms)", ms.round()))
    }

    pub fn find(&self, node: &str, query: &Query) -> Result<Vec<QueryRow>, AppError> {
        let settings = self.settings()?;
        find(settings.node(node)?, query, &settings.timing())
    }

    /// Retrieves into the cache (C-MOVE when `by_move`, which needs the receiver on), then keeps
    /// the cache within its limit, never removing this study nor those in `keep` (the study
    /// open in the viewer). One transfer at a time.
    pub fn retrieve(
        &self,
        node: &str,
        request: &RetrieveRequest,
        by_move: bool,
        keep: &[String],
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Retrieved, AppError> {
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        {
            let mut slot = self.transfer.lock().map_err(|_| lock_failed())?;
            if slot.is_some() {
                return Err(AppError::new(
                    ErrorCode::NotAllowed,
                    "a retrieve is already running; cancel it or wait for it to finish",
                ));
            }
            *slot = Some(cancel.clone());
        }
        // Frees the slot however this ends (an error, or a panic in `progress`).
        struct Slot<'a>(&'a std::sync::Mutex<Option<std::sync::Arc<AtomicBool>>>);
        impl Drop for Slot<'_> {
            fn drop(&mut self) {
                if let Ok(mut slot) = self.0.lock() {
                    *slot = None;
                }
            }
        }
        let _slot = Slot(&self.transfer);
        let settings = self.settings()?;
        let node = settings.node(node)?;
        let cache = self.cache()?;
        let study_dir = cache
            .study_dir(&request.study_uid)
            .map_err(|e| AppError::new(ErrorCode::InvalidArgument, e))?;
        let receiver = self
            .state
            .lock()
            .map_err(|_| lock_failed())?
            .receiver
            .clone();
        let via = if by_move {
            Via::Move(receiver.as_deref())
        } else {
            Via::Get
        };
        let report = retrieve(
            node,
            request,
            cache.root(),
            via,
            &settings.timing(),
            progress,
            &cancel,
        )?;
        let _ = cache.touch(&request.study_uid);
        // Keeping the cache within its limit never fails a retrieve: what could not be removed
        // is said, and stays.
        let mut kept: Vec<&str> = keep.iter().map(String::as_str).collect();
        kept.push(request.study_uid.as_str());
        let cache_note = cache
            .evict(&kept)
            .err()
            .map(|e| format!("the cache could not be brought within its limit: {e}"));
        Ok(Retrieved {
            report,
            study_dir,
            cache_note,
        })
    }

    /// Marks the cached studies among `paths` (folders of the cache being opened) as used now.
    pub fn touch_opened(&self, paths: &[PathBuf]) {
        let Ok(cache) = self.cache() else {
            return;
        };
        for p in paths {
            if let Ok(rest) = p.strip_prefix(cache.root())
                && let Some(study) = rest.components().next()
            {
                let _ = cache.touch(&study.as_os_str().to_string_lossy());
            }
        }
    }

    /// Cancels the running retrieve (it stops between instances and keeps what came).
    pub fn cancel(&self) -> bool {
        match self.transfer.lock().ok().and_then(|t| t.clone()) {
            Some(flag) => {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Empties the cache (or removes one study from it).
    pub fn clear_cache(&self, study_uid: Option<&str>) -> Result<PacsStatus, AppError> {
        self.cache()?
            .clear(study_uid)
            .map_err(|e| AppError::new(ErrorCode::WriteFailed, e))?;
        self.status()
    }

    /// Sends the DICOM files in `folder` (e.g. the results just exported) to a node, holding no
    /// lock meanwhile. Returns the node and the outcomes, for [`record_sends`].
    pub fn send_folder(
        &self,
        node: &str,
        folder: &Path,
    ) -> Result<(Node, Vec<SendOutcome>), AppError> {
        let settings = self.settings()?;
        let node = settings.node(node)?.clone();
        let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
            .map_err(|e| {
                AppError::new(
                    ErrorCode::NotFound,
                    format!("cannot read {}: {e}", folder.display()),
                )
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("dcm")))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(AppError::new(
                ErrorCode::NotFound,
                format!("{} holds no .dcm files to send", folder.display()),
            ));
        }
        let outcomes = transmit(&node, &files, &settings.timing())?;
        Ok((node, outcomes))
    }
}
