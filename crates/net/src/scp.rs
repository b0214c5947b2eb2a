//! Dokuei's C-STORE SCP: off unless started; listens on the configured address (127.0.0.1 by
//! default), accepts associations only from the configured calling AE titles addressed to its own
//! AE title, answers C-ECHO, and stores what it is sent under its root by study and series. The
//! listening socket exists only while the [`Receiver`] lives.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use dicom_dictionary_std::tags;
use dicom_ul::ServerAssociationOptions;
use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};
use serde::{Deserialize, Serialize};

use crate::dimse::{Channel, Incoming, command, field, put};
use crate::instance::{StoredInstance, store_received};
use crate::sop::{COMMON_STORAGE_CLASSES, STORAGE_TRANSFER_SYNTAXES};
use crate::{NetError, VERIFICATION};

/// How the receiver is set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(default)]
pub struct ReceiverConfig {
    /// Off by default.
    pub enabled: bool,
    pub address: String,
    pub port: u16,
    pub ae_title: String,
    /// Only these calling AE titles may send (none: nobody).
    pub allowed_calling_ae_titles: Vec<String>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            enabled: false,
            address: "127.0.0.1".into(),
            port: 11112,
            ae_title: "DOKUEI".into(),
            allowed_calling_ae_titles: Vec::new(),
        }
    }
}

/// Accepts only the configured callers, addressed to this AE title.
struct AllowList {
    callers: Vec<String>,
}

impl AccessControl for AllowList {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if !self
            .callers
            .iter()
            .any(|c| c.trim() == calling_ae_title.trim())
        {
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// What the receiver has seen (shared with its threads).
#[derive(Debug, Default)]
struct Log {
    received: Vec<(String, StoredInstance)>,
    /// Refused or failed: (calling AE or address, reason).
    problems: Vec<(String, String)>,
}

/// A running C-STORE SCP. Stops (and closes its socket) when dropped or [`Receiver::stop`]ped.
#[derive(Debug)]
pub struct Receiver {
    address: SocketAddr,
    ae_title: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
    thread: Option<JoinHandle<()>>,
}

/// An instance received from a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Received {
    pub calling_ae_title: String,
    pub instance: StoredInstance,
}

impl Receiver {
    /// Starts listening on `config.address:config.port` (port 0: any free port) and stores
    /// what arrives under `root`.
    pub fn start(config: &ReceiverConfig, root: PathBuf) -> Result<Receiver, NetError> {
        let listener = TcpListener::bind((config.address.as_str(), config.port)).map_err(|e| {
            NetError::Listen {
                address: format!("{}:{}", config.address, config.port),
                reason: e.to_string(),
            }
        })?;
        let address = listener.local_addr().map_err(|e| NetError::Listen {
            address: format!("{}:{}", config.address, config.port),
            reason: e.to_string(),
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| NetError::Listen {
                address: address.to_string(),
                reason: e.to_string(),
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Log::default()));
        let ae_title = config.ae_title.clone();
        let callers = config.allowed_calling_ae_titles.clone();
        let thread = {
            let stop = stop.clone();
            let log = log.clone();
            let ae_title = ae_title.clone();
            std::thread::Builder::new()
                .name("dokuei-scp".into())
                .spawn(move || {
                    let root = Arc::new(root);
                    let callers = Arc::new(callers);
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, peer)) => {
                                let (log, root, callers, ae) =
                                    (log.clone(), root.clone(), callers.clone(), ae_title.clone());
                                let _ = std::thread::Builder::new()
                                    .name("dokuei-scp-association".into())
                                    .spawn(move || serve(stream, peer, &ae, &callers, &root, &log));
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(100)),
                        }
                    }
                })
                .map_err(|e| NetError::Listen {
                    address: address.to_string(),
                    reason: e.to_string(),
                })?
        };
        Ok(Receiver {
            address,
            ae_title,
            stop,
            log,
            thread: Some(thread),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn ae_title(&self) -> &str {
        &self.ae_title
    }

    /// Everything received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.received
            .iter()
            .map(|(ae, i)| Received {
                calling_ae_title: ae.clone(),
                instance: i.clone(),
            })
            .collect()
    }

    /// How many instances have arrived (cheap, for progress).
    pub fn received_count(&self) -> usize {
        self.log.lock().map(|l| l.received.len()).unwrap_or(0)
    }

    /// Associations refused and instances not stored: (who, why).
    pub fn problems(&self) -> Vec<(String, String)> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.problems.clone()
    }

    /// Stops listening (associations in progress finish on their own threads).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ae_title: &str,
    callers: &[String],
    root: &std::path::Path,
    log: &Mutex<Log>,
) {
    let problem = |who: String, why: String| {
        if let Ok(mut l) = log.lock() {
            l.problems.push((who, why));
        }
    };
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    // Responses go out at once (no Nagle delay behind the peer's delayed ACK).
    let _ = stream.set_nodelay(true);
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(AllowList {
            callers: callers.to_vec(),
        })
        .ae_title(ae_title)
        .promiscuous(true)
        .max_pdu_length(crate::MAX_PDU_LENGTH)
        .read_timeout(Duration::from_secs(60))
        .write_timeout(Duration::from_secs(60))
        .with_abstract_syntax(VERIFICATION);
    for class in COMMON_STORAGE_CLASSES {
        options = options.with_abstract_syntax(*class);
    }
    for ts in STORAGE_TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(*ts);
    }
    let mut association = match options.establish(stream) {
        Ok(a) => a,
        Err(e) => {
            problem(peer.to_string(), crate::describe(&e));
            return;
        }
    };
    let caller = dicom_ul::association::Association::peer_ae_title(&association)
        .trim()
        .to_string();
    let mut channel = Channel::default();
    loop {
        let message = match channel.receive(&mut association) {
            Ok(Incoming::Message(m)) => m,
            Ok(Incoming::Released) | Ok(Incoming::Aborted) => return,
            Err(e) => {
                problem(caller.clone(), e);
                return;
            }
        };
        let id = message
            .u16(dicom_dictionary_std::tags::MESSAGE_ID)
            .unwrap_or(0);
        let class = message
            .text(tags::AFFECTED_SOP_CLASS_UID)
            .unwrap_or_default();
        let reply = match message.field() {
            field::C_ECHO_RQ => {
                let mut rsp = command(field::C_ECHO_RSP, id, &class, false);
                put(&mut rsp, tags::STATUS, dicom_core::VR::US, 0u16);
                rsp
            }
            field::C_STORE_RQ => {
                let (rsp, outcome) = answer_store(&association, &message, root);
                if let Ok(mut l) = log.lock() {
                    match outcome {
                        Ok(stored) => l.received.push((caller.clone(), stored)),
                        Err(e) => l.problems.push((caller.clone(), e)),
                    }
                }
                rsp
            }
            // A C-CANCEL has no response (and there is nothing to cancel here).
            field::C_CANCEL_RQ => continue,
            other => {
                problem(caller.clone(), format!("unsupported command 0x{other:04X}"));
                let mut rsp = command(other | 0x8000, id, &class, false);
                put(&mut rsp, tags::STATUS, dicom_core::VR::US, 0x0211u16);
                rsp
            }
        };
        if let Err(e) = channel.send(&mut association, message.context, &reply, None) {
            problem(caller.clone(), e);
            return;
        }
    }
}

/// Stores the instance a C-STORE-RQ carries (the data set in its presentation context's transfer
/// syntax) and builds the C-STORE-RSP: success, out of resources when it could not be written,
/// cannot understand when it could not be read.
pub(crate) fn answer_store<A, S>(
    association: &A,
    message: &crate::dimse::Message,
    root: &std::path::Path,
) -> (
    dicom_object::InMemDicomObject,
    Result<StoredInstance, String>,
)
where
    A: dicom_ul::association::SyncAssociation<S> + Contexts,
    S: std::io::Read + std::io::Write + dicom_ul::association::CloseSocket + crate::dimse::Tcp,
{
    let id = message.u16(tags::MESSAGE_ID).unwrap_or(0);
    let class = message
        .text(tags::AFFECTED_SOP_CLASS_UID)
        .unwrap_or_default();
    let instance = message
        .text(tags::AFFECTED_SOP_INSTANCE_UID)
        .unwrap_or_default();
    let stored = match (
        message.data.as_deref(),
        association.transfer_syntax_of(message.context),
    ) {
        (None, _) => Err((0xC000, "C-STORE without a data set".to_string())),
        (_, None) => Err((
            0xC000,
            format!("unknown presentation context {}", message.context),
        )),
        (Some(data), Some(ts)) => {
            store_received(root, &class, &instance, &ts, data).map_err(|e| (e.status, e.reason))
        }
    };
    let status: u16 = match &stored {
        Ok(_) => 0x0000,
        Err((status, _)) => *status,
    };
    let outcome = stored.map_err(|(_, reason)| format!("{instance}: {reason}"));
    let mut rsp = command(field::C_STORE_RSP, id, &class, false);
    put(
        &mut rsp,
        tags::AFFECTED_SOP_INSTANCE_UID,
        dicom_core::VR::UI,
        instance.as_str(),
    );
    put(&mut rsp, tags::STATUS, dicom_core::VR::US, status);
    (rsp, outcome)
}

/// The negotiated transfer syntax of a presentation context (both sides of an association).
pub(crate) trait Contexts {
    fn transfer_syntax_of(&self, context: u8) -> Option<String>;
}

fn ts_of(contexts: &[dicom_ul::pdu::PresentationContextNegotiated], id: u8) -> Option<String> {
    contexts
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.transfer_syntax.trim_end_matches(['\0', ' ']).to_string())
}

impl<S: std::io::Read + std::io::Write + dicom_ul::association::CloseSocket> Contexts
    for dicom_ul::ServerAssociation<S>
{
    fn transfer_syntax_of(&self, context: u8) -> Option<String> {
        ts_of(self.presentation_contexts(), context)
    }
}

impl<S: std::io::Read + std::io::Write + dicom_ul::association::CloseSocket> Contexts
    for dicom_ul::ClientAssociation<S>
{
    fn transfer_syntax_of(&self, context: u8) -> Option<String> {
        ts_of(self.presentation_contexts(), context)
    }
}
