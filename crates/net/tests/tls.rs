//! DIMSE over TLS against DCMTK `storescp +tls` on loopback, with a test CA made by `openssl`:
//! C-ECHO and C-STORE succeed with the right CA and Dokuei's client certificate; the wrong CA is
//! refused naming the certificate problem, and so is a missing client certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod peers;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dokuei_net::{DimseNode, Timing, echo, store};
use peers::{Peer, ca, free_port, signed};

#[test]
fn tls_associations_with_the_right_ca_succeed_and_the_wrong_ca_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "ca");
    ca(d, "other-ca");
    signed(d, "server", "ca");
    signed(d, "client", "ca");
    let out = d.join("received");
    std::fs::create_dir_all(&out).unwrap();
    let port = free_port();
    let child = Command::new("storescp")
        .arg("+tls")
        .arg(d.join("server.key"))
        .arg(d.join("server.crt"))
        .arg("+cf")
        .arg(d.join("ca.crt"))
        .arg("-od")
        .arg(&out)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("DCMTK storescp");
    let _peer = Peer(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    let node = |ca: &str, client: bool| DimseNode {
        name: "TLS archive".into(),
        called_ae_title: "STORESCP".into(),
        calling_ae_title: "DOKUEI".into(),
        host: "127.0.0.1".into(),
        port,
        tls: Some(peers::tls_files(d, ca, client)),
    };
    let t = Duration::from_secs(10);

    let ok = echo(&node("ca.crt", true), t).unwrap();
    assert_eq!(ok.status, 0);
    let study = peers::study_of(&d.join("study"), 61, 2, 64, false);
    let sent = store(
        &node("ca.crt", true),
        &study.series[0].1,
        &Timing::default(),
    )
    .unwrap();
    assert!(sent.iter().all(|s| s.stored), "{sent:?}");
    let received = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(received, 2);

    // The node's certificate does not chain to the CA Dokuei was given.
    let e = echo(&node("other-ca.crt", true), t)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("TLS archive (STORESCP@127.0.0.1:"), "{e}");
    assert!(e.contains("TLS"), "{e}");
    assert!(e.contains("UnknownIssuer"), "{e}");
    // storescp requires a client certificate.
    let e = echo(&node("ca.crt", false), t).unwrap_err().to_string();
    assert!(e.contains("TLS") || e.contains("certificate"), "{e}");
    // A CA file that is not there.
    let e = echo(&node("missing.crt", true), t).unwrap_err().to_string();
    assert!(e.contains("missing.crt"), "{e}");
}
