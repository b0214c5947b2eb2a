//! The source series as the writers need it, from Dokuei's study index: every image of a stack
//! in display order with its SOP identity and geometry, the Frame of Reference (read from the
//! first file's header, which the index does not keep), and the patient and study attributes.

use dicom_dictionary_std::tags;
use dokuei_dicom::index::{Patient, Series, Study};
use dokuei_dicom::source::ReadDepth;
use dokuei_dicom::stack::Stack;

use crate::common::ResultsError;
use crate::model::{SourceImage, SourceSeries, StudyContext};

impl StudyContext {
    /// Patient and study attributes as the index read them.
    pub fn from_index(patient: &Patient, study: &Study) -> StudyContext {
        StudyContext {
            patient_name: patient.name.clone(),
            patient_id: patient.id.clone(),
            patient_birth_date: patient.birth_date.clone(),
            patient_sex: patient.sex.clone(),
            study_uid: study.uid.clone(),
            study_date: study.date.clone(),
            study_time: study.time.clone(),
            study_id: study.study_id.clone(),
            accession_number: study.accession_number.clone(),
            referring_physician: String::new(),
            source_charset: String::new(),
        }
    }
}

impl SourceSeries {
    /// The images of `stack` of `series`, in the stack's display order.
    pub fn from_stack(series: &Series, stack: &Stack) -> Result<SourceSeries, ResultsError> {
        let mut images = Vec::with_capacity(stack.frames.len());
        for f in &stack.frames {
            let inst = &series.instances[f.instance];
            let frames = inst.image.as_ref().map_or(1, |im| im.frames);
            let spacing = f
                .geometry
                .map(|g| g.pixel_spacing)
                .or_else(|| inst.image.as_ref().and_then(|im| im.pixel_spacing));
            images.push(SourceImage {
                sop_class_uid: inst.sop_class_uid.clone(),
                sop_instance_uid: inst.sop_instance_uid.clone(),
                frame: (frames > 1).then_some(f.frame + 1),
                position: f.geometry.map(|g| g.position),
                orientation: f.geometry.map(|g| {
                    let (r, c) = (g.orientation.row, g.orientation.column);
                    [r[0], r[1], r[2], c[0], c[1], c[2]]
                }),
                pixel_spacing: spacing,
            });
        }
        let first = stack
            .frames
            .first()
            .map(|f| &series.instances[f.instance])
            .ok_or_else(|| ResultsError::invalid(format!("series {} has no images", series.uid)))?;
        let header = first
            .source
            .open(ReadDepth::Header)
            .map_err(|e| ResultsError::Read {
                file: first.source.to_string(),
                message: e.to_string(),
            })?
            .ok_or_else(|| ResultsError::Read {
                file: first.source.to_string(),
                message: "not a DICOM file".into(),
            })?;
        let frame_of_reference_uid = header
            .element_opt(tags::FRAME_OF_REFERENCE_UID)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .filter(|s| !s.is_empty());
        Ok(SourceSeries {
            series_uid: series.uid.clone(),
            modality: series.modality.clone(),
            frame_of_reference_uid,
            rows: stack.rows,
            columns: stack.columns,
            slice_thickness: stack.slice_thickness,
            body_part: series.body_part.clone(),
            patient_orientation: first
                .image
                .as_ref()
                .and_then(|im| im.patient_orientation.clone()),
            images,
        })
    }
}
