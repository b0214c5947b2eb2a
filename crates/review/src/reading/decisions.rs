//! A decision on a finding: confirm, edit, reject with a reason, or add.

use dokuei_dicom::Series;
use dokuei_dicom::stack::Stack;
use dokuei_ledger::{Action, DecisionRecord, Ledger, RejectReason, Role};
use serde::{Deserialize, Serialize};

use super::*;
use crate::{AppError, ErrorCode};

/// What a reader decided, as the screen sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct DecisionInput {
    /// The AI finding decided on; `None` to add a finding.
    #[specta(type = Option<i32>)]
    pub finding_id: Option<i64>,
    /// An added finding being redrawn: the decision that added it.
    #[specta(type = Option<i32>)]
    pub replaces_added: Option<i64>,
    pub action: Action,
    /// The label (for add; for others the finding's label is used when empty).
    pub label: String,
    pub reject_reason: Option<RejectReason>,
    pub reason_text: String,
    /// The edited or drawn mask (edit and add), in the stack's pixel grid.
    pub mask: Vec<MaskSlice>,
}

/// The study a decision is on, and the stack its geometry refers to.
#[derive(Debug)]
pub struct DecisionContext<'a> {
    pub study: &'a StudyIdentity,
    pub series: &'a Series,
    pub stack: &'a Stack,
}

pub(super) fn require_reader_who_decides(
    ledger: &Ledger,
    reader_id: i64,
) -> Result<Reader, AppError> {
    let r = reader(ledger, reader_id)?;
    if r.role == Role::Qa {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            format!(
                "{} has the QA role, which reviews decisions but does not make them",
                r.display_name
            ),
        ));
    }
    Ok(r)
}

/// Records one decision at once and returns the study's review. Rules: the study is not
/// signed off; the reader is a radiologist or clinician; confirm, edit and reject name an AI
/// finding of the study's current analyses; reject has a reason (and text for "other"); edit
/// and add carry a non-empty region. A decision on a finding that already has one supersedes
/// it (undo is a new decision, never a deletion).
pub fn decide(
    ledger: &Ledger,
    ctx: &DecisionContext<'_>,
    reader_id: i64,
    input: &DecisionInput,
) -> Result<(i64, StudyReview), AppError> {
    decide_with_passphrase(ledger, ctx, reader_id, input, None)
}

/// [`decide`], with the reader's passphrase for installations whose policy asks for it with
/// every decision ([`decision_passphrase_required`]); refused without it there.
pub fn decide_with_passphrase(
    ledger: &Ledger,
    ctx: &DecisionContext<'_>,
    reader_id: i64,
    input: &DecisionInput,
    passphrase: Option<&str>,
) -> Result<(i64, StudyReview), AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    let study_id = ledger
        .study_id(&ctx.study.study_uid)?
        .ok_or_else(|| invalid("this study has no analysis to decide on yet"))?;
    let rows = ledger.study_rows(study_id)?;
    if !rows.sign_offs.is_empty() {
        return Err(signed_off_error());
    }
    let current = review_from_rows(&ctx.study.study_uid, &rows);
    // Commit-then-reveal: once an impression is recorded, decisions wait for the reveal.
    if current.impression_before_ai.is_some() && !current.ai_revealed {
        return Err(AppError::new(
            ErrorCode::NotAllowed,
            "the AI results have not been revealed yet",
        ));
    }
    let (label, finding_id, supersedes_id) = match (input.action, input.finding_id) {
        (Action::Add, None) => {
            let supersedes = match input.replaces_added {
                Some(id) => {
                    let added = current
                        .findings
                        .iter()
                        .filter_map(|f| f.decision.as_ref())
                        .find(|d| d.id == id && d.action == Action::Add);
                    if added.is_none() {
                        return Err(invalid(format!(
                            "decision {id} is not a current added finding of this study"
                        )));
                    }
                    Some(id)
                }
                None => None,
            };
            if input.label.trim().is_empty() {
                return Err(invalid("an added finding needs a label"));
            }
            (input.label.trim().to_owned(), None, supersedes)
        }
        (Action::Add, Some(_)) => {
            return Err(invalid(
                "add is for a finding the model missed; use edit to change an AI finding",
            ));
        }
        (_, None) => {
            return Err(invalid(format!(
                "{} needs the AI finding it is about",
                input.action.as_str()
            )));
        }
        (_, Some(fid)) => {
            let finding = current
                .findings
                .iter()
                .find(|f| f.finding_id == Some(fid))
                .ok_or_else(|| {
                    invalid(format!(
                        "finding {fid} is not one of this study's current AI findings"
                    ))
                })?;
            let label = if input.label.trim().is_empty() {
                finding.label.clone()
            } else {
                input.label.trim().to_owned()
            };
            (label, Some(fid), finding.decision.as_ref().map(|d| d.id))
        }
    };
    let reason_text = input.reason_text.trim().to_owned();
    match (input.action, input.reject_reason) {
        (Action::Reject, None) => {
            return Err(invalid("a rejection needs a reason"));
        }
        (Action::Reject, Some(RejectReason::Other)) if reason_text.is_empty() => {
            return Err(invalid("a rejection for another reason needs a few words"));
        }
        (Action::Reject, _) => {}
        (_, Some(_)) => return Err(invalid("only a rejection has a reject reason")),
        _ => {}
    }
    let geometry = match input.action {
        Action::Edit | Action::Add => Some(geometry_from_mask(ctx.series, ctx.stack, &input.mask)?),
        _ if !input.mask.is_empty() => {
            return Err(invalid(format!(
                "{} does not change the region",
                input.action.as_str()
            )));
        }
        _ => None,
    };
    // Checked last, as at sign-off: a passphrase is never counted against the reader for a
    // decision that could not have been recorded anyway.
    authorise_decision(ledger, reader_id, passphrase)?;
    let id = ledger.record_decision(&DecisionRecord {
        study_id,
        finding_id,
        action: input.action,
        label,
        reject_reason: input.reject_reason,
        reason_text,
        geometry_json: geometry
            .as_ref()
            .map(|g| serde_json::to_string(g).unwrap_or_default())
            .unwrap_or_default(),
        reader_id,
        supersedes_id,
    })?;
    Ok((id, review(ledger, &ctx.study.study_uid)?))
}
