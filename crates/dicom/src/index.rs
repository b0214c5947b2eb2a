//! The study index: Patient → Study → Series → Instance, from headers only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::DicomError;
use crate::geometry::{FrameGeometry, Orientation};
use crate::source::{Opened, ReadDepth, Source, discover};
use crate::voi::{VoiFunction, VoiLut, Window};

/// A file that could not be used, or that was used despite a deviation the user should know
/// about, and why. Shown to the user; never stops the rest of the study from opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    pub file: String,
    /// A stable name for the kind of problem (see [`DicomError::kind`]; `tolerated` and
    /// `duplicate_instance` for warnings).
    pub kind: String,
    pub reason: String,
    pub severity: Severity,
}

/// Whether a file was left out or used with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The file (or this copy of it) is not shown.
    Refused,
    /// The file is shown; what was tolerated is said.
    Warning,
}

impl FileProblem {
    pub fn refused(file: impl Into<String>, kind: &str, reason: impl Into<String>) -> FileProblem {
        FileProblem {
            file: file.into(),
            kind: kind.to_owned(),
            reason: reason.into(),
            severity: Severity::Refused,
        }
    }

    pub fn warning(file: impl Into<String>, kind: &str, reason: impl Into<String>) -> FileProblem {
        FileProblem {
            file: file.into(),
            kind: kind.to_owned(),
            reason: reason.into(),
            severity: Severity::Warning,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StudyIndex {
    pub patients: Vec<Patient>,
    /// Files that looked like DICOM but could not be read, then files read with a warning
    /// (tolerated deviations, duplicate copies of an instance).
    pub problems: Vec<FileProblem>,
    /// Files looked at.
    pub files_scanned: u32,
    /// Files skipped because they are not DICOM at all (or are not images: DICOMDIR).
    pub skipped: u32,
    /// Results other tools (or Dokuei) wrote about the images: segmentations, structured
    /// reports, parametric maps, key object selections, presentation states. Not shown as
    /// series; `dokuei-results` reads them.
    pub results: Vec<ResultObject>,
}

/// A DICOM object that describes images rather than being one.
#[derive(Debug, Clone, Serialize)]
pub struct ResultObject {
    /// The file, its SOP identity and (for SEG and parametric maps) its pixel attributes.
    pub instance: Instance,
    pub study_uid: String,
    pub series_uid: String,
    pub modality: String,
    /// The patient's ID, as in the images' patient list (for the access audit).
    pub patient_id: String,
}

/// Whether a SOP class is a result about images (SEG, SR, parametric map, KOS, presentation
/// state) rather than images to display.
pub fn is_result_class(sop_class_uid: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "1.2.840.10008.5.1.4.1.1.66.", // segmentations (66.4 SEG, 66.7 label map SEG)
        "1.2.840.10008.5.1.4.1.1.88.", // structured reports, key object selection
        "1.2.840.10008.5.1.4.1.1.11.", // presentation states
    ];
    sop_class_uid == "1.2.840.10008.5.1.4.1.1.30" // parametric map
        || PREFIXES.iter().any(|p| sop_class_uid.starts_with(p))
}

impl StudyIndex {
    /// Every series, in reading-list order (patient, study, series number).
    pub fn series(&self) -> impl Iterator<Item = &Series> {
        self.patients
            .iter()
            .flat_map(|p| &p.studies)
            .flat_map(|s| &s.series)
    }

    /// Every instance of every series, in the same order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.series().flat_map(|s| &s.instances)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Patient {
    pub id: String,
    pub name: String,
    pub birth_date: String,
    pub sex: String,
    pub studies: Vec<Study>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Study {
    pub uid: String,
    pub date: String,
    pub time: String,
    pub description: String,
    pub accession_number: String,
    pub study_id: String,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    pub uid: String,
    pub number: Option<i32>,
    pub modality: String,
    pub description: String,
    pub body_part: String,
    pub instances: Vec<Instance>,
}

impl Series {
    /// Total number of frames (images) in the series.
    pub fn frame_count(&self) -> u32 {
        self.instances
            .iter()
            .map(|i| i.image.as_ref().map_or(0, |im| im.frames))
            .sum()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub source: Source,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub instance_number: Option<i32>,
    pub transfer_syntax: String,
    pub image: Option<ImageInfo>,
}

/// Modality LUT: stored value × slope + intercept (HU for CT).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rescale {
    pub slope: f64,
    pub intercept: f64,
}

impl Rescale {
    pub const IDENTITY: Rescale = Rescale {
        slope: 1.0,
        intercept: 0.0,
    };

    pub fn apply(&self, stored: f64) -> f64 {
        stored * self.slope + self.intercept
    }
}

/// What differs frame to frame (in enhanced multi-frame images these come from the
/// per-frame functional groups; in classic images every frame shares the instance's values).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameInfo {
    pub geometry: Option<FrameGeometry>,
    pub rescale: Rescale,
    pub windows: Vec<Window>,
    /// The first VOI LUT of the VOI LUT Sequence, when the file has one.
    pub voi_lut: Option<VoiLut>,
    /// Temporal position / phase, when the file says (used to split multi-phase series).
    pub temporal_position: Option<i32>,
    pub slice_thickness: Option<f64>,
}

/// The image attributes of an instance that has pixel data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageInfo {
    pub rows: u32,
    pub columns: u32,
    pub frames: u32,
    pub samples_per_pixel: u16,
    pub photometric: String,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub pixel_representation: u16,
    pub planar_configuration: u16,
    pub acquisition_number: Option<i32>,
    /// Frame of Reference UID (empty when the file gives none): images that share one share
    /// patient coordinates.
    pub frame_of_reference: String,
    /// Echo Numbers (multi-echo MR), the first value.
    pub echo_number: Option<i32>,
    /// Trigger Time (cardiac phases), ms.
    pub trigger_time: Option<f64>,
    /// One entry per frame.
    pub frame_info: Vec<FrameInfo>,
    /// Between rows, between columns (mm): Pixel Spacing, else Imager Pixel Spacing (projection
    /// radiographs, measured at the detector: `at_detector`).
    pub pixel_spacing: Option<[f64; 2]>,
    pub spacing_at_detector: bool,
    /// Patient Orientation (projection images): the direction of the rows, then of the columns
    /// (e.g. `L`, `F`).
    pub patient_orientation: Option<[String; 2]>,
}

/// Indexes everything under `paths` (folders, files, DICOMDIRs, zip archives), in parallel.
pub fn index(paths: &[PathBuf]) -> StudyIndex {
    let (sources, problems) = discover(paths);
    let explicit_files: Vec<&PathBuf> = paths.iter().filter(|p| p.is_file()).collect();
    index_sources(&sources, problems, &explicit_files)
}

/// Indexes instances already found (`problems`: what finding them reported); a file of
/// `explicit_files` that is not DICOM is reported, others are skipped quietly.
pub fn index_sources(
    sources: &[Source],
    mut problems: Vec<FileProblem>,
    explicit_files: &[&PathBuf],
) -> StudyIndex {
    let results: Vec<(Source, Result<Scanned, DicomError>)> = sources
        .par_iter()
        .map(|s| (s.clone(), read_header(s)))
        .collect();

    let mut index = StudyIndex {
        files_scanned: sources.len() as u32,
        ..StudyIndex::default()
    };
    // patient key → study uid → series uid → instances
    type Tree = BTreeMap<
        String,
        (
            PatientFields,
            BTreeMap<String, (StudyFields, BTreeMap<String, (SeriesFields, Vec<Instance>)>)>,
        ),
    >;
    let mut tree: Tree = BTreeMap::new();
    let mut warnings = Vec::new();
    for (source, result) in results {
        match result {
            Ok(Scanned::Instance(h)) => {
                if !h.notes.is_empty() {
                    warnings.push(FileProblem::warning(
                        source.to_string(),
                        "tolerated",
                        h.notes.join("; "),
                    ));
                }
                if is_result_class(&h.instance.sop_class_uid) {
                    index.results.push(ResultObject {
                        study_uid: h.study.uid.clone(),
                        series_uid: h.series.uid.clone(),
                        modality: h.series.modality.clone(),
                        patient_id: h.patient.id.clone(),
                        instance: h.instance,
                    });
                    continue;
                }
                let patient_key = format!("{}\u{1}{}", h.patient.id, h.patient.name);
                let (_, studies) = tree
                    .entry(patient_key)
                    .or_insert_with(|| (h.patient.clone(), BTreeMap::new()));
                let (_, series) = studies
                    .entry(h.study.uid.clone())
                    .or_insert_with(|| (h.study.clone(), BTreeMap::new()));
                let (_, instances) = series
                    .entry(h.series.uid.clone())
                    .or_insert_with(|| (h.series.clone(), Vec::new()));
                instances.push(h.instance);
            }
            Ok(Scanned::NotDicom) => {
                let named_explicitly =
                    matches!(&source, Source::File { path } if explicit_files.contains(&path));
                if named_explicitly || source.looks_like_dicom_by_name() {
                    problems.push(FileProblem::refused(
                        source.to_string(),
                        "not_dicom",
                        "not a DICOM file",
                    ));
                } else {
                    index.skipped += 1;
                }
            }
            Ok(Scanned::Directory) => index.skipped += 1,
            Err(e) => problems.push(FileProblem::refused(
                source.to_string(),
                e.kind(),
                e.to_string(),
            )),
        }
    }
    for (_, (p, studies)) in tree {
        let mut patient = Patient {
            id: p.id,
            name: p.name,
            birth_date: p.birth_date,
            sex: p.sex,
            studies: Vec::new(),
        };
        for (_, (s, series_map)) in studies {
            let mut study = Study {
                uid: s.uid,
                date: s.date,
                time: s.time,
                description: s.description,
                accession_number: s.accession_number,
                study_id: s.study_id,
                series: Vec::new(),
            };
            for (_, (se, instances)) in series_map {
                let mut instances = drop_duplicates(instances, &mut warnings);
                instances.sort_by(|a, b| {
                    a.instance_number
                        .cmp(&b.instance_number)
                        .then_with(|| a.source.cmp(&b.source))
                });
                study.series.push(Series {
                    uid: se.uid,
                    number: se.number,
                    modality: se.modality,
                    description: se.description,
                    body_part: se.body_part,
                    instances,
                });
            }
            study
                .series
                .sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.uid.cmp(&b.uid)));
            patient.studies.push(study);
        }
        patient
            .studies
            .sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.uid.cmp(&b.uid)));
        index.patients.push(patient);
    }
    problems.extend(warnings);
    index.problems = problems;
    index
}

/// Keeps one copy of each instance (SOP Instance UID) of a series: a folder into which a study
/// was exported twice holds every instance twice, perhaps in another transfer syntax. As
/// dcm2niix does, the first copy (in path order) is used and each other copy is reported with
/// both file names.
fn drop_duplicates(mut instances: Vec<Instance>, warnings: &mut Vec<FileProblem>) -> Vec<Instance> {
    instances.sort_by(|a, b| a.source.cmp(&b.source));
    let mut kept: Vec<Instance> = Vec::with_capacity(instances.len());
    let mut first_of: BTreeMap<String, usize> = BTreeMap::new();
    for instance in instances {
        if instance.sop_instance_uid.is_empty() {
            kept.push(instance);
            continue;
        }
        match first_of.get(&instance.sop_instance_uid) {
            Some(&k) => warnings.push(FileProblem::warning(
                instance.source.to_string(),
                "duplicate_instance",
                format!(
                    "`{}` is another copy of `{}` (the same SOP Instance UID{}): the instance is shown once, from `{}`",
                    instance.source,
                    kept[k].source,
                    if instance.transfer_syntax == kept[k].transfer_syntax {
                        String::new()
                    } else {
                        format!(
                            ", in transfer syntax {} instead of {}",
                            instance.transfer_syntax, kept[k].transfer_syntax
                        )
                    },
                    kept[k].source.file_name()
                ),
            )),
            None => {
                first_of.insert(instance.sop_instance_uid.clone(), kept.len());
                kept.push(instance);
            }
        }
    }
    kept
}

/// What reading one file's header found.
enum Scanned {
    Instance(Box<Header>),
    NotDicom,
    /// A DICOMDIR: a table of contents, not part of a study.
    Directory,
}

#[derive(Debug, Clone, Default)]
struct PatientFields {
    id: String,
    name: String,
    birth_date: String,
    sex: String,
}

#[derive(Debug, Clone, Default)]
struct StudyFields {
    uid: String,
    date: String,
    time: String,
    description: String,
    accession_number: String,
    study_id: String,
}

#[derive(Debug, Clone, Default)]
struct SeriesFields {
    uid: String,
    number: Option<i32>,
    modality: String,
    description: String,
    body_part: String,
}

struct Header {
    /// What was tolerated while reading the file.
    notes: Vec<String>,
    patient: PatientFields,
    study: StudyFields,
    series: SeriesFields,
    instance: Instance,
}

/// SOP classes that are directories, not instances of a study.
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

fn read_header(source: &Source) -> Result<Scanned, DicomError> {
    header_from(source, source.open_noted(ReadDepth::Header)?)
}

/// What the index reads of a file, on bytes from anywhere (the fuzzer), `label` naming them:
/// `Ok(true)` for an image instance, `Ok(false)` for bytes that are not DICOM or not an image.
pub fn header_of_bytes(label: &str, bytes: &[u8]) -> Result<bool, DicomError> {
    let source = Source::File {
        path: PathBuf::from(label),
    };
    let opened = source.open_bytes(bytes, crate::source::sniff(bytes), ReadDepth::Header)?;
    Ok(match header_from(&source, opened)? {
        Scanned::Instance(h) => h.instance.image.is_some(),
        Scanned::NotDicom | Scanned::Directory => false,
    })
}

fn header_from(source: &Source, opened: Option<Opened>) -> Result<Scanned, DicomError> {
    let Some(Opened { object: obj, notes }) = opened else {
        return Ok(Scanned::NotDicom);
    };
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    let sop_class = text(&obj, tags::SOP_CLASS_UID);
    if obj
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        == MEDIA_STORAGE_DIRECTORY
        || sop_class == MEDIA_STORAGE_DIRECTORY
    {
        return Ok(Scanned::Directory);
    }
    let image = image_info(&obj, source)?;
    // Files without UIDs (test images, some secondary captures) still open: all such files
    // form one study, and each file its own series, so nothing is merged by accident.
    let mut study_uid = text(&obj, tags::STUDY_INSTANCE_UID);
    if study_uid.is_empty() {
        study_uid = "(no Study Instance UID)".to_owned();
    }
    let mut series_uid = text(&obj, tags::SERIES_INSTANCE_UID);
    if series_uid.is_empty() {
        series_uid = format!("(no Series Instance UID: {source})");
    }
    Ok(Scanned::Instance(Box::new(Header {
        notes,
        patient: PatientFields {
            id: text(&obj, tags::PATIENT_ID),
            name: text(&obj, tags::PATIENT_NAME),
            birth_date: text(&obj, tags::PATIENT_BIRTH_DATE),
            sex: text(&obj, tags::PATIENT_SEX),
        },
        study: StudyFields {
            uid: study_uid,
            date: text(&obj, tags::STUDY_DATE),
            time: text(&obj, tags::STUDY_TIME),
            description: text(&obj, tags::STUDY_DESCRIPTION),
            accession_number: text(&obj, tags::ACCESSION_NUMBER),
            study_id: text(&obj, tags::STUDY_ID),
        },
        series: SeriesFields {
            uid: series_uid,
            number: int(&obj, tags::SERIES_NUMBER),
            modality: text(&obj, tags::MODALITY),
            description: text(&obj, tags::SERIES_DESCRIPTION),
            body_part: text(&obj, tags::BODY_PART_EXAMINED),
        },
        instance: Instance {
            source: source.clone(),
            sop_instance_uid: text(&obj, tags::SOP_INSTANCE_UID),
            sop_class_uid: sop_class,
            instance_number: int(&obj, tags::INSTANCE_NUMBER),
            transfer_syntax: ts,
            image,
        },
    })))
}

/// The instance record of an object already read whole, to decode its frames without indexing
/// (the de-identifier's pixel cleaning); `source` names it in errors.
pub fn instance_of(
    source: &Source,
    obj: &dicom_object::DefaultDicomObject,
) -> Result<Instance, DicomError> {
    Ok(Instance {
        source: source.clone(),
        sop_instance_uid: text(obj, tags::SOP_INSTANCE_UID),
        sop_class_uid: text(obj, tags::SOP_CLASS_UID),
        instance_number: int(obj, tags::INSTANCE_NUMBER),
        transfer_syntax: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned(),
        image: image_info(obj, source)?,
    })
}

/// Largest image dimension accepted (rows or columns); whole-slide images are out of scope.
pub const MAX_DIMENSION: u32 = 65_535;
/// Largest number of frames accepted in one instance.
pub const MAX_FRAMES: u32 = 100_000;

/// The image part of a header, or `None` for instances without pixel data (reports, RT plans).
pub(crate) fn image_info(
    obj: &InMemDicomObject,
    source: &Source,
) -> Result<Option<ImageInfo>, DicomError> {
    let (Some(rows), Some(columns)) = (int(obj, tags::ROWS), int(obj, tags::COLUMNS)) else {
        return Ok(None);
    };
    let implausible = |reason: String| DicomError::ImplausibleImage {
        source_name: source.to_string(),
        reason,
    };
    if rows <= 0 || columns <= 0 || rows as u32 > MAX_DIMENSION || columns as u32 > MAX_DIMENSION {
        return Err(implausible(format!("{rows} rows × {columns} columns")));
    }
    let frames = match obj.get(tags::NUMBER_OF_FRAMES).map(|e| e.to_int::<i64>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 && n <= i64::from(MAX_FRAMES) => n as u32,
        Some(Ok(n)) => return Err(implausible(format!("Number of Frames is {n}"))),
        Some(Err(_)) => return Err(implausible("Number of Frames is not a number".into())),
    };
    let bits_allocated = int(obj, tags::BITS_ALLOCATED).unwrap_or(16) as u16;
    let samples_per_pixel = int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1) as u16;
    if !matches!(bits_allocated, 1 | 8 | 16 | 32) || !matches!(samples_per_pixel, 1 | 3) {
        return Err(implausible(format!(
            "Bits Allocated {bits_allocated}, Samples per Pixel {samples_per_pixel}"
        )));
    }
    let bits_stored = int(obj, tags::BITS_STORED).map_or(bits_allocated, |b| b as u16);
    if bits_stored == 0 || bits_stored > bits_allocated {
        return Err(implausible(format!(
            "Bits Stored {bits_stored} with Bits Allocated {bits_allocated}"
        )));
    }

    let instance_frame = classic_frame_info(obj);
    let shared = obj
        .get(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|items| items.first());
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    let frame_info = (0..frames as usize)
        .map(|f| {
            let item = per_frame.and_then(|items| items.get(f));
            if shared.is_none() && item.is_none() {
                return instance_frame.clone();
            }
            functional_group_frame_info(item, shared, &instance_frame)
        })
        .collect();

    let positive = |v: Option<Vec<f64>>| match v.as_deref() {
        Some([r, c, ..]) if *r > 0.0 && *c > 0.0 => Some([*r, *c]),
        _ => None,
    };
    let spacing = positive(floats(obj, tags::PIXEL_SPACING))
        .map(|s| (s, false))
        .or_else(|| positive(floats(obj, tags::IMAGER_PIXEL_SPACING)).map(|s| (s, true)));
    let orientation_text = text(obj, tags::PATIENT_ORIENTATION);
    let patient_orientation = match orientation_text.split('\\').collect::<Vec<_>>()[..] {
        [row, column] if !row.trim().is_empty() && !column.trim().is_empty() => {
            Some([row.trim().to_owned(), column.trim().to_owned()])
        }
        _ => None,
    };
    Ok(Some(ImageInfo {
        rows: rows as u32,
        columns: columns as u32,
        frames,
        samples_per_pixel,
        photometric: text(obj, tags::PHOTOMETRIC_INTERPRETATION),
        bits_allocated,
        bits_stored,
        pixel_representation: int(obj, tags::PIXEL_REPRESENTATION).unwrap_or(0) as u16,
        planar_configuration: int(obj, tags::PLANAR_CONFIGURATION).unwrap_or(0) as u16,
        acquisition_number: int(obj, tags::ACQUISITION_NUMBER),
        frame_of_reference: text(obj, tags::FRAME_OF_REFERENCE_UID),
        echo_number: floats(obj, tags::ECHO_NUMBERS)
            .and_then(|v| v.first().copied())
            .filter(|e| e.is_finite())
            .map(|e| e as i32),
        trigger_time: floats(obj, tags::TRIGGER_TIME)
            .and_then(|v| v.first().copied())
            .filter(|t| t.is_finite()),
        frame_info,
        pixel_spacing: spacing.map(|(s, _)| s),
        spacing_at_detector: spacing.is_some_and(|(_, d)| d),
        patient_orientation,
    }))
}

fn classic_frame_info(obj: &InMemDicomObject) -> FrameInfo {
    FrameInfo {
        geometry: geometry_from(
            floats(obj, tags::IMAGE_POSITION_PATIENT),
            floats(obj, tags::IMAGE_ORIENTATION_PATIENT),
            floats(obj, tags::PIXEL_SPACING),
        ),
        rescale: rescale_from(obj).unwrap_or(Rescale::IDENTITY),
        windows: windows_from(obj),
        voi_lut: voi_lut_from(obj, int(obj, tags::PIXEL_REPRESENTATION) == Some(1)),
        temporal_position: int(obj, tags::TEMPORAL_POSITION_IDENTIFIER),
        slice_thickness: floats(obj, tags::SLICE_THICKNESS).and_then(|v| v.first().copied()),
    }
}

/// Frame attributes of an enhanced multi-frame image: the per-frame item first, then the
/// shared item, then the classic attributes at the top level.
fn functional_group_frame_info(
    frame: Option<&InMemDicomObject>,
    shared: Option<&InMemDicomObject>,
    top: &FrameInfo,
) -> FrameInfo {
    let groups: Vec<&InMemDicomObject> = frame.into_iter().chain(shared).collect();
    let macro_item = |seq: Tag| {
        groups
            .iter()
            .find_map(|g| g.get(seq).and_then(|e| e.items()).and_then(|i| i.first()))
    };
    let position = macro_item(tags::PLANE_POSITION_SEQUENCE)
        .and_then(|m| floats(m, tags::IMAGE_POSITION_PATIENT));
    let orientation = macro_item(tags::PLANE_ORIENTATION_SEQUENCE)
        .and_then(|m| floats(m, tags::IMAGE_ORIENTATION_PATIENT));
    let measures = macro_item(tags::PIXEL_MEASURES_SEQUENCE);
    let spacing = measures.and_then(|m| floats(m, tags::PIXEL_SPACING));
    let geometry = geometry_from(position, orientation, spacing).or(top.geometry);
    let rescale = macro_item(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE)
        .and_then(rescale_from)
        .unwrap_or(top.rescale);
    let frame_voi = macro_item(tags::FRAME_VOILUT_SEQUENCE);
    let windows = frame_voi
        .map(windows_from)
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| top.windows.clone());
    let signed = top.voi_lut.as_ref().is_some_and(|l| l.first_mapped < 0);
    let voi_lut = frame_voi
        .and_then(|m| voi_lut_from(m, signed))
        .or_else(|| top.voi_lut.clone());
    let temporal_position = macro_item(tags::FRAME_CONTENT_SEQUENCE)
        .and_then(|m| int(m, tags::TEMPORAL_POSITION_INDEX))
        .or(top.temporal_position);
    let slice_thickness = measures
        .and_then(|m| floats(m, tags::SLICE_THICKNESS))
        .and_then(|v| v.first().copied())
        .or(top.slice_thickness);
    FrameInfo {
        geometry,
        rescale,
        windows,
        voi_lut,
        temporal_position,
        slice_thickness,
    }
}

fn geometry_from(
    position: Option<Vec<f64>>,
    orientation: Option<Vec<f64>>,
    spacing: Option<Vec<f64>>,
) -> Option<FrameGeometry> {
    let position = position?;
    let orientation = Orientation::from_iop(&orientation?)?;
    let p: [f64; 3] = position.get(..3)?.try_into().ok()?;
    let pixel_spacing = match spacing.as_deref() {
        Some([r, c, ..]) if *r > 0.0 && *c > 0.0 => [*r, *c],
        _ => [1.0, 1.0],
    };
    Some(FrameGeometry {
        position: p,
        orientation,
        pixel_spacing,
    })
}

fn rescale_from(obj: &InMemDicomObject) -> Option<Rescale> {
    let slope = floats(obj, tags::RESCALE_SLOPE).and_then(|v| v.first().copied());
    let intercept = floats(obj, tags::RESCALE_INTERCEPT).and_then(|v| v.first().copied());
    if slope.is_none() && intercept.is_none() {
        return None;
    }
    let slope = slope.filter(|s| *s != 0.0 && s.is_finite()).unwrap_or(1.0);
    Some(Rescale {
        slope,
        intercept: intercept.filter(|i| i.is_finite()).unwrap_or(0.0),
    })
}

fn windows_from(obj: &InMemDicomObject) -> Vec<Window> {
    let (Some(centers), Some(widths)) = (
        floats(obj, tags::WINDOW_CENTER),
        floats(obj, tags::WINDOW_WIDTH),
    ) else {
        return Vec::new();
    };
    let function = match text(obj, tags::VOILUT_FUNCTION).as_str() {
        "LINEAR_EXACT" => VoiFunction::LinearExact,
        "SIGMOID" => VoiFunction::Sigmoid,
        _ => VoiFunction::Linear,
    };
    centers
        .iter()
        .zip(&widths)
        .filter(|(c, w)| c.is_finite() && w.is_finite())
        .map(|(&center, &width)| Window {
            center,
            width,
            function,
        })
        .collect()
}

fn voi_lut_from(obj: &InMemDicomObject, signed: bool) -> Option<VoiLut> {
    let item = obj.get(tags::VOILUT_SEQUENCE)?.items()?.first()?;
    let d = item.get(tags::LUT_DESCRIPTOR)?.to_multi_int::<i64>().ok()?;
    let (entries, first, bits) = (*d.first()?, *d.get(1)?, *d.get(2)?);
    let entries = if entries <= 0 {
        65_536
    } else {
        entries as usize
    };
    let element = item.get(tags::LUT_DATA)?;
    // LUT Data is US/OW: 16-bit words, even for 8-bit entries.
    let data: Vec<u16> = match element.to_multi_int::<u16>() {
        Ok(v) => v,
        Err(_) => element
            .to_bytes()
            .ok()?
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
    };
    if data.len() < entries || !(1..=16).contains(&bits) {
        return None;
    }
    Some(VoiLut {
        // The descriptor's first value is US or SS as the pixel data is unsigned or signed.
        first_mapped: if signed && first > 32_767 {
            first - 65_536
        } else {
            first
        },
        bits: bits as u16,
        data: data[..entries].to_vec(),
        explanation: text(item, tags::LUT_EXPLANATION),
    })
}

/// A string attribute, trimmed; empty when absent or unreadable.
pub(crate) fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| {
            s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .to_owned()
        })
        .unwrap_or_default()
}

pub(crate) fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i32> {
    obj.get(tag).and_then(|e| e.to_int::<i32>().ok())
}

pub(crate) fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    obj.get(tag)
        .and_then(|e| e.to_multi_float64().ok())
        .filter(|v| !v.is_empty())
}
