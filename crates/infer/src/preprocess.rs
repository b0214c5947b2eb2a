//! Pre-processing as the manifest declares it: window or clip, normalise, resize, and lay the
//! channels out as the model expects. Kept free of DICOM types: it takes modality values (HU
//! for CT), so the same code serves every source. `scripts/reference/preprocess.py` is the
//! numpy reference the tests compare it with.

use crate::manifest::{Layout, Normalise, Preprocess, WindowSpec};

/// One slice of modality values, row-major.
#[derive(Debug, Clone, Copy)]
pub struct SliceValues<'a> {
    pub rows: usize,
    pub columns: usize,
    pub values: &'a [f32],
}

/// How model-space pixels map back to image pixels (for turning outputs into findings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizeMap {
    pub image: (usize, usize),
    pub model: (usize, usize),
}

impl ResizeMap {
    /// The image pixel (row, column), fractional, under the centre of model pixel (r, c),
    /// with half-pixel centres as in the resize itself.
    pub fn to_image(&self, r: f64, c: f64) -> (f64, f64) {
        let sy = self.image.0 as f64 / self.model.0 as f64;
        let sx = self.image.1 as f64 / self.model.1 as f64;
        ((r + 0.5) * sy - 0.5, (c + 0.5) * sx - 0.5)
    }
}

/// The value ranges each channel is clipped to, from the manifest: one per window, or the
/// clip range, or none (values pass through).
fn channel_ranges(p: &Preprocess, channels: usize) -> Vec<Option<(f64, f64)>> {
    let range = |w: &WindowSpec| Some((w.center - w.width / 2.0, w.center + w.width / 2.0));
    match (p.windows.as_slice(), p.clip) {
        ([], Some([lo, hi])) => vec![Some((lo, hi)); channels],
        ([], None) => vec![None; channels],
        ([one], _) => vec![range(one); channels],
        (many, _) => many.iter().map(range).collect(),
    }
}

fn map_value(x: f64, range: Option<(f64, f64)>, normalise: Normalise) -> f32 {
    let Some((lo, hi)) = range else {
        return x as f32;
    };
    let clipped = x.clamp(lo, hi);
    let unit = (clipped - lo) / (hi - lo).max(f64::MIN_POSITIVE);
    (match normalise {
        Normalise::None => clipped,
        Normalise::MinMax => unit,
        Normalise::MeanStd { mean, std } => (unit - mean) / std,
    }) as f32
}

/// The size a `(rows, columns)` slice with pixel `spacing` (mm, between rows then between
/// columns) takes when resampled to `target` spacing: the same field of view, rounded to whole
/// pixels, at least one.
pub fn resampled_size(
    (rows, columns): (usize, usize),
    spacing: [f64; 2],
    target: [f64; 2],
) -> [usize; 2] {
    let n = |count: usize, from: f64, to: f64| ((count as f64 * from / to).round() as usize).max(1);
    [
        n(rows, spacing[0], target[0]),
        n(columns, spacing[1], target[1]),
    ]
}

/// Bilinear resize with half-pixel centres (as torch `align_corners=False` and OpenCV
/// `INTER_LINEAR`), edges clamped.
pub fn resize_bilinear(
    src: &[f32],
    rows: usize,
    columns: usize,
    out_rows: usize,
    out_columns: usize,
) -> Vec<f32> {
    if (rows, columns) == (out_rows, out_columns) {
        return src.to_vec();
    }
    let sy = rows as f64 / out_rows as f64;
    let sx = columns as f64 / out_columns as f64;
    let axis = |i: usize, scale: f64, n: usize| {
        let pos = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (pos.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        (i0, i1, pos - i0 as f64)
    };
    let xs: Vec<(usize, usize, f64)> = (0..out_columns).map(|c| axis(c, sx, columns)).collect();
    let mut out = Vec::with_capacity(out_rows * out_columns);
    for r in 0..out_rows {
        let (y0, y1, fy) = axis(r, sy, rows);
        for &(x0, x1, fx) in &xs {
            let at = |y: usize, x: usize| f64::from(src[y * columns + x]);
            let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
            let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
            out.push((top * (1.0 - fy) + bottom * fy) as f32);
        }
    }
    out
}

/// Builds the model input for one position from `slices` (one for 2D or several windows,
/// 2·neighbours + 1 for 2.5D, centre in the middle) in the manifest's layout, batch size 1.
/// Returns the tensor shape, the data and the resize map.
pub fn prepare(
    p: &Preprocess,
    layout: Layout,
    channels: usize,
    slices: &[SliceValues<'_>],
) -> Result<(Vec<usize>, Vec<f32>, ResizeMap), String> {
    let first = slices.first().ok_or("no slice to prepare")?;
    let (rows, columns) = (first.rows, first.columns);
    if slices
        .iter()
        .any(|s| (s.rows, s.columns) != (rows, columns) || s.values.len() != rows * columns)
    {
        return Err("the slices differ in size".into());
    }
    let (out_rows, out_columns) = p.resize.map_or((rows, columns), |[r, c]| (r, c));
    let ranges = channel_ranges(p, channels);
    if ranges.len() != channels {
        return Err(format!(
            "{} window(s) for {channels} channel(s)",
            ranges.len()
        ));
    }
    // Channel k reads slice k when there is one per channel (2.5D), else the single slice.
    // Each plane is mapped (and resized) once, straight into the tensor when it can be: this
    // runs for every slice of a series, so no copy that is not needed.
    let n = out_rows * out_columns;
    let resized = (out_rows, out_columns) != (rows, columns);
    let plane = |k: usize| -> &[f32] {
        if slices.len() == channels {
            slices[k].values
        } else {
            first.values
        }
    };
    // Channel k's plane, mapped and resized, appended to `out`.
    let map_into = |k: usize, out: &mut Vec<f32>| {
        let values = plane(k)
            .iter()
            .map(|&x| map_value(f64::from(x), ranges[k], p.normalise));
        if resized {
            let mapped: Vec<f32> = values.collect();
            out.extend_from_slice(&resize_bilinear(
                &mapped,
                rows,
                columns,
                out_rows,
                out_columns,
            ));
        } else {
            out.extend(values);
        }
    };
    let (shape, data) = match layout {
        Layout::Nchw => {
            let mut data = Vec::with_capacity(n * channels);
            (0..channels).for_each(|k| map_into(k, &mut data));
            (vec![1, channels, out_rows, out_columns], data)
        }
        Layout::Nhwc => {
            let planes: Vec<Vec<f32>> = (0..channels)
                .map(|k| {
                    let mut plane = Vec::with_capacity(n);
                    map_into(k, &mut plane);
                    plane
                })
                .collect();
            let mut data = Vec::with_capacity(n * channels);
            for i in 0..n {
                data.extend(planes.iter().map(|p| p[i]));
            }
            (vec![1, out_rows, out_columns, channels], data)
        }
        Layout::Ncdhw => return Err("3D patches are not prepared by the slice pipeline".into()),
    };
    Ok((
        shape,
        data,
        ResizeMap {
            image: (rows, columns),
            model: (out_rows, out_columns),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_then_min_max_maps_the_window_to_unit_range() {
        let w = Some((-160.0, 240.0)); // abdomen 40/400
        assert_eq!(map_value(-1000.0, w, Normalise::MinMax), 0.0);
        assert_eq!(map_value(40.0, w, Normalise::MinMax), 0.5);
        assert_eq!(map_value(2000.0, w, Normalise::MinMax), 1.0);
        assert_eq!(
            map_value(
                40.0,
                w,
                Normalise::MeanStd {
                    mean: 0.5,
                    std: 0.25
                }
            ),
            0.0
        );
        assert_eq!(map_value(40.0, None, Normalise::MinMax), 40.0);
    }

    #[test]
    fn resampling_keeps_the_field_of_view() {
        // 512² at 0.7 mm → 1.4 mm: 256²; non-square pixels resample each axis on its own.
        assert_eq!(
            resampled_size((512, 512), [0.7, 0.7], [1.4, 1.4]),
            [256, 256]
        );
        assert_eq!(resampled_size((100, 80), [0.5, 1.0], [1.0, 1.0]), [50, 80]);
        assert_eq!(resampled_size((3, 3), [0.1, 0.1], [5.0, 5.0]), [1, 1]);
    }

    #[test]
    fn bilinear_resize_uses_half_pixel_centres() {
        // 2×2 → 4×4: the corners keep their values; inner pixels interpolate by quarters.
        let out = resize_bilinear(&[0.0, 4.0, 8.0, 12.0], 2, 2, 4, 4);
        assert_eq!(&out[..4], &[0.0, 1.0, 3.0, 4.0]);
        assert_eq!(&out[12..], &[8.0, 9.0, 11.0, 12.0]);
        let map = ResizeMap {
            image: (2, 2),
            model: (4, 4),
        };
        assert_eq!(map.to_image(0.0, 0.0), (-0.25, -0.25));
        assert_eq!(map.to_image(3.0, 3.0), (1.25, 1.25));
    }
}
