//! The installation key as the application and the CLI use it: created once, never silently
//! replaced, never created by an audit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dokuei_review::ledger::{InstallationKey, Role, open_ledger, open_ledger_for_audit};

#[test]
fn a_lost_key_is_an_error_not_a_new_key_and_an_audit_never_makes_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let key = InstallationKey::path_for(&path);
    {
        let ledger = open_ledger(Some(&path)).unwrap();
        ledger.add_reader("Dr. Key", Role::Radiologist).unwrap();
        assert!(ledger.latest_checkpoint().unwrap().is_some());
    }
    assert!(key.exists());
    std::fs::remove_file(&key).unwrap();
    let err = open_ledger(Some(&path)).unwrap_err();
    assert!(
        err.message.contains("checkpoint-key") && err.message.contains("restore the key file"),
        "{}",
        err.message
    );
    assert!(!key.exists(), "no new key replaced the lost one");
    // An auditor can still check it, and leaves no key behind.
    let ledger = open_ledger_for_audit(Some(&path)).unwrap();
    let report = ledger.verify().unwrap();
    assert!(report.is_intact(), "{}", report.summary());
    assert!(!key.exists());
}
