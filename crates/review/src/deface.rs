//! Defacing a head CT or MR series into a new DERIVED series (PS3.15's Clean Recognizable Visual
//! Features): the plane of `dokuei_deid::deface`, every voxel beyond it set to air, each slice
//! written as a new instance that names its source. The result is still identified: run the
//! de-identified export on it to take it off the machine.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use dokuei_deid::deface::{FacePlane, Grid, face_plane, face_plane_mr};
use dokuei_dicom::Series;
use dokuei_dicom::source::ReadDepth;
use dokuei_dicom::stack::Stack;
use dokuei_dicom::volume::{VolumeData, load_volume};
use dokuei_results::uid::uid_from;

use crate::{AppError, ErrorCode};

/// What defacing a series did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DefaceReport {
    pub folder: String,
    /// The new series' UID.
    pub series_uid: String,
    pub files: Vec<PathBuf>,
    pub plane: FacePlane,
    /// Voxels set to air.
    pub removed_voxels: u64,
}

const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

fn fail(code: ErrorCode, message: impl Into<String>) -> AppError {
    AppError::new(code, message)
}

/// The grid of a stack whose every frame has geometry.
pub fn stack_grid(stack: &Stack) -> Result<Grid, AppError> {
    let geometry: Vec<_> = stack.frames.iter().map(|f| f.geometry).collect();
    let Some(Some(first)) = geometry.first().copied() else {
        return Err(fail(
            ErrorCode::InvalidArgument,
            "the stack has no patient geometry: nothing to find a face plane in",
        ));
    };
    if geometry.iter().any(Option::is_none) {
        return Err(fail(
            ErrorCode::InvalidArgument,
            "some slices of the stack have no patient geometry",
        ));
    }
    Ok(Grid {
        slices: stack.frames.len(),
        rows: stack.rows as usize,
        columns: stack.columns as usize,
        positions: geometry.iter().flatten().map(|g| g.position).collect(),
        row_direction: first.orientation.row,
        column_direction: first.orientation.column,
        pixel_spacing: first.pixel_spacing,
    })
}

/// Defaces stack `stack` of a head CT or MR `series` into `out/<new series UID>/`, keeping
/// `margin_mm` between the brain and the cut.
pub fn deface_series(
    series: &Series,
    stack: &Stack,
    out: &Path,
    margin_mm: f64,
    cancel: &AtomicBool,
) -> Result<DefaceReport, AppError> {
    let mr = series.modality == "MR";
    if !mr && series.modality != "CT" {
        return Err(fail(
            ErrorCode::InvalidArgument,
            format!(
                "defacing is built for CT and MR heads; this series is {}",
                series.modality
            ),
        ));
    }
    if stack.frames.iter().any(|f| {
        f.frame != 0
            || series.instances[f.instance]
                .image
                .as_ref()
                .is_some_and(|i| i.frames > 1)
    }) {
        return Err(fail(
            ErrorCode::InvalidArgument,
            "defacing multi-frame images is not built yet: only one image per slice",
        ));
    }
    let grid = stack_grid(stack)?;
    let volume = load_volume(series, stack, &|_: usize, _: usize| {}, cancel)
        .map_err(|e| fail(ErrorCode::DicomUnreadable, e.to_string()))?;
    let mut hu: Vec<f32> = Vec::with_capacity(grid.slices * grid.rows * grid.columns);
    for k in 0..grid.slices {
        hu.extend(volume.slice_values(k).unwrap_or_default());
    }
    let plane = if mr {
        face_plane_mr(&hu, &grid, margin_mm)
    } else {
        face_plane(&hu, &grid, margin_mm)
    }
    .map_err(|e| fail(ErrorCode::InvalidArgument, e))?;
    // What the removed voxels become: air, −1000 HU on CT; on MR, where values have no
    // unit, the darkest value of the volume (the background).
    let air_value = if mr {
        f64::from(hu.iter().copied().fold(f32::MAX, f32::min))
    } else {
        -1000.0
    };
    drop(hu);

    let source_series = &series.uid;
    let new_series = uid_from(&format!(
        "dokuei/deface/{source_series}/{margin_mm}/{}",
        stack.label
    ));
    let folder = out.join(&new_series);
    std::fs::create_dir_all(&folder).map_err(|e| {
        fail(
            ErrorCode::WriteFailed,
            format!("cannot create {}: {e}", folder.display()),
        )
    })?;
    let plane_px = grid.rows * grid.columns;
    let mut removed = 0u64;
    let mut files = Vec::with_capacity(grid.slices);
    for (k, f) in stack.frames.iter().enumerate() {
        let instance = &series.instances[f.instance];
        // Air in this slice's stored values, within the stored type's range.
        let rescale = volume.rescale[k];
        let air_stored = ((air_value - rescale.intercept) / rescale.slope).round();
        let mut bytes: Vec<u8> = Vec::with_capacity(plane_px * 2);
        macro_rules! slice {
            ($a:expr, $t:ty) => {{
                let air = air_stored.clamp(f64::from(<$t>::MIN), f64::from(<$t>::MAX)) as $t;
                let view = $a.index_axis(ndarray::Axis(0), k);
                for (i, &v) in view.iter().enumerate() {
                    let p = grid.position(k, i / grid.columns, i % grid.columns);
                    let out = if plane.removes(p) && v != air {
                        removed += 1;
                        air
                    } else {
                        v
                    };
                    bytes.extend_from_slice(&out.to_le_bytes());
                }
            }};
        }
        match &volume.data {
            VolumeData::U8(a) => slice!(a, u8),
            VolumeData::I8(a) => slice!(a, i8),
            VolumeData::U16(a) => slice!(a, u16),
            VolumeData::I16(a) => slice!(a, i16),
            VolumeData::U32(a) => slice!(a, u32),
            VolumeData::I32(a) => slice!(a, i32),
        }
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let file = instance
            .source
            .open(ReadDepth::Full)
            .map_err(|e| fail(ErrorCode::DicomUnreadable, e.to_string()))?
            .ok_or_else(|| {
                fail(
                    ErrorCode::DicomUnreadable,
                    "a slice of the series is no longer a DICOM file".to_owned(),
                )
            })?;
        let mut data: InMemDicomObject = file.into_inner();
        let sop = uid_from(&format!(
            "dokuei/deface/{}/{margin_mm}",
            instance.sop_instance_uid
        ));
        let bits = match volume.data {
            VolumeData::U8(_) | VolumeData::I8(_) => 8,
            VolumeData::U16(_) | VolumeData::I16(_) => 16,
            VolumeData::U32(_) | VolumeData::I32(_) => 32,
        };
        derive(&mut data, instance, &sop, &new_series, &plane, bytes, bits);
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(EXPLICIT_VR_LE)
            .media_storage_sop_class_uid(instance.sop_class_uid.as_str())
            .media_storage_sop_instance_uid(sop.as_str())
            .implementation_class_uid(dokuei_results::common::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(dokuei_results::common::IMPLEMENTATION_VERSION_NAME)
            .build()
            .map_err(|e| fail(ErrorCode::WriteFailed, e.to_string()))?;
        let obj = data.with_exact_meta(meta);
        let (path, _) = crate::results::write_object(&obj, &folder, &format!("{sop}.dcm"))?;
        files.push(path);
    }
    Ok(DefaceReport {
        folder: folder.display().to_string(),
        series_uid: new_series,
        files,
        plane,
        removed_voxels: removed,
    })
}

/// Turns a source image's data set into its defaced derivative: new UIDs, DERIVED, the
/// derivation described and its source referenced, the new pixels (native).
fn derive(
    data: &mut InMemDicomObject,
    source: &dokuei_dicom::index::Instance,
    sop: &str,
    series_uid: &str,
    plane: &FacePlane,
    pixels: Vec<u8>,
    bits: u16,
) {
    let text = |data: &InMemDicomObject, tag| {
        data.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    let put = |data: &mut InMemDicomObject, tag, vr, v: &str| {
        data.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    };
    let description = text(data, tags::SERIES_DESCRIPTION);
    let number: i32 = text(data, tags::SERIES_NUMBER).trim().parse().unwrap_or(0);
    put(data, tags::SOP_INSTANCE_UID, VR::UI, sop);
    put(data, tags::SERIES_INSTANCE_UID, VR::UI, series_uid);
    put(
        data,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &format!("{description} defaced")
            .trim()
            .chars()
            .take(64)
            .collect::<String>(),
    );
    put(
        data,
        tags::SERIES_NUMBER,
        VR::IS,
        &(number.saturating_add(9000)).to_string(),
    );
    // Image Type: DERIVED, the rest kept (a CT image's third value is AXIAL or LOCALIZER).
    let image_type = text(data, tags::IMAGE_TYPE);
    let mut values: Vec<String> = image_type.split('\\').map(str::to_owned).collect();
    if values.is_empty() || values[0].is_empty() {
        values = vec!["DERIVED".into(), "SECONDARY".into()];
    } else {
        values[0] = "DERIVED".into();
        if values.len() < 2 {
            values.push("SECONDARY".into());
        }
    }
    put(data, tags::IMAGE_TYPE, VR::CS, &values.join("\\"));
    put(
        data,
        tags::DERIVATION_DESCRIPTION,
        VR::ST,
        &format!(
            "Defaced by Dokuei {}: voxels in front of and below the brain, beyond a plane \
             {:.0} degrees from anterior kept {:.0} mm from the brain, set to air \
             (quickshear-style)",
            env!("CARGO_PKG_VERSION"),
            plane.degrees_from_anterior,
            plane.margin_mm
        ),
    );
    put(data, tags::RECOGNIZABLE_VISUAL_FEATURES, VR::CS, "NO");
    // The image it was derived from (PS3.3 C.7.6.1.1.4).
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(source.sop_class_uid.as_str()),
    ));
    item.put(DataElement::new(
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(source.sop_instance_uid.as_str()),
    ));
    data.put(DataElement::new(
        tags::SOURCE_IMAGE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    // Native pixels in the volume's stored type; the encapsulation of the source (if any)
    // does not apply any more. Lossy Image Compression stays as the source says.
    data.put(DataElement::new(
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(bits),
    ));
    data.put(DataElement::new(
        tags::PIXEL_DATA,
        if bits == 8 { VR::OB } else { VR::OW },
        PrimitiveValue::from(pixels),
    ));
}

/// The body's cross-section at a stack's superior end (its most superior slice), cm²: the
/// largest 4-connected region above a body threshold (−500 HU for CT; for other modalities,
/// Otsu's threshold of the slice), times the pixel area. A head is under about 250 cm² at its
/// widest; an adult chest or abdomen is well over 400 cm². The couch is left out when foam
/// separates it from the body, as it usually does. Meaningful for axial stacks only.
pub fn body_cross_section_cm2(series: &Series, stack: &Stack) -> Result<f64, AppError> {
    let n = stack.frames.len();
    if n == 0 {
        return Err(fail(ErrorCode::InvalidArgument, "the stack has no slices"));
    }
    // The superior end: a neck-to-chest stack is a trunk at its lower end and a neck at its
    // upper one, and it is the upper end that can hold a face.
    let top = (0..n)
        .max_by(|&a, &b| {
            let z = |k: usize| stack.frames[k].geometry.map_or(f64::MIN, |g| g.position[2]);
            z(a).total_cmp(&z(b))
        })
        .filter(|&k| stack.frames[k].geometry.is_some())
        .ok_or_else(|| {
            fail(
                ErrorCode::InvalidArgument,
                "the stack has no patient geometry: its superior end is unknown",
            )
        })?;
    let f = &stack.frames[top];
    let instance = &series.instances[f.instance];
    let spacing = f
        .geometry
        .map(|g| g.pixel_spacing)
        .or_else(|| instance.image.as_ref().and_then(|i| i.pixel_spacing))
        .ok_or_else(|| {
            fail(
                ErrorCode::InvalidArgument,
                "a slice has no pixel spacing: the body's size cannot be measured",
            )
        })?;
    let frame = dokuei_dicom::decode::decode_frame(instance, f.frame)
        .map_err(|e| fail(ErrorCode::DicomUnreadable, e.to_string()))?;
    if frame.pixels.is_color() {
        return Err(fail(
            ErrorCode::InvalidArgument,
            "colour images: the body's size cannot be measured",
        ));
    }
    let values: Vec<f32> = (0..frame.pixels.len())
        .filter_map(|i| frame.pixels.get(i))
        .map(|v| f.rescale.apply(v as f64) as f32)
        .collect();
    let threshold = if series.modality == "CT" {
        -500.0
    } else {
        dokuei_deid::deface::otsu(&values)
    };
    let mask: Vec<bool> = values.iter().map(|&v| v > threshold).collect();
    let pixels = dokuei_deid::deface::largest_component(
        &mask,
        1,
        frame.rows as usize,
        frame.columns as usize,
    )
    .iter()
    .filter(|&&b| b)
    .count();
    Ok(pixels as f64 * spacing[0] * spacing[1] / 100.0)
}
