//! C-ECHO against real DCMTK peers on loopback: `dcmqrscp` (a query/retrieve SCP that checks
//! the called AE title) answers success to its own AE title and rejects another, naming the
//! reason; a closed port is unreachable, naming the node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use dokuei_net::{DimseNode, NetError, echo};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running peer, stopped (by its PID) when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dcmqrscp(dir: &std::path::Path, port: u16) -> Peer {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let cfg = dir.join("q.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n\
             HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nQRSCP {} RW (10, 1024mb) ANY\nAETable END\n",
            db.display()
        ),
    )
    .unwrap();
    let child = Command::new("dcmqrscp")
        .arg("-c")
        .arg(&cfg)
        .spawn()
        .expect("DCMTK dcmqrscp (Debian dcmtk; run `bash scripts/setup.sh --test`)");
    let peer = Peer(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "dcmqrscp did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    peer
}

fn node(called: &str, port: u16) -> DimseNode {
    DimseNode {
        name: "test archive".into(),
        called_ae_title: called.into(),
        calling_ae_title: "DOKUEI".into(),
        host: "127.0.0.1".into(),
        port,
        tls: None,
    }
}

#[test]
fn c_echo_succeeds_on_the_right_ae_title_and_names_the_reason_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _peer = dcmqrscp(dir.path(), port);

    let ok = echo(&node("QRSCP", port), Duration::from_secs(5)).unwrap();
    assert_eq!(ok.status, 0, "{ok:?}");

    let e = echo(&node("WRONG", port), Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, NetError::Association { .. }), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("test archive (WRONG@127.0.0.1:"), "{text}");
    assert!(text.to_lowercase().contains("rejected"), "{text}");
    assert!(
        text.to_lowercase()
            .contains("called ae title not recognized"),
        "{text}"
    );
}

#[test]
fn an_unreachable_node_is_named() {
    let port = free_port(); // nothing listens there
    let e = echo(&node("ANY", port), Duration::from_secs(2)).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("test archive (ANY@127.0.0.1:"), "{text}");
    assert!(
        text.to_lowercase().contains("refused") || text.to_lowercase().contains("connect"),
        "{text}"
    );
}
