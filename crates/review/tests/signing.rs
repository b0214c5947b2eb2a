//! Who signed: passphrases (wrong, locked, unlocked, changed, reset), signed sign-offs that
//! verify with the reader's public key and fail after any byte changes, and a sign-off forged
//! without the reader's key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dokuei_ledger::signing::signature_valid;
use dokuei_ledger::{Ledger, ProblemKind, Role, StudyRecord, recompute_chain_as_an_attacker};
use dokuei_review::ErrorCode;
use dokuei_review::reading::{
    add_reader, grant_administrator, reset_passphrase, set_passphrase, sign_off, unlock_reader,
};

const PASS: &str = "correct horse battery";
const ADMIN_PASS: &str = "staple and more staples";

fn study(ledger: &Ledger, uid: &str) -> String {
    ledger
        .record_study(&StudyRecord {
            study_uid: uid.into(),
            accession: "A1".into(),
            modality: "CT".into(),
            study_date: "20261201".into(),
            patient_key: "k".into(),
        })
        .unwrap();
    uid.into()
}

fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dokuei_review::ledger::open_ledger(Some(&dir.path().join("l.sqlite3"))).unwrap();
    (dir, ledger)
}

#[test]
fn wrong_passphrases_are_counted_lock_the_profile_and_an_administrator_unlocks_it() {
    let (_d, l) = ledger();
    let err = add_reader(&l, "Dr. Short", Role::Radiologist, "short").unwrap_err();
    assert!(err.message.contains("at least 8"), "{}", err.message);
    assert!(l.readers().unwrap().is_empty(), "no profile without a key");

    let reader = add_reader(&l, "Dr. Sato", Role::Radiologist, PASS).unwrap();
    let s1 = study(&l, "1.2.3.1");
    for n in 1..=4 {
        let e = sign_off(&l, &s1, reader.id, "", "wrong passphrase").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains(&format!("{n} of 5")), "{}", e.message);
    }
    let e = sign_off(&l, &s1, reader.id, "", "wrong passphrase").unwrap_err();
    assert!(e.message.contains("now locked"), "{}", e.message);
    // Locked: even the right passphrase is refused.
    let e = sign_off(&l, &s1, reader.id, "", PASS).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotAllowed);
    assert!(e.message.contains("locked"), "{}", e.message);

    // Only an administrator unlocks, with their own passphrase.
    let admin = add_reader(&l, "QA Admin", Role::Qa, ADMIN_PASS).unwrap();
    let e = unlock_reader(&l, reader.id, admin.id, ADMIN_PASS).unwrap_err();
    assert!(e.message.contains("not an administrator"), "{}", e.message);
    grant_administrator(&l, admin.id, None, ADMIN_PASS).unwrap();
    let other = add_reader(&l, "Dr. Other", Role::Radiologist, PASS).unwrap();
    assert!(
        grant_administrator(&l, other.id, None, PASS).is_err(),
        "the first administrator is the only one granted by nobody"
    );
    assert!(unlock_reader(&l, reader.id, admin.id, "not the admin's").is_err());
    unlock_reader(&l, reader.id, admin.id, ADMIN_PASS).unwrap();
    let review = sign_off(&l, &s1, reader.id, "ok", PASS).unwrap();
    assert!(review.sign_off.is_some());

    // A change needs the current passphrase; it makes a new key, so the old passphrase no
    // longer signs.
    assert!(set_passphrase(&l, reader.id, Some("wrong passphrase"), "new passphrase 1").is_err());
    set_passphrase(&l, reader.id, Some(PASS), "new passphrase 1").unwrap();
    let s2 = study(&l, "1.2.3.2");
    assert!(sign_off(&l, &s2, reader.id, "", PASS).is_err());
    sign_off(&l, &s2, reader.id, "", "new passphrase 1").unwrap();

    // A reset by the administrator: a new key under a new passphrase.
    reset_passphrase(&l, reader.id, admin.id, ADMIN_PASS, "after the reset", None).unwrap();
    let s3 = study(&l, "1.2.3.3");
    sign_off(&l, &s3, reader.id, "", "after the reset").unwrap();

    // Every step is recorded and chained, and every signature and endorsement holds.
    let report = l.verify().unwrap();
    assert!(report.is_intact(), "{}", report.summary());
    let kinds: Vec<String> = rusqlite::Connection::open(l.path())
        .unwrap()
        .prepare("SELECT kind FROM auth_events WHERE reader_id = ?1 ORDER BY seq")
        .unwrap()
        .query_map([reader.id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        kinds,
        [
            "failure", "failure", "failure", "failure", "failure", "locked", "unlocked", "failure",
            "success", "failure", "success"
        ]
    );
}

#[test]
fn a_signed_sign_off_verifies_with_the_readers_public_key_and_fails_after_any_byte_changes() {
    let (_d, l) = ledger();
    let reader = add_reader(&l, "Dr. Ito", Role::Radiologist, PASS).unwrap();
    let s = study(&l, "1.2.3.9");
    sign_off(&l, &s, reader.id, "no nodules", PASS).unwrap();
    let sig = l.sign_off_signature(1).unwrap().unwrap();
    let public_key = l.reader_key(reader.id).unwrap().unwrap().key.public_key;
    assert!(sig.statement.contains("Signed by: Dr. Ito (radiologist)"));
    assert!(sig.statement.contains("Meaning: final read"));
    assert!(sig.statement.contains("Date and time (UTC): 20"));
    assert!(signature_valid(
        &public_key,
        sig.statement.as_bytes(),
        &sig.signature
    ));
    let statement = sig.statement.as_bytes();
    for i in 0..statement.len() {
        let mut changed = statement.to_vec();
        changed[i] ^= 0x01;
        assert!(
            !signature_valid(&public_key, &changed, &sig.signature),
            "statement byte {i} changed and the signature still held"
        );
    }
    let signature = hex::decode(&sig.signature).unwrap();
    for i in 0..signature.len() {
        let mut changed = signature.clone();
        changed[i] ^= 0x01;
        assert!(
            !signature_valid(&public_key, statement, &hex::encode(changed)),
            "signature byte {i} changed and it still held"
        );
    }
}

/// Triggers dropped, rows written, the chain recomputed with the project's own library,
/// triggers put back: only the signatures can tell.
fn attack(l: &Ledger, sql: &str) -> String {
    let conn = rusqlite::Connection::open(l.path()).unwrap();
    let triggers = dokuei_ledger::drop_triggers_as_an_attacker(&conn).unwrap();
    conn.execute_batch(sql).unwrap();
    recompute_chain_as_an_attacker(&conn).unwrap();
    conn.execute_batch("DELETE FROM checkpoints").unwrap();
    for sql in &triggers {
        conn.execute_batch(sql).unwrap();
    }
    let report = Ledger::open(l.path()).unwrap().verify().unwrap();
    let summary = report.summary();
    let p = report
        .first_problem
        .unwrap_or_else(|| panic!("the forgery went unnoticed: {summary}"));
    assert_eq!(p.kind, ProblemKind::ForgedSignature, "{}", p.description);
    p.description
}

#[test]
fn a_sign_off_forged_without_the_readers_key_is_detected() {
    // A sign-off with no signature, by a reader who has a key.
    let (_d, l) = ledger();
    let reader = add_reader(&l, "Dr. Mori", Role::Radiologist, PASS).unwrap();
    study(&l, "1.2.3.10");
    let d = attack(
        &l,
        &format!(
            "INSERT INTO sign_offs (seq, study_id, reader_id, confirmed, edited, rejected, added, impression, recorded_at, utc_offset_minutes, app_version)
             VALUES ((SELECT max(seq) + 1 FROM chain), 1, {}, 0, 0, 0, 0, '', '2026-12-01T00:00:00.000Z', 0, '0.1.0')",
            reader.id
        ),
    );
    assert!(d.contains("carries no signature"), "{d}");

    // A real sign-off's signature copied onto a forged one (another study).
    let (_d, l) = ledger();
    let reader = add_reader(&l, "Dr. Mori", Role::Radiologist, PASS).unwrap();
    let s = study(&l, "1.2.3.11");
    sign_off(&l, &s, reader.id, "", PASS).unwrap();
    study(&l, "1.2.3.12");
    let d = attack(
        &l,
        "INSERT INTO sign_offs (seq, study_id, reader_id, confirmed, edited, rejected, added, impression, recorded_at, utc_offset_minutes, app_version)
             SELECT (SELECT max(seq) + 1 FROM chain), 2, reader_id, 0, 0, 0, 0, '', recorded_at, 0, app_version FROM sign_offs WHERE id = 1;
         INSERT INTO sign_off_signatures (seq, sign_off_id, reader_key_id, statement, signature, recorded_at, utc_offset_minutes, app_version)
             SELECT (SELECT max(seq) + 2 FROM chain), 2, reader_key_id, statement, signature, recorded_at, 0, app_version FROM sign_off_signatures WHERE id = 1;",
    );
    assert!(d.contains("sign_offs row 2"), "{d}");

    // A key of the attacker's own put in place for the reader, then a sign-off signed with it.
    let (_d, l) = ledger();
    let reader = add_reader(&l, "Dr. Mori", Role::Radiologist, PASS).unwrap();
    let (mine, _) = dokuei_ledger::signing::new_sealed_key("attacker's own").unwrap();
    let d = attack(
        &l,
        &format!(
            "INSERT INTO reader_keys (seq, reader_id, os_account, public_key, sealed_key, kdf, reason, by_reader_id, endorsement, recorded_at, utc_offset_minutes, app_version)
             VALUES ((SELECT max(seq) + 1 FROM chain), {}, 'x', '{}', '{}', '{}', 'created', NULL, '', '2026-12-01T00:00:00.000Z', 0, '0.1.0')",
            reader.id, mine.public_key, mine.sealed, mine.kdf
        ),
    );
    assert!(d.contains("not endorsed"), "{d}");
}

#[test]
fn a_damaged_stored_key_is_refused_at_once_and_not_counted_against_the_reader() {
    let (_d, l) = ledger();
    let reader = add_reader(&l, "Dr. Kato", Role::Radiologist, PASS).unwrap();
    let s = study(&l, "1.2.3.20");
    // A key row asking for 4 TiB and 4 billion passes of Argon2 (written behind Dokuei's back).
    rusqlite::Connection::open(l.path())
        .unwrap()
        .execute_batch(
            "DROP TRIGGER reader_keys_no_update;
             UPDATE reader_keys SET kdf = 'argon2id;m=4294967295;t=4294967295;p=1;salt=00112233445566778899aabbccddeeff';",
        )
        .unwrap();
    let started = std::time::Instant::now();
    let e = sign_off(&l, &s, reader.id, "", PASS).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(e.code, ErrorCode::LedgerTampered, "{}", e.message);
    assert!(e.message.contains("cannot be used"), "{}", e.message);
    assert_eq!(l.failures_in_a_row(reader.id).unwrap(), 0);
}

#[test]
fn a_name_cannot_add_lines_to_the_signed_statement() {
    let (_d, l) = ledger();
    let e = add_reader(&l, "Dr. X\nMeaning: draft", Role::Radiologist, PASS).unwrap_err();
    assert!(e.message.contains("one line"), "{}", e.message);
}
