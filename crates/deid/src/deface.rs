//! Defacing a head CT or MR (PS3.15's Clean Recognizable Visual Features), in the manner of
//! quickshear (Schimke & Hale, 2011): find the intracranial space from the skull around it,
//! take the plane that touches the brain's outline on its anterior-inferior side (parallel to
//! the line from the brain's most anterior to its most inferior point, in the sagittal
//! projection), move it a margin away from the brain, and set every voxel beyond it to air.
//! The face (eyes, nose, mouth, chin) lies beyond; the brain and everything inside the skull
//! above the plane is left as it was.

/// Where a stack's voxels are: slice `k`'s first pixel at `positions[k]`, rows and columns
/// along `column_direction` and `row_direction` (DICOM's Image Orientation), LPS in mm.
#[derive(Debug, Clone)]
pub struct Grid {
    pub slices: usize,
    pub rows: usize,
    pub columns: usize,
    pub positions: Vec<[f64; 3]>,
    /// Direction of increasing column index.
    pub row_direction: [f64; 3],
    /// Direction of increasing row index.
    pub column_direction: [f64; 3],
    /// Between rows, between columns (mm).
    pub pixel_spacing: [f64; 2],
}

impl Grid {
    /// Patient position of voxel (slice, row, column).
    pub fn position(&self, k: usize, r: usize, c: usize) -> [f64; 3] {
        let p = self.positions[k];
        let (dr, dc) = (self.pixel_spacing[0], self.pixel_spacing[1]);
        std::array::from_fn(|i| {
            p[i] + self.row_direction[i] * dc * c as f64 + self.column_direction[i] * dr * r as f64
        })
    }

    fn voxel_mm3(&self) -> f64 {
        let along = if self.slices > 1 {
            let (a, b) = (self.positions[0], self.positions[self.slices - 1]);
            ((0..3).map(|i| (b[i] - a[i]).powi(2)).sum::<f64>()).sqrt() / (self.slices - 1) as f64
        } else {
            1.0
        };
        self.pixel_spacing[0] * self.pixel_spacing[1] * along
    }
}

/// The cut: voxels at patient position `p` with `normal · p > offset` are removed. `normal`
/// lies in the sagittal plane (no left-right part), pointing anterior-inferior.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FacePlane {
    pub normal: [f64; 3],
    pub offset: f64,
    /// The plane's tilt: 0° faces straight forward, 90° straight down.
    pub degrees_from_anterior: f64,
    /// The intracranial voxels found (the brain the plane keeps clear of).
    pub brain_voxels: usize,
    pub brain_ml: f64,
    /// The margin kept between the brain and the plane (mm).
    pub margin_mm: f64,
}

impl FacePlane {
    pub fn removes(&self, p: [f64; 3]) -> bool {
        (0..3).map(|i| self.normal[i] * p[i]).sum::<f64>() > self.offset
    }
}

/// HU limits: bone, and the soft tissue inside the skull.
const BONE_HU: f32 = 250.0;
const INTRACRANIAL_HU: std::ops::RangeInclusive<f32> = -10.0..=90.0;
/// Below this the intracranial space found is too small to be a brain (ml).
const MIN_BRAIN_ML: f64 = 150.0;
/// Above this it is not a brain (ml): adult intracranial volumes stay under about 2000.
const MAX_BRAIN_ML: f64 = 2500.0;

/// Per slice: the pixels enclosed by a barrier (not reachable from the image's edge without
/// crossing a pixel for which `barrier` is true), as a mask.
fn enclosed(barrier: impl Fn(usize) -> bool, rows: usize, columns: usize) -> Vec<bool> {
    let n = rows * columns;
    let mut outside = vec![false; n];
    let mut queue: Vec<usize> = Vec::new();
    let push = |i: usize, outside: &mut [bool], queue: &mut Vec<usize>| {
        if !outside[i] && !barrier(i) {
            outside[i] = true;
            queue.push(i);
        }
    };
    for c in 0..columns {
        push(c, &mut outside, &mut queue);
        push((rows - 1) * columns + c, &mut outside, &mut queue);
    }
    for r in 0..rows {
        push(r * columns, &mut outside, &mut queue);
        push(r * columns + columns - 1, &mut outside, &mut queue);
    }
    while let Some(i) = queue.pop() {
        let (r, c) = (i / columns, i % columns);
        if r > 0 {
            push(i - columns, &mut outside, &mut queue);
        }
        if r + 1 < rows {
            push(i + columns, &mut outside, &mut queue);
        }
        if c > 0 {
            push(i - 1, &mut outside, &mut queue);
        }
        if c + 1 < columns {
            push(i + 1, &mut outside, &mut queue);
        }
    }
    outside.into_iter().map(|o| !o).collect()
}

/// The largest 6-connected component of `mask` (slice-major, `plane` voxels per slice); with
/// one slice, the largest 4-connected region of an image.
pub fn largest_component(mask: &[bool], slices: usize, rows: usize, columns: usize) -> Vec<bool> {
    let plane = rows * columns;
    let mut label = vec![0u32; mask.len()];
    let mut best = (0u32, 0usize);
    let mut next = 0u32;
    let mut queue = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        queue.push(start);
        let mut size = 0;
        while let Some(i) = queue.pop() {
            size += 1;
            let (k, r, c) = (i / plane, (i % plane) / columns, i % columns);
            let mut visit = |j: usize| {
                if mask[j] && label[j] == 0 {
                    label[j] = next;
                    queue.push(j);
                }
            };
            if k > 0 {
                visit(i - plane);
            }
            if k + 1 < slices {
                visit(i + plane);
            }
            if r > 0 {
                visit(i - columns);
            }
            if r + 1 < rows {
                visit(i + columns);
            }
            if c > 0 {
                visit(i - 1);
            }
            if c + 1 < columns {
                visit(i + 1);
            }
        }
        if size > best.1 {
            best = (next, size);
        }
    }
    label.into_iter().map(|l| l != 0 && l == best.0).collect()
}

/// Finds the plane beyond which the face lies, from the HU values of a head CT (slice, row,
/// column order). `margin_mm` is kept between the brain and the plane.
/// The error says why no plane was found (not a head, too few slices).
pub fn face_plane(hu: &[f32], grid: &Grid, margin_mm: f64) -> Result<FacePlane, String> {
    let (s, rows, columns) = (grid.slices, grid.rows, grid.columns);
    let plane = rows * columns;
    if s < 8 || hu.len() != s * plane {
        return Err(format!(
            "defacing needs a volume of at least 8 slices ({s} given)"
        ));
    }
    // Intracranial soft tissue: in the HU range of brain and CSF, enclosed by bone on its
    // slice; then the largest connected piece (the brain; the eyes and sinuses are not
    // enclosed, or are smaller).
    let mut candidate = vec![false; hu.len()];
    for k in 0..s {
        let slice = &hu[k * plane..(k + 1) * plane];
        let inside = enclosed(|i| slice[i] >= BONE_HU, rows, columns);
        for (i, &v) in slice.iter().enumerate() {
            candidate[k * plane + i] = inside[i] && INTRACRANIAL_HU.contains(&v);
        }
    }
    plane_of_brain(&candidate, grid, margin_mm, "CT")
}

/// Finds the plane beyond which the face lies, from a T1-weighted head MR's values (slice, row,
/// column order), where the skull is dark: the head is what Otsu's threshold of the volume sets
/// apart from the background (with the dark parts it surrounds: skull, CSF, sinuses, eyes);
/// the skull is the head's dark pixels; the brain is the bright tissue they enclose on each
/// slice, its largest connected piece. The rest is as for CT ([`face_plane`]).
pub fn face_plane_mr(values: &[f32], grid: &Grid, margin_mm: f64) -> Result<FacePlane, String> {
    let (s, rows, columns) = (grid.slices, grid.rows, grid.columns);
    let plane = rows * columns;
    if s < 8 || values.len() != s * plane {
        return Err(format!(
            "defacing needs a volume of at least 8 slices ({s} given)"
        ));
    }
    let t = otsu(values);
    let mut candidate = vec![false; values.len()];
    for k in 0..s {
        let slice = &values[k * plane..(k + 1) * plane];
        let head = enclosed(|i| slice[i] >= t, rows, columns);
        let inside = enclosed(|i| head[i] && slice[i] < t, rows, columns);
        for (i, &v) in slice.iter().enumerate() {
            candidate[k * plane + i] = inside[i] && v >= t;
        }
    }
    plane_of_brain(&candidate, grid, margin_mm, "MR")
}

/// Otsu's threshold of `values` over 256 bins.
pub fn otsu(values: &[f32]) -> f32 {
    let (lo, hi) = values
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if values.is_empty() || hi <= lo {
        return lo;
    }
    let bin = |v: f32| ((((v - lo) / (hi - lo)) * 255.0).round() as usize).min(255);
    let mut hist = [0u64; 256];
    for &v in values {
        hist[bin(v)] += 1;
    }
    let total = values.len() as f64;
    let sum: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0usize);
    for (t, &c) in hist.iter().enumerate() {
        w0 += c as f64;
        sum0 += t as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum - sum0) / w1);
        let between = w0 * w1 * (m0 - m1).powi(2);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    lo + (best_t as f32 + 0.5) / 255.0 * (hi - lo)
}

/// The plane from the candidate intracranial voxels: their largest connected piece is the
/// brain, and the plane keeps `margin_mm` clear of its anterior-inferior side.
fn plane_of_brain(
    candidate: &[bool],
    grid: &Grid,
    margin_mm: f64,
    modality: &str,
) -> Result<FacePlane, String> {
    let (s, rows, columns) = (grid.slices, grid.rows, grid.columns);
    let plane = rows * columns;
    let brain = largest_component(candidate, s, rows, columns);
    let brain_voxels = brain.iter().filter(|&&b| b).count();
    let brain_ml = brain_voxels as f64 * grid.voxel_mm3() / 1000.0;
    if brain_ml < MIN_BRAIN_ML {
        return Err(format!(
            "no brain found ({brain_ml:.0} ml inside the skull, at least {MIN_BRAIN_ML:.0} \
             expected): not a head {modality}, or the skull is not in the images"
        ));
    }
    // More than any skull holds: what was found has spread beyond the skull (into the face,
    // through an opening the threshold missed), and a plane from it could keep the face.
    if brain_ml > MAX_BRAIN_ML {
        return Err(format!(
            "what was found inside the skull is {brain_ml:.0} ml, more than a skull holds \
             ({MAX_BRAIN_ML:.0} ml): the skull is not closed in the images"
        ));
    }
    // The brain in the sagittal projection: a = anterior (−y), s = superior (z).
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(brain_voxels);
    for (i, _) in brain.iter().enumerate().filter(|(_, b)| **b) {
        let p = grid.position(i / plane, (i % plane) / columns, i % columns);
        points.push((-p[1], p[2]));
    }
    let front = points
        .iter()
        .copied()
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .unwrap_or_default();
    let bottom = points
        .iter()
        .copied()
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .unwrap_or_default();
    // The normal of the line from the most anterior to the most inferior point, facing away
    // from the brain (anterior-inferior); straight forward-down when the two coincide.
    // The chord runs back and down (da ≤ 0, ds ≤ 0), so (−ds, da) faces forward and down.
    let (da, ds) = (bottom.0 - front.0, bottom.1 - front.1);
    let len = (da * da + ds * ds).sqrt();
    let (na, ns) = if len > 0.0 {
        (-ds / len, da / len)
    } else {
        (
            std::f64::consts::FRAC_1_SQRT_2,
            -std::f64::consts::FRAC_1_SQRT_2,
        )
    };
    // The support line of the brain with that normal, moved out by the margin.
    let support = points
        .iter()
        .map(|&(a, s)| na * a + ns * s)
        .fold(f64::NEG_INFINITY, f64::max);
    // In LPS: a = −y, s = z.
    Ok(FacePlane {
        normal: [0.0, -na, ns],
        offset: support + margin_mm,
        degrees_from_anterior: (-ns).atan2(na).to_degrees(),
        brain_voxels,
        brain_ml,
        margin_mm,
    })
}

/// Sets every voxel beyond `plane` to `air`; returns how many were changed.
pub fn apply<T: Copy + PartialEq>(
    values: &mut [T],
    grid: &Grid,
    plane: &FacePlane,
    air: T,
) -> usize {
    let per = grid.rows * grid.columns;
    let mut changed = 0;
    for (i, v) in values.iter_mut().enumerate() {
        let (k, r, c) = (i / per, (i % per) / grid.columns, i % grid.columns);
        if plane.removes(grid.position(k, r, c)) && *v != air {
            *v = air;
            changed += 1;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosed_pixels_are_those_inside_a_bone_ring() {
        // 7 × 7 with a bone ring at distance 2 from the centre; a gap makes it open.
        let mut hu = [0.0f32; 49];
        for r in 1..6 {
            for c in 1..6 {
                if r == 1 || r == 5 || c == 1 || c == 5 {
                    hu[r * 7 + c] = 1000.0;
                }
            }
        }
        let inside = enclosed(|i| hu[i] >= BONE_HU, 7, 7);
        assert!(inside[3 * 7 + 3] && inside[2 * 7 + 2]);
        assert!(!inside[0] && !inside[3 * 7]);
        hu[7 + 3] = 0.0;
        assert!(!enclosed(|i| hu[i] >= BONE_HU, 7, 7)[3 * 7 + 3]);
    }

    #[test]
    fn the_largest_component_wins() {
        let mut m = vec![false; 2 * 3 * 4];
        for i in [0, 1, 12, 13] {
            m[i] = true;
        }
        m[10] = true;
        let l = largest_component(&m, 2, 3, 4);
        assert_eq!(l.iter().filter(|&&b| b).count(), 4);
        assert!(!l[10]);
    }
}
