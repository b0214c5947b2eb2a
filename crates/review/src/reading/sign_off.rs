//! Sign-off, and commit-then-reveal (the reader's own impression before the AI's findings).

use dokuei_ledger::{Action, Ledger, ReadingEventKind, SignOffRecord};

use super::*;
use crate::{AppError, ErrorCode};

/// Signs the study off with the reader's key, opened with `passphrase` (see
/// [`super::unlock_signing_key`]). Refused while any AI finding has no decision, and when
/// already signed off. Records the counts of effective decisions, the optional impression and
/// the signed statement (name, time, meaning "final read").
pub fn sign_off(
    ledger: &Ledger,
    study_uid: &str,
    reader_id: i64,
    impression: &str,
    passphrase: &str,
) -> Result<StudyReview, AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    let study_id = ledger
        .study_id(study_uid)?
        .ok_or_else(|| invalid("this study has not been analysed or reviewed yet"))?;
    let current = review_from_rows(study_uid, &ledger.study_rows(study_id)?);
    if current.sign_off.is_some() {
        return Err(signed_off_error());
    }
    if current.undecided > 0 {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            format!(
                "{} AI finding{} still need{} a decision before sign-off",
                current.undecided,
                if current.undecided == 1 { "" } else { "s" },
                if current.undecided == 1 { "s" } else { "" },
            ),
        ));
    }
    let count = |a: Action| {
        current
            .findings
            .iter()
            .filter(|f| f.decision.as_ref().is_some_and(|d| d.action == a))
            .count() as i64
    };
    let record = SignOffRecord {
        study_id,
        reader_id,
        confirmed: count(Action::Confirm),
        edited: count(Action::Edit),
        rejected: count(Action::Reject),
        added: count(Action::Add),
        impression: impression.trim().to_owned(),
    };
    // Checked last: a wrong passphrase is counted only for a sign-off that could happen.
    let (key_row, key) = super::unlock_signing_key(ledger, reader_id, passphrase)?;
    let who = reader(ledger, reader_id)?;
    ledger.record_signed_sign_off(
        &record,
        study_uid,
        &dokuei_ledger::signing::SignOffSigner {
            display_name: &who.display_name,
            role: who.role.as_str(),
            key_row: &key_row,
            key: &key,
        },
    )?;
    review(ledger, study_uid)
}

/// Commit-then-reveal, step one: the reader's own impression before any AI result is shown.
pub fn record_impression(
    ledger: &Ledger,
    study: &StudyIdentity,
    reader_id: i64,
    impression: &str,
) -> Result<StudyReview, AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    if impression.trim().is_empty() {
        return Err(invalid(
            "write an impression before the AI results are shown",
        ));
    }
    let study_id = study_id(ledger, study)?;
    let current = review_from_rows(&study.study_uid, &ledger.study_rows(study_id)?);
    if current.sign_off.is_some() {
        return Err(signed_off_error());
    }
    if current.ai_revealed || !current.findings.is_empty() {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            "the AI results of this study have already been shown; an impression recorded now \
             would not be independent of them",
        ));
    }
    ledger.record_reading_event(
        study_id,
        reader_id,
        ReadingEventKind::ImpressionBeforeAi,
        impression.trim(),
    )?;
    review(ledger, &study.study_uid)
}

/// Commit-then-reveal, step two: the AI results are shown. Refused before an impression.
pub fn reveal(ledger: &Ledger, study_uid: &str, reader_id: i64) -> Result<StudyReview, AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    let study_id = ledger
        .study_id(study_uid)?
        .ok_or_else(|| invalid("record an impression first"))?;
    let current = review_from_rows(study_uid, &ledger.study_rows(study_id)?);
    if current.impression_before_ai.is_none() {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            "record your impression before the AI results are revealed",
        ));
    }
    if !current.ai_revealed {
        ledger.record_reading_event(study_id, reader_id, ReadingEventKind::AiRevealed, "")?;
    }
    review(ledger, study_uid)
}
