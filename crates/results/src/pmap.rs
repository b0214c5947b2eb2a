//! Parametric Map (float32) of a heatmap model's probabilities: one frame per source image, the
//! values in Float Pixel Data with a Real World Value Mapping to "Probability" (no units).

use dicom_core::VR;
use dicom_core::value::PrimitiveValue;
use dicom_dictionary_std::tags;
use dicom_object::{FileDicomObject, InMemDicomObject};

use crate::codes::{Code, dcm, sct};
use crate::common::{self, ResultsError};
use crate::ds::Ds;
use crate::model::{Algorithm, ObjectIdentity, SourceSeries, StudyContext, Writer};

pub const PARAMETRIC_MAP_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.30";

/// Writes the probability map `values` (source images × rows × columns, row-major, 0–1) that
/// `algorithm` made for `label`.
pub fn write_parametric_map(
    study: &StudyContext,
    source: &SourceSeries,
    algorithm: &Algorithm,
    label: &str,
    values: &[f32],
    id: &ObjectIdentity,
    writer: &Writer,
) -> Result<FileDicomObject<InMemDicomObject>, ResultsError> {
    let (rows, columns) = (source.rows as usize, source.columns as usize);
    let n = source.images.len();
    if n == 0 || values.len() != n * rows * columns {
        return Err(ResultsError::invalid(format!(
            "the {label} map holds {} values; series {} needs {n} images of {columns}×{rows}",
            values.len(),
            source.series_uid
        )));
    }
    if rows > u16::MAX as usize || columns > u16::MAX as usize {
        return Err(ResultsError::invalid(
            "image larger than 65535 pixels a side",
        ));
    }
    let geometry = source
        .images
        .iter()
        .all(|im| im.position.is_some() && im.orientation.is_some())
        && source.frame_of_reference_uid.is_some();
    if !geometry {
        // The Parametric Map IOD requires a Frame of Reference and plane position and
        // orientation per frame; inventing them for a projection image would claim patient
        // geometry that does not exist.
        return Err(ResultsError::invalid(format!(
            "series {} has no patient geometry (Frame of Reference, Image Position and \
             Orientation), which a Parametric Map requires; the {label} map is not written",
            source.series_uid
        )));
    }
    let frame_type: Vec<String> = ["DERIVED", "PRIMARY", "VOLUME", "QUANTITY"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();

    let mut ds = Ds::new();
    common::sop_common(&mut ds, PARAMETRIC_MAP_STORAGE, id);
    common::patient_study(&mut ds, study);
    common::series(&mut ds, "OT", id);
    ds.s(
        tags::BODY_PART_EXAMINED,
        VR::CS,
        if source.body_part.is_empty() {
            ""
        } else {
            &source.body_part
        },
    );
    if let Some(for_uid) = &source.frame_of_reference_uid {
        ds.s(tags::FRAME_OF_REFERENCE_UID, VR::UI, for_uid).s(
            tags::POSITION_REFERENCE_INDICATOR,
            VR::LO,
            "",
        );
    }
    common::equipment(&mut ds, writer);
    common::contributing_equipment(&mut ds, &[algorithm], writer, id);
    ds.strs(tags::IMAGE_TYPE, VR::CS, &frame_type)
        .s(tags::CONTENT_QUALIFICATION, VR::CS, "RESEARCH")
        .s(tags::CONTENT_LABEL, VR::CS, "AI_HEATMAP")
        .s(
            tags::CONTENT_DESCRIPTION,
            VR::LO,
            &format!(
                "{label} probability, {} {}",
                algorithm.id, algorithm.version
            ),
        )
        .s(tags::CONTENT_CREATOR_NAME, VR::PN, "")
        .us(tags::SAMPLES_PER_PIXEL, &[1])
        .s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2")
        .us(tags::ROWS, &[rows as u16])
        .us(tags::COLUMNS, &[columns as u16])
        .us(tags::BITS_ALLOCATED, &[32])
        .s(tags::NUMBER_OF_FRAMES, VR::IS, &n.to_string())
        .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO")
        .s(tags::RECOGNIZABLE_VISUAL_FEATURES, VR::CS, "NO")
        .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00")
        .s(tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY")
        .seq(tags::ACQUISITION_CONTEXT_SEQUENCE, vec![]);

    // Frames follow the source stack; indexed by position (or place in the stack).
    let dimension_org = crate::uid::uid_from(&format!("{}/dimensions", id.sop_instance_uid));
    let mut org = Ds::new();
    org.s(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dimension_org);
    ds.seq(tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]);
    let mut dim = Ds::new();
    if geometry {
        dim.at(tags::DIMENSION_INDEX_POINTER, tags::IMAGE_POSITION_PATIENT)
            .at(
                tags::FUNCTIONAL_GROUP_POINTER,
                tags::PLANE_POSITION_SEQUENCE,
            )
            .s(
                tags::DIMENSION_DESCRIPTION_LABEL,
                VR::LO,
                "ImagePositionPatient",
            );
        ds.s(tags::DIMENSION_ORGANIZATION_TYPE, VR::CS, "3D");
    } else {
        dim.at(
            tags::DIMENSION_INDEX_POINTER,
            tags::IN_STACK_POSITION_NUMBER,
        )
        .at(tags::FUNCTIONAL_GROUP_POINTER, tags::FRAME_CONTENT_SEQUENCE)
        .s(
            tags::DIMENSION_DESCRIPTION_LABEL,
            VR::LO,
            "InStackPositionNumber",
        );
    }
    dim.s(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dimension_org);
    ds.seq(tags::DIMENSION_INDEX_SEQUENCE, vec![dim]);

    // Shared functional groups.
    let first = &source.images[0];
    let mut shared = Ds::new();
    if let Some(o) = first.orientation.filter(|_| geometry) {
        let mut po = Ds::new();
        po.ds(tags::IMAGE_ORIENTATION_PATIENT, &o);
        shared.seq(tags::PLANE_ORIENTATION_SEQUENCE, vec![po]);
    }
    let mut measures = Ds::new();
    measures
        .ds(
            tags::PIXEL_SPACING,
            first.pixel_spacing.map_or([1.0, 1.0], |p| p).as_ref(),
        )
        .ds(
            tags::SLICE_THICKNESS,
            &[source.slice_thickness.filter(|t| *t > 0.0).unwrap_or(1.0)],
        );
    shared.seq(tags::PIXEL_MEASURES_SEQUENCE, vec![measures]);
    let mut identity = Ds::new();
    identity
        .ds(tags::RESCALE_INTERCEPT, &[0.0])
        .ds(tags::RESCALE_SLOPE, &[1.0])
        .s(tags::RESCALE_TYPE, VR::LO, "US");
    shared.seq(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, vec![identity]);
    let mut voi = Ds::new();
    voi.ds(tags::WINDOW_CENTER, &[0.5])
        .ds(tags::WINDOW_WIDTH, &[1.0])
        .s(tags::WINDOW_CENTER_WIDTH_EXPLANATION, VR::LO, "PROBABILITY");
    shared.seq(tags::FRAME_VOILUT_SEQUENCE, vec![voi]);
    let mut ft = Ds::new();
    ft.strs(tags::FRAME_TYPE, VR::CS, &frame_type);
    shared.seq(tags::PARAMETRIC_MAP_FRAME_TYPE_SEQUENCE, vec![ft]);
    let mut quantity = Ds::new();
    quantity
        .s(tags::VALUE_TYPE, VR::CS, "CODE")
        .code(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            &sct("246205007", "Quantity"),
        )
        .code(tags::CONCEPT_CODE_SEQUENCE, &dcm("122157", "Probability"));
    let mut rwvm = Ds::new();
    rwvm.s(
        tags::LUT_EXPLANATION,
        VR::LO,
        &format!("{label} probability"),
    )
    .code(
        tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
        &Code::new("1", "UCUM", "no units"),
    )
    .s(tags::LUT_LABEL, VR::SH, "AI_PROB")
    .fd(
        tags::DOUBLE_FLOAT_REAL_WORLD_VALUE_LAST_VALUE_MAPPED,
        &[1.0],
    )
    .fd(
        tags::DOUBLE_FLOAT_REAL_WORLD_VALUE_FIRST_VALUE_MAPPED,
        &[0.0],
    )
    .seq(tags::QUANTITY_DEFINITION_SEQUENCE, vec![quantity])
    .fd(tags::REAL_WORLD_VALUE_INTERCEPT, &[0.0])
    .fd(tags::REAL_WORLD_VALUE_SLOPE, &[1.0]);
    shared.seq(tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE, vec![rwvm]);
    ds.seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]);

    let mut per_frame = Vec::with_capacity(n);
    for (i, im) in source.images.iter().enumerate() {
        let src = common::source_image_item(im);
        let mut derivation = Ds::new();
        derivation.seq(tags::SOURCE_IMAGE_SEQUENCE, vec![src]).code(
            tags::DERIVATION_CODE_SEQUENCE,
            &dcm("112187", "Unspecified method of calculation"),
        );
        let mut item = Ds::new();
        item.seq(tags::DERIVATION_IMAGE_SEQUENCE, vec![derivation]);
        let mut content = Ds::new();
        content.ul(tags::DIMENSION_INDEX_VALUES, &[i as u32 + 1]);
        if !geometry {
            content
                .s(tags::STACK_ID, VR::SH, "1")
                .ul(tags::IN_STACK_POSITION_NUMBER, &[i as u32 + 1]);
        }
        item.seq(tags::FRAME_CONTENT_SEQUENCE, vec![content]);
        if let Some(p) = im.position.filter(|_| geometry) {
            let mut pos = Ds::new();
            pos.ds(tags::IMAGE_POSITION_PATIENT, &p);
            item.seq(tags::PLANE_POSITION_SEQUENCE, vec![pos]);
        }
        per_frame.push(item);
    }
    ds.seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame);
    let all: Vec<usize> = (0..n).collect();
    common::referenced_series(&mut ds, source, &all);
    ds.put(
        tags::FLOAT_PIXEL_DATA,
        VR::OF,
        PrimitiveValue::F32(values.iter().copied().collect()),
    );
    common::into_file(ds, PARAMETRIC_MAP_STORAGE, &id.sop_instance_uid)
}
