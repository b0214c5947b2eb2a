//! Syslog over TLS (RFC 5425) to a real rsyslog on loopback (Debian's rsyslogd with its GnuTLS
//! driver), with a test CA made by openssl: messages arrive whole and in order with ATNA's
//! header fields; a repository that requires a client certificate takes Dokuei's and refuses a
//! connection without one; a repository whose certificate is not of the configured CA is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod peers;

use std::time::Duration;

use dokuei_net::syslog::{SyslogMessage, SyslogTarget, send};
use peers::{ca, rsyslog, signed};

/// How long a message may take to be written by rsyslog, and how long to watch for one that
/// should not come.
const WAIT: Duration = Duration::from_secs(10);
const NOTHING_MORE: Duration = Duration::from_secs(1);

fn target(dir: &std::path::Path, port: u16, ca: &str, client: bool) -> SyslogTarget {
    SyslogTarget {
        host: "127.0.0.1".into(),
        port,
        tls: peers::tls_files(dir, ca, client),
    }
}

fn messages() -> Vec<SyslogMessage> {
    let big: String = (0..155)
        .map(|i| format!("    <Instance UID=\"1.2.826.0.1.3680043.10.{i}\"/>\n"))
        .collect();
    vec![
        SyslogMessage {
            timestamp: "2026-12-02T08:00:00.123Z".into(),
            severity: 5,
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AuditMessage>\n  <!-- 読影 -->\n</AuditMessage>".into(),
        },
        SyslogMessage {
            timestamp: "2026-12-02T08:00:01.000Z".into(),
            severity: 4,
            body: format!("<AuditMessage>\n{big}</AuditMessage>"),
        },
        SyslogMessage {
            timestamp: "2026-12-02T08:00:02.000Z".into(),
            severity: 5,
            body: "<AuditMessage/>".into(),
        },
    ]
}

#[test]
fn audit_messages_reach_rsyslog_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "ca");
    ca(d, "other-ca");
    signed(d, "server", "ca");
    let repository = rsyslog(d, false);
    let sent = messages();
    // One message near rsyslog's default limit of 8 KiB (header included).
    assert!(
        (7000..8000).contains(&sent[1].body.len()),
        "{}",
        sent[1].body.len()
    );
    send(
        &target(d, repository.port, "ca.crt", false),
        "reading-1",
        "dokuei",
        &sent,
        Duration::from_secs(10),
    )
    .unwrap();
    let got = repository.wait_for(sent.len(), WAIT);
    assert_eq!(got.len(), sent.len(), "{got:?}");
    for (g, s) in got.iter().zip(&sent) {
        assert_eq!(g["msg"].as_str().unwrap(), s.body);
        assert_eq!(g["msgid"], "IHE+RFC-3881");
        assert_eq!(g["host"], "reading-1");
        assert_eq!(g["app"], "dokuei");
        // authpriv (10) × 8 + severity.
        assert_eq!(g["pri"], (80 + u32::from(s.severity)).to_string());
    }

    // The repository's certificate is not of the CA configured: nothing is sent.
    let e = send(
        &target(d, repository.port, "other-ca.crt", false),
        "reading-1",
        "dokuei",
        &sent,
        Duration::from_secs(10),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(&format!(
            "audit repository 127.0.0.1:{}: TLS",
            repository.port
        )),
        "{e}"
    );
    assert!(e.contains("UnknownIssuer"), "{e}");
    assert_eq!(
        repository.wait_for(sent.len() + 1, NOTHING_MORE).len(),
        sent.len()
    );

    // Nobody listening.
    let closed = peers::free_port();
    let e = send(
        &target(d, closed, "ca.crt", false),
        "reading-1",
        "dokuei",
        &sent,
        Duration::from_secs(2),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{closed}")) && e.contains("connect"),
        "{e}"
    );
}

#[test]
fn a_repository_that_requires_a_client_certificate_gets_dokueis() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "ca");
    signed(d, "server", "ca");
    signed(d, "client", "ca");
    let repository = rsyslog(d, true);
    let sent = messages();
    send(
        &target(d, repository.port, "ca.crt", true),
        "reading-1",
        "dokuei",
        &sent[..1],
        Duration::from_secs(10),
    )
    .unwrap();
    let got = repository.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["msg"].as_str().unwrap(), sent[0].body);

    // Without a client certificate the repository closes the connection silently after the
    // handshake: Dokuei notices (it asked for one) and says so instead of reporting success.
    let e = send(
        &target(d, repository.port, "ca.crt", false),
        "reading-1",
        "dokuei",
        &sent[2..],
        Duration::from_secs(10),
    );
    assert_eq!(
        repository.wait_for(2, NOTHING_MORE).len(),
        1,
        "nothing more was received"
    );
    let e = e.unwrap_err().to_string();
    assert!(e.contains("asked for a client certificate"), "{e}");
    assert!(
        e.contains("none is configured, and it closed the connection")
            || e.contains("ended the connection"),
        "{e}"
    );
}
