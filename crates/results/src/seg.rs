//! DICOM Segmentation (BINARY): one segment per finding, one frame per segment and source image
//! the finding touches (empty frames are left out), bit-packed across frames as PS3.5 8.1.1
//! asks (a frame need not start on a byte when its pixel count is not a multiple of 8).

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::{FileDicomObject, InMemDicomObject};

use crate::codes;
use crate::common::{self, ResultsError};
use crate::ds::{Ds, code_item};
use crate::model::{ObjectIdentity, ResultFinding, SourceSeries, StudyContext, Writer};

pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// A written SEG, and which segment number each finding got (`None` for a finding without a
/// mask, e.g. a whole-image classification: it appears only in the SR).
#[derive(Debug)]
pub struct WrittenSeg {
    pub object: FileDicomObject<InMemDicomObject>,
    pub segment_numbers: Vec<Option<u16>>,
    pub frames: usize,
}

/// A frame to write: segment number, index of the source image, the mask's runs on it.
type Frame<'a> = (u16, usize, &'a [(u32, u32)]);

/// Writes the SEG of `findings` over `source`. Fails when a finding has no segment to give
/// (no finding has a mask) or when a mask does not fit the source.
pub fn write_seg(
    study: &StudyContext,
    source: &SourceSeries,
    findings: &[ResultFinding],
    id: &ObjectIdentity,
    writer: &Writer,
) -> Result<WrittenSeg, ResultsError> {
    let rows = source.rows as usize;
    let columns = source.columns as usize;
    let pixels = rows * columns;
    if source.images.is_empty() || pixels == 0 {
        return Err(ResultsError::invalid(format!(
            "series {} has no images to segment",
            source.series_uid
        )));
    }
    if rows > u16::MAX as usize || columns > u16::MAX as usize {
        return Err(ResultsError::invalid(
            "image larger than 65535 pixels a side",
        ));
    }

    // Segment numbers and frames: (segment, image index, runs), by segment then image.
    let mut segment_numbers = Vec::with_capacity(findings.len());
    let mut frames: Vec<Frame<'_>> = Vec::new();
    let mut next: u16 = 1;
    for f in findings {
        let mut slices: Vec<_> = f
            .mask
            .iter()
            .filter(|m| m.runs.iter().any(|r| r.1 > 0))
            .collect();
        if slices.is_empty() {
            segment_numbers.push(None);
            continue;
        }
        slices.sort_by_key(|m| m.slice);
        for m in slices {
            let i = m.slice as usize;
            if i >= source.images.len() {
                return Err(ResultsError::invalid(format!(
                    "finding {} has a mask on slice {} but the series has {} images",
                    f.tracking_id,
                    i + 1,
                    source.images.len()
                )));
            }
            for &(start, len) in &m.runs {
                if start as usize + len as usize > pixels {
                    return Err(ResultsError::invalid(format!(
                        "finding {}: a mask run on slice {} ends past the image's {pixels} pixels",
                        f.tracking_id,
                        i + 1
                    )));
                }
            }
            frames.push((next, i, &m.runs));
        }
        segment_numbers.push(Some(next));
        next = next
            .checked_add(1)
            .ok_or_else(|| ResultsError::invalid("more than 65535 segments"))?;
    }
    if frames.is_empty() {
        return Err(ResultsError::invalid(
            "no finding has a region to segment (masks are empty)",
        ));
    }

    let mut ds = Ds::new();
    common::sop_common(&mut ds, SEGMENTATION_STORAGE, id);
    common::patient_study(&mut ds, study);
    common::series(&mut ds, "SEG", id);
    if let Some(for_uid) = &source.frame_of_reference_uid {
        ds.s(tags::FRAME_OF_REFERENCE_UID, VR::UI, for_uid).s(
            tags::POSITION_REFERENCE_INDICATOR,
            VR::LO,
            "",
        );
    }
    common::equipment(&mut ds, writer);
    let algorithms: Vec<_> = findings
        .iter()
        .filter_map(|f| f.origin.algorithm())
        .collect();
    common::contributing_equipment(&mut ds, &algorithms, writer, id);

    // Images without patient geometry say how they face the patient (General Image, type 2C).
    if !(source.images.iter().all(|im| im.position.is_some())
        && source.frame_of_reference_uid.is_some())
    {
        let o = source.patient_orientation.clone().unwrap_or_default();
        if o.iter().all(|x| !x.is_empty()) {
            ds.strs(tags::PATIENT_ORIENTATION, VR::CS, &o);
        } else {
            ds.s(tags::PATIENT_ORIENTATION, VR::CS, "");
        }
    }

    // Segmentation Image Module.
    ds.strs(
        tags::IMAGE_TYPE,
        VR::CS,
        &["DERIVED".into(), "PRIMARY".into()],
    )
    .s(tags::CONTENT_LABEL, VR::CS, "DOKUEI_AI")
    .s(tags::CONTENT_DESCRIPTION, VR::LO, &id.series_description)
    .s(tags::CONTENT_CREATOR_NAME, VR::PN, "")
    .s(tags::SEGMENTATION_TYPE, VR::CS, "BINARY")
    .us(tags::SAMPLES_PER_PIXEL, &[1])
    .s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2")
    .us(tags::ROWS, &[rows as u16])
    .us(tags::COLUMNS, &[columns as u16])
    .us(tags::BITS_ALLOCATED, &[1])
    .us(tags::BITS_STORED, &[1])
    .us(tags::HIGH_BIT, &[0])
    .us(tags::PIXEL_REPRESENTATION, &[0])
    .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00")
    .s(tags::NUMBER_OF_FRAMES, VR::IS, &frames.len().to_string());

    let mut segments = Vec::new();
    for (f, n) in findings.iter().zip(&segment_numbers) {
        if let Some(n) = n {
            segments.push(segment_item(f, *n));
        }
    }
    ds.seq(tags::SEGMENT_SEQUENCE, segments);

    // Multi-frame Dimension Module: frames are indexed by segment, then by position (or, for
    // images without patient geometry, by their place in the stack).
    let geometry = source.images.iter().all(|im| im.position.is_some())
        && source.frame_of_reference_uid.is_some();
    let dimension_org = crate::uid::uid_from(&format!("{}/dimensions", id.sop_instance_uid));
    let mut org = Ds::new();
    org.s(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dimension_org);
    ds.seq(tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]).s(
        tags::DIMENSION_ORGANIZATION_TYPE,
        VR::CS,
        "3D",
    );
    let mut dim_segment = Ds::new();
    dim_segment
        .at(
            tags::DIMENSION_INDEX_POINTER,
            tags::REFERENCED_SEGMENT_NUMBER,
        )
        .at(
            tags::FUNCTIONAL_GROUP_POINTER,
            tags::SEGMENT_IDENTIFICATION_SEQUENCE,
        )
        .s(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dimension_org)
        .s(
            tags::DIMENSION_DESCRIPTION_LABEL,
            VR::LO,
            "ReferencedSegmentNumber",
        );
    let mut dim_position = Ds::new();
    if geometry {
        dim_position
            .at(tags::DIMENSION_INDEX_POINTER, tags::IMAGE_POSITION_PATIENT)
            .at(
                tags::FUNCTIONAL_GROUP_POINTER,
                tags::PLANE_POSITION_SEQUENCE,
            )
            .s(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dimension_org)
            .s(
                tags::DIMENSION_DESCRIPTION_LABEL,
                VR::LO,
                "ImagePositionPatient",
            );
    } else {
        dim_position
            .at(
                tags::DIMENSION_INDEX_POINTER,
                tags::IN_STACK_POSITION_NUMBER,
            )
            .at(tags::FUNCTIONAL_GROUP_POINTER, tags::FRAME_CONTENT_SEQUENCE)
            .s(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dimension_org)
            .s(
                tags::DIMENSION_DESCRIPTION_LABEL,
                VR::LO,
                "InStackPositionNumber",
            );
    }
    ds.seq(
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![dim_segment, dim_position],
    );

    // Shared functional groups: spacing and orientation of the source stack.
    let first = &source.images[0];
    let mut shared = Ds::new();
    let mut measures = Ds::new();
    measures.ds(
        tags::PIXEL_SPACING,
        first.pixel_spacing.map_or([1.0, 1.0], |p| p).as_ref(),
    );
    if let Some(t) = source.slice_thickness.filter(|t| *t > 0.0) {
        measures.ds(tags::SLICE_THICKNESS, &[t]);
    } else {
        measures.ds(tags::SLICE_THICKNESS, &[1.0]);
    }
    shared.seq(tags::PIXEL_MEASURES_SEQUENCE, vec![measures]);
    let shared_orientation = geometry
        && source
            .images
            .iter()
            .all(|im| im.orientation == first.orientation);
    if shared_orientation && let Some(o) = first.orientation {
        let mut po = Ds::new();
        po.ds(tags::IMAGE_ORIENTATION_PATIENT, &o);
        shared.seq(tags::PLANE_ORIENTATION_SEQUENCE, vec![po]);
    }
    ds.seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]);

    let mut per_frame = Vec::with_capacity(frames.len());
    for &(segment, i, _) in &frames {
        let im = &source.images[i];
        let mut item = Ds::new();
        let src = common::source_image_item(im);
        let mut derivation = Ds::new();
        derivation
            .code(
                tags::DERIVATION_CODE_SEQUENCE,
                &codes::segmentation_derivation(),
            )
            .seq(tags::SOURCE_IMAGE_SEQUENCE, vec![src]);
        item.seq(tags::DERIVATION_IMAGE_SEQUENCE, vec![derivation]);
        let mut content = Ds::new();
        content.ul(
            tags::DIMENSION_INDEX_VALUES,
            &[u32::from(segment), i as u32 + 1],
        );
        if !geometry {
            content.ul(tags::IN_STACK_POSITION_NUMBER, &[i as u32 + 1]);
            content.s(tags::STACK_ID, VR::SH, "1");
        }
        item.seq(tags::FRAME_CONTENT_SEQUENCE, vec![content]);
        if geometry && let Some(p) = im.position {
            let mut pos = Ds::new();
            pos.ds(tags::IMAGE_POSITION_PATIENT, &p);
            item.seq(tags::PLANE_POSITION_SEQUENCE, vec![pos]);
            if !shared_orientation && let Some(o) = im.orientation {
                let mut po = Ds::new();
                po.ds(tags::IMAGE_ORIENTATION_PATIENT, &o);
                item.seq(tags::PLANE_ORIENTATION_SEQUENCE, vec![po]);
            }
        }
        let mut seg_id = Ds::new();
        seg_id.us(tags::REFERENCED_SEGMENT_NUMBER, &[segment]);
        item.seq(tags::SEGMENT_IDENTIFICATION_SEQUENCE, vec![seg_id]);
        per_frame.push(item);
    }
    ds.seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame);

    // Common Instance Reference: every source image a frame derives from.
    let mut referenced: Vec<usize> = frames.iter().map(|f| f.1).collect();
    referenced.sort_unstable();
    referenced.dedup();
    common::referenced_series(&mut ds, source, &referenced);

    let pixel_data = pack_frames(frames.iter().map(|f| f.2), pixels);
    ds.bytes(tags::PIXEL_DATA, VR::OB, pixel_data);
    let object = common::into_file(ds, SEGMENTATION_STORAGE, &id.sop_instance_uid)?;
    Ok(WrittenSeg {
        object,
        segment_numbers,
        frames: frames.len(),
    })
}

fn segment_item(f: &ResultFinding, number: u16) -> Ds {
    let mut d = Ds::new();
    d.us(tags::SEGMENT_NUMBER, &[number])
        .s(tags::SEGMENT_LABEL, VR::LO, &f.coding.label)
        .s(tags::SEGMENT_DESCRIPTION, VR::ST, &f.tracking_id)
        .s(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, f.origin.keyword());
    if let Some(a) = f.origin.algorithm() {
        d.s(tags::SEGMENT_ALGORITHM_NAME, VR::LO, &a.name);
        let mut ident = Ds::new();
        ident
            .code(
                tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
                &codes::algorithm_family_ai(),
            )
            .s(tags::ALGORITHM_NAME, VR::LO, &a.name)
            .s(tags::ALGORITHM_VERSION, VR::LO, &a.version)
            .s(tags::ALGORITHM_SOURCE, VR::LO, &a.sha256);
        d.seq(
            tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
            vec![ident],
        );
    }
    d.code(
        tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
        &f.coding.category,
    );
    d.code(
        tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
        &f.coding.finding,
    );
    if let Some(site) = &f.coding.site {
        d.seq(tags::ANATOMIC_REGION_SEQUENCE, vec![code_item(site)]);
    }
    d.us(
        tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
        &cielab(f.coding.rgb),
    )
    .s(tags::TRACKING_ID, VR::UT, &f.tracking_id)
    .s(tags::TRACKING_UID, VR::UI, &f.tracking_uid);
    d
}

/// Bit-packs binary frames back to back, least significant bit first (PS3.5 8.1.1); each frame
/// is `pixels` bits given as runs. The result is padded to an even length.
pub fn pack_frames<'a>(frames: impl Iterator<Item = &'a [(u32, u32)]>, pixels: usize) -> Vec<u8> {
    let frames: Vec<&[(u32, u32)]> = frames.collect();
    let bits = frames.len() * pixels;
    let mut out = vec![0u8; bits.div_ceil(8).next_multiple_of(2)];
    for (k, runs) in frames.iter().enumerate() {
        let base = k * pixels;
        for &(start, len) in runs.iter() {
            set_bits(&mut out, base + start as usize, len as usize);
        }
    }
    out
}

fn set_bits(out: &mut [u8], mut at: usize, mut len: usize) {
    while len > 0 && !at.is_multiple_of(8) {
        out[at / 8] |= 1 << (at % 8);
        at += 1;
        len -= 1;
    }
    let whole = len / 8;
    out[at / 8..at / 8 + whole].fill(0xff);
    at += whole * 8;
    len -= whole * 8;
    while len > 0 {
        out[at / 8] |= 1 << (at % 8);
        at += 1;
        len -= 1;
    }
}

/// sRGB to DICOM's scaled CIELab (PS3.3 C.10.7.1.1: L* 0–100 and a*, b* −128–127 mapped onto
/// 0–65535), D65 white.
pub fn cielab(rgb: [u8; 3]) -> [u16; 3] {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (lin(rgb[0]), lin(rgb[1]), lin(rgb[2]));
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175_0 * b;
    let z = (0.019_333_9 * r + 0.119_192_0 * g + 0.950_304_1 * b) / 1.088_83;
    let f = |t: f64| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    let l = 116.0 * fy - 16.0;
    let a = 500.0 * (fx - fy);
    let bb = 200.0 * (fy - fz);
    let scale = |v: f64, lo: f64, hi: f64| {
        (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 65535.0).round() as u16
    };
    [
        scale(l, 0.0, 100.0),
        scale(a, -128.0, 127.0),
        scale(bb, -128.0, 127.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_pack_across_byte_boundaries() {
        // 3×3 frames (9 bits): the second frame starts at bit 9.
        let a: &[(u32, u32)] = &[(0, 1), (8, 1)];
        let b: &[(u32, u32)] = &[(0, 9)];
        let packed = pack_frames([a, b].into_iter(), 9);
        assert_eq!(packed.len(), 4); // 18 bits → 3 bytes → padded to 4
        assert_eq!(packed[0], 0b0000_0001);
        assert_eq!(packed[1], 0xff); // bit 8 (frame a), bits 9–15 (frame b)
        assert_eq!(packed[2], 0b0000_0011);
        assert_eq!(packed[3], 0);
    }

    #[test]
    fn white_and_black_in_cielab() {
        assert_eq!(cielab([0, 0, 0]), [0, 32896, 32896]);
        let w = cielab([255, 255, 255]);
        assert_eq!(w[0], 65535);
        assert!((i32::from(w[1]) - 32896).abs() < 10 && (i32::from(w[2]) - 32896).abs() < 10);
    }
}
