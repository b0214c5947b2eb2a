//! Syslog over TLS (RFC 5425) to an audit record repository, as IHE ATNA's Record Audit Event
//! transaction sends DICOM PS3.15 audit messages: each message an RFC 5424 syslog message
//! (facility authpriv, MSGID `IHE+RFC-3881`, the XML as its body), framed by its length in octets
//! (`MSG-LEN SP SYSLOG-MSG`), over a TLS connection that checks the repository's certificate
//! against the configured CA and, when configured, presents Dokuei's own.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::TlsFiles;

/// Where audit messages go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, specta::Type)]
#[serde(default)]
pub struct SyslogTarget {
    pub host: String,
    /// 6514 is syslog-TLS's registered port.
    pub port: u16,
    /// The repository's CA, and Dokuei's certificate and key when the repository asks for one
    /// (ATNA's node authentication).
    pub tls: TlsFiles,
}

impl SyslogTarget {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    /// RFC 3339 UTC time of the event.
    pub timestamp: String,
    /// RFC 5424 severity: 5 (notice) for an event that succeeded, 4 (warning) for a failure.
    pub severity: u8,
    pub body: String,
}

/// How long to wait for a repository to refuse a connection without a client certificate.
const CLOSE_PROBE: Duration = Duration::from_millis(500);

/// Facility 10 (security/authorization, "authpriv").
const FACILITY: u8 = 10;
/// The MSGID of IHE ATNA's audit messages.
pub const ATNA_MSGID: &str = "IHE+RFC-3881";

#[derive(Debug, thiserror::Error)]
#[error("audit repository {address}: {reason}")]
pub struct SyslogError {
    pub address: String,
    pub reason: String,
}

/// An RFC 5424 header field: printable US-ASCII without spaces, at most `max` octets, `-` when
/// empty.
fn header_field(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if cleaned.is_empty() {
        "-".to_owned()
    } else {
        cleaned
    }
}

/// The RFC 5424 message for `m`, as sent from `hostname` by `app_name` process `proc_id`.
pub fn format_message(m: &SyslogMessage, hostname: &str, app_name: &str, proc_id: &str) -> String {
    let pri = u16::from(FACILITY) * 8 + u16::from(m.severity.min(7));
    format!(
        "<{pri}>1 {} {} {} {} {ATNA_MSGID} - {}",
        header_field(&m.timestamp, 64),
        header_field(hostname, 255),
        header_field(app_name, 48),
        header_field(proc_id, 128),
        m.body
    )
}

/// The RFC 5425 frame of a syslog message: its length in octets, a space, the message.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message.as_bytes());
    out
}

/// Sends `messages` in order over one TLS connection to `target` and closes it cleanly
/// (close_notify). `Ok` means every frame was written and flushed and the connection closed
/// without error; RFC 5425 has no acknowledgement, so a repository that loses a message after
/// that cannot be told apart.
pub fn send(
    target: &SyslogTarget,
    hostname: &str,
    app_name: &str,
    messages: &[SyslogMessage],
    timeout: Duration,
) -> Result<(), SyslogError> {
    let fail = |reason: String| SyslogError {
        address: target.address(),
        reason,
    };
    if target.host.is_empty() || target.port == 0 {
        return Err(fail("no host or port configured".into()));
    }
    let (config, asked_for_certificate) =
        crate::tls::client_config_noting_request(&target.tls).map_err(fail)?;
    let server_name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|e| fail(format!("`{}` is not a host name: {e}", target.host)))?;
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve the host: {e}")))?
        .collect();
    let mut last = String::from("no address");
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect: {e}"),
        }
    }
    let tcp = tcp.ok_or_else(|| fail(last))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| fail(e.to_string()))?;
    tcp.set_write_timeout(Some(timeout))
        .map_err(|e| fail(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let conn = rustls::ClientConnection::new(config, server_name)
        .map_err(|e| fail(format!("TLS: {e}")))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| fail(format!("TLS: {e}")))?;
    }
    // A repository that requires a client certificate may close the connection right after the
    // handshake without a word, and syslog has no acknowledgement. When one was asked for and
    // none is configured, wait a moment for such a close before sending anything.
    if asked_for_certificate.load(std::sync::atomic::Ordering::Relaxed) {
        let refused = |why: String| {
            fail(format!(
                "TLS: the repository asked for a client certificate (ATNA node authentication), \
                 none is configured, and it {why}"
            ))
        };
        tls.sock
            .set_read_timeout(Some(CLOSE_PROBE.min(timeout)))
            .map_err(|e| fail(e.to_string()))?;
        let mut byte = [0u8; 1];
        match tls.read(&mut byte) {
            Ok(0) => return Err(refused("closed the connection".into())),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(refused(format!("ended the connection ({e})"))),
        }
        tls.sock
            .set_read_timeout(Some(timeout))
            .map_err(|e| fail(e.to_string()))?;
    }
    let proc_id = std::process::id().to_string();
    for m in messages {
        let bytes = frame(&format_message(m, hostname, app_name, &proc_id));
        tls.write_all(&bytes)
            .map_err(|e| fail(format!("TLS: {e}")))?;
    }
    tls.flush().map_err(|e| fail(format!("TLS: {e}")))?;
    tls.conn.send_close_notify();
    tls.flush().map_err(|e| fail(format!("TLS: {e}")))?;
    // Wait for the repository to close its side (it sends nothing else), so that a refused
    // client certificate, which TLS 1.3 reports only after the handshake, is an error here; so
    // is a reset (the repository dropped data it had not read).
    let mut sink = [0u8; 256];
    loop {
        match tls.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(fail(format!("TLS: {e}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_rfc5424_and_framed_by_octet_count() {
        let m = SyslogMessage {
            timestamp: "2026-12-02T08:00:00.123Z".into(),
            severity: 5,
            body: "<AuditMessage>é</AuditMessage>".into(),
        };
        let text = format_message(&m, "read ing-1", "dokuei", "42");
        assert_eq!(
            text,
            "<85>1 2026-12-02T08:00:00.123Z reading-1 dokuei 42 IHE+RFC-3881 - <AuditMessage>é</AuditMessage>"
        );
        let framed = frame(&text);
        // 'é' is two octets: the length counts octets, not characters.
        assert!(framed.starts_with(format!("{} <85>", text.len()).as_bytes()));
        assert_eq!(text.len(), text.chars().count() + 1);
        assert_eq!(
            format_message(&m, "", "", ""),
            format!(
                "<85>1 2026-12-02T08:00:00.123Z - - - IHE+RFC-3881 - {}",
                m.body
            )
        );
    }
}
