//! Stored values → 8-bit display values: Modality LUT, VOI window, MONOCHROME1 inversion,
//! palette and colour. Used for PNG export, thumbnails and reference tests; the viewer does the
//! same mapping in its shader.

use std::path::Path;

use crate::decode::{Frame, Photometric, Pixels};
use crate::index::Rescale;
use crate::voi::{VoiLut, Window};

/// The VOI transform to display with: a window, or a VOI LUT from the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Voi<'a> {
    Window(Window),
    Lut(&'a VoiLut),
}

impl Voi<'_> {
    fn to_u8(self, x: f64) -> u8 {
        match self {
            Voi::Window(w) => w.to_u8(x),
            Voi::Lut(l) => l.to_u8(x),
        }
    }
}

/// A rendered image: 8-bit grey (1 channel) or RGB (3 channels), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

/// Renders a frame. Greyscale frames go through `rescale` and `window`; MONOCHROME1 is inverted
/// after windowing (PS3.3 C.11.2.1.2: the VOI output of MONOCHROME1 is shown inverted). Palette
/// frames are looked up; RGB frames are scaled to 8 bits.
pub fn render(frame: &Frame, rescale: Rescale, window: Window) -> Rendered {
    render_voi(frame, rescale, Voi::Window(window))
}

/// [`render`] with either a window or a VOI LUT.
pub fn render_voi(frame: &Frame, rescale: Rescale, voi: Voi<'_>) -> Rendered {
    let n = (frame.rows * frame.columns) as usize;
    let (channels, data) = match (&frame.pixels, &frame.palette) {
        (pixels, Some(palette)) if frame.photometric == Photometric::Palette => {
            let mut out = Vec::with_capacity(n * 3);
            for i in 0..n {
                out.extend_from_slice(&palette.lookup(pixels.get(i).unwrap_or(0)));
            }
            (3, out)
        }
        (Pixels::Rgb8(v), _) => (3, v.clone()),
        (Pixels::Rgb16(v), _) => {
            let shift = frame.bits_stored.saturating_sub(8).min(8);
            (3, v.iter().map(|&x| (x >> shift).min(255) as u8).collect())
        }
        (Pixels::Rgb32(v), _) => {
            let shift = u32::from(frame.bits_stored.saturating_sub(8)).min(24);
            (3, v.iter().map(|&x| (x >> shift).min(255) as u8).collect())
        }
        (pixels, _) => {
            let invert = frame.photometric == Photometric::Monochrome1;
            let out = (0..n)
                .map(|i| {
                    let stored = pixels.get(i).unwrap_or(0) as f64;
                    let v = voi.to_u8(rescale.apply(stored));
                    if invert { 255 - v } else { v }
                })
                .collect();
            (1, out)
        }
    };
    Rendered {
        width: frame.columns,
        height: frame.rows,
        channels,
        data,
    }
}

impl Rendered {
    /// Writes an 8-bit PNG.
    pub fn write_png(&self, path: &Path) -> Result<(), String> {
        let bytes = self.png_bytes()?;
        std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The image encoded as PNG.
    pub fn png_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(if self.channels == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| format!("cannot encode PNG: {e}"))?;
        writer
            .write_image_data(&self.data)
            .map_err(|e| format!("cannot encode PNG: {e}"))?;
        writer
            .finish()
            .map_err(|e| format!("cannot encode PNG: {e}"))?;
        Ok(out)
    }

    /// A copy at most `max` pixels on its longer side (box average), for thumbnails.
    pub fn downscaled(&self, max: u32) -> Rendered {
        let step = self.width.max(self.height).div_ceil(max.max(1)).max(1);
        if step == 1 {
            return self.clone();
        }
        let (w, h) = (self.width / step, self.height / step);
        let ch = usize::from(self.channels);
        let mut data = Vec::with_capacity((w * h) as usize * ch);
        for y in 0..h {
            for x in 0..w {
                for k in 0..ch {
                    let mut sum = 0u32;
                    for dy in 0..step {
                        for dx in 0..step {
                            let (sx, sy) = (x * step + dx, y * step + dy);
                            sum += u32::from(self.data[(sy * self.width + sx) as usize * ch + k]);
                        }
                    }
                    data.push((sum / (step * step)) as u8);
                }
            }
        }
        Rendered {
            width: w,
            height: h,
            channels: self.channels,
            data,
        }
    }
}

/// A window for images whose file gives none: the 0.5th to 99.5th percentile of the modality
/// values, so that a few extreme pixels (metal, padding) do not wash the image out.
pub fn auto_window(frame: &Frame, rescale: Rescale) -> Window {
    let n = frame.pixels.len();
    let step = (n / 65_536).max(1);
    let mut values: Vec<f64> = (0..n)
        .step_by(step)
        .filter_map(|i| frame.pixels.get(i))
        .map(|v| rescale.apply(v as f64))
        .collect();
    if values.is_empty() {
        return Window::linear(0.0, 1.0);
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.005), at(0.995));
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (values[0], values[values.len() - 1])
    };
    let width = (hi - lo).max(1.0);
    Window::linear(lo + width / 2.0, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pixels: Pixels, photometric: Photometric) -> Frame {
        Frame {
            rows: 1,
            columns: 3,
            photometric,
            bits_stored: 16,
            pixels,
            palette: None,
        }
    }

    #[test]
    fn ct_values_are_rescaled_to_hu_before_windowing() {
        // stored 0, 1024, 2048 with intercept -1024 → -1024, 0, 1024 HU
        let f = frame(Pixels::U16(vec![0, 1024, 2048]), Photometric::Monochrome2);
        let r = render(
            &f,
            Rescale {
                slope: 1.0,
                intercept: -1024.0,
            },
            Window::linear(0.0, 400.0),
        );
        assert_eq!(r.data, vec![0, 128, 255]);
    }

    #[test]
    fn monochrome1_is_inverted_after_windowing() {
        let f = frame(Pixels::U16(vec![0, 100, 200]), Photometric::Monochrome1);
        let r = render(&f, Rescale::IDENTITY, Window::linear(100.0, 200.0));
        assert_eq!(r.data, vec![255, 127, 0]);
    }

    #[test]
    fn auto_window_ignores_outliers() {
        let mut v = vec![100u16; 1000];
        v[0] = 60_000;
        for (i, x) in v.iter_mut().enumerate().skip(1) {
            *x = 100 + (i % 200) as u16;
        }
        let f = Frame {
            rows: 1,
            columns: 1000,
            ..frame(Pixels::U16(v), Photometric::Monochrome2)
        };
        let w = auto_window(&f, Rescale::IDENTITY);
        assert!(w.center > 150.0 && w.center < 250.0, "{w:?}");
        assert!(w.width < 300.0, "{w:?}");
    }
}
