use dokuei_ledger::{Ledger, LedgerError, SCHEMA_VERSION};
use rusqlite::Connection;

use crate::support::populate;

#[test]
fn an_empty_file_gets_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("new.db")).unwrap();
    assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn every_earlier_version_is_upgraded_after_a_backup() {
    for version in 1..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        Ledger::create_at_schema_version(&path, version).unwrap();
        // Something recorded by the older version must survive the upgrade.
        let old = Ledger::open_without_upgrade(&path).unwrap();
        old.add_reader("Dr. Old", dokuei_ledger::Role::Clinician)
            .unwrap();
        drop(old);
        let ledger = Ledger::open(&path).unwrap();
        assert_eq!(
            ledger.schema_version().unwrap(),
            SCHEMA_VERSION,
            "from version {version}"
        );
        let backup = dir.path().join(format!("old.db.v{version}.bak"));
        let kept: String = Connection::open(&backup)
            .unwrap()
            .query_row("SELECT display_name FROM readers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "Dr. Old", "the backup holds the old data");
        // The new tables work after the upgrade, and the chain runs on across it.
        populate(&ledger);
        let report = ledger.verify().unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.rows_checked, 13);
    }
}

#[test]
fn a_ledger_from_a_newer_dokuei_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    populate(&Ledger::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Ledger::open(&path).unwrap_err();
    assert!(
        matches!(err, LedgerError::NewerSchema { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("future.db") && err.to_string().contains("Update Dokuei"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
