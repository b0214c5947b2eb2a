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
    /// Per-label probabilities (or logits, or argmax labels) per pixel.
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
    /// For segmentation: whether the values are logits (a sigmoid/softmax is applied).
    #[serde(default)]
    pub logits: bool,
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
        if self.preprocess.windows.iter().any(|w| w.width <= 0.0) {
            return Err("a preprocess window has a width ≤ 0".into());
        }
        Ok(())
    }
}
