//! PACS connections: DIMSE peers (C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE as SCU, and a C-STORE
//! SCP that is off unless started) over dicom-rs's `dicom-ul` (associations and PDUs), with the
//! DIMSE command sets built on dicom-object, as dicom-rs's own tools do. Errors name the node and
//! the cause.

pub mod cache;
mod dimse;
mod instance;
mod query;
mod scp;
mod scu;
pub mod sop;
pub mod syslog;
mod tls;
pub mod web;

pub use cache::{Cache, CacheUsage, CachedStudy};
pub use dimse::describe_status;
pub use instance::StoredInstance;
pub use query::{Level, Query, QueryRow};
pub use scp::{Received, Receiver, ReceiverConfig};
pub use scu::{
    Progress, RetrieveReport, RetrieveRequest, SendOutcome, SeriesOutcome, Timing, find, get,
    move_to, store,
};
pub use tls::TlsFiles;

/// Dokuei's implementation class UID and version name, in the files it writes.
pub(crate) use dokuei_results::common::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
/// The largest PDU Dokuei takes (the peer splits its data sets to fit).
pub(crate) const MAX_PDU_LENGTH: u32 = 262_144;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The Verification SOP Class.
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// A DIMSE peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct DimseNode {
    /// What the user calls it.
    pub name: String,
    pub called_ae_title: String,
    pub calling_ae_title: String,
    pub host: String,
    pub port: u16,
    /// TLS (none: plain TCP).
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

impl DimseNode {
    fn address(&self) -> String {
        format!("{}@{}:{}", self.called_ae_title, self.host, self.port)
    }

    pub(crate) fn association_error(&self, reason: String) -> NetError {
        NetError::Association {
            node: self.name.clone(),
            address: self.address(),
            reason,
        }
    }

    pub(crate) fn exchange_error(&self, reason: String) -> NetError {
        NetError::Exchange {
            node: self.name.clone(),
            address: self.address(),
            reason,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No association: the node is unreachable, refused it, or spoke something else.
    #[error("{node} ({address}): {reason}")]
    Association {
        node: String,
        address: String,
        reason: String,
    },
    /// The association was made but the exchange failed.
    #[error("{node} ({address}): {reason}")]
    Exchange {
        node: String,
        address: String,
        reason: String,
    },
    /// Dokuei's own listener could not start.
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: String, reason: String },
}

/// What a C-ECHO found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct EchoReport {
    /// The response's DIMSE status (0 = success).
    pub status: u16,
    pub milliseconds: f64,
}

/// Sends a C-ECHO to `node` and waits for its answer (at most `timeout` for each step).
pub fn echo(node: &DimseNode, timeout: Duration) -> Result<EchoReport, NetError> {
    let started = Instant::now();
    let timing = Timing {
        timeout,
        attempts: 1,
        backoff: Duration::ZERO,
    };
    let connection = scu::associate(node, &timing, &|o| o.with_abstract_syntax(VERIFICATION))?;
    let status = scu::on_association!(connection, |association| {
        let context = association
            .presentation_contexts()
            .first()
            .map(|c| c.id)
            .ok_or_else(|| node.association_error("no presentation context was accepted".into()))?;
        let mut channel = dimse::Channel::default();
        let rq = dimse::command(dimse::field::C_ECHO_RQ, 1, VERIFICATION, false);
        let status = channel
            .send(&mut association, context, &rq, None)
            .and_then(|()| match channel.receive(&mut association)? {
                dimse::Incoming::Message(m) if m.field() == dimse::field::C_ECHO_RSP => m
                    .status()
                    .ok_or_else(|| "the C-ECHO response has no status".to_string()),
                dimse::Incoming::Message(m) => Err(format!(
                    "expected a C-ECHO response, got command 0x{:04X}",
                    m.field()
                )),
                _ => Err("the association ended before the C-ECHO response".into()),
            })
            .map_err(|e| node.exchange_error(e))?;
        let _ = association.release();
        status
    });
    Ok(EchoReport {
        status,
        milliseconds: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// dicom-ul's error with its causes (e.g. "association rejected: called AE title not
/// recognised"; "connection refused").
pub(crate) fn describe(e: &dicom_ul::association::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
