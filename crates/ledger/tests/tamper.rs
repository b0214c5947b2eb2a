//! Edits made directly with SQLite, behind the API's back: each one is detected by `verify`,
//! which names the first row that no longer matches.

use dokuei_ledger::Ledger;
use rusqlite::Connection;

use crate::support::populate;

/// A populated ledger and a raw connection to it with the append-only triggers dropped (as a
/// tamperer with file access would).
fn tamperable() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    populate(&Ledger::open(&path).unwrap());
    let raw = Connection::open(&path).unwrap();
    dokuei_ledger::drop_triggers_as_an_attacker(&raw).unwrap();
    (dir, path, raw)
}

fn problem_after(path: &std::path::Path) -> String {
    let report = Ledger::open(path).unwrap().verify().unwrap();
    report
        .first_problem
        .expect("tampering went unnoticed")
        .description
}

#[test]
fn a_changed_action_is_detected() {
    let (_d, path, raw) = tamperable();
    raw.execute(
        "UPDATE decisions SET action = 'confirm', reject_reason = NULL WHERE action = 'reject'",
        [],
    )
    .unwrap();
    let p = problem_after(&path);
    assert!(
        p.contains("decisions row 3") && p.contains("altered"),
        "{p}"
    );
}

#[test]
fn a_changed_reader_is_detected() {
    let (_d, path, raw) = tamperable();
    raw.execute("INSERT INTO readers (id, seq, display_name, role, recorded_at, utc_offset_minutes, app_version) VALUES (50, 5000, 'Dr. X', 'radiologist', 'x', 0, 'x')", []).unwrap();
    raw.execute("UPDATE decisions SET reader_id = 50 WHERE id = 1", [])
        .unwrap();
    let p = problem_after(&path);
    assert!(
        p.contains("decisions row 1") && p.contains("altered"),
        "{p}"
    );
}

#[test]
fn a_deleted_row_is_detected() {
    let (_d, path, raw) = tamperable();
    raw.execute("DELETE FROM decisions WHERE id = 2", [])
        .unwrap();
    let p = problem_after(&path);
    assert!(
        p.contains("decisions row 2") && p.contains("deleted"),
        "{p}"
    );
}

#[test]
fn a_deleted_row_and_its_chain_entry_is_a_gap() {
    let (_d, path, raw) = tamperable();
    let seq: i64 = raw
        .query_row("SELECT seq FROM decisions WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    raw.execute("DELETE FROM decisions WHERE id = 2", [])
        .unwrap();
    raw.execute("DELETE FROM chain WHERE seq = ?1", [seq])
        .unwrap();
    let p = problem_after(&path);
    assert!(p.contains(&format!("chain entry {seq} is missing")), "{p}");
}

#[test]
fn an_inserted_forged_row_is_detected() {
    let (_d, path, raw) = tamperable();
    raw.execute(
        "INSERT INTO decisions (seq, study_id, finding_id, action, label, reject_reason, reason_text, geometry_json, reader_id, supersedes_id, recorded_at, utc_offset_minutes, app_version) \
         VALUES (999, 1, 1, 'confirm', 'nodule', NULL, '', '', 1, NULL, '2026-01-01T00:00:00.000Z', 0, '0.1.0')",
        [],
    )
    .unwrap();
    let p = problem_after(&path);
    assert!(p.contains("not in the chain"), "{p}");
}

#[test]
fn a_forged_row_with_a_forged_chain_entry_is_detected() {
    let (_d, path, raw) = tamperable();
    let last: i64 = raw
        .query_row("SELECT max(seq) FROM chain", [], |r| r.get(0))
        .unwrap();
    raw.execute(
        "INSERT INTO decisions (id, seq, study_id, finding_id, action, label, reject_reason, reason_text, geometry_json, reader_id, supersedes_id, recorded_at, utc_offset_minutes, app_version) \
         VALUES (77, ?1, 1, 1, 'confirm', 'nodule', NULL, '', '', 1, NULL, '2026-01-01T00:00:00.000Z', 0, '0.1.0')",
        [last + 1],
    )
    .unwrap();
    let prev: Vec<u8> = raw
        .query_row("SELECT hash FROM chain WHERE seq = ?1", [last], |r| {
            r.get(0)
        })
        .unwrap();
    raw.execute(
        "INSERT INTO chain (seq, table_name, row_id, prev_hash, hash) VALUES (?1, 'decisions', 77, ?2, randomblob(32))",
        rusqlite::params![last + 1, prev],
    )
    .unwrap();
    let p = problem_after(&path);
    assert!(
        p.contains("decisions row 77") && p.contains("altered"),
        "{p}"
    );
}

#[test]
fn swapped_rows_are_detected() {
    let (_d, path, raw) = tamperable();
    // Swap the actions of decisions 1 and 3 (confirm ↔ reject), reasons included.
    raw.execute_batch(
        "UPDATE decisions SET action = 'reject', reject_reason = 'anatomical_structure' WHERE id = 1;
         UPDATE decisions SET action = 'confirm', reject_reason = NULL WHERE id = 3;",
    )
    .unwrap();
    let p = problem_after(&path);
    assert!(
        p.contains("decisions row 1") && p.contains("altered"),
        "{p}"
    );
}

#[test]
fn reordered_chain_entries_are_detected() {
    let (_d, path, raw) = tamperable();
    // Exchange the chain positions of two decisions.
    let (a, b): (i64, i64) = raw
        .query_row("SELECT (SELECT seq FROM decisions WHERE id = 1), (SELECT seq FROM decisions WHERE id = 2)", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    raw.execute_batch(&format!(
        "UPDATE chain SET seq = -1 WHERE seq = {a}; UPDATE chain SET seq = {a} WHERE seq = {b}; UPDATE chain SET seq = {b} WHERE seq = -1;"
    ))
    .unwrap();
    let p = problem_after(&path);
    assert!(p.contains(&format!("chain entry {a}")), "{p}");
}

#[test]
fn a_dropped_trigger_then_edit_is_detected() {
    let (_d, path, raw) = tamperable();
    raw.execute("UPDATE sign_offs SET impression = 'no nodules'", [])
        .unwrap();
    let p = problem_after(&path);
    assert!(
        p.contains("sign_offs row 1") && p.contains("altered"),
        "{p}"
    );
}
