//! Window/level (VOI LUT functions of DICOM PS3.3 C.11.2.1.2) and the presets radiologists
//! expect on number keys.

use serde::Serialize;

/// The VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, specta::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoiFunction {
    /// The default when the attribute is absent (C.11.2.1.2.1).
    #[default]
    Linear,
    /// C.11.2.1.3.2: no half-value offsets; width may be below 1.
    LinearExact,
    /// C.11.2.1.3.1.
    Sigmoid,
}

/// A window: centre and width in the units after the Modality LUT (HU for CT).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, specta::Type)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiFunction,
}

impl Window {
    pub const fn linear(center: f64, width: f64) -> Self {
        Window {
            center,
            width,
            function: VoiFunction::Linear,
        }
    }

    /// Maps a modality value `x` to the output range `[y_min, y_max]`.
    ///
    /// Widths the standard does not allow (below 1 for LINEAR, not above 0 otherwise) are
    /// treated as the narrowest allowed width, a hard threshold at the centre, rather than
    /// producing NaN or a blank image: files with `WindowWidth = 0` exist.
    pub fn apply(&self, x: f64, y_min: f64, y_max: f64) -> f64 {
        let (c, range) = (self.center, y_max - y_min);
        match self.function {
            VoiFunction::Linear => {
                let w = self.width.max(1.0);
                if x <= c - 0.5 - (w - 1.0) / 2.0 {
                    y_min
                } else if x > c - 0.5 + (w - 1.0) / 2.0 {
                    y_max
                } else if w == 1.0 {
                    // The interval above is empty for w = 1; kept for completeness.
                    y_max
                } else {
                    ((x - (c - 0.5)) / (w - 1.0) + 0.5) * range + y_min
                }
            }
            VoiFunction::LinearExact => {
                let w = self.width.max(f64::MIN_POSITIVE);
                if x <= c - w / 2.0 {
                    y_min
                } else if x > c + w / 2.0 {
                    y_max
                } else {
                    ((x - c) / w + 0.5) * range + y_min
                }
            }
            VoiFunction::Sigmoid => {
                let w = self.width.max(f64::MIN_POSITIVE);
                range / (1.0 + (-4.0 * (x - c) / w).exp()) + y_min
            }
        }
    }

    /// The 8-bit display value of a modality value, rounded to nearest.
    pub fn to_u8(&self, x: f64) -> u8 {
        // In range by construction: apply() returns values in [0, 255].
        self.apply(x, 0.0, 255.0).round().clamp(0.0, 255.0) as u8
    }
}

/// A VOI LUT from the VOI LUT Sequence (0028,3010): a table from modality values to display
/// values (PS3.3 C.11.2.1.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiLut {
    /// The first input value mapped; inputs below map to the first entry, above to the last.
    pub first_mapped: i64,
    /// Bits of each output entry (the range is 0 to 2^bits - 1).
    pub bits: u16,
    pub data: Vec<u16>,
    pub explanation: String,
}

impl VoiLut {
    /// Output for modality value `x`, as a fraction of the LUT's range.
    pub fn apply(&self, x: f64) -> f64 {
        let last = self.data.len().saturating_sub(1) as i64;
        let i = (x.round() as i64 - self.first_mapped).clamp(0, last);
        let max = ((1u32 << self.bits.min(16)) - 1).max(1);
        f64::from(self.data.get(i as usize).copied().unwrap_or(0)) / f64::from(max)
    }

    pub fn to_u8(&self, x: f64) -> u8 {
        (self.apply(x) * 255.0).round().clamp(0.0, 255.0) as u8
    }
}

/// A named window a radiologist selects with a number key.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, specta::Type)]
pub struct WindowPreset {
    /// Short name shown on the viewport, e.g. "Lung".
    pub name: &'static str,
    /// The number key that selects it.
    pub key: u8,
    pub window: Window,
}

/// CT presets in Hounsfield units (centre / width), the values common to clinical workstations.
pub const CT_PRESETS: &[WindowPreset] = &[
    WindowPreset {
        name: "Lung",
        key: 1,
        window: Window::linear(-600.0, 1500.0),
    },
    WindowPreset {
        name: "Mediastinum",
        key: 2,
        window: Window::linear(50.0, 350.0),
    },
    WindowPreset {
        name: "Abdomen",
        key: 3,
        window: Window::linear(40.0, 400.0),
    },
    WindowPreset {
        name: "Liver",
        key: 4,
        window: Window::linear(30.0, 150.0),
    },
    WindowPreset {
        name: "Bone",
        key: 5,
        window: Window::linear(400.0, 1800.0),
    },
    WindowPreset {
        name: "Brain",
        key: 6,
        window: Window::linear(40.0, 80.0),
    },
    WindowPreset {
        name: "Stroke",
        key: 7,
        window: Window::linear(40.0, 40.0),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_window_matches_the_standard_at_its_edges() {
        // PS3.3 C.11.2.1.2.1 with c = 40, w = 400 (abdomen): the ramp spans (-160.5, 239.5].
        let w = Window::linear(40.0, 400.0);
        assert_eq!(w.apply(-161.0, 0.0, 255.0), 0.0);
        assert_eq!(w.apply(-160.5, 0.0, 255.0), 0.0);
        assert_eq!(w.apply(240.0, 0.0, 255.0), 255.0);
        // At the centre the output is (0.5 / 399 + 0.5) of the range.
        let mid = w.apply(40.0, 0.0, 255.0);
        assert!((mid - (0.5 / 399.0 + 0.5) * 255.0).abs() < 1e-9, "{mid}");
        assert_eq!(w.to_u8(40.0), 128);
    }

    #[test]
    fn lung_window_shows_air_black_and_soft_tissue_white() {
        let lung = CT_PRESETS[0].window;
        assert_eq!(CT_PRESETS[0].name, "Lung");
        assert_eq!(lung.to_u8(-1000.0), 60); // air is dark grey, not clipped, at W1500/L-600
        assert_eq!(lung.to_u8(-1400.0), 0);
        assert_eq!(lung.to_u8(200.0), 255);
    }

    #[test]
    fn zero_width_is_a_threshold_not_nan() {
        for function in [
            VoiFunction::Linear,
            VoiFunction::LinearExact,
            VoiFunction::Sigmoid,
        ] {
            let w = Window {
                center: 100.0,
                width: 0.0,
                function,
            };
            assert_eq!(w.to_u8(99.0), 0, "{function:?}");
            assert_eq!(w.to_u8(101.0), 255, "{function:?}");
        }
    }

    #[test]
    fn linear_exact_and_sigmoid_follow_their_formulas() {
        let exact = Window {
            center: 0.0,
            width: 100.0,
            function: VoiFunction::LinearExact,
        };
        assert_eq!(exact.apply(-50.0, 0.0, 1.0), 0.0);
        assert_eq!(exact.apply(25.0, 0.0, 1.0), 0.75);
        let sigmoid = Window {
            center: 0.0,
            width: 100.0,
            function: VoiFunction::Sigmoid,
        };
        assert_eq!(sigmoid.apply(0.0, 0.0, 1.0), 0.5);
        let expected = 1.0 / (1.0 + (-4.0_f64 * 25.0 / 100.0).exp());
        assert!((sigmoid.apply(25.0, 0.0, 1.0) - expected).abs() < 1e-12);
    }

    #[test]
    fn voi_lut_clamps_and_scales_to_its_bit_depth() {
        let lut = VoiLut {
            first_mapped: 10,
            bits: 8,
            data: vec![0, 128, 255],
            explanation: String::new(),
        };
        assert_eq!(lut.to_u8(0.0), 0);
        assert_eq!(lut.to_u8(11.0), 128);
        assert_eq!(lut.to_u8(99.0), 255);
    }

    #[test]
    fn presets_have_distinct_keys() {
        let mut keys: Vec<u8> = CT_PRESETS.iter().map(|p| p.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), CT_PRESETS.len());
    }
}
