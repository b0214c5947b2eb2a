//! PACS connections: DIMSE peers (C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE as SCU, and a C-STORE
//! SCP that is off unless started) over dicom-rs's `dicom-ul` (associations and PDUs), with the
//! DIMSE command sets built on dicom-object, as dicom-rs's own tools do. Errors name the node and
//! the cause.

mod dimse;
mod instance;
mod query;
mod scp;
mod scu;
pub mod sop;
pub mod web;

pub use dimse::describe_status;
pub use instance::StoredInstance;
pub use query::{Level, Query, QueryRow};
pub use scp::{Received, Receiver, ReceiverConfig};
pub use scu::{
    Progress, RetrieveReport, RetrieveRequest, SendOutcome, SeriesOutcome, Timing, find, get,
    move_to, store,
};

/// Dokuei's implementation class UID and version name, in the files it writes.
pub(crate) use dokuei_results::common::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
/// The largest PDU Dokuei takes (the peer splits its data sets to fit).
pub(crate) const MAX_PDU_LENGTH: u32 = 262_144;

use std::time::{Duration, Instant};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{ClientAssociationOptions, Pdu};
use serde::{Deserialize, Serialize};

/// The Verification SOP Class.
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// A DIMSE peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimseNode {
    /// What the user calls it.
    pub name: String,
    pub called_ae_title: String,
    pub calling_ae_title: String,
    pub host: String,
    pub port: u16,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoReport {
    /// The response's DIMSE status (0 = success).
    pub status: u16,
    pub milliseconds: f64,
}

/// The C-ECHO-RQ command set (PS3.7 9.3.5), Implicit VR Little Endian, with its group length.
fn echo_command(message_id: u16) -> Result<Vec<u8>, String> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(VERIFICATION),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(0x0030u16),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID,
        VR::US,
        PrimitiveValue::from(message_id),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(0x0101u16),
    ));
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut body = Vec::new();
    obj.write_dataset_with_ts(&mut body, &ts)
        .map_err(|e| e.to_string())?;
    // (0000,0000) UL: the length of the rest of the group.
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The Status (0000,0900) of a response command set.
fn status_of(command: &[u8]) -> Option<u16> {
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let obj = InMemDicomObject::read_dataset_with_ts(command, &ts).ok()?;
    obj.element(tags::STATUS).ok()?.to_int::<u16>().ok()
}

/// Sends a C-ECHO to `node` and waits for its answer (at most `timeout` for each step).
pub fn echo(node: &DimseNode, timeout: Duration) -> Result<EchoReport, NetError> {
    let started = Instant::now();
    let association_error = |reason: String| NetError::Association {
        node: node.name.clone(),
        address: node.address(),
        reason,
    };
    let exchange_error = |reason: String| NetError::Exchange {
        node: node.name.clone(),
        address: node.address(),
        reason,
    };
    let mut association = ClientAssociationOptions::new()
        .calling_ae_title(node.calling_ae_title.as_str())
        .called_ae_title(node.called_ae_title.as_str())
        .with_abstract_syntax(VERIFICATION)
        .connection_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout)
        .establish((node.host.as_str(), node.port))
        .map_err(|e| association_error(describe(&e)))?;
    let context = association
        .presentation_contexts()
        .first()
        .map(|c| c.id)
        .ok_or_else(|| association_error("no presentation context was accepted".into()))?;
    let command = echo_command(1).map_err(exchange_error)?;
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        })
        .map_err(|e| exchange_error(format!("sending C-ECHO: {}", describe(&e))))?;
    let status = match association
        .receive()
        .map_err(|e| exchange_error(format!("waiting for the C-ECHO response: {}", describe(&e))))?
    {
        Pdu::PData { data } => data
            .first()
            .and_then(|v| status_of(&v.data))
            .ok_or_else(|| exchange_error("the C-ECHO response has no status".into()))?,
        other => {
            return Err(exchange_error(format!(
                "expected a C-ECHO response, got {}",
                other.short_description()
            )));
        }
    };
    let _ = association.release();
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
