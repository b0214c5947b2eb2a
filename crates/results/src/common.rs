//! What every object Dokuei writes shares: SOP Common, Patient and General Study copied from the
//! source, the series, equipment (Dokuei) and Contributing Equipment (the models), references to
//! the source series, and the file meta group.

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject};

use crate::codes;
use crate::ds::Ds;
use crate::model::{Algorithm, ObjectIdentity, SourceSeries, StudyContext, Writer};

pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Manufacturer written in General Equipment.
pub const MANUFACTURER: &str = "Dokuei project";
pub const MODEL_NAME: &str = "Dokuei";

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The inputs cannot make a valid object (names the finding or series at fault).
    #[error("{0}")]
    Invalid(String),
    /// dicom-object refused to build or write the object.
    #[error("could not build the DICOM object: {0}")]
    Dicom(String),
    /// Reading another tool's object failed.
    #[error("{file}: {message}")]
    Read { file: String, message: String },
}

impl ResultsError {
    pub fn invalid(m: impl Into<String>) -> ResultsError {
        ResultsError::Invalid(m.into())
    }
}

pub(crate) fn sop_common(ds: &mut Ds, sop_class: &str, id: &ObjectIdentity) {
    let (da, tm, _) = crate::ds::now();
    ds.s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192")
        .s(tags::SOP_CLASS_UID, VR::UI, sop_class)
        .s(tags::SOP_INSTANCE_UID, VR::UI, &id.sop_instance_uid)
        .s(tags::INSTANCE_CREATION_DATE, VR::DA, &da)
        .s(tags::INSTANCE_CREATION_TIME, VR::TM, &tm)
        .int_str(tags::INSTANCE_NUMBER, i64::from(id.instance_number))
        .s(tags::CONTENT_DATE, VR::DA, &id.content_date)
        .s(tags::CONTENT_TIME, VR::TM, &id.content_time);
}

pub(crate) fn patient_study(ds: &mut Ds, s: &StudyContext) {
    ds.s(tags::PATIENT_NAME, VR::PN, &s.patient_name)
        .s(tags::PATIENT_ID, VR::LO, &s.patient_id)
        .s(tags::PATIENT_BIRTH_DATE, VR::DA, &s.patient_birth_date)
        .s(tags::PATIENT_SEX, VR::CS, &s.patient_sex)
        .s(tags::STUDY_INSTANCE_UID, VR::UI, &s.study_uid)
        .s(tags::STUDY_DATE, VR::DA, &s.study_date)
        .s(tags::STUDY_TIME, VR::TM, &s.study_time)
        .s(tags::STUDY_ID, VR::SH, &s.study_id)
        .s(tags::ACCESSION_NUMBER, VR::SH, &s.accession_number)
        .s(
            tags::REFERRING_PHYSICIAN_NAME,
            VR::PN,
            &s.referring_physician,
        );
}

pub(crate) fn series(ds: &mut Ds, modality: &str, id: &ObjectIdentity) {
    ds.s(tags::MODALITY, VR::CS, modality)
        .s(tags::SERIES_INSTANCE_UID, VR::UI, &id.series_uid)
        .int_str(tags::SERIES_NUMBER, i64::from(id.series_number))
        .s(tags::SERIES_DESCRIPTION, VR::LO, &id.series_description);
}

/// General and Enhanced General Equipment: Dokuei wrote the object.
pub(crate) fn equipment(ds: &mut Ds, w: &Writer) {
    ds.s(tags::MANUFACTURER, VR::LO, MANUFACTURER)
        .s(tags::MANUFACTURER_MODEL_NAME, VR::LO, MODEL_NAME)
        .s(tags::DEVICE_SERIAL_NUMBER, VR::LO, &w.device_serial)
        .s(tags::SOFTWARE_VERSIONS, VR::LO, &w.software_version);
}

/// Contributing Equipment: one item per distinct model (by SHA-256), purpose Processing
/// Equipment, with the model's Device UID.
pub(crate) fn contributing_equipment(
    ds: &mut Ds,
    algorithms: &[&Algorithm],
    w: &Writer,
    id: &ObjectIdentity,
) {
    let mut seen = std::collections::BTreeSet::new();
    let mut items = Vec::new();
    for a in algorithms {
        if !seen.insert(a.sha256.as_str()) {
            continue;
        }
        let mut item = Ds::new();
        item.code(
            tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
            &codes::processing_equipment(),
        )
        .s(tags::MANUFACTURER, VR::LO, &a.manufacturer)
        .s(tags::MANUFACTURER_MODEL_NAME, VR::LO, &a.name)
        .s(tags::SOFTWARE_VERSIONS, VR::LO, &a.version)
        .s(tags::DEVICE_UID, VR::UI, &a.device_uid())
        .s(
            tags::CONTRIBUTION_DATE_TIME,
            VR::DT,
            &format!("{}{}+0000", id.content_date, id.content_time),
        )
        .s(
            tags::CONTRIBUTION_DESCRIPTION,
            VR::ST,
            &format!(
                "AI model {} {} (file SHA-256 {}), run by Dokuei {}",
                a.id, a.version, a.sha256, w.software_version
            ),
        );
        items.push(item);
    }
    if !items.is_empty() {
        ds.seq(tags::CONTRIBUTING_EQUIPMENT_SEQUENCE, items);
    }
}

/// A Source Image Sequence item of a derived frame: the source image (and frame), its spatial
/// locations preserved, purpose "Source image for image processing operation".
pub(crate) fn source_image_item(im: &crate::model::SourceImage) -> Ds {
    let mut src = Ds::new();
    src.s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &im.sop_class_uid)
        .s(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            &im.sop_instance_uid,
        );
    if let Some(frame) = im.frame {
        src.int_str(tags::REFERENCED_FRAME_NUMBER, i64::from(frame));
    }
    src.code(
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        &codes::source_image_purpose(),
    )
    .s(tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES");
    src
}

/// Common Instance Reference Module: the source series and the images in `indices`.
pub(crate) fn referenced_series(ds: &mut Ds, source: &SourceSeries, indices: &[usize]) {
    let mut instances = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &i in indices {
        let im = &source.images[i];
        if !seen.insert(im.sop_instance_uid.as_str()) {
            continue;
        }
        let mut r = Ds::new();
        r.s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &im.sop_class_uid)
            .s(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                &im.sop_instance_uid,
            );
        instances.push(r);
    }
    let mut series = Ds::new();
    series.seq(tags::REFERENCED_INSTANCE_SEQUENCE, instances).s(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &source.series_uid,
    );
    ds.seq(tags::REFERENCED_SERIES_SEQUENCE, vec![series]);
}

/// Adds the file meta group (Explicit VR Little Endian).
pub(crate) fn into_file(
    ds: Ds,
    sop_class: &str,
    sop_instance: &str,
) -> Result<FileDicomObject<InMemDicomObject>, ResultsError> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(EXPLICIT_VR_LE)
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| ResultsError::Dicom(e.to_string()))?;
    Ok(ds.0.with_exact_meta(meta))
}

/// Dokuei's Implementation Class UID (fixed, under 2.25).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.207613584327346187404126434530536419905";
pub const IMPLEMENTATION_VERSION_NAME: &str = "DOKUEI_010";
