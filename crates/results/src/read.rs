//! Reading results other tools wrote (and Dokuei's own): SEG (BINARY, FRACTIONAL, LABELMAP)
//! into per-segment masks on the source images, and SR TID 1500 into measurement groups. Then
//! placing a SEG on a source series: by the source references each frame carries, else by
//! position in the same Frame of Reference; what cannot be placed is a problem, never guessed.

use std::collections::HashMap;
use std::path::Path;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dokuei_dicom::source::{ReadDepth, Source};
use serde::{Deserialize, Serialize};

use crate::codes::Code;
use crate::common::ResultsError;
use crate::model::{MaskSlice, SourceSeries};
use crate::seg::SEGMENTATION_STORAGE;

/// Who made an imported result: the SEG's algorithm identification and Contributing Equipment,
/// or the SR's device observer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Producer {
    pub algorithm_name: String,
    pub algorithm_version: String,
    pub manufacturer: String,
    pub model_name: String,
    pub device_uid: String,
}

/// One segment of an imported SEG, its mask as runs per source image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedSegment {
    pub number: u16,
    pub label: String,
    pub category: Option<Code>,
    pub property_type: Option<Code>,
    pub site: Option<Code>,
    /// sRGB from Recommended Display CIELab Value, when given.
    pub rgb: Option<[u8; 3]>,
    pub tracking_id: String,
    pub tracking_uid: String,
    pub algorithm_type: String,
    pub producer: Producer,
    /// Frames of this segment: (source SOP Instance UID, source frame, image position, runs).
    pub frames: Vec<SegFrame>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegFrame {
    pub source_sop_instance_uid: Option<String>,
    pub source_frame: Option<u32>,
    pub position: Option<[f64; 3]>,
    pub runs: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedSeg {
    pub file: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_uid: String,
    pub study_uid: String,
    pub frame_of_reference_uid: Option<String>,
    /// The source series the SEG names (Referenced Series Sequence).
    pub referenced_series_uid: Option<String>,
    /// BINARY, FRACTIONAL or LABELMAP.
    pub segmentation_type: String,
    pub rows: u32,
    pub columns: u32,
    pub segments: Vec<ImportedSegment>,
    /// What was read with a caveat (e.g. fractional values thresholded at half).
    pub notes: Vec<String>,
}

fn s(o: &InMemDicomObject, tag: Tag) -> Option<String> {
    let v = o.element_opt(tag).ok()??.to_str().ok()?;
    let v = v.trim_end_matches(['\0', ' ']).trim_start().to_owned();
    (!v.is_empty()).then_some(v)
}

fn items(o: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    o.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .unwrap_or(&[])
}

fn first(o: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    items(o, tag).first()
}

fn code_of(item: &InMemDicomObject) -> Option<Code> {
    Some(Code {
        value: s(item, tags::CODE_VALUE)
            .or_else(|| s(item, tags::LONG_CODE_VALUE))
            .or_else(|| s(item, tags::URN_CODE_VALUE))?,
        scheme: s(item, tags::CODING_SCHEME_DESIGNATOR).unwrap_or_default(),
        meaning: s(item, tags::CODE_MEANING).unwrap_or_default(),
    })
}

fn code_in(o: &InMemDicomObject, tag: Tag) -> Option<Code> {
    first(o, tag).and_then(code_of)
}

fn floats(o: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    o.element_opt(tag).ok()??.to_multi_float64().ok()
}

fn uint(o: &InMemDicomObject, tag: Tag) -> Option<u32> {
    o.element_opt(tag).ok()??.to_int::<u32>().ok()
}

fn open(path: &Path) -> Result<InMemDicomObject, ResultsError> {
    let err = |m: String| ResultsError::Read {
        file: path.display().to_string(),
        message: m,
    };
    let obj = Source::File {
        path: path.to_path_buf(),
    }
    .open(ReadDepth::Full)
    .map_err(|e| err(e.to_string()))?
    .ok_or_else(|| err("not a DICOM file".into()))?;
    Ok(obj.into_inner())
}

/// The sRGB of a scaled CIELab triple (the inverse of [`crate::seg::cielab`]).
pub fn rgb_from_cielab(lab: [u16; 3]) -> [u8; 3] {
    let l = f64::from(lab[0]) / 65535.0 * 100.0;
    let a = f64::from(lab[1]) / 65535.0 * 255.0 - 128.0;
    let b = f64::from(lab[2]) / 65535.0 * 255.0 - 128.0;
    let fy = (l + 16.0) / 116.0;
    let (fx, fz) = (fy + a / 500.0, fy - b / 200.0);
    let inv = |t: f64| {
        if t.powi(3) > 216.0 / 24389.0 {
            t.powi(3)
        } else {
            (116.0 * t - 16.0) / (24389.0 / 27.0)
        }
    };
    let (x, y, z) = (inv(fx) * 0.950_47, inv(fy), inv(fz) * 1.088_83);
    let r = 3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z;
    let g = -0.969_266_0 * x + 1.876_010_8 * y + 0.041_556_0 * z;
    let bb = 0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z;
    let gamma = |c: f64| {
        let c = c.clamp(0.0, 1.0);
        let v = if c <= 0.003_130_8 {
            12.92 * c
        } else {
            1.055 * c.powf(1.0 / 2.4) - 0.055
        };
        (v * 255.0).round() as u8
    };
    [gamma(r), gamma(g), gamma(bb)]
}

fn runs_of(values: impl Iterator<Item = bool>) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for (i, on) in values.enumerate() {
        if !on {
            continue;
        }
        let i = i as u32;
        match runs.last_mut() {
            Some((s, l)) if *s + *l == i => *l += 1,
            _ => runs.push((i, 1)),
        }
    }
    runs
}

fn push_range(runs: &mut Vec<(u32, u32)>, at: usize, len: usize) {
    let (at, len) = (at as u32, len as u32);
    match runs.last_mut() {
        Some((s, l)) if *s + *l == at => *l += len,
        _ => runs.push((at, len)),
    }
}

/// Runs of set bits among `n` bits from bit `start` of `bytes` (least significant bit first):
/// whole zero words and bytes are skipped, whole set bytes taken at once, so a sparse mask
/// costs little more than reading its bytes.
fn runs_of_bits(bytes: &[u8], start: usize, n: usize) -> Vec<(u32, u32)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < n {
        let b = start + i;
        if b.is_multiple_of(8) {
            let at = b / 8;
            if i + 64 <= n && bytes[at..at + 8].iter().all(|&x| x == 0) {
                i += 64;
                continue;
            }
            if i + 8 <= n {
                match bytes[at] {
                    0 => {
                        i += 8;
                        continue;
                    }
                    0xff => {
                        push_range(&mut runs, i, 8);
                        i += 8;
                        continue;
                    }
                    _ => {}
                }
            }
        }
        if bytes[b / 8] >> (b % 8) & 1 == 1 {
            push_range(&mut runs, i, 1);
        }
        i += 1;
    }
    runs
}

/// Label Map Segmentation Storage (the LABELMAP segmentation type).
pub const LABEL_MAP_SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.7";

/// Reads a Segmentation object.
pub fn read_seg(path: &Path) -> Result<ImportedSeg, ResultsError> {
    let o = open(path)?;
    let file = path.display().to_string();
    let fail = |m: String| ResultsError::Read {
        file: file.clone(),
        message: m,
    };
    let class = s(&o, tags::SOP_CLASS_UID).unwrap_or_default();
    if class != SEGMENTATION_STORAGE && class != LABEL_MAP_SEGMENTATION_STORAGE {
        return Err(fail("not a Segmentation object".into()));
    }
    let rows = uint(&o, tags::ROWS).ok_or_else(|| fail("no Rows".into()))?;
    let columns = uint(&o, tags::COLUMNS).ok_or_else(|| fail("no Columns".into()))?;
    let n_frames = s(&o, tags::NUMBER_OF_FRAMES)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1);
    let bits = uint(&o, tags::BITS_ALLOCATED).unwrap_or(1);
    let seg_type = s(&o, tags::SEGMENTATION_TYPE).unwrap_or_else(|| "BINARY".into());
    let pixels = rows as usize * columns as usize;
    let mut notes = Vec::new();

    // Producer: Contributing Equipment (first item), overridden per segment by its algorithm
    // identification.
    let equipment = first(&o, tags::CONTRIBUTING_EQUIPMENT_SEQUENCE);
    let base = Producer {
        manufacturer: equipment
            .and_then(|e| s(e, tags::MANUFACTURER))
            .or_else(|| s(&o, tags::MANUFACTURER))
            .unwrap_or_default(),
        model_name: equipment
            .and_then(|e| s(e, tags::MANUFACTURER_MODEL_NAME))
            .or_else(|| s(&o, tags::MANUFACTURER_MODEL_NAME))
            .unwrap_or_default(),
        device_uid: equipment
            .and_then(|e| s(e, tags::DEVICE_UID))
            .or_else(|| s(&o, tags::DEVICE_UID))
            .unwrap_or_default(),
        ..Producer::default()
    };
    let mut segments: Vec<ImportedSegment> = items(&o, tags::SEGMENT_SEQUENCE)
        .iter()
        .filter_map(|it| {
            let number = uint(it, tags::SEGMENT_NUMBER)? as u16;
            // A label map's segment 0 is its background, not a finding.
            if number == 0 {
                return None;
            }
            let ident = first(it, tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE);
            let lab = floats(it, tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE)
                .filter(|v| v.len() == 3)
                .map(|v| rgb_from_cielab([v[0] as u16, v[1] as u16, v[2] as u16]));
            Some(ImportedSegment {
                number,
                label: s(it, tags::SEGMENT_LABEL).unwrap_or_else(|| format!("segment {number}")),
                category: code_in(it, tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE),
                property_type: code_in(it, tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE),
                site: code_in(it, tags::ANATOMIC_REGION_SEQUENCE),
                rgb: lab,
                tracking_id: s(it, tags::TRACKING_ID).unwrap_or_default(),
                tracking_uid: s(it, tags::TRACKING_UID).unwrap_or_default(),
                algorithm_type: s(it, tags::SEGMENT_ALGORITHM_TYPE).unwrap_or_default(),
                producer: Producer {
                    algorithm_name: ident
                        .and_then(|i| s(i, tags::ALGORITHM_NAME))
                        .or_else(|| s(it, tags::SEGMENT_ALGORITHM_NAME))
                        .unwrap_or_default(),
                    algorithm_version: ident
                        .and_then(|i| s(i, tags::ALGORITHM_VERSION))
                        .unwrap_or_default(),
                    ..base.clone()
                },
                frames: Vec::new(),
            })
        })
        .collect();
    if segments.is_empty() {
        return Err(fail("the SEG describes no segments".into()));
    }

    // Frame data.
    let data = o
        .element_opt(tags::PIXEL_DATA)
        .ok()
        .flatten()
        .ok_or_else(|| fail("no Pixel Data".into()))?;
    if data.fragments().is_some() {
        return Err(fail(
            "the SEG's pixel data is compressed; Dokuei reads uncompressed SEG pixel data only"
                .into(),
        ));
    }
    let bytes = data.to_bytes().map_err(|e| fail(e.to_string()))?;
    let frame_bits = pixels * bits as usize;
    if bytes.len() * 8 < frame_bits * n_frames {
        return Err(fail(format!(
            "Pixel Data holds {} bytes, {n_frames} frames of {rows}×{columns} at {bits} bits need {}",
            bytes.len(),
            (frame_bits * n_frames).div_ceil(8)
        )));
    }
    let max_fraction = uint(&o, tags::MAXIMUM_FRACTIONAL_VALUE)
        .unwrap_or(255)
        .max(1);
    if seg_type == "FRACTIONAL" {
        notes.push(format!(
            "fractional segmentation: voxels of at least half the maximum ({max_fraction}) are \
             taken as inside"
        ));
    }
    let shared = first(&o, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame = items(&o, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    let by_number: HashMap<u16, usize> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.number, i))
        .collect();
    for k in 0..n_frames {
        let fg = per_frame.get(k);
        let lookup = |seq: Tag| {
            fg.and_then(|f| first(f, seq))
                .or_else(|| shared.and_then(|f| first(f, seq)))
        };
        let source = lookup(tags::DERIVATION_IMAGE_SEQUENCE)
            .and_then(|d| first(d, tags::SOURCE_IMAGE_SEQUENCE));
        let source_uid = source.and_then(|x| s(x, tags::REFERENCED_SOP_INSTANCE_UID));
        let source_frame = source.and_then(|x| uint(x, tags::REFERENCED_FRAME_NUMBER));
        let position = lookup(tags::PLANE_POSITION_SEQUENCE)
            .and_then(|p| floats(p, tags::IMAGE_POSITION_PATIENT))
            .filter(|v| v.len() == 3)
            .map(|v| [v[0], v[1], v[2]]);
        let start = k * frame_bits;
        let value = |i: usize| -> u32 {
            match bits {
                1 => {
                    let b = start + i;
                    u32::from(bytes[b / 8] >> (b % 8) & 1)
                }
                8 => u32::from(bytes[start / 8 + i]),
                _ => {
                    let at = start / 8 + i * 2;
                    u32::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
                }
            }
        };
        let frame = |runs| SegFrame {
            source_sop_instance_uid: source_uid.clone(),
            source_frame,
            position,
            runs,
        };
        if seg_type == "LABELMAP" {
            // Each pixel's value is its segment number (0 = background).
            let mut per: HashMap<u16, Vec<bool>> = HashMap::new();
            for i in 0..pixels {
                let v = value(i) as u16;
                if v != 0 {
                    per.entry(v).or_insert_with(|| vec![false; pixels])[i] = true;
                }
            }
            for (v, mask) in per {
                let idx = match by_number.get(&v) {
                    Some(&i) => i,
                    None => {
                        notes.push(format!("label value {v} has no segment description"));
                        continue;
                    }
                };
                segments[idx].frames.push(frame(runs_of(mask.into_iter())));
            }
            continue;
        }
        let number = lookup(tags::SEGMENT_IDENTIFICATION_SEQUENCE)
            .and_then(|x| uint(x, tags::REFERENCED_SEGMENT_NUMBER))
            .ok_or_else(|| fail(format!("frame {} names no segment", k + 1)))?
            as u16;
        let Some(&idx) = by_number.get(&number) else {
            return Err(fail(format!(
                "frame {} belongs to segment {number}, which the SEG does not describe",
                k + 1
            )));
        };
        let threshold = if seg_type == "FRACTIONAL" {
            max_fraction.div_ceil(2)
        } else {
            1
        };
        let runs = if bits == 1 {
            runs_of_bits(&bytes, start, pixels)
        } else {
            runs_of((0..pixels).map(|i| value(i) >= threshold))
        };
        if !runs.is_empty() {
            segments[idx].frames.push(frame(runs));
        }
    }
    Ok(ImportedSeg {
        file,
        sop_class_uid: class,
        sop_instance_uid: s(&o, tags::SOP_INSTANCE_UID).unwrap_or_default(),
        series_uid: s(&o, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        study_uid: s(&o, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        frame_of_reference_uid: s(&o, tags::FRAME_OF_REFERENCE_UID),
        referenced_series_uid: first(&o, tags::REFERENCED_SERIES_SEQUENCE)
            .and_then(|r| s(r, tags::SERIES_INSTANCE_UID)),
        segmentation_type: seg_type,
        rows,
        columns,
        segments,
        notes,
    })
}

/// A segment placed on the source stack.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_runs_match_a_plain_scan_at_any_offset() {
        let bytes: Vec<u8> = (0..64u32)
            .map(|i| match i % 7 {
                0 | 1 => 0,
                2 => 0xff,
                _ => (i.wrapping_mul(37) % 256) as u8,
            })
            .collect();
        for start in [0, 3, 8, 13, 64] {
            for n in [1, 7, 9, 100, 300] {
                let plain = runs_of((0..n).map(|i| {
                    let b = start + i;
                    bytes[b / 8] >> (b % 8) & 1 == 1
                }));
                assert_eq!(
                    runs_of_bits(&bytes, start, n),
                    plain,
                    "start {start}, n {n}"
                );
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacedSegment {
    pub number: u16,
    pub mask: Vec<MaskSlice>,
}

/// Places `seg`'s segments on `source`'s images: each frame by the source instance (and
/// frame) it names, else by its position (same Frame of Reference, within a tenth of the slice
/// spacing). Fails, naming the SEG and the reason, when frames cannot be placed: another Frame
/// of Reference, another image size, referenced instances missing from the series, frames off
/// the series' planes.
pub fn place(seg: &ImportedSeg, source: &SourceSeries) -> Result<Vec<PlacedSegment>, ResultsError> {
    let fail = |m: String| ResultsError::Read {
        file: seg.file.clone(),
        message: m,
    };
    if (seg.rows, seg.columns) != (source.rows, source.columns) {
        return Err(fail(format!(
            "its frames are {}×{} but series {} has {}×{} images",
            seg.columns, seg.rows, source.series_uid, source.columns, source.rows
        )));
    }
    if let (Some(a), Some(b)) = (&seg.frame_of_reference_uid, &source.frame_of_reference_uid)
        && a != b
    {
        return Err(fail(format!(
            "its Frame of Reference ({a}) is not series {}'s ({b})",
            source.series_uid
        )));
    }
    let by_uid: HashMap<(&str, Option<u32>), usize> = source
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| ((im.sop_instance_uid.as_str(), im.frame), i))
        .collect();
    let spacing = crate::model::slice_spacing(source);
    let mut out = Vec::new();
    for segment in &seg.segments {
        let mut mask: Vec<MaskSlice> = Vec::new();
        for (k, f) in segment.frames.iter().enumerate() {
            let by_ref = f.source_sop_instance_uid.as_deref().and_then(|u| {
                by_uid
                    .get(&(u, f.source_frame))
                    .or_else(|| by_uid.get(&(u, None)))
                    .copied()
            });
            let slice = match (by_ref, f.position) {
                (Some(i), _) => i,
                (None, Some(p)) => nearest(source, p, spacing).ok_or_else(|| {
                    fail(format!(
                        "frame {} of segment {} lies at ({:.1}, {:.1}, {:.1}) mm, on none of \
                         series {}'s planes",
                        k + 1,
                        segment.number,
                        p[0],
                        p[1],
                        p[2],
                        source.series_uid
                    ))
                })?,
                (None, None) => {
                    return Err(fail(format!(
                        "frame {} of segment {} refers to instance {} which is not in series {}",
                        k + 1,
                        segment.number,
                        f.source_sop_instance_uid.as_deref().unwrap_or("(none)"),
                        source.series_uid
                    )));
                }
            };
            match mask.iter_mut().find(|m| m.slice == slice as u32) {
                Some(m) => {
                    // Two frames of one segment on one image: union.
                    let mut on = vec![false; source.rows as usize * source.columns as usize];
                    for &(s, l) in m.runs.iter().chain(&f.runs) {
                        on[s as usize..(s + l) as usize].fill(true);
                    }
                    m.runs = runs_of(on.into_iter());
                }
                None => mask.push(MaskSlice {
                    slice: slice as u32,
                    runs: f.runs.clone(),
                }),
            }
        }
        mask.sort_by_key(|m| m.slice);
        out.push(PlacedSegment {
            number: segment.number,
            mask,
        });
    }
    Ok(out)
}

/// The image of `source` at position `p` (its plane within a tenth of the spacing, and `p` on
/// the image's first pixel's in-plane position within half a pixel).
fn nearest(source: &SourceSeries, p: [f64; 3], spacing: f64) -> Option<usize> {
    let tol = (spacing * 0.1).max(0.01);
    source.images.iter().position(|im| {
        let (Some(q), Some(o)) = (im.position, im.orientation) else {
            return false;
        };
        let n = [
            o[1] * o[5] - o[2] * o[4],
            o[2] * o[3] - o[0] * o[5],
            o[0] * o[4] - o[1] * o[3],
        ];
        let d = [p[0] - q[0], p[1] - q[1], p[2] - q[2]];
        let along = d[0] * n[0] + d[1] * n[1] + d[2] * n[2];
        let in_plane = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] - along * along)
            .max(0.0)
            .sqrt();
        let px = im.pixel_spacing.map_or(1.0, |s| s[0].min(s[1]));
        along.abs() <= tol && in_plane <= px * 0.5
    })
}

/// One measurement of an SR measurement group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub concept: Code,
    pub value: f64,
    pub unit: Code,
}

/// A measurement group of a TID 1500 report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportedGroup {
    /// 1410, 1411, 1501 (from the group's Content Template Sequence), if it says.
    pub template: String,
    pub tracking_id: String,
    pub tracking_uid: String,
    pub finding: Option<Code>,
    pub site: Option<Code>,
    /// The SEG segment the group is about: (SEG SOP Instance UID, segment number).
    pub referenced_segment: Option<(String, u16)>,
    pub measurements: Vec<Measurement>,
    /// Other coded evaluations (concept, value).
    pub evaluations: Vec<(Code, Code)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedReport {
    pub file: String,
    pub sop_instance_uid: String,
    pub study_uid: String,
    pub producer: Producer,
    pub verified: bool,
    pub groups: Vec<ImportedGroup>,
}

/// Reads an SR whose root is TID 1500 "Imaging Measurement Report".
pub fn read_tid1500(path: &Path) -> Result<ImportedReport, ResultsError> {
    let o = open(path)?;
    let file = path.display().to_string();
    let root = code_in(&o, tags::CONCEPT_NAME_CODE_SEQUENCE);
    if !root.is_some_and(|c| c.value == "126000" && c.scheme == "DCM") {
        return Err(ResultsError::Read {
            file,
            message: "not an Imaging Measurement Report (TID 1500)".into(),
        });
    }
    let mut producer = Producer::default();
    for it in items(&o, tags::CONTENT_SEQUENCE) {
        let name = code_in(it, tags::CONCEPT_NAME_CODE_SEQUENCE).map(|c| c.value);
        match name.as_deref() {
            Some("121012") => producer.device_uid = s(it, tags::UID).unwrap_or_default(),
            Some("121013") => producer.algorithm_name = s(it, tags::TEXT_VALUE).unwrap_or_default(),
            Some("121014") => producer.manufacturer = s(it, tags::TEXT_VALUE).unwrap_or_default(),
            Some("121015") => producer.model_name = s(it, tags::TEXT_VALUE).unwrap_or_default(),
            _ => {}
        }
    }
    let mut groups = Vec::new();
    collect_groups(items(&o, tags::CONTENT_SEQUENCE), &mut groups);
    Ok(ImportedReport {
        file,
        sop_instance_uid: s(&o, tags::SOP_INSTANCE_UID).unwrap_or_default(),
        study_uid: s(&o, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        producer,
        verified: s(&o, tags::VERIFICATION_FLAG).as_deref() == Some("VERIFIED"),
        groups,
    })
}

fn collect_groups(content: &[InMemDicomObject], out: &mut Vec<ImportedGroup>) {
    for it in content {
        let name = code_in(it, tags::CONCEPT_NAME_CODE_SEQUENCE);
        let is_group = s(it, tags::VALUE_TYPE).as_deref() == Some("CONTAINER")
            && name
                .as_ref()
                .is_some_and(|c| c.value == "125007" && c.scheme == "DCM");
        if !is_group {
            collect_groups(items(it, tags::CONTENT_SEQUENCE), out);
            continue;
        }
        let mut g = ImportedGroup {
            template: first(it, tags::CONTENT_TEMPLATE_SEQUENCE)
                .and_then(|t| s(t, tags::TEMPLATE_IDENTIFIER))
                .unwrap_or_default(),
            ..ImportedGroup::default()
        };
        for c in items(it, tags::CONTENT_SEQUENCE) {
            let Some(concept) = code_in(c, tags::CONCEPT_NAME_CODE_SEQUENCE) else {
                continue;
            };
            let vt = s(c, tags::VALUE_TYPE).unwrap_or_default();
            match (concept.scheme.as_str(), concept.value.as_str(), vt.as_str()) {
                ("DCM", "112039", _) => g.tracking_id = s(c, tags::TEXT_VALUE).unwrap_or_default(),
                ("DCM", "112040", _) => g.tracking_uid = s(c, tags::UID).unwrap_or_default(),
                ("DCM", "121071", _) => g.finding = code_in(c, tags::CONCEPT_CODE_SEQUENCE),
                ("SCT", "363698007", _) => g.site = code_in(c, tags::CONCEPT_CODE_SEQUENCE),
                ("DCM", "121191", _) => {
                    g.referenced_segment = first(c, tags::REFERENCED_SOP_SEQUENCE).and_then(|r| {
                        Some((
                            s(r, tags::REFERENCED_SOP_INSTANCE_UID)?,
                            uint(r, tags::REFERENCED_SEGMENT_NUMBER)? as u16,
                        ))
                    });
                }
                (_, _, "NUM") => {
                    let Some(mv) = first(c, tags::MEASURED_VALUE_SEQUENCE) else {
                        continue;
                    };
                    let value = floats(mv, tags::FLOATING_POINT_VALUE)
                        .and_then(|v| v.first().copied())
                        .or_else(|| {
                            floats(mv, tags::NUMERIC_VALUE).and_then(|v| v.first().copied())
                        });
                    if let (Some(value), Some(unit)) =
                        (value, code_in(mv, tags::MEASUREMENT_UNITS_CODE_SEQUENCE))
                    {
                        g.measurements.push(Measurement {
                            concept,
                            value,
                            unit,
                        });
                    }
                }
                (_, _, "CODE") => {
                    if let Some(v) = code_in(c, tags::CONCEPT_CODE_SEQUENCE) {
                        g.evaluations.push((concept, v));
                    }
                }
                _ => {}
            }
        }
        out.push(g);
    }
}
