//! 3D models on a whole stack: the grid of overlapping patches that covers it, and the blending
//! of their outputs back into one map per label, a few slices at a time.
//! `scripts/reference/sliding_window.py` is the numpy reference the tests compare it with.

use std::collections::VecDeque;

use crate::manifest::Blend;

/// Where patches of length `patch` start along an axis of length `n`, neighbours sharing
/// `overlap` of a patch: every `round(patch · (1 − overlap))` voxels, the last one flush with
/// the end. An axis shorter than the patch has one patch at 0 (padded past the end).
pub fn starts(n: usize, patch: usize, overlap: f64) -> Vec<usize> {
    if n <= patch {
        return vec![0];
    }
    let stride = ((patch as f64 * (1.0 - overlap)).round() as usize).max(1);
    let mut v: Vec<usize> = (0..)
        .map(|k| k * stride)
        .take_while(|&s| s + patch < n)
        .collect();
    v.push(n - patch);
    v
}

/// The weight of each voxel of a patch (slices × rows × columns, row-major).
pub fn weights(patch: [usize; 3], blend: Blend) -> Vec<f32> {
    let axis = |n: usize| -> Vec<f64> {
        match blend {
            Blend::Constant => vec![1.0; n],
            Blend::Gaussian => {
                let sigma = 0.125 * n as f64;
                let centre = n as f64 / 2.0;
                (0..n)
                    .map(|i| {
                        let d = i as f64 + 0.5 - centre;
                        (-d * d / (2.0 * sigma * sigma)).exp()
                    })
                    .collect()
            }
        }
    };
    let (z, y, x) = (axis(patch[0]), axis(patch[1]), axis(patch[2]));
    let mut w = Vec::with_capacity(patch.iter().product());
    for &gz in &z {
        for &gy in &y {
            w.extend(x.iter().map(|&gx| (gz * gy * gx) as f32));
        }
    }
    w
}

/// Every patch origin (slice, row, column) covering a `dims` volume, slice-major: all patches
/// starting at one slice come before any starting further on, which is what lets
/// [`Blender`] finish slices as it goes.
pub fn grid(dims: [usize; 3], patch: [usize; 3], overlap: f64) -> Vec<[usize; 3]> {
    let (zs, ys, xs) = (
        starts(dims[0], patch[0], overlap),
        starts(dims[1], patch[1], overlap),
        starts(dims[2], patch[2], overlap),
    );
    let mut v = Vec::with_capacity(zs.len() * ys.len() * xs.len());
    for &z in &zs {
        for &y in &ys {
            v.extend(xs.iter().map(|&x| [z, y, x]));
        }
    }
    v
}

/// Weighted sums of patch outputs over the slices still open: at most a patch's depth plus a
/// stride of slices × labels × rows × columns, never the whole stack.
#[derive(Debug)]
pub struct Blender {
    labels: usize,
    dims: [usize; 3],
    patch: [usize; 3],
    weights: Vec<f32>,
    /// Index of the slice `sums[0]` holds.
    first: usize,
    /// Per open slice: labels × rows × columns weighted sums, and rows × columns weight sums.
    sums: VecDeque<(Vec<f32>, Vec<f32>)>,
}

impl Blender {
    pub fn new(labels: usize, dims: [usize; 3], patch: [usize; 3], blend: Blend) -> Blender {
        Blender {
            labels,
            dims,
            patch,
            weights: weights(patch, blend),
            first: 0,
            sums: VecDeque::new(),
        }
    }

    /// Adds one patch's output (labels × patch voxels, the model's layout) at `origin`, and
    /// returns the slices no later patch can touch, finished: (slice, labels × rows × columns).
    /// Origins must come in [`grid`] order.
    pub fn add(&mut self, origin: [usize; 3], output: &[f32]) -> Vec<(usize, Vec<f32>)> {
        let finished = self.finish_below(origin[0]);
        let [pd, ph, pw] = self.patch;
        let [depth, rows, columns] = self.dims;
        let plane = rows * columns;
        let voxels = pd * ph * pw;
        let last = (origin[0] + pd).min(depth);
        while self.first + self.sums.len() < last {
            self.sums
                .push_back((vec![0.0; self.labels * plane], vec![0.0; plane]));
        }
        let height = ph.min(rows.saturating_sub(origin[1]));
        let width = pw.min(columns.saturating_sub(origin[2]));
        for dz in 0..(last - origin[0]) {
            let (values, weight_sums) = &mut self.sums[origin[0] + dz - self.first];
            for dy in 0..height {
                let row = (origin[1] + dy) * columns + origin[2];
                let at = dz * ph * pw + dy * pw;
                let w = &self.weights[at..at + width];
                for (sum, &wx) in weight_sums[row..row + width].iter_mut().zip(w) {
                    *sum += wx;
                }
                for l in 0..self.labels {
                    let out = &output[l * voxels + at..l * voxels + at + width];
                    let target = &mut values[l * plane + row..l * plane + row + width];
                    for ((t, &o), &wx) in target.iter_mut().zip(out).zip(w) {
                        *t += wx * o;
                    }
                }
            }
        }
        finished
    }

    /// The slices below `slice`, finished (weighted sums divided by the weights).
    fn finish_below(&mut self, slice: usize) -> Vec<(usize, Vec<f32>)> {
        let mut done = Vec::new();
        while self.first < slice {
            let Some((mut values, weight_sums)) = self.sums.pop_front() else {
                break;
            };
            let plane = weight_sums.len();
            for l in 0..self.labels {
                for (v, &w) in values[l * plane..(l + 1) * plane]
                    .iter_mut()
                    .zip(&weight_sums)
                {
                    *v /= w;
                }
            }
            done.push((self.first, values));
            self.first += 1;
        }
        done
    }

    /// Every slice still open, finished: call once all patches were added.
    pub fn finish(mut self) -> Vec<(usize, Vec<f32>)> {
        let end = self.first + self.sums.len();
        self.finish_below(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_cover_the_axis_with_the_last_patch_flush() {
        assert_eq!(starts(21, 8, 0.25), vec![0, 6, 12, 13]);
        assert_eq!(starts(40, 32, 0.25), vec![0, 8]);
        assert_eq!(starts(28, 32, 0.25), vec![0]);
        assert_eq!(starts(32, 32, 0.5), vec![0]);
        assert_eq!(starts(64, 32, 0.5), vec![0, 16, 32]);
        assert_eq!(starts(10, 3, 0.0), vec![0, 3, 6, 7]);
        // A stride of 2.5 rounds away from zero, to 3 (the numpy reference does the same).
        assert_eq!(starts(12, 5, 0.5), vec![0, 3, 6, 7]);
    }

    #[test]
    fn gaussian_weights_peak_in_the_middle_and_never_vanish() {
        let w = weights([4, 4, 4], Blend::Gaussian);
        let at = |z: usize, y: usize, x: usize| w[(z * 4 + y) * 4 + x];
        assert!(at(1, 1, 1) > at(0, 1, 1) && at(0, 1, 1) > at(0, 0, 0));
        assert_eq!(at(1, 2, 1), at(2, 1, 2)); // symmetric about the centre
        assert!(at(0, 0, 0) > 0.0);
        assert!(
            weights([2, 3, 4], Blend::Constant)
                .iter()
                .all(|&v| v == 1.0)
        );
    }

    #[test]
    fn blending_a_constant_field_gives_it_back_and_finishes_every_slice_once() {
        // Every patch says 3 for label 0 and its own origin's slice for label 1: label 0 comes
        // out 3 everywhere whatever the weights; every slice is returned exactly once, in order.
        let dims = [7, 5, 6];
        let patch = [3, 4, 4];
        let mut b = Blender::new(2, dims, patch, Blend::Gaussian);
        let mut out = Vec::new();
        for origin in grid(dims, patch, 0.5) {
            let n = patch.iter().product::<usize>();
            let mut values = vec![3.0; n];
            values.extend(std::iter::repeat_n(origin[0] as f32, n));
            out.extend(b.add(origin, &values));
        }
        out.extend(b.finish());
        assert_eq!(
            out.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            (0..7).collect::<Vec<_>>()
        );
        for (s, v) in &out {
            assert!(v[..30].iter().all(|&x| (x - 3.0).abs() < 1e-5), "slice {s}");
            // Label 1: a weighted mean of the origins of the patches covering slice s.
            assert!(
                v[30..]
                    .iter()
                    .all(|&x| x <= *s as f32 + 1e-5 && x + 2.0 >= *s as f32)
            );
        }
    }
}
