//! Key images as a Key Object Selection document (PS3.3 A.35.4, TID 2010 "Key Object
//! Selection"): the images (and frames) a reader marked, under the title "Of Interest", with the
//! reader as observer and the notes as the Key Object Description. Any viewer that reads KOS
//! (OHIF, Weasis, a PACS) shows them as the study's key images.

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::{FileDicomObject, InMemDicomObject};

use crate::codes::{Code, dcm};
use crate::common::{self, ResultsError};
use crate::ds::Ds;
use crate::model::{ObjectIdentity, StudyContext, Writer};
use crate::sr::{Item, ObjectRef, Observer, evidence_study, observer_context, template_item};

pub const KEY_OBJECT_SELECTION: &str = "1.2.840.10008.5.1.4.1.1.88.59";

/// One image a reader marked.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyImage {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_uid: String,
    /// 1-based frame of a multi-frame image; `None` for a single-frame image (a frame number
    /// on one is invalid, as dciodvfy says).
    pub frame: Option<u32>,
    /// The reader's note on it (may be empty).
    pub note: String,
}

/// The KOS document of `images` marked by `observer` (a person's name, DICOM PN). The notes go
/// into one Key Object Description, each after its image's series and instance number as the
/// caller labels them (`labels[i]`, e.g. "series 2, image 41").
pub fn write_key_objects(
    study: &StudyContext,
    images: &[KeyImage],
    labels: &[String],
    observer: &str,
    id: &ObjectIdentity,
    writer: &Writer,
) -> Result<FileDicomObject<InMemDicomObject>, ResultsError> {
    if images.is_empty() {
        return Err(ResultsError::invalid("no key image to write"));
    }
    if labels.len() != images.len() {
        return Err(ResultsError::invalid(
            "each key image needs its label for the description",
        ));
    }
    let mut children = vec![Item::code(
        "HAS CONCEPT MOD",
        &dcm("121049", "Language of Content Item and Descendants"),
        &Code::new("en-US", "RFC5646", "English (United States)"),
    )];
    children.extend(observer_context(&Observer::Person(observer)));
    let description: Vec<String> = images
        .iter()
        .zip(labels)
        .filter(|(k, _)| !k.note.trim().is_empty())
        .map(|(k, label)| format!("{label}: {}", k.note.trim()))
        .collect();
    if !description.is_empty() {
        children.push(Item::text(
            "CONTAINS",
            &dcm("113012", "Key Object Description"),
            &description.join("\n"),
        ));
    }
    for k in images {
        let mut ds = Ds::new();
        ds.s(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS")
            .s(tags::VALUE_TYPE, VR::CS, "IMAGE");
        let mut r = Ds::new();
        r.s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &k.sop_class_uid)
            .s(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                &k.sop_instance_uid,
            );
        if let Some(f) = k.frame {
            r.int_str(tags::REFERENCED_FRAME_NUMBER, i64::from(f));
        }
        ds.seq(tags::REFERENCED_SOP_SEQUENCE, vec![r]);
        children.push(Item::from_ds(ds));
    }

    let mut ds = Ds::new();
    common::sop_common(&mut ds, KEY_OBJECT_SELECTION, id);
    common::patient_study(&mut ds, study);
    // Key Object Document Series.
    common::series(&mut ds, "KO", id);
    ds.seq(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]);
    common::equipment(&mut ds, writer);
    // Key Object Document Module: the evidence is every image referenced.
    let refs: Vec<ObjectRef> = images
        .iter()
        .map(|k| ObjectRef {
            sop_class_uid: k.sop_class_uid.clone(),
            sop_instance_uid: k.sop_instance_uid.clone(),
            series_uid: k.series_uid.clone(),
        })
        .collect();
    ds.seq(
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![evidence_study(&study.study_uid, &refs)],
    );
    // SR Document Content: the root container, titled from CID 7010.
    ds.s(tags::VALUE_TYPE, VR::CS, "CONTAINER")
        .code(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            &dcm("113000", "Of Interest"),
        )
        .s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE")
        .seq(tags::CONTENT_TEMPLATE_SEQUENCE, vec![template_item("2010")]);
    ds.seq(
        tags::CONTENT_SEQUENCE,
        children.into_iter().map(Item::into_ds).collect(),
    );
    common::into_file(ds, KEY_OBJECT_SELECTION, &id.sop_instance_uid)
}
