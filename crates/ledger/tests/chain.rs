use dokuei_ledger::{Action, Ledger};
use rusqlite::Connection;

use crate::support::{decision, populate, populate_before_sign_off};

#[test]
fn a_fresh_ledger_verifies_and_counts_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let empty = ledger.verify().unwrap();
    assert!(empty.is_intact());
    assert_eq!(empty.rows_checked, 0);
    populate(&ledger);
    let report = ledger.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    // reader, study, reading event, analysis, 3 findings, 4 decisions, sign-off
    assert_eq!(report.rows_checked, 12);
    assert_eq!(ledger.decision_count().unwrap(), 4);
}

#[test]
fn the_database_refuses_update_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    populate(&Ledger::open(&path).unwrap());
    let raw = Connection::open(&path).unwrap();
    for sql in [
        "UPDATE decisions SET action = 'confirm' WHERE action = 'reject'",
        "DELETE FROM decisions",
        "UPDATE chain SET hash = x'00'",
        "DELETE FROM readers",
    ] {
        let err = raw.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
}

#[test]
fn a_correction_is_a_new_row_that_supersedes_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let ids = populate_before_sign_off(&ledger);
    let mut undo = decision(
        ids.study,
        Some(ids.findings[2]),
        Action::Confirm,
        ids.reader,
    );
    undo.supersedes_id = Some(ids.decisions[2]);
    let id = ledger.record_decision(&undo).unwrap();
    assert!(
        ledger.has_decision(ids.decisions[2]).unwrap(),
        "the corrected decision is still there"
    );
    assert!(ledger.has_decision(id).unwrap());
    assert!(ledger.verify().unwrap().is_intact());
}

#[test]
fn invalid_decisions_are_refused_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let ids = populate(&ledger);
    let before = ledger.verify().unwrap().rows_checked;
    // A reject without a reason, and a decision by a reader who does not exist.
    let mut no_reason = decision(ids.study, Some(ids.findings[0]), Action::Reject, ids.reader);
    no_reason.reject_reason = None;
    let err = ledger.record_decision(&no_reason).unwrap_err().to_string();
    assert!(
        err.contains("l.db") && err.contains("Nothing was recorded"),
        "{err}"
    );
    assert!(
        ledger
            .record_decision(&decision(
                ids.study,
                Some(ids.findings[0]),
                Action::Confirm,
                999
            ))
            .is_err()
    );
    let after = ledger.verify().unwrap();
    assert!(after.is_intact());
    assert_eq!(after.rows_checked, before);
}
