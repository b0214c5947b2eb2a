//! The model contract: a TOML manifest beside each `.onnx` file says what the model is, what it
//! takes, how to prepare its input, what it returns and how to turn that into findings. A new
//! model is dropped in with a manifest and no code.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name Dokuei looks for in a model folder.
pub const MANIFEST_FILE: &str = "manifest.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model: Identity,
    pub input: InputSpec,
    #[serde(default)]
    pub preprocess: Preprocess,
    pub output: OutputSpec,
    pub labels: Vec<Label>,
    #[serde(default)]
    pub postprocess: Postprocess,
}

/// Who made the model, for what, and exactly which file it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub id: String,
    pub name: String,
    pub version: String,
    /// SHA-256 of the `.onnx` file, lower-case hex.
    pub sha256: String,
    /// The `.onnx` file, relative to the manifest.
    pub file: PathBuf,
    pub publisher: String,
    pub intended_use: String,
    pub modality: String,
    pub body_part: String,
    /// e.g. "demonstration — not for clinical use"; shown wherever the model's findings are.
    pub clinical_use: String,
    /// The model card, relative to the manifest.
    pub model_card: PathBuf,
}

impl Identity {
    /// Demonstration models carry a persistent "not for clinical use" banner.
    pub fn is_demonstration(&self) -> bool {
        let c = self.clinical_use.to_ascii_lowercase();
        c.contains("demonstration") || c.contains("not for clinical use")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    #[serde(rename = "NCHW")]
    Nchw,
    #[serde(rename = "NHWC")]
    Nhwc,
    #[serde(rename = "NCDHW")]
    Ncdhw,
}

impl Layout {
    pub fn rank(self) -> usize {
        match self {
            Layout::Nchw | Layout::Nhwc => 4,
            Layout::Ncdhw => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Float32,
    Float16,
    Uint8,
    Int64,
}

/// What the channels of the input hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// One windowed slice.
    OneWindow,
    /// The same slice under several windows (one per channel).
    Windows,
    /// Neighbouring slices (2.5D), the centre one in the middle channel.
    NeighbouringSlices,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Tensor name in the ONNX graph.
    pub name: String,
    pub layout: Layout,
    pub dtype: DType,
    /// Dimensions; -1 for a dynamic one (e.g. the batch).
    pub shape: Vec<i64>,
    pub channels: Channels,
}

/// How slices become model input: declared, not coded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Windows applied to modality values (HU for CT), one per channel for `Windows`.
    #[serde(default)]
    pub windows: Vec<WindowSpec>,
    /// Clip modality values to this range before normalising (when no window is given).
    pub clip: Option<[f64; 2]>,
    #[serde(default)]
    pub normalise: Normalise,
    /// Resize each slice to (rows, columns); the inverse mapping is kept for the output.
    pub resize: Option<[usize; 2]>,
    /// Resample to this pixel spacing (mm) instead of a fixed size.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// 2.5D: slices on each side of the centre slice.
    #[serde(default)]
    pub neighbours: usize,
    /// 3D models (layout NCDHW): the patch the model takes, slices × rows × columns, in model
    /// space (after any in-plane resize). The stack is covered by overlapping patches, padded
    /// with zeros where a patch runs past its edge, and their outputs are blended.
    pub patch: Option<[usize; 3]>,
    /// Fraction of a patch that neighbouring patches share along each axis (0 ≤ overlap < 1).
    #[serde(default = "default_overlap")]
    pub overlap: f64,
    /// How overlapping patch outputs are weighted where they meet.
    #[serde(default)]
    pub blend: Blend,
}

fn default_overlap() -> f64 {
    0.25
}

/// Weights of a patch's voxels when overlapping outputs are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blend {
    /// A Gaussian centred on the patch (σ = patch / 8 per axis), so a patch's edges, where it
    /// saw least context, count least (as MONAI's and nnU-Net's sliding windows do).
    #[default]
    Gaussian,
    /// Every voxel of every patch counts the same.
    Constant,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            windows: Vec::new(),
            clip: None,
            normalise: Normalise::None,
            resize: None,
            pixel_spacing_mm: None,
            neighbours: 0,
            patch: None,
            overlap: default_overlap(),
            blend: Blend::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    pub center: f64,
    pub width: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Normalise {
    /// Values as windowed/clipped.
    #[default]
    None,
    /// To [0, 1] over the window or clip range.
    MinMax,
    /// (x - mean) / std after min–max.
    MeanStd { mean: f64, std: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Per-label probabilities (or logits) per pixel, or one label index per pixel (`argmax`).
    Segmentation,
    /// A probability map plus an image-level score.
    Heatmap,
    /// Boxes, scores and labels.
    Detection,
    /// Per-label scores.
    Classification,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub kind: OutputKind,
    /// Output tensor names, in the order the kind expects them (e.g. heatmap then score).
    pub names: Vec<String>,
    /// Whether the values are logits (a sigmoid is applied to each).
    #[serde(default)]
    pub logits: bool,
    /// For segmentation: the output holds one label index per pixel (0 for background, k for
    /// the k-th `[[labels]]`), not one map per label. Any integer or float type.
    #[serde(default)]
    pub argmax: bool,
}

/// A label the model reports, with its colour on screen and its decision threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub name: String,
    /// RGBA, 0–255.
    pub color: [u8; 4],
    /// Probability at or above which a finding is reported.
    pub threshold: f64,
    /// Smallest finding kept: mm (longest diameter) for 2D, mm³ for volumes.
    #[serde(default)]
    pub min_size: f64,
    /// What the label is, as codes for DICOM results (SEG segmented property, SR finding). When
    /// missing: category "Morphologically Abnormal Structure" and type "Lesion" (SNOMED CT).
    #[serde(default)]
    pub category: Option<CodedConcept>,
    #[serde(default, rename = "type")]
    pub property_type: Option<CodedConcept>,
    /// Finding site (anatomy), when the model is specific to one.
    #[serde(default)]
    pub site: Option<CodedConcept>,
}

/// A coded concept in a manifest: `{ value = "27925004", scheme = "SCT", meaning = "Nodule" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodedConcept {
    pub value: String,
    pub scheme: String,
    pub meaning: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreAggregate {
    #[default]
    Max,
    Mean,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Postprocess {
    /// Connected components in 3D across slices (volumes), else per slice.
    #[serde(default)]
    pub components_3d: bool,
    #[serde(default)]
    pub score: ScoreAggregate,
}

/// Why a manifest cannot be used. Each names the manifest file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read the model manifest `{path}`: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the model manifest `{path}` is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Manifest {
    /// Reads `dir/manifest.toml` (or a manifest file given directly) and checks it on its own
    /// terms (the model file is checked by [`crate::model::Model::load`]).
    pub fn read(path: &Path) -> Result<(Manifest, PathBuf), ManifestError> {
        let file = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| ManifestError::Read {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| ManifestError::Invalid {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        manifest.check().map_err(|reason| ManifestError::Invalid {
            path: file.clone(),
            reason,
        })?;
        Ok((manifest, file))
    }

    fn check(&self) -> Result<(), String> {
        let m = &self.model;
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("model.sha256 `{}` is not 64 hex digits", m.sha256));
        }
        if self.input.shape.len() != self.input.layout.rank() {
            return Err(format!(
                "input.shape has {} dimensions but layout {:?} has {}",
                self.input.shape.len(),
                self.input.layout,
                self.input.layout.rank()
            ));
        }
        if self.labels.is_empty() {
            return Err("no [[labels]]: a model must say what it finds".into());
        }
        for l in &self.labels {
            if !(0.0..=1.0).contains(&l.threshold) {
                return Err(format!(
                    "label `{}` has threshold {} outside 0–1",
                    l.name, l.threshold
                ));
            }
        }
        if self.output.names.is_empty() {
            return Err("output.names is empty".into());
        }
        let p = &self.preprocess;
        if p.windows.iter().any(|w| w.width <= 0.0) {
            return Err("a preprocess window has a width ≤ 0".into());
        }
        if p.resize.is_some() && p.pixel_spacing_mm.is_some() {
            return Err(
                "preprocess.resize and preprocess.pixel_spacing_mm both given: choose one".into(),
            );
        }
        if p.resize.is_some_and(|r| r.contains(&0)) {
            return Err("preprocess.resize has a zero dimension".into());
        }
        if p.pixel_spacing_mm
            .is_some_and(|s| s.iter().any(|&v| !v.is_finite() || v <= 0.0))
        {
            return Err("preprocess.pixel_spacing_mm must be finite and > 0".into());
        }
        if self.output.argmax && self.output.kind != OutputKind::Segmentation {
            return Err("output.argmax is for segmentation outputs".into());
        }
        if self.output.argmax && self.output.logits {
            return Err(
                "output.argmax and output.logits both given: label indices are not logits".into(),
            );
        }
        let integer = matches!(self.input.dtype, DType::Uint8 | DType::Int64);
        if integer && p.normalise != Normalise::None {
            return Err(format!(
                "input dtype {:?} takes whole numbers, but the normalisation gives fractions: use normalise none (with clip or a window to bound the values)",
                self.input.dtype
            ));
        }
        match (self.input.layout, p.patch) {
            (Layout::Ncdhw, None) => {
                return Err("layout NCDHW needs preprocess.patch = [slices, rows, columns]".into());
            }
            (Layout::Nchw | Layout::Nhwc, Some(_)) => {
                return Err("preprocess.patch is for 3D models (layout NCDHW)".into());
            }
            (Layout::Ncdhw, Some(patch)) => {
                if patch.contains(&0) {
                    return Err("preprocess.patch has a zero dimension".into());
                }
                if !(0.0..1.0).contains(&p.overlap) {
                    return Err(format!(
                        "preprocess.overlap is {}; it must be at least 0 and below 1",
                        p.overlap
                    ));
                }
                if self.output.kind != OutputKind::Segmentation {
                    return Err(format!(
                        "3D patches are blended into segmentations; output kind {:?} is not supported for NCDHW",
                        self.output.kind
                    ));
                }
                if self.input.channels == Channels::NeighbouringSlices {
                    return Err("a 3D model sees neighbouring slices through its patch: its channels are one_window or windows".into());
                }
                let declared = &self.input.shape[2..5];
                for (axis, (&d, &want)) in declared.iter().zip(&patch).enumerate() {
                    if d >= 0 && d as usize != want {
                        return Err(format!(
                            "input.shape {:?} fixes dimension {} to {d} but preprocess.patch {patch:?} says {want}",
                            self.input.shape,
                            axis + 2
                        ));
                    }
                }
            }
            (Layout::Nchw | Layout::Nhwc, None) => {}
        }
        Ok(())
    }
}
