//! Finding geometry: masks per slice, their bounding boxes, sizes and volumes, in the series'
//! patient coordinates.

use dokuei_dicom::Series;
use dokuei_dicom::stack::Stack;
use dokuei_infer::findings::{ComponentGeometry, SliceGeometry, describe};
use serde::{Deserialize, Serialize};

use super::*;
use crate::AppError;

/// Set pixels of one slice: `[start, length]` runs in row-major pixel index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct MaskSlice {
    pub slice: u32,
    pub runs: Vec<[u32; 2]>,
}

/// Where a finding is, in its stack's pixel grid, and how big. Stored as JSON in the ledger;
/// `box` is the `[x0, y0, x1, y1]` (column, row; inclusive) the agreement statistics read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Geometry {
    #[serde(rename = "box")]
    pub bbox: [u32; 4],
    /// First and last slice (display order).
    pub slices: [u32; 2],
    pub mask: Vec<MaskSlice>,
    pub centroid_lps_mm: [f64; 3],
    pub longest_diameter_mm: f64,
    pub area_mm2: f64,
    pub volume_mm3: f64,
}

impl From<&ComponentGeometry> for Geometry {
    fn from(g: &ComponentGeometry) -> Self {
        let b = g.bbox_voxels;
        Geometry {
            bbox: [b[2], b[1], b[5], b[4]],
            slices: g.slices,
            mask: g
                .mask
                .iter()
                .map(|m| MaskSlice {
                    slice: m.slice,
                    runs: m.runs.iter().map(|&(s, l)| [s, l]).collect(),
                })
                .collect(),
            centroid_lps_mm: g.centroid_lps_mm,
            longest_diameter_mm: g.size.longest_diameter_mm,
            area_mm2: g.size.area_mm2,
            volume_mm3: g.size.volume_mm3,
        }
    }
}

/// The patient-space geometry of slice `i` of a stack (image millimetres for projection
/// images without patient geometry, from (Imager) Pixel Spacing, one slice per mm).
pub fn slice_geometry(series: &Series, stack: &Stack, i: usize) -> SliceGeometry {
    match stack.frames[i].geometry {
        Some(g) => SliceGeometry {
            position: g.position,
            row_direction: g.orientation.row,
            column_direction: g.orientation.column,
            pixel_spacing: g.pixel_spacing,
        },
        None => SliceGeometry {
            position: [0.0, 0.0, i as f64],
            row_direction: [1.0, 0.0, 0.0],
            column_direction: [0.0, 1.0, 0.0],
            pixel_spacing: series.instances[stack.frames[i].instance]
                .image
                .as_ref()
                .and_then(|im| im.pixel_spacing)
                .unwrap_or([1.0, 1.0]),
        },
    }
}

/// Distance between a stack's slices (mm), else its slice thickness, else 1.
pub fn slice_spacing(stack: &Stack) -> f64 {
    let s = stack.spacing.spacing.abs();
    if s > 0.0 {
        s
    } else {
        stack.slice_thickness.unwrap_or(1.0)
    }
}

/// The geometry of a mask drawn or edited by a reader on a stack: box, centroid and size are
/// computed here, not trusted from the screen. Refuses an empty mask or pixels outside the
/// stack.
pub fn geometry_from_mask(
    series: &Series,
    stack: &Stack,
    mask: &[MaskSlice],
) -> Result<Geometry, AppError> {
    let (rows, columns) = (stack.rows as usize, stack.columns as usize);
    let plane = rows * columns;
    let mut voxels = Vec::new();
    for m in mask {
        let s = m.slice as usize;
        if s >= stack.frames.len() {
            return Err(invalid(format!(
                "the drawn region is on slice {}, but the stack has {} slices",
                s + 1,
                stack.frames.len()
            )));
        }
        for &[start, len] in &m.runs {
            let (start, len) = (start as usize, len as usize);
            if start + len > plane {
                return Err(invalid(
                    "the drawn region extends outside the image".to_owned(),
                ));
            }
            voxels.extend((start..start + len).map(|p| s * plane + p));
        }
    }
    voxels.sort_unstable();
    voxels.dedup();
    if voxels.is_empty() {
        return Err(invalid("the drawn region is empty"));
    }
    let geometry: Vec<SliceGeometry> = (0..stack.frames.len())
        .map(|i| slice_geometry(series, stack, i))
        .collect();
    Ok(Geometry::from(&describe(
        &voxels,
        rows,
        columns,
        &geometry,
        slice_spacing(stack),
    )))
}
