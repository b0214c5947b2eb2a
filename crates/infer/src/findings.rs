//! From a model's probability maps to findings a physician can decide on: threshold, connected
//! components (3D across slices), minimum size, a score per finding, and geometry in voxels and
//! in patient space (LPS, mm).
//!
//! JSON form (serde): a [`Finding`] is an object with `label`, `score`, `mask` (per-slice
//! run-length encoding), `bbox_voxels` (`[slice0, row0, col0, slice1, row1, col1]`, inclusive),
//! `centroid_voxels` (`[slice, row, column]`), `centroid_lps_mm`, `size` (`longest_diameter_mm`,
//! `area_mm2` for one slice, `volume_mm3`), `slices` (first and last slice index), `model`
//! (id, version, sha256, execution provider, thresholds) and the input `series_uid` and
//! `instance_uids` of the slices it touches; heatmap models add `image_score`. For images
//! without patient geometry (projection radiographs), `centroid_lps_mm` is in image millimetres
//! (x along the rows from the first pixel, y down the columns, z the image index). A finding of a
//! classification model covers whole images: its `mask` is empty and its box spans the image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a voxel is in the patient: slice origin, row and column directions and spacings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceGeometry {
    /// Image Position (Patient) of the slice's first pixel, mm.
    pub position: [f64; 3],
    /// Direction of increasing column index, then of increasing row index.
    pub row_direction: [f64; 3],
    pub column_direction: [f64; 3],
    /// Between rows, between columns (mm).
    pub pixel_spacing: [f64; 2],
}

impl SliceGeometry {
    /// LPS position of (row, column) on this slice.
    pub fn to_lps(&self, row: f64, column: f64) -> [f64; 3] {
        let [dr, dc] = self.pixel_spacing;
        std::array::from_fn(|i| {
            self.position[i]
                + self.row_direction[i] * dc * column
                + self.column_direction[i] * dr * row
        })
    }
}

/// The model that produced a finding: part of the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub id: String,
    pub version: String,
    pub sha256: String,
    pub execution_provider: String,
    /// Label → threshold used.
    pub thresholds: BTreeMap<String, f64>,
}

/// Runs of set pixels on one slice: `(start, length)` in row-major pixel index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceMask {
    pub slice: u32,
    pub runs: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingSize {
    pub longest_diameter_mm: f64,
    /// On its largest slice.
    pub area_mm2: f64,
    pub volume_mm3: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub label: String,
    /// Max (or mean, as the manifest says) probability inside the finding.
    pub score: f64,
    /// Mask, box, centroid, size and slice range (flattened into the finding's JSON).
    #[serde(flatten)]
    pub geometry: ComponentGeometry,
    pub model: ModelRef,
    pub series_uid: String,
    pub instance_uids: Vec<String>,
    /// Heatmap models: the image-level score of the label on the finding's slices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_score: Option<f64>,
}

/// A probability map for one label over a stack: slices × rows × columns, row-major.
#[derive(Debug, Clone, Copy)]
pub struct ProbabilityVolume<'a> {
    pub slices: usize,
    pub rows: usize,
    pub columns: usize,
    pub values: &'a [f32],
}

/// Thresholds a probability volume and returns each 26-connected component (3D) or
/// 8-connected component per slice (2D), as lists of voxel indices, with its score.
pub fn components(
    p: ProbabilityVolume<'_>,
    threshold: f32,
    in_3d: bool,
    mean_score: bool,
) -> Vec<(Vec<usize>, f64)> {
    // Only voxels at or above the threshold take part: collect them in one pass over the map (a
    // handful of thousands out of millions), then flood-fill among them. No whole-volume
    // "visited" array is allocated.
    let above = above_threshold(p.values, threshold);
    components_of(p.sparse(&above), in_3d, mean_score)
}

impl ProbabilityVolume<'_> {
    /// The same volume's voxels `above` a threshold (see [`above_threshold`]).
    pub fn sparse<'b>(&self, above: &'b [(usize, f32)]) -> SparseProbabilities<'b> {
        SparseProbabilities {
            slices: self.slices,
            rows: self.rows,
            columns: self.columns,
            above,
        }
    }
}

/// The (index, value) of every value at or above `threshold`, in index order.
pub fn above_threshold(values: &[f32], threshold: f32) -> Vec<(usize, f32)> {
    values
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v >= threshold)
        .map(|(i, &v)| (i, v))
        .collect()
}

/// The voxels of a probability volume at or above a threshold, as (voxel index, probability)
/// in increasing index order: all that components and scores need, without the whole volume.
#[derive(Debug, Clone, Copy)]
pub struct SparseProbabilities<'a> {
    pub slices: usize,
    pub rows: usize,
    pub columns: usize,
    pub above: &'a [(usize, f32)],
}

/// [`components`] of the voxels already thresholded.
pub fn components_of(
    p: SparseProbabilities<'_>,
    in_3d: bool,
    mean_score: bool,
) -> Vec<(Vec<usize>, f64)> {
    let plane = p.rows * p.columns;
    let above: Vec<usize> = p.above.iter().map(|&(i, _)| i).collect();
    let position: std::collections::HashMap<usize, usize> =
        above.iter().enumerate().map(|(k, &v)| (v, k)).collect();
    let mut seen = vec![false; above.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for (k, &start) in above.iter().enumerate() {
        if seen[k] {
            continue;
        }
        seen[k] = true;
        stack.push(start);
        let mut voxels = Vec::new();
        while let Some(v) = stack.pop() {
            voxels.push(v);
            let (s, r, c) = (v / plane, (v % plane) / p.columns, v % p.columns);
            let ds: &[i64] = if in_3d { &[-1, 0, 1] } else { &[0] };
            for &dz in ds {
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (z, y, x) = (s as i64 + dz, r as i64 + dy, c as i64 + dx);
                        if z < 0
                            || y < 0
                            || x < 0
                            || z >= p.slices as i64
                            || y >= p.rows as i64
                            || x >= p.columns as i64
                        {
                            continue;
                        }
                        let w = z as usize * plane + y as usize * p.columns + x as usize;
                        if let Some(&j) = position.get(&w)
                            && !seen[j]
                        {
                            seen[j] = true;
                            stack.push(w);
                        }
                    }
                }
            }
        }
        voxels.sort_unstable();
        let probs = voxels.iter().map(|v| f64::from(p.above[position[v]].1));
        let score = if mean_score {
            probs.sum::<f64>() / voxels.len() as f64
        } else {
            probs.fold(0.0, f64::max)
        };
        out.push((voxels, score));
    }
    out
}

/// Where a finding is and how big.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentGeometry {
    pub mask: Vec<SliceMask>,
    pub bbox_voxels: [u32; 6],
    pub centroid_voxels: [f64; 3],
    pub centroid_lps_mm: [f64; 3],
    pub size: FindingSize,
    /// First and last slice index (in the stack's display order).
    pub slices: [u32; 2],
}

/// Geometry and size of a component. `geometry[s]` is slice `s`'s geometry; `slice_spacing` is
/// the distance between slices (mm, for volumes).
pub fn describe(
    voxels: &[usize],
    rows: usize,
    columns: usize,
    geometry: &[SliceGeometry],
    slice_spacing: f64,
) -> ComponentGeometry {
    let plane = rows * columns;
    let mut per_slice: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &v in voxels {
        per_slice.entry(v / plane).or_default().push(v % plane);
    }
    let mut bbox = [u32::MAX, u32::MAX, u32::MAX, 0, 0, 0];
    let mut sum = [0.0f64; 3];
    let mut lps_sum = [0.0f64; 3];
    let mut max_area = 0.0f64;
    let mut volume = 0.0;
    let mut masks = Vec::new();
    let mut points_mm = Vec::new();
    for (&s, pixels) in &per_slice {
        let g = &geometry[s.min(geometry.len() - 1)];
        let pixel_area = g.pixel_spacing[0] * g.pixel_spacing[1];
        let area = pixels.len() as f64 * pixel_area;
        max_area = max_area.max(area);
        volume += area * slice_spacing.abs().max(f64::MIN_POSITIVE);
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &px in pixels {
            let (r, c) = (px / columns, px % columns);
            bbox = [
                bbox[0].min(s as u32),
                bbox[1].min(r as u32),
                bbox[2].min(c as u32),
                bbox[3].max(s as u32),
                bbox[4].max(r as u32),
                bbox[5].max(c as u32),
            ];
            sum[0] += s as f64;
            sum[1] += r as f64;
            sum[2] += c as f64;
            let p = g.to_lps(r as f64, c as f64);
            for i in 0..3 {
                lps_sum[i] += p[i];
            }
            points_mm.push(p);
            match runs.last_mut() {
                Some((start, len)) if *start + *len == px as u32 => *len += 1,
                _ => runs.push((px as u32, 1)),
            }
        }
        masks.push(SliceMask {
            slice: s as u32,
            runs,
        });
    }
    let n = voxels.len().max(1) as f64;
    let centroid = [sum[0] / n, sum[1] / n, sum[2] / n];
    let centroid_lps = [lps_sum[0] / n, lps_sum[1] / n, lps_sum[2] / n];
    // Longest diameter: the largest distance between two voxel centres (plus one voxel, so a
    // one-pixel finding measures one pixel), over boundary candidates when the finding is big.
    let step = (points_mm.len() / 2000).max(1);
    let sample: Vec<[f64; 3]> = points_mm.iter().step_by(step).copied().collect();
    let mut longest = 0.0f64;
    for (i, a) in sample.iter().enumerate() {
        for b in &sample[i + 1..] {
            let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
            longest = longest.max(d);
        }
    }
    let pixel = geometry
        .first()
        .map_or(1.0, |g| g.pixel_spacing[0].min(g.pixel_spacing[1]));
    let size = FindingSize {
        longest_diameter_mm: longest + pixel,
        area_mm2: max_area,
        volume_mm3: volume,
    };
    ComponentGeometry {
        slices: [bbox[0], bbox[3]],
        mask: masks,
        bbox_voxels: bbox,
        centroid_voxels: centroid,
        centroid_lps_mm: centroid_lps,
        size,
    }
}

/// What the post-processing of one label needs to know.
#[derive(Debug, Clone)]
pub struct LabelRule<'a> {
    pub label: &'a str,
    pub threshold: f64,
    /// Smallest finding kept: longest diameter (mm) for a single slice, volume (mm³) across
    /// slices when `in_3d`.
    pub min_size: f64,
    pub in_3d: bool,
    pub mean_score: bool,
}

/// Turns one label's probability volume into findings, highest score first.
pub fn findings_from_probabilities(
    p: ProbabilityVolume<'_>,
    rule: &LabelRule<'_>,
    cx: &FindingContext<'_>,
) -> Vec<Finding> {
    let above = above_threshold(p.values, rule.threshold as f32);
    findings_from_sparse(p.sparse(&above), rule, cx)
}

/// [`findings_from_probabilities`] of the voxels already thresholded at the rule's threshold.
pub fn findings_from_sparse(
    p: SparseProbabilities<'_>,
    rule: &LabelRule<'_>,
    cx: &FindingContext<'_>,
) -> Vec<Finding> {
    let mut out: Vec<Finding> = components_of(p, rule.in_3d, rule.mean_score)
        .into_iter()
        .filter_map(|(voxels, score)| {
            let g = describe(&voxels, p.rows, p.columns, cx.geometry, cx.slice_spacing);
            let size = if rule.in_3d {
                g.size.volume_mm3
            } else {
                g.size.longest_diameter_mm
            };
            (size >= rule.min_size).then(|| cx.finding(rule.label, score, g))
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// Where findings come from: the model, the series, and per-slice geometry and UIDs.
#[derive(Debug, Clone, Copy)]
pub struct FindingContext<'a> {
    pub model: &'a ModelRef,
    pub series_uid: &'a str,
    pub geometry: &'a [SliceGeometry],
    pub instance_uids: &'a [String],
    pub rows: usize,
    pub columns: usize,
    pub slice_spacing: f64,
}

impl FindingContext<'_> {
    fn finding(&self, label: &str, score: f64, geometry: ComponentGeometry) -> Finding {
        Finding {
            label: label.to_owned(),
            score,
            instance_uids: (geometry.slices[0]..=geometry.slices[1])
                .filter_map(|s| self.instance_uids.get(s as usize).cloned())
                .collect(),
            geometry,
            model: self.model.clone(),
            series_uid: self.series_uid.to_owned(),
            image_score: None,
        }
    }
}

/// Findings of an image-level score (classification): one per run of consecutive slices whose
/// score reaches the threshold, covering the whole image on those slices (empty mask), scored by
/// the run's highest score. `scores` has one value per slice.
pub fn findings_from_image_scores(
    scores: &[f32],
    label: &str,
    threshold: f64,
    cx: &FindingContext<'_>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut s = 0;
    while s < scores.len() {
        if f64::from(scores[s]) < threshold {
            s += 1;
            continue;
        }
        let first = s;
        while s < scores.len() && f64::from(scores[s]) >= threshold {
            s += 1;
        }
        let last = s - 1;
        let score = scores[first..=last]
            .iter()
            .fold(0.0f64, |m, &v| m.max(f64::from(v)));
        let (rows, columns) = (cx.rows.max(1), cx.columns.max(1));
        let middle = (first + last) / 2;
        let g = &cx.geometry[middle.min(cx.geometry.len().saturating_sub(1))];
        let centre = [(rows - 1) as f64 / 2.0, (columns - 1) as f64 / 2.0];
        let (h, w) = (
            rows as f64 * g.pixel_spacing[0],
            columns as f64 * g.pixel_spacing[1],
        );
        let n = (last - first + 1) as f64;
        let geometry = ComponentGeometry {
            mask: Vec::new(),
            bbox_voxels: [
                first as u32,
                0,
                0,
                last as u32,
                rows as u32 - 1,
                columns as u32 - 1,
            ],
            centroid_voxels: [(first + last) as f64 / 2.0, centre[0], centre[1]],
            centroid_lps_mm: g.to_lps(centre[0], centre[1]),
            size: FindingSize {
                longest_diameter_mm: (h * h + w * w).sqrt(),
                area_mm2: h * w,
                volume_mm3: h * w * n * cx.slice_spacing.abs(),
            },
            slices: [first as u32, last as u32],
        };
        out.push(cx.finding(label, score, geometry));
    }
    out
}

/// A detected box on one slice, in continuous image coordinates (pixel i spans [i, i + 1)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectedBox {
    pub slice: usize,
    pub label: usize,
    pub score: f32,
    /// Top row, left column, bottom row, right column.
    pub rows_columns: [f64; 4],
}

/// A finding per detected box: its pixels become the mask, so the box is drawn, measured and
/// placed in patient space like any other finding. Boxes below `min_size` (longest diameter, mm)
/// are dropped.
pub fn finding_from_box(
    b: &DetectedBox,
    label: &str,
    min_size: f64,
    cx: &FindingContext<'_>,
) -> Option<Finding> {
    // The pixels whose centres lie inside the box (at least one).
    let span = |a: f64, b: f64, n: usize| {
        let last = n.saturating_sub(1) as f64;
        let first = (a.min(b) - 0.5).ceil().clamp(0.0, last);
        let end = (a.max(b) - 0.5).floor().clamp(first, last);
        (first as usize, end as usize)
    };
    let [r0, c0, r1, c1] = b.rows_columns;
    let (r0, r1) = span(r0, r1, cx.rows);
    let (c0, c1) = span(c0, c1, cx.columns);
    let plane = cx.rows * cx.columns;
    let voxels: Vec<usize> = (r0..=r1)
        .flat_map(|r| (c0..=c1).map(move |c| b.slice * plane + r * cx.columns + c))
        .collect();
    let geometry = describe(&voxels, cx.rows, cx.columns, cx.geometry, cx.slice_spacing);
    (geometry.size.longest_diameter_mm >= min_size)
        .then(|| cx.finding(label, f64::from(b.score), geometry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axial(z: f64) -> SliceGeometry {
        SliceGeometry {
            position: [-10.0, -10.0, z],
            row_direction: [1.0, 0.0, 0.0],
            column_direction: [0.0, 1.0, 0.0],
            pixel_spacing: [0.5, 0.5],
        }
    }

    #[test]
    fn two_blobs_are_two_components_with_their_scores() {
        // 2 slices × 6 × 6; blob A spans both slices at (1,1); blob B on slice 1 at (4,4).
        let mut v = vec![0.0f32; 72];
        v[7] = 0.9; // s0 r1 c1
        v[36 + 7] = 0.7; // s1 r1 c1
        v[36 + 28] = 0.6; // s1 r4 c4
        let p = ProbabilityVolume {
            slices: 2,
            rows: 6,
            columns: 6,
            values: &v,
        };
        let c3 = components(p, 0.5, true, false);
        assert_eq!(c3.len(), 2);
        assert_eq!(c3[0].0, vec![7, 43]);
        assert_eq!(c3[0].1, 0.9f32 as f64);
        // In 2D the blob splits per slice.
        assert_eq!(components(p, 0.5, false, false).len(), 3);
        // Mean score.
        assert!((components(p, 0.5, true, true)[0].1 - (0.9f64 + 0.7) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn a_planted_sphere_becomes_one_finding_centred_inside_it() {
        // 9 slices 2 mm apart, 40×40 at 0.5 mm; a sphere of radius 4 mm at (0, 0, 8) mm, plus a
        // one-voxel speck that the minimum size removes.
        let (slices, n) = (9usize, 40usize);
        let geometry: Vec<SliceGeometry> = (0..slices).map(|s| axial(s as f64 * 2.0)).collect();
        let mut v = vec![0.0f32; slices * n * n];
        for (s, g) in geometry.iter().enumerate() {
            for r in 0..n {
                for c in 0..n {
                    let p = g.to_lps(r as f64, c as f64);
                    let d = (p[0].powi(2) + p[1].powi(2) + (p[2] - 8.0).powi(2)).sqrt();
                    if d <= 4.0 {
                        v[s * n * n + r * n + c] = (0.99 - d / 40.0) as f32;
                    }
                }
            }
        }
        v[2 * n * n + 3 * n + 3] = 0.95; // the speck
        let p = ProbabilityVolume {
            slices,
            rows: n,
            columns: n,
            values: &v,
        };
        let model = ModelRef {
            id: "m".into(),
            version: "1".into(),
            sha256: "0".repeat(64),
            execution_provider: "CPU".into(),
            thresholds: BTreeMap::from([("nodule".to_owned(), 0.5)]),
        };
        let uids: Vec<String> = (0..slices).map(|s| format!("1.2.{s}")).collect();
        let rule = LabelRule {
            label: "nodule",
            threshold: 0.5,
            min_size: 20.0,
            in_3d: true,
            mean_score: false,
        };
        let cx = FindingContext {
            model: &model,
            series_uid: "1.2",
            geometry: &geometry,
            instance_uids: &uids,
            rows: n,
            columns: n,
            slice_spacing: 2.0,
        };
        let found = findings_from_probabilities(p, &rule, &cx);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        let c = f.geometry.centroid_lps_mm;
        assert!(
            (c[0].powi(2) + c[1].powi(2) + (c[2] - 8.0).powi(2)).sqrt() < 1.0,
            "{c:?}"
        );
        assert!(
            (f.geometry.size.longest_diameter_mm - 8.0).abs() <= 1.5,
            "{:?}",
            f.geometry.size
        );
        assert_eq!(f.geometry.slices, [2, 6]);
        assert_eq!(
            f.instance_uids,
            vec!["1.2.2", "1.2.3", "1.2.4", "1.2.5", "1.2.6"]
        );
        assert!((f.score - 0.99).abs() < 0.01);
        // The JSON form carries the model reference.
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(json["model"]["execution_provider"], "CPU");
        assert_eq!(
            json["slices"],
            serde_json::json!([2, 6]),
            "geometry is flattened into the finding"
        );
    }

    #[test]
    fn geometry_of_a_square_finding() {
        // A 4×4 pixel square on slice 0, rows 2–5, columns 2–5 of a 10×10 slice.
        let mut voxels = Vec::new();
        for r in 2..6 {
            for c in 2..6 {
                voxels.push(r * 10 + c);
            }
        }
        let g = describe(&voxels, 10, 10, &[axial(5.0)], 2.0);
        assert_eq!(g.bbox_voxels, [0, 2, 2, 0, 5, 5]);
        assert_eq!(g.centroid_voxels, [0.0, 3.5, 3.5]);
        // Column 3.5 → x = -10 + 0.5·3.5; row 3.5 → y = -10 + 0.5·3.5.
        assert_eq!(g.centroid_lps_mm, [-8.25, -8.25, 5.0]);
        assert_eq!(g.size.area_mm2, 16.0 * 0.25);
        assert_eq!(g.size.volume_mm3, 4.0 * 2.0);
        // Diagonal between centres 3·√2·0.5 mm, plus one pixel.
        assert!((g.size.longest_diameter_mm - (3.0 * 2f64.sqrt() * 0.5 + 0.5)).abs() < 1e-9);
        assert_eq!(g.slices, [0, 0]);
        assert_eq!(g.mask[0].runs, vec![(22, 4), (32, 4), (42, 4), (52, 4)]);
    }
}
