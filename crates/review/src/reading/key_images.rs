//! Key images: a reader marks the image on screen as a key image of the study, with a note, or
//! unmarks it (a new ledger row, never a deletion). The study's key images are written as a Key
//! Object Selection document beside its results.

use dokuei_ledger::{KeyImageRecord, KeyImageRow, Ledger};
use serde::Serialize;

use super::*;
use crate::AppError;

/// The longest note kept with a key image (characters).
pub const MAX_KEY_IMAGE_NOTE: usize = 1024;

/// A key image as the review screen lists it.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct KeyImageView {
    /// The ledger row of its mark.
    #[specta(type = i32)]
    pub id: i64,
    pub reader: String,
    pub series_uid: String,
    pub sop_instance_uid: String,
    /// 1-based frame of a multi-frame image.
    pub frame: Option<u32>,
    pub note: String,
    pub recorded_at: String,
    /// Its slice (0-based) in the stack asked about, when it is one of that stack's.
    pub slice: Option<u32>,
}

/// Marks (or with `mark` false, unmarks) slice `slice` of the stack in `ctx` as a key image of
/// its study, and returns the study's key images. Rules: the reader decides (not QA); the study
/// is not signed off; the note is at most [`MAX_KEY_IMAGE_NOTE`] characters.
pub fn mark_key_image(
    ledger: &Ledger,
    ctx: &DecisionContext<'_>,
    reader_id: i64,
    slice: u32,
    note: &str,
    mark: bool,
) -> Result<Vec<KeyImageView>, AppError> {
    require_reader_who_decides(ledger, reader_id)?;
    let frame = ctx.stack.frames.get(slice as usize).ok_or_else(|| {
        invalid(format!(
            "the stack has {} image(s); image {} does not exist",
            ctx.stack.frames.len(),
            slice + 1
        ))
    })?;
    if note.chars().count() > MAX_KEY_IMAGE_NOTE {
        return Err(invalid(format!(
            "a key image note is at most {MAX_KEY_IMAGE_NOTE} characters"
        )));
    }
    let study_id = study_id(ledger, ctx.study)?;
    if !ledger.study_rows(study_id)?.sign_offs.is_empty() {
        return Err(signed_off_error());
    }
    let instance = &ctx.series.instances[frame.instance];
    let frames = instance.image.as_ref().map_or(1, |i| i.frames);
    let frame_number = (frames > 1).then_some(frame.frame + 1);
    if !mark
        && !ledger
            .key_images(study_id)?
            .iter()
            .any(|k| k.sop_instance_uid == instance.sop_instance_uid && k.frame == frame_number)
    {
        return Err(invalid(format!("image {} is not a key image", slice + 1)));
    }
    ledger.record_key_image(&KeyImageRecord {
        study_id,
        reader_id,
        mark,
        series_uid: ctx.series.uid.clone(),
        sop_class_uid: instance.sop_class_uid.clone(),
        sop_instance_uid: instance.sop_instance_uid.clone(),
        frame: frame_number,
        note: if mark {
            note.trim().to_owned()
        } else {
            String::new()
        },
    })?;
    key_images(ledger, ctx)
}

/// The key images of the study in `ctx`, each placed in its stack when it is there.
pub fn key_images(
    ledger: &Ledger,
    ctx: &DecisionContext<'_>,
) -> Result<Vec<KeyImageView>, AppError> {
    let Some(study_id) = ledger.study_id(&ctx.study.study_uid)? else {
        return Ok(Vec::new());
    };
    Ok(ledger
        .key_images(study_id)?
        .into_iter()
        .map(|k| view(k, ctx))
        .collect())
}

fn view(k: KeyImageRow, ctx: &DecisionContext<'_>) -> KeyImageView {
    let slice = ctx
        .stack
        .frames
        .iter()
        .position(|f| {
            let i = &ctx.series.instances[f.instance];
            let frames = i.image.as_ref().map_or(1, |im| im.frames);
            i.sop_instance_uid == k.sop_instance_uid
                && (frames <= 1 || Some(f.frame + 1) == k.frame)
        })
        .map(|s| s as u32);
    KeyImageView {
        id: k.id,
        reader: k.reader,
        series_uid: k.series_uid,
        sop_instance_uid: k.sop_instance_uid,
        frame: k.frame,
        note: k.note,
        recorded_at: k.recorded_at,
        slice,
    }
}
