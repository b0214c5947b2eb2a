//! Multiplanar reformatting: any plane through a loaded volume, sampled in patient space by
//! trilinear interpolation, with an optional slab (MIP, MinIP or average) along the plane's
//! normal. The plane convention is DICOM's (and `ui/src/viewer/planes.ts`'s): pixel (i, j) of
//! a plane is at `origin + row · spacing[1] · i + column · spacing[0] · j`.

use rayon::prelude::*;

use crate::stack::Stack;
use crate::volume::{Volume, VolumeData};

pub type Vec3 = [f64; 3];

fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn unit(a: Vec3) -> Vec3 {
    let n = dot(a, a).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}

/// Where a volume's voxels are: voxel (slice k, row j, column i) is at
/// `origin + row · spacing[1] · i + column · spacing[0] · j + slice_step · k`. The slice step
/// need not be along the normal (gantry tilt).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolumeGeometry {
    pub origin: Vec3,
    pub row: Vec3,
    pub column: Vec3,
    /// Between rows, between columns (mm).
    pub spacing: [f64; 2],
    /// From one slice's first pixel to the next one's (mm).
    pub slice_step: Vec3,
    /// Slices, rows, columns.
    pub dims: (usize, usize, usize),
    /// Patient → continuous (i, j, k): the inverse of the matrix whose columns are the three
    /// voxel steps.
    inverse: [Vec3; 3],
}

impl VolumeGeometry {
    /// The geometry of a volume with these axes; `None` when the steps do not span space.
    pub fn new(
        origin: Vec3,
        row: Vec3,
        column: Vec3,
        spacing: [f64; 2],
        slice_step: Vec3,
        dims: (usize, usize, usize),
    ) -> Option<VolumeGeometry> {
        let a = [0, 1, 2].map(|r| row[r] * spacing[1]);
        let b = [0, 1, 2].map(|r| column[r] * spacing[0]);
        let c = slice_step;
        // Rows of the inverse are (b × c, c × a, a × b) / det.
        let det = dot(a, cross(b, c));
        if det.abs() < 1e-9 {
            return None;
        }
        let inverse = [cross(b, c), cross(c, a), cross(a, b)].map(|v| v.map(|x| x / det));
        Some(VolumeGeometry {
            origin,
            row,
            column,
            spacing,
            slice_step,
            dims,
            inverse,
        })
    }

    /// A stack's geometry, from its first slice and the mean step to its last (a stack with
    /// gaps or uneven spacing is sampled as if even: the caller warns, as the viewer does).
    pub fn of_stack(stack: &Stack) -> Result<VolumeGeometry, String> {
        let first = stack
            .frames
            .first()
            .and_then(|f| f.geometry)
            .ok_or("the stack has no patient geometry")?;
        let last = stack
            .frames
            .last()
            .and_then(|f| f.geometry)
            .ok_or("the stack has no patient geometry")?;
        let n = stack.frames.len();
        let slice_step = if n > 1 {
            [0, 1, 2].map(|i| (last.position[i] - first.position[i]) / (n - 1) as f64)
        } else {
            // One slice: a step of one millimetre along the normal, so that the plane of the
            // slice itself can be sampled.
            unit(cross(first.orientation.row, first.orientation.column))
        };
        VolumeGeometry::new(
            first.position,
            first.orientation.row,
            first.orientation.column,
            first.pixel_spacing,
            slice_step,
            (n, stack.rows as usize, stack.columns as usize),
        )
        .ok_or_else(|| "the stack's slices do not span a volume".to_owned())
    }

    /// Continuous voxel coordinates (column i, row j, slice k) of a patient point.
    pub fn voxel_of(&self, p: Vec3) -> Vec3 {
        let d = [0, 1, 2].map(|i| p[i] - self.origin[i]);
        self.inverse.map(|r| dot(r, d))
    }

    /// The patient point of voxel (column i, row j, slice k), fractional allowed.
    pub fn patient_of(&self, i: f64, j: f64, k: f64) -> Vec3 {
        [0, 1, 2].map(|a| {
            self.origin[a]
                + self.row[a] * self.spacing[1] * i
                + self.column[a] * self.spacing[0] * j
                + self.slice_step[a] * k
        })
    }

    /// The patient-space box the volume's voxel centres span: (min, max) per axis.
    pub fn bounds(&self) -> (Vec3, Vec3) {
        let (s, r, c) = self.dims;
        let ends = |n: usize| [0.0, n.saturating_sub(1) as f64];
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for i in ends(c) {
            for j in ends(r) {
                for k in ends(s) {
                    let p = self.patient_of(i, j, k);
                    for a in 0..3 {
                        lo[a] = lo[a].min(p[a]);
                        hi[a] = hi[a].max(p[a]);
                    }
                }
            }
        }
        (lo, hi)
    }

    /// The smallest voxel step (mm): the sampling step that loses no detail.
    pub fn finest_step(&self) -> f64 {
        let along = dot(self.slice_step, self.slice_step).sqrt();
        self.spacing[0].min(self.spacing[1]).min(along)
    }
}

/// An image plane to sample (DICOM's convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlaneSpec {
    pub origin: Vec3,
    pub row: Vec3,
    pub column: Vec3,
    /// Between rows, between columns (mm).
    pub spacing: [f64; 2],
    pub rows: usize,
    pub columns: usize,
}

impl PlaneSpec {
    pub fn normal(&self) -> Vec3 {
        unit(cross(self.row, self.column))
    }

    pub fn patient_of(&self, i: f64, j: f64) -> Vec3 {
        [0, 1, 2].map(|a| {
            self.origin[a]
                + self.row[a] * self.spacing[1] * i
                + self.column[a] * self.spacing[0] * j
        })
    }

    /// Pixel (i, j) of a patient point, and its distance from the plane along the normal.
    pub fn pixel_of(&self, p: Vec3) -> (f64, f64, f64) {
        let d = [0, 1, 2].map(|a| p[a] - self.origin[a]);
        (
            dot(d, self.row) / self.spacing[1],
            dot(d, self.column) / self.spacing[0],
            dot(d, self.normal()),
        )
    }
}

/// The three standard views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Seen from the feet: patient's right on the left, anterior up.
    Axial,
    /// Seen from the front: right on the left, superior up.
    Coronal,
    /// Seen from the patient's left: anterior on the left, superior up.
    Sagittal,
}

/// The view's plane through `center`, covering the volume's extent along the plane's axes,
/// sampled every `step` mm (square pixels).
pub fn standard_plane(g: &VolumeGeometry, view: View, center: Vec3, step: f64) -> PlaneSpec {
    let (row, column): (Vec3, Vec3) = match view {
        View::Axial => ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
        View::Coronal => ([1.0, 0.0, 0.0], [0.0, 0.0, -1.0]),
        View::Sagittal => ([0.0, 1.0, 0.0], [0.0, 0.0, -1.0]),
    };
    let (lo, hi) = g.bounds();
    // Along each of the plane's axes: from the box's low end to its high end (the column
    // axis points down, from high z to low).
    let axis_of = |v: Vec3| (0..3).find(|&a| v[a] != 0.0).unwrap_or(0);
    let (ra, ca) = (axis_of(row), axis_of(column));
    let count = |a: usize| (((hi[a] - lo[a]) / step).round() as usize + 1).max(1);
    let mut origin = center;
    origin[ra] = if row[ra] > 0.0 { lo[ra] } else { hi[ra] };
    origin[ca] = if column[ca] > 0.0 { lo[ca] } else { hi[ca] };
    PlaneSpec {
        origin,
        row,
        column,
        spacing: [step, step],
        rows: count(ca),
        columns: count(ra),
    }
}

/// How a slab's samples along the normal combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlabMode {
    Mip,
    MinIp,
    Average,
}

/// A slab `thickness_mm` thick about the plane, sampled every `step_mm`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slab {
    pub thickness_mm: f64,
    pub step_mm: f64,
    pub mode: SlabMode,
}

/// The offsets (mm along the normal) a slab samples: one for a slab up to one step, else
/// ⌈thickness / step⌉ spread evenly over it (as `slabOffsets` in the UI).
pub fn slab_offsets(thickness: f64, step: f64) -> Vec<f64> {
    let n = if thickness <= step {
        1
    } else {
        (thickness / step - 1e-9).ceil() as usize
    };
    if n == 1 {
        return vec![0.0];
    }
    let gap = thickness / n as f64;
    (0..n)
        .map(|k| (k as f64 - (n as f64 - 1.0) / 2.0) * gap)
        .collect()
}

/// Samples `plane` through `volume`: modality values (HU for CT) row by row, NaN where the
/// plane leaves the volume. With a slab, each pixel combines the samples along the normal
/// that fall inside the volume.
pub fn reformat(
    volume: &Volume,
    g: &VolumeGeometry,
    plane: &PlaneSpec,
    slab: Option<Slab>,
) -> Vec<f32> {
    let rescale: Vec<(f32, f32)> = volume
        .rescale
        .iter()
        .map(|r| (r.slope as f32, r.intercept as f32))
        .collect();
    macro_rules! sample {
        ($a:expr) => {
            $a.as_slice()
                .map(|d| sample_plane(d, g, &rescale, plane, slab))
        };
    }
    let out = match &volume.data {
        VolumeData::U8(a) => sample!(a),
        VolumeData::I8(a) => sample!(a),
        VolumeData::U16(a) => sample!(a),
        VolumeData::I16(a) => sample!(a),
        VolumeData::U32(a) => sample!(a),
        VolumeData::I32(a) => sample!(a),
    };
    out.expect("volumes are loaded in standard layout")
}

/// Samples `plane` through a map of the volume's grid (slices × rows × columns, e.g. an AI
/// heatmap quantised to u8) as [`reformat`] samples the volume: NaN outside it. `None` when
/// `values` is not of the grid's size.
pub fn reformat_map(
    values: &[u8],
    g: &VolumeGeometry,
    plane: &PlaneSpec,
    slab: Option<Slab>,
) -> Option<Vec<f32>> {
    let (slices, rows, columns) = g.dims;
    (values.len() == slices * rows * columns).then(|| sample_plane(values, g, &[], plane, slab))
}

fn sample_plane<T: Copy + Into<f64> + Sync>(
    data: &[T],
    g: &VolumeGeometry,
    rescale: &[(f32, f32)],
    plane: &PlaneSpec,
    slab: Option<Slab>,
) -> Vec<f32> {
    let offsets = slab.map_or_else(|| vec![0.0], |s| slab_offsets(s.thickness_mm, s.step_mm));
    let mode = slab.map_or(SlabMode::Mip, |s| s.mode);
    let normal = plane.normal();
    // The voxel-space steps of one pixel along the plane's row and column and one offset.
    let step_i = g.voxel_of([0, 1, 2].map(|a| g.origin[a] + plane.row[a] * plane.spacing[1]));
    let step_j = g.voxel_of([0, 1, 2].map(|a| g.origin[a] + plane.column[a] * plane.spacing[0]));
    let step_n = g.voxel_of([0, 1, 2].map(|a| g.origin[a] + normal[a]));
    let start = g.voxel_of(plane.origin);
    let mut out = vec![f32::NAN; plane.rows * plane.columns];
    out.par_chunks_mut(plane.columns)
        .enumerate()
        .for_each(|(j, line)| {
            for (i, px) in line.iter_mut().enumerate() {
                let base =
                    [0, 1, 2].map(|a| start[a] + step_i[a] * i as f64 + step_j[a] * j as f64);
                let mut acc: Option<f32> = None;
                let mut n = 0u32;
                for &o in &offsets {
                    let v = [0, 1, 2].map(|a| base[a] + step_n[a] * o);
                    let Some(s) = trilinear(data, g.dims, rescale, v) else {
                        continue;
                    };
                    n += 1;
                    acc = Some(match (acc, mode) {
                        (None, _) => s,
                        (Some(a), SlabMode::Mip) => a.max(s),
                        (Some(a), SlabMode::MinIp) => a.min(s),
                        (Some(a), SlabMode::Average) => a + s,
                    });
                }
                if let Some(a) = acc {
                    *px = if mode == SlabMode::Average {
                        a / n as f32
                    } else {
                        a
                    };
                }
            }
        });
    out
}

/// The modality value at continuous voxel (i, j, k), or `None` outside the volume. An axis of
/// one voxel is sampled at that voxel only.
fn trilinear<T: Copy + Into<f64>>(
    data: &[T],
    (slices, rows, columns): (usize, usize, usize),
    rescale: &[(f32, f32)],
    [i, j, k]: [f64; 3],
) -> Option<f32> {
    const EDGE: f64 = 1e-6;
    let inside = |x: f64, n: usize| x >= -EDGE && x <= (n as f64 - 1.0) + EDGE;
    if !(inside(i, columns) && inside(j, rows) && inside(k, slices)) {
        return None;
    }
    let split = |x: f64, n: usize| {
        let x = x.clamp(0.0, (n - 1) as f64);
        let lo = (x.floor() as usize).min(n.saturating_sub(2));
        let hi = (lo + 1).min(n - 1);
        (lo, hi, (x - lo as f64) as f32)
    };
    let (i0, i1, fi) = split(i, columns);
    let (j0, j1, fj) = split(j, rows);
    let (k0, k1, fk) = split(k, slices);
    let at = |k: usize, j: usize, i: usize| {
        let (slope, intercept) = rescale.get(k).copied().unwrap_or((1.0, 0.0));
        data[(k * rows + j) * columns + i].into() as f32 * slope + intercept
    };
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let plane = |k: usize| {
        lerp(
            lerp(at(k, j0, i0), at(k, j0, i1), fi),
            lerp(at(k, j1, i0), at(k, j1, i1), fi),
            fj,
        )
    };
    Some(lerp(plane(k0), plane(k1), fk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voxel_and_patient_coordinates_invert_each_other_on_a_tilted_grid() {
        let t = 20f64.to_radians();
        let g = VolumeGeometry::new(
            [10.0, -20.0, 5.0],
            [1.0, 0.0, 0.0],
            [0.0, t.cos(), -t.sin()],
            [0.8, 0.5],
            [0.0, 0.0, 3.0],
            (10, 20, 30),
        )
        .unwrap();
        for (i, j, k) in [(0.0, 0.0, 0.0), (3.5, 7.25, 2.0), (29.0, 19.0, 9.0)] {
            let p = g.patient_of(i, j, k);
            let v = g.voxel_of(p);
            for (a, b) in v.iter().zip([i, j, k]) {
                assert!((a - b).abs() < 1e-9, "{v:?} vs {:?}", (i, j, k));
            }
        }
        assert!(
            VolumeGeometry::new(
                [0.0; 3],
                [1.0, 0.0, 0.0],
                [1.0, 0.0, 0.0],
                [1.0, 1.0],
                [0.0, 0.0, 1.0],
                (1, 1, 1)
            )
            .is_none()
        );
    }

    #[test]
    fn slabs_are_sampled_evenly_about_the_plane() {
        assert_eq!(slab_offsets(2.0, 2.5), vec![0.0]);
        assert_eq!(slab_offsets(10.0, 2.5), vec![-3.75, -1.25, 1.25, 3.75]);
        assert_eq!(slab_offsets(9.0, 2.5), vec![-3.375, -1.125, 1.125, 3.375]);
    }

    #[test]
    fn trilinear_interpolates_between_voxels_and_refuses_outside() {
        // 2 × 2 × 2, values 0..8, slice 1 rescaled ×2.
        let data: Vec<u16> = (0..8).collect();
        let rescale = [(1.0, 0.0), (2.0, 0.0)];
        let v = |p| trilinear(&data, (2, 2, 2), &rescale, p);
        assert_eq!(v([0.0, 0.0, 0.0]), Some(0.0));
        assert_eq!(v([1.0, 1.0, 1.0]), Some(14.0));
        // Halfway along i on slice 0, row 0: (0 + 1) / 2.
        assert_eq!(v([0.5, 0.0, 0.0]), Some(0.5));
        // Centre: mean of slice 0 (1.5) and slice 1 (2 × 5.5).
        assert_eq!(v([0.5, 0.5, 0.5]), Some((1.5 + 11.0) / 2.0));
        assert_eq!(v([1.1, 0.0, 0.0]), None);
        assert_eq!(v([0.0, -0.1, 0.0]), None);
    }
}
