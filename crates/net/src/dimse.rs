//! DIMSE messages over a dicom-ul association: command sets built on dicom-object (Implicit VR
//! Little Endian with their group length, PS3.7 6.3.1), data sets sent through dicom-ul's P-DATA
//! writer, and incoming messages reassembled from P-DATA values. Used by both sides (SCU and SCP).

use std::collections::VecDeque;
use std::io::{Read, Write};

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_encoding::transfer_syntax::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::Pdu;
use dicom_ul::association::{CloseSocket, SyncAssociation};
use dicom_ul::pdu::{PDataValue, PDataValueType};

/// Command Field values (PS3.7 E.1).
pub(crate) mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}

/// Command Data Set Type: no data set follows.
pub(crate) const NO_DATA_SET: u16 = 0x0101;
/// Command Data Set Type: a data set follows (any other value means the same).
pub(crate) const DATA_SET: u16 = 0x0000;

/// Status classes (PS3.7 C).
pub(crate) fn is_pending(status: u16) -> bool {
    status == 0xFF00 || status == 0xFF01
}

/// A status as words: "success", "warning 0xB000", "refused: out of resources (0xA700)"…
pub fn describe_status(status: u16) -> String {
    let what = match status {
        0x0000 => return "success".into(),
        0xFE00 => "cancelled",
        0xFF00 | 0xFF01 => "pending",
        0xB000 => "warning: sub-operations complete, one or more failures or warnings",
        0xB006 => "warning: elements discarded",
        0xB007 => "warning: data set does not match SOP class",
        0x0122 => "refused: SOP class not supported",
        0x0124 => "refused: not authorised",
        0x0211 => "unrecognised operation",
        0xA801 => "refused: move destination unknown",
        0xA900 => "identifier does not match SOP class",
        0xC000..=0xCFFF => "failed: unable to process",
        0xA700..=0xA7FF => "refused: out of resources",
        _ if status & 0xF000 == 0xB000 => "warning",
        _ => "failed",
    };
    format!("{what} (0x{status:04X})")
}

/// One command element.
pub(crate) fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, value.into()));
}

/// A command set with its fields; `data` says whether a data set follows.
pub(crate) fn command(
    command_field: u16,
    message_id: u16,
    affected_sop_class: &str,
    data: bool,
) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    put(
        &mut obj,
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        affected_sop_class,
    );
    put(&mut obj, tags::COMMAND_FIELD, VR::US, command_field);
    if command_field & 0x8000 == 0 {
        put(&mut obj, tags::MESSAGE_ID, VR::US, message_id);
    } else {
        put(
            &mut obj,
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            message_id,
        );
    }
    put(
        &mut obj,
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        if data { DATA_SET } else { NO_DATA_SET },
    );
    obj
}

/// The command set's bytes: Implicit VR Little Endian, led by its group length (0000,0000).
pub(crate) fn encode_command(obj: &InMemDicomObject) -> Result<Vec<u8>, String> {
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut body = Vec::new();
    obj.write_dataset_with_ts(&mut body, &ts)
        .map_err(|e| format!("encoding a command set: {e}"))?;
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// A transfer syntax by UID, from the registry Dokuei is built with.
pub(crate) fn transfer_syntax(uid: &str) -> Option<&'static TransferSyntax> {
    TransferSyntaxRegistry.get(uid.trim_end_matches(['\0', ' ']))
}

/// A data set (an identifier or an instance) in the given transfer syntax.
pub(crate) fn encode_data(obj: &InMemDicomObject, ts_uid: &str) -> Result<Vec<u8>, String> {
    let ts = transfer_syntax(ts_uid)
        .ok_or_else(|| format!("transfer syntax {ts_uid} is not known to Dokuei"))?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts)
        .map_err(|e| format!("encoding a data set in {}: {e}", ts.name()))?;
    Ok(out)
}

pub(crate) fn decode_data(bytes: &[u8], ts_uid: &str) -> Result<InMemDicomObject, String> {
    let ts = transfer_syntax(ts_uid)
        .ok_or_else(|| format!("transfer syntax {ts_uid} is not known to Dokuei"))?;
    InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| format!("reading a data set in {}: {e}", ts.name()))
}

/// The TCP socket under an association's stream (plain or TLS).
pub(crate) trait Tcp {
    fn tcp(&self) -> &std::net::TcpStream;
}

impl Tcp for std::net::TcpStream {
    fn tcp(&self) -> &std::net::TcpStream {
        self
    }
}

impl Tcp for dicom_ul::association::client::TlsStream {
    fn tcp(&self) -> &std::net::TcpStream {
        &self.sock
    }
}

impl Tcp for dicom_ul::association::server::TlsStream {
    fn tcp(&self) -> &std::net::TcpStream {
        &self.sock
    }
}

/// Asks the kernel to acknowledge what arrives at once. A peer that writes a command PDU and
/// then its data set without TCP_NODELAY (DCMTK's tools, Orthanc) otherwise waits for the
/// delayed ACK (up to 40 ms) before the data set's last segment goes out, for every instance.
/// Linux turns quick ACKs off again on its own, so this is asked before every read.
fn quick_ack(socket: &impl Tcp) {
    #[cfg(target_os = "linux")]
    let _ = socket2::SockRef::from(socket.tcp()).set_tcp_quickack(true);
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// An incoming message (command set and, when one follows, its data set's bytes).
#[derive(Debug)]
pub(crate) struct Message {
    pub context: u8,
    pub command: InMemDicomObject,
    pub data: Option<Vec<u8>>,
}

impl Message {
    pub fn field(&self) -> u16 {
        self.u16(tags::COMMAND_FIELD).unwrap_or(0)
    }
    pub fn status(&self) -> Option<u16> {
        self.u16(tags::STATUS)
    }
    pub fn u16(&self, tag: Tag) -> Option<u16> {
        self.command.element(tag).ok()?.to_int::<u16>().ok()
    }
    pub fn text(&self, tag: Tag) -> Option<String> {
        let v = self.command.element(tag).ok()?.to_str().ok()?;
        Some(v.trim_end_matches(['\0', ' ']).to_string())
    }
}

/// What came in.
#[derive(Debug)]
pub(crate) enum Incoming {
    Message(Message),
    /// The peer asked to release (and was answered).
    Released,
    /// The peer aborted.
    Aborted,
}

/// Sends messages and reassembles incoming ones (P-DATA values that arrive in the same PDU as
/// the end of a message wait for the next call).
#[derive(Default)]
pub(crate) struct Channel {
    pending: VecDeque<PDataValue>,
}

impl Channel {
    pub fn send<A, S>(
        &mut self,
        association: &mut A,
        context: u8,
        command: &InMemDicomObject,
        data: Option<&[u8]>,
    ) -> Result<(), String>
    where
        A: SyncAssociation<S>,
        S: Read + Write + CloseSocket + Tcp,
    {
        let command = encode_command(command)?;
        SyncAssociation::send(
            association,
            &Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: context,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: command,
                }],
            },
        )
        .map_err(|e| format!("sending a command: {}", crate::describe(&e)))?;
        if let Some(data) = data {
            let mut writer = association.send_pdata(context);
            writer
                .write_all(data)
                .and_then(|()| writer.finish())
                .map_err(|e| format!("sending a data set: {e}"))?;
        }
        Ok(())
    }

    fn next_value<A, S>(
        &mut self,
        association: &mut A,
    ) -> Result<Result<PDataValue, Incoming>, String>
    where
        A: SyncAssociation<S>,
        S: Read + Write + CloseSocket + Tcp,
    {
        loop {
            if let Some(v) = self.pending.pop_front() {
                return Ok(Ok(v));
            }
            quick_ack(SyncAssociation::inner_stream(association));
            match SyncAssociation::receive(association)
                .map_err(|e| format!("receiving: {}", crate::describe(&e)))?
            {
                Pdu::PData { data } => self.pending.extend(data),
                Pdu::ReleaseRQ => {
                    let _ = SyncAssociation::send(association, &Pdu::ReleaseRP);
                    return Ok(Err(Incoming::Released));
                }
                Pdu::AbortRQ { source } => {
                    let _ = source;
                    return Ok(Err(Incoming::Aborted));
                }
                other => {
                    return Err(format!(
                        "unexpected {} in the middle of an exchange",
                        other.short_description()
                    ));
                }
            }
        }
    }

    /// The next message, or the end of the association.
    pub fn receive<A, S>(&mut self, association: &mut A) -> Result<Incoming, String>
    where
        A: SyncAssociation<S>,
        S: Read + Write + CloseSocket + Tcp,
    {
        let mut command_bytes = Vec::new();
        let context = loop {
            let v = match self.next_value(association)? {
                Ok(v) => v,
                Err(end) => return Ok(end),
            };
            if v.value_type != PDataValueType::Command {
                return Err("a data set arrived before its command".into());
            }
            command_bytes.extend_from_slice(&v.data);
            if v.is_last {
                break v.presentation_context_id;
            }
        };
        let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
        let command = InMemDicomObject::read_dataset_with_ts(command_bytes.as_slice(), &ts)
            .map_err(|e| format!("reading a command set: {e}"))?;
        let has_data = command
            .element(tags::COMMAND_DATA_SET_TYPE)
            .ok()
            .and_then(|e| e.to_int::<u16>().ok())
            .is_some_and(|t| t != NO_DATA_SET);
        let mut message = Message {
            context,
            command,
            data: None,
        };
        if has_data {
            let mut data = Vec::new();
            loop {
                let v = match self.next_value(association)? {
                    Ok(v) => v,
                    Err(_) => {
                        return Err("the association ended in the middle of a data set".into());
                    }
                };
                if v.value_type != PDataValueType::Data {
                    return Err("a command arrived where a data set was expected".into());
                }
                if data.is_empty() {
                    data = v.data;
                } else {
                    data.extend_from_slice(&v.data);
                }
                if v.is_last {
                    break;
                }
            }
            message.data = Some(data);
        }
        Ok(Incoming::Message(message))
    }
}
