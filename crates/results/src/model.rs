//! What the writers are given: the source series (as its files describe it), the findings as
//! segments, and who made them. Built by `dokuei-review` from the study index and the ledger;
//! nothing here knows about either.

use serde::{Deserialize, Serialize};

use crate::codes::Code;

/// Patient and study attributes copied from the source images into every object, so a PACS
/// files the results with the study they belong to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyContext {
    pub patient_name: String,
    pub patient_id: String,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub study_uid: String,
    pub study_date: String,
    pub study_time: String,
    pub study_id: String,
    pub accession_number: String,
    pub referring_physician: String,
    /// Specific Character Set of the source (the values above are already decoded; results are
    /// written in UTF-8 whatever the source used).
    pub source_charset: String,
}

/// One image of the source stack, in the stack's display order (the slice index findings use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceImage {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// 1-based frame of a multi-frame source instance; `None` for single-frame instances.
    pub frame: Option<u32>,
    /// Image Position (Patient), mm; `None` for images without patient geometry.
    pub position: Option<[f64; 3]>,
    /// Image Orientation (Patient): row direction then column direction.
    pub orientation: Option<[f64; 6]>,
    /// Between rows, between columns (mm).
    pub pixel_spacing: Option<[f64; 2]>,
}

/// The series the findings were made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSeries {
    pub series_uid: String,
    pub modality: String,
    pub frame_of_reference_uid: Option<String>,
    pub rows: u32,
    pub columns: u32,
    pub slice_thickness: Option<f64>,
    pub body_part: String,
    /// Patient Orientation of projection images (the direction of the rows, then of the
    /// columns, e.g. `L`, `F`), when the source gives it.
    #[serde(default)]
    pub patient_orientation: Option<[String; 2]>,
    pub images: Vec<SourceImage>,
}

/// The algorithm (a model file) that produced a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Algorithm {
    /// The model's id (manifest `id`).
    pub id: String,
    /// Human-readable name (manifest `name`).
    pub name: String,
    pub version: String,
    /// SHA-256 of the model file, lower-case hex.
    pub sha256: String,
    /// Who made the model (manifest `publisher`).
    pub manufacturer: String,
}

impl Algorithm {
    /// The Device UID this algorithm appears under in Contributing Equipment and SR observer
    /// context: derived from the model file's SHA-256.
    pub fn device_uid(&self) -> String {
        crate::uid::device_uid(&self.sha256)
    }
}

/// How a segment came to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Origin {
    /// The algorithm alone (an AI finding as the model produced it).
    Automatic(Algorithm),
    /// An AI finding a reader edited.
    SemiAutomatic(Algorithm),
    /// Drawn by a reader.
    Manual,
}

impl Origin {
    pub fn algorithm(&self) -> Option<&Algorithm> {
        match self {
            Origin::Automatic(a) | Origin::SemiAutomatic(a) => Some(a),
            Origin::Manual => None,
        }
    }

    pub fn keyword(&self) -> &'static str {
        match self {
            Origin::Automatic(_) => "AUTOMATIC",
            Origin::SemiAutomatic(_) => "SEMIAUTOMATIC",
            Origin::Manual => "MANUAL",
        }
    }
}

/// Runs of set pixels on one image of the source stack: `(start, length)` in row-major pixel
/// index, as findings store their masks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskSlice {
    /// Index into [`SourceSeries::images`].
    pub slice: u32,
    pub runs: Vec<(u32, u32)>,
}

/// What a finding is, as codes, with its colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingCoding {
    /// The label's name in the model's manifest, e.g. `nodule`.
    pub label: String,
    pub category: Code,
    pub finding: Code,
    pub site: Option<Code>,
    /// sRGB, for Recommended Display CIELab Value.
    pub rgb: [u8; 3],
}

/// One finding to write: a segment of the SEG and a measurement group of the SR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFinding {
    pub coding: FindingCoding,
    /// Short, human-readable (Tracking ID), e.g. `nodule #12`.
    pub tracking_id: String,
    /// Identifies the finding wherever it is reported (Tracking UID).
    pub tracking_uid: String,
    pub origin: Origin,
    pub mask: Vec<MaskSlice>,
    /// Bounding box on the source grid: first and last row and column (inclusive).
    pub bbox: [u32; 4],
    /// Slice (index into the source images) the planar summary is drawn on: the one with the
    /// largest area.
    pub key_slice: u32,
    pub longest_diameter_mm: f64,
    pub area_mm2: f64,
    pub volume_mm3: f64,
    /// The model's probability; `None` for a reader's finding.
    pub probability: Option<f64>,
}

/// Identity of an object to write: its SOP Instance UID, series and times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectIdentity {
    pub sop_instance_uid: String,
    pub series_uid: String,
    pub series_number: i32,
    pub series_description: String,
    pub instance_number: i32,
    /// Content date and time (DA, TM): when the result was made (the analysis finished, the
    /// study was signed off), so an object exported twice is the same object.
    pub content_date: String,
    pub content_time: String,
}

/// Dokuei itself, as the equipment that wrote the object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Writer {
    pub software_version: String,
    /// Identifies this installation (Device Serial Number).
    pub device_serial: String,
}

/// Distance between the source's slices along their normal (mm), from the first two positions;
/// 1 when unknown.
pub(crate) fn slice_spacing(source: &SourceSeries) -> f64 {
    let mut it = source.images.iter().filter_map(|im| im.position);
    match (it.next(), it.next()) {
        (Some(a), Some(b)) => {
            let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
            if d > 0.0 { d } else { 1.0 }
        }
        _ => 1.0,
    }
}
