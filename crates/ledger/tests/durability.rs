//! Nothing acknowledged is ever lost: not when the process is killed, not when two processes
//! write at once, not when the disk is full.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dokuei_ledger::{Action, Ledger};
use rusqlite::Connection;

use crate::support::{decision, study};

const CHILD_ENV: &str = "DOKUEI_LEDGER_TEST_CHILD";

/// Runs only as a child of the tests below: appends decisions to the ledger named by
/// `DOKUEI_LEDGER_TEST_CHILD` (`path:count`) and prints each id once `record_decision`
/// has returned Ok.
#[test]
#[ignore = "a helper process for the durability tests"]
fn child_appender() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (path, count) = spec.rsplit_once(':').unwrap();
    let count: usize = count.parse().unwrap();
    let ledger = Ledger::open(std::path::Path::new(path)).unwrap();
    let reader = ledger
        .add_reader("Dr. Child", dokuei_ledger::Role::Radiologist)
        .unwrap();
    let s = ledger.record_study(&study("9.9.9")).unwrap();
    for _ in 0..count {
        let id = ledger
            .record_decision(&decision(s, None, Action::Add, reader))
            .unwrap();
        println!("committed {id}");
    }
}

fn spawn_appender(path: &std::path::Path, count: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability::child_appender",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{}:{count}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn committed_ids(out: impl std::io::Read) -> Vec<i64> {
    BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        // libtest may print its own text on the same line before the first id.
        .filter_map(|l| {
            l.split("committed ")
                .nth(1)
                .and_then(|n| n.trim().parse().ok())
        })
        .collect()
}

#[test]
fn sigkill_during_appends_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    Ledger::open(&path).unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for trial in 0..50 {
        let mut child = spawn_appender(&path, 1_000_000);
        let stdout = child.stdout.take().unwrap();
        // Read acknowledged ids on a thread while the child runs; kill it at a random moment.
        let reader = std::thread::spawn(move || committed_ids(stdout));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(30 + seed % 150));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acknowledged = reader.join().unwrap();
        let ledger = Ledger::open(&path).unwrap();
        for id in &acknowledged {
            assert!(
                ledger.has_decision(*id).unwrap(),
                "trial {trial}: decision {id} was acknowledged but is gone"
            );
        }
        let check: String = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "trial {trial}");
        let report = ledger.verify().unwrap();
        assert!(report.is_intact(), "trial {trial}: {report:?}");
    }
    assert!(
        Ledger::open(&path).unwrap().decision_count().unwrap() > 50,
        "the children hardly wrote anything"
    );
}

#[test]
fn two_processes_appending_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    Ledger::open(&path).unwrap();
    let mut a = spawn_appender(&path, 150);
    let mut b = spawn_appender(&path, 150);
    let ids_a = committed_ids(a.stdout.take().unwrap());
    let ids_b = committed_ids(b.stdout.take().unwrap());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_eq!((ids_a.len(), ids_b.len()), (150, 150));
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(ledger.decision_count().unwrap(), 300);
    let report = ledger.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    // A 2 MiB tmpfs (needs root, as the test command runs); elsewhere the test says so and
    // checks nothing rather than pretending.
    let mount = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(mount.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?); the full-disk test did not run");
        return;
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(mount.path());
    let path = mount.path().join("full.db");
    let ledger = Ledger::open(&path).unwrap();
    let reader = ledger
        .add_reader("Dr. Full", dokuei_ledger::Role::Radiologist)
        .unwrap();
    let s = ledger.record_study(&study("7.7.7")).unwrap();
    let mut acknowledged = Vec::new();
    let big = "x".repeat(2000);
    let started = Instant::now();
    let err = loop {
        let mut d = decision(s, None, Action::Add, reader);
        d.reason_text = big.clone();
        match ledger.record_decision(&d) {
            Ok(id) => acknowledged.push(id),
            Err(e) => break e,
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the disk never filled"
        );
    };
    let text = err.to_string();
    assert!(
        text.contains("full.db") && text.contains("Nothing was recorded"),
        "{text}"
    );
    assert!(acknowledged.len() > 10);
    drop(ledger);
    let ledger = Ledger::open(&path).unwrap();
    for id in &acknowledged {
        assert!(
            ledger.has_decision(*id).unwrap(),
            "decision {id} lost after the disk filled"
        );
    }
    assert!(ledger.verify().unwrap().is_intact());
}
