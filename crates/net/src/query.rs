//! What the user asks a PACS for, and what comes back: the same for C-FIND and QIDO-RS.

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde::{Deserialize, Serialize};

use crate::dimse::put;

/// The query/retrieve level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, specta::Type)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Study,
    Series,
    Image,
}

impl Level {
    pub fn keyword(self) -> &'static str {
        match self {
            Level::Study => "STUDY",
            Level::Series => "SERIES",
            Level::Image => "IMAGE",
        }
    }
}

/// A query. Empty fields match anything; `patient_name` may hold `*` and `?` wildcards; dates
/// are `YYYYMMDD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, specta::Type)]
#[serde(default)]
pub struct Query {
    pub level: Level,
    pub patient_name: String,
    pub patient_id: String,
    pub accession_number: String,
    pub date_from: String,
    pub date_to: String,
    pub modality: String,
    /// Required below study level.
    pub study_uid: String,
    /// Required at image level.
    pub series_uid: String,
    /// Paging (QIDO `limit`/`offset`; for C-FIND Dokuei drops the first `offset` answers and
    /// cancels the query after `limit`). 0 = no limit.
    #[specta(type = u32)]
    pub limit: usize,
    #[specta(type = u32)]
    pub offset: usize,
}

impl Query {
    pub fn study(study_uid: &str) -> Query {
        Query {
            level: Level::Series,
            study_uid: study_uid.into(),
            ..Query::default()
        }
    }

    /// The date range as DICOM matching: `A-B`, `A-`, `-B`, or empty.
    pub fn date_range(&self) -> String {
        match (self.date_from.is_empty(), self.date_to.is_empty()) {
            (true, true) => String::new(),
            _ if self.date_from == self.date_to => self.date_from.clone(),
            _ => format!("{}-{}", self.date_from, self.date_to),
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        for (what, date) in [("from", &self.date_from), ("to", &self.date_to)] {
            if !date.is_empty() && (date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit())) {
                return Err(format!("the date {what} must be YYYYMMDD, not {date:?}"));
            }
        }
        if self.level != Level::Study && self.study_uid.is_empty() {
            return Err(format!(
                "a {} query needs the study's UID",
                self.level.keyword().to_lowercase()
            ));
        }
        if self.level == Level::Image && self.series_uid.is_empty() {
            return Err("an image query needs the series' UID".into());
        }
        Ok(())
    }

    /// The C-FIND identifier (Study Root): matching keys and the return keys Dokuei shows.
    pub(crate) fn identifier(&self) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        let mut key = |tag: Tag, vr: VR, value: &str| put(&mut obj, tag, vr, value);
        key(tags::QUERY_RETRIEVE_LEVEL, VR::CS, self.level.keyword());
        key(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        key(tags::STUDY_INSTANCE_UID, VR::UI, &self.study_uid);
        match self.level {
            Level::Study => {
                key(tags::PATIENT_NAME, VR::PN, &self.patient_name);
                key(tags::PATIENT_ID, VR::LO, &self.patient_id);
                key(tags::ACCESSION_NUMBER, VR::SH, &self.accession_number);
                key(tags::STUDY_DATE, VR::DA, &self.date_range());
                key(tags::STUDY_TIME, VR::TM, "");
                key(tags::STUDY_DESCRIPTION, VR::LO, "");
                key(tags::MODALITIES_IN_STUDY, VR::CS, &self.modality);
                key(tags::NUMBER_OF_STUDY_RELATED_SERIES, VR::IS, "");
                key(tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, "");
            }
            Level::Series => {
                key(tags::SERIES_INSTANCE_UID, VR::UI, "");
                key(tags::MODALITY, VR::CS, &self.modality);
                key(tags::SERIES_NUMBER, VR::IS, "");
                key(tags::SERIES_DESCRIPTION, VR::LO, "");
                key(tags::NUMBER_OF_SERIES_RELATED_INSTANCES, VR::IS, "");
            }
            Level::Image => {
                key(tags::SERIES_INSTANCE_UID, VR::UI, &self.series_uid);
                key(tags::SOP_INSTANCE_UID, VR::UI, "");
                key(tags::SOP_CLASS_UID, VR::UI, "");
                key(tags::INSTANCE_NUMBER, VR::IS, "");
            }
        }
        obj
    }
}

/// One answer: a study, a series or an instance (the fields of the other levels stay empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, specta::Type)]
pub struct QueryRow {
    pub study_uid: String,
    pub patient_name: String,
    pub patient_id: String,
    pub accession_number: String,
    pub study_date: String,
    pub study_time: String,
    pub study_description: String,
    pub modalities: String,
    pub series_count: Option<u32>,
    pub instance_count: Option<u32>,
    pub series_uid: String,
    pub modality: String,
    pub series_number: Option<i32>,
    pub series_description: String,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub instance_number: Option<i32>,
}

impl QueryRow {
    /// The unique key at `level`.
    pub fn key(&self, level: Level) -> &str {
        match level {
            Level::Study => &self.study_uid,
            Level::Series => &self.series_uid,
            Level::Image => &self.sop_instance_uid,
        }
    }

    /// Reads the answer's attributes (from a C-FIND response identifier, or a QIDO answer
    /// turned into a data set).
    pub(crate) fn from_object(obj: &InMemDicomObject) -> QueryRow {
        let text = |tag: Tag| -> String {
            obj.element(tag)
                .ok()
                .and_then(|e| e.to_multi_str().ok().map(|v| v.join("\\")))
                .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                .unwrap_or_default()
        };
        let number = |tag: Tag| -> Option<i64> { text(tag).trim().parse::<i64>().ok() };
        let count = |tag: Tag| number(tag).and_then(|n| u32::try_from(n).ok());
        let int = |tag: Tag| number(tag).and_then(|n| i32::try_from(n).ok());
        let instance_count = count(tags::NUMBER_OF_STUDY_RELATED_INSTANCES)
            .or_else(|| count(tags::NUMBER_OF_SERIES_RELATED_INSTANCES));
        QueryRow {
            study_uid: text(tags::STUDY_INSTANCE_UID),
            patient_name: text(tags::PATIENT_NAME),
            patient_id: text(tags::PATIENT_ID),
            accession_number: text(tags::ACCESSION_NUMBER),
            study_date: text(tags::STUDY_DATE),
            study_time: text(tags::STUDY_TIME),
            study_description: text(tags::STUDY_DESCRIPTION),
            modalities: text(tags::MODALITIES_IN_STUDY),
            series_count: count(tags::NUMBER_OF_STUDY_RELATED_SERIES),
            instance_count,
            series_uid: text(tags::SERIES_INSTANCE_UID),
            modality: text(tags::MODALITY),
            series_number: int(tags::SERIES_NUMBER),
            series_description: text(tags::SERIES_DESCRIPTION),
            sop_instance_uid: text(tags::SOP_INSTANCE_UID),
            sop_class_uid: text(tags::SOP_CLASS_UID),
            instance_number: int(tags::INSTANCE_NUMBER),
        }
    }
}
