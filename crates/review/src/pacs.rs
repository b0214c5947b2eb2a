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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PacsSettings {
    pub nodes: Vec<Node>,
    pub receiver: ReceiverConfig,
    /// The retrieve cache's size limit, MiB (least recently used studies leave first).
    pub cache_limit_mib: u64,
    /// Seconds for each network step.
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
    let outcomes = match node {
        Node::Dimse(n) => dokuei_net::store(n, files, timing)?,
        Node::Dicomweb(n) => dokuei_net::web::store(n, files, timing.timeout).map_err(web_error)?,
    };
    for o in &outcomes {
        if o.sop_instance_uid.is_empty() {
            continue; // not a DICOM file: nothing was sent
        }
        let sha256 = std::fs::read(&o.path)
            .map(|b| crate::reading::hex_lower(&Sha256::digest(&b)))
            .unwrap_or_default();
        ledger.record_sent(&SentRecord {
            exported_object_id: ledger.exported_object_id(&o.sop_instance_uid)?,
            sop_class_uid: o.sop_class_uid.clone(),
            sop_instance_uid: o.sop_instance_uid.clone(),
            sha256,
            node: node.name().to_string(),
            protocol: node.protocol().to_string(),
            address: node.address(),
            stored: o.stored,
            status: o.status.map(i64::from),
            detail: o.detail.clone(),
        })?;
    }
    Ok(outcomes)
}
