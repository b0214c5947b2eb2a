//! Key images: the images of a study a reader marked (with a note) or unmarked, and the Key
//! Object Selection documents written from them. Unmarking is a new row, never a deletion.

use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use crate::store::{Ledger, LedgerError};

/// A mark or unmark of one image (or one frame of a multi-frame image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyImageRecord {
    pub study_id: i64,
    pub reader_id: i64,
    /// False to unmark.
    pub mark: bool,
    pub series_uid: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// 1-based frame of a multi-frame image.
    pub frame: Option<u32>,
    pub note: String,
}

/// A key image of a study as it stands: the latest mark of an image not unmarked since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyImageRow {
    /// The row of the mark.
    pub id: i64,
    pub reader_id: i64,
    pub reader: String,
    pub series_uid: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub frame: Option<u32>,
    pub note: String,
    pub recorded_at: String,
}

/// A Key Object Selection document written out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyObjectRecord {
    pub study_id: i64,
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
    /// How many key images it names.
    pub images: u32,
    pub sha256: String,
    pub destination: String,
}

impl Ledger {
    pub fn record_key_image(&self, k: &KeyImageRecord) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("study_id", Value::Integer(k.study_id)),
            ("reader_id", Value::Integer(k.reader_id)),
            (
                "action",
                Value::Text(if k.mark { "mark" } else { "unmark" }.to_owned()),
            ),
            ("series_uid", Value::Text(k.series_uid.clone())),
            ("sop_class_uid", Value::Text(k.sop_class_uid.clone())),
            ("sop_instance_uid", Value::Text(k.sop_instance_uid.clone())),
            (
                "frame",
                k.frame
                    .map_or(Value::Null, |f| Value::Integer(i64::from(f))),
            ),
            ("note", Value::Text(k.note.clone())),
        ]);
        self.append("key_images", &cols)
    }

    pub fn record_key_object_document(&self, d: &KeyObjectRecord) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("study_id", Value::Integer(d.study_id)),
            ("sop_instance_uid", Value::Text(d.sop_instance_uid.clone())),
            (
                "series_instance_uid",
                Value::Text(d.series_instance_uid.clone()),
            ),
            ("images", Value::Integer(i64::from(d.images))),
            ("sha256", Value::Text(d.sha256.clone())),
            ("destination", Value::Text(d.destination.clone())),
        ]);
        self.append("key_object_documents", &cols)
    }

    /// The study's key images, in the order they were (last) marked.
    pub fn key_images(&self, study_id: i64) -> Result<Vec<KeyImageRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT k.id, k.reader_id, r.display_name, k.series_uid, k.sop_class_uid,
                        k.sop_instance_uid, k.frame, k.note, k.recorded_at
                   FROM key_images k JOIN readers r ON r.id = k.reader_id
                  WHERE k.study_id = ?1 AND k.action = 'mark'
                    AND k.id = (SELECT max(l.id) FROM key_images l
                                 WHERE l.study_id = k.study_id
                                   AND l.sop_instance_uid = k.sop_instance_uid
                                   AND l.frame IS k.frame)
                  ORDER BY k.id",
            )
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([study_id], |r| {
                Ok(KeyImageRow {
                    id: r.get(0)?,
                    reader_id: r.get(1)?,
                    reader: r.get(2)?,
                    series_uid: r.get(3)?,
                    sop_class_uid: r.get(4)?,
                    sop_instance_uid: r.get(5)?,
                    frame: r.get::<_, Option<i64>>(6)?.map(|f| f as u32),
                    note: r.get(7)?,
                    recorded_at: r.get(8)?,
                })
            })
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }
}
