//! Loading a model: its manifest, the integrity of its file, an ONNX Runtime session on the
//! best execution provider, and the check that the graph is what the manifest says. All of this
//! happens before any study is touched.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};
use sha2::{Digest, Sha256};

use crate::manifest::{DType, Manifest, ManifestError};
use crate::runtime::{ExecutionProviderKind, OnnxRuntime, ProviderChoice, RuntimeError};

/// Why a model cannot be used. Each names the model file or manifest at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot read the model file `{path}`: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(
        "the model file `{path}` does not match its manifest: SHA-256 is {found}, the manifest says {expected}; refusing to run it"
    )]
    Integrity {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("ONNX Runtime cannot load `{path}`: {reason}")]
    Session { path: PathBuf, reason: String },
    #[error("the model `{path}` does not match its manifest `{manifest}`: {reason}")]
    Mismatch {
        path: PathBuf,
        manifest: PathBuf,
        reason: String,
    },
    #[error("running the model `{path}` failed: {reason}")]
    Run { path: PathBuf, reason: String },
}

/// One output of a run: its shape and values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub shape: Vec<i64>,
    pub values: Vec<f32>,
}

/// A model ready to run.
#[derive(Debug)]
pub struct Model {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
    pub onnx_path: PathBuf,
    /// The execution provider the session really got, and the ones passed by.
    pub provider: ProviderChoice,
    /// Positions run together when the model's batch dimension is dynamic (else the fixed
    /// batch size).
    pub batch: usize,
    /// Whether the graph or the manifest fixes the batch size (a short last batch is then
    /// padded to it).
    pub batch_fixed: bool,
    /// How long the last [`Model::run_f32`] spent inside ONNX Runtime's `session.run` alone
    /// (not building the input tensor or copying the outputs out).
    pub last_run: std::time::Duration,
    pub(crate) session: Session,
}

/// Batch size used when a model's batch dimension is dynamic: measured on the CT demo model
/// (2 threads), 4 slices per run took 0.74 of the time of one at a time; 8+ was no better.
pub const DEFAULT_BATCH: usize = 4;

/// SHA-256 of a file, lower-case hex (streamed: models can be large).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex_lower(&hasher.finalize()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Model {
    /// Which model this is, as every finding records it: id, version, SHA-256, the execution
    /// provider it runs on and its thresholds.
    pub fn reference(&self) -> crate::findings::ModelRef {
        let m = &self.manifest;
        crate::findings::ModelRef {
            id: m.model.id.clone(),
            version: m.model.version.clone(),
            sha256: m.model.sha256.to_ascii_lowercase(),
            execution_provider: self.provider.used.name().to_owned(),
            thresholds: m
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.threshold))
                .collect(),
        }
    }

    /// Loads the model in `dir` (its `manifest.toml` and the `.onnx` it names): checks the
    /// SHA-256, opens a session preferring a GPU, and checks inputs and outputs against the
    /// manifest.
    pub fn load(
        runtime: &OnnxRuntime,
        dir: &Path,
        threads: Option<usize>,
    ) -> Result<Model, ModelError> {
        let (manifest, manifest_path) = Manifest::read(dir)?;
        let base = manifest_path.parent().unwrap_or(Path::new("."));
        let onnx_path = base.join(&manifest.model.file);
        let found = file_sha256(&onnx_path).map_err(|e| ModelError::Read {
            path: onnx_path.clone(),
            reason: e.to_string(),
        })?;
        if !found.eq_ignore_ascii_case(&manifest.model.sha256) {
            return Err(ModelError::Integrity {
                path: onnx_path,
                expected: manifest.model.sha256.to_ascii_lowercase(),
                found,
            });
        }
        let session_err = |e: &dyn std::fmt::Display| ModelError::Session {
            path: onnx_path.clone(),
            reason: e.to_string(),
        };
        let mut builder = Session::builder(runtime.environment()).map_err(|e| session_err(&e))?;
        if let Some(n) = threads {
            builder = builder.with_intra_threads(n).map_err(|e| session_err(&e))?;
        }
        // ONNX Runtime's idle threads spin by default, waiting for the next operator. On a
        // workstation that shares its cores with the pipeline's own threads (decode and
        // pre-process ahead, post-process behind) and with the viewer, spinning starves them:
        // on the 2-core CT benchmark the model thread then waited 70–180 ms per series for its
        // batches, against 7–30 ms without spinning, for the same session.run time.
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| session_err(&e))?
            .with_inter_op_spinning(false)
            .map_err(|e| session_err(&e))?;
        let provider = runtime.choose_provider(&mut builder, &ExecutionProviderKind::PREFERENCE);
        let session = builder
            .commit_from_file(&onnx_path)
            .map_err(|e| session_err(&e))?;
        let model = Model {
            manifest,
            manifest_path,
            onnx_path,
            provider,
            batch: 1,
            batch_fixed: false,
            last_run: std::time::Duration::ZERO,
            session,
        };
        model.check_graph()?;
        let mut model = model;
        let fixed = model.fixed_batch();
        model.batch_fixed = fixed.is_some();
        model.batch = fixed.unwrap_or(DEFAULT_BATCH);
        Ok(model)
    }

    fn mismatch(&self, reason: String) -> ModelError {
        ModelError::Mismatch {
            path: self.onnx_path.clone(),
            manifest: self.manifest_path.clone(),
            reason,
        }
    }

    /// The batch size the graph or the manifest fixes, if either does.
    fn fixed_batch(&self) -> Option<usize> {
        let spec = &self.manifest.input;
        let graph = self
            .session
            .inputs()
            .iter()
            .find(|o| o.name() == spec.name)
            .and_then(|o| match o.dtype() {
                ValueType::Tensor { shape, .. } => shape.first().copied(),
                _ => None,
            });
        [graph, spec.shape.first().copied()]
            .into_iter()
            .flatten()
            .find(|&n| n > 0)
            .map(|n| n as usize)
    }

    /// The graph's input and outputs must be the ones the manifest declares: names, rank,
    /// element type, and every fixed dimension.
    fn check_graph(&self) -> Result<(), ModelError> {
        let spec = &self.manifest.input;
        let inputs: Vec<&str> = self.session.inputs().iter().map(|o| o.name()).collect();
        let Some(input) = self.session.inputs().iter().find(|o| o.name() == spec.name) else {
            return Err(self.mismatch(format!(
                "the manifest's input tensor `{}` is not in the model, whose inputs are {inputs:?}",
                spec.name
            )));
        };
        let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
            return Err(self.mismatch(format!("input `{}` is not a tensor", spec.name)));
        };
        let want = element_type(spec.dtype);
        if *ty != want {
            return Err(self.mismatch(format!(
                "input `{}` is {ty:?} in the model but {:?} in the manifest",
                spec.name, spec.dtype
            )));
        }
        if shape.len() != spec.shape.len() {
            return Err(self.mismatch(format!(
                "input `{}` has rank {} in the model ({:?}) but {} in the manifest ({:?}, layout {:?})",
                spec.name,
                shape.len(),
                &shape[..],
                spec.shape.len(),
                spec.shape,
                spec.layout
            )));
        }
        for (i, (&model_dim, &manifest_dim)) in shape.iter().zip(&spec.shape).enumerate() {
            if model_dim >= 0 && manifest_dim >= 0 && model_dim != manifest_dim {
                return Err(self.mismatch(format!(
                    "input `{}` dimension {i} is {model_dim} in the model but {manifest_dim} in the manifest",
                    spec.name
                )));
            }
        }
        let outputs: Vec<&str> = self.session.outputs().iter().map(|o| o.name()).collect();
        for name in &self.manifest.output.names {
            if !outputs.contains(&name.as_str()) {
                return Err(self.mismatch(format!(
                    "the manifest's output tensor `{name}` is not in the model, whose outputs are {outputs:?}"
                )));
            }
        }
        Ok(())
    }

    /// Runs the model on one input tensor (already pre-processed, in the manifest's layout) and
    /// returns each declared output as (shape, values).
    pub fn run_f32(
        &mut self,
        shape: &[usize],
        data: Vec<f32>,
    ) -> Result<Vec<OutputTensor>, ModelError> {
        let run_err = |path: &Path, e: &dyn std::fmt::Display| ModelError::Run {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        // Pre-processing works in f32; the tensor takes the type the model declares (integer
        // types rounded and, for u8, clamped to 0–255).
        let tensor: ort::value::DynValue = match self.manifest.input.dtype {
            DType::Float32 => ort::value::Tensor::from_array((dims, data)).map(|t| t.into_dyn()),
            DType::Float16 => {
                let v: Vec<half::f16> = data.iter().map(|&x| half::f16::from_f32(x)).collect();
                ort::value::Tensor::from_array((dims, v)).map(|t| t.into_dyn())
            }
            DType::Uint8 => {
                let v: Vec<u8> = data
                    .iter()
                    .map(|&x| x.round().clamp(0.0, 255.0) as u8)
                    .collect();
                ort::value::Tensor::from_array((dims, v)).map(|t| t.into_dyn())
            }
            DType::Int64 => {
                let v: Vec<i64> = data.iter().map(|&x| x.round() as i64).collect();
                ort::value::Tensor::from_array((dims, v)).map(|t| t.into_dyn())
            }
        }
        .map_err(|e| run_err(&self.onnx_path, &e))?;
        let name = self.manifest.input.name.clone();
        let onnx_path = self.onnx_path.clone();
        let names = self.manifest.output.names.clone();
        let started = std::time::Instant::now();
        let outputs = self
            .session
            .run(ort::inputs![name => tensor])
            .map_err(|e| run_err(&onnx_path, &e))?;
        self.last_run = started.elapsed();
        names
            .iter()
            .map(|n| output_as_f32(&outputs[n.as_str()]).map_err(|e| run_err(&onnx_path, &e)))
            .collect()
    }
}

/// An output's shape and values as f32, whatever numeric type the model gives (float32 as it
/// is; float16, integers and booleans converted: label indices, detection labels, masks).
fn output_as_f32(value: &ort::value::DynValue) -> Result<OutputTensor, String> {
    macro_rules! try_as {
        ($t:ty, $convert:expr) => {
            if let Ok((shape, values)) = value.try_extract_tensor::<$t>() {
                return Ok(OutputTensor {
                    shape: shape.to_vec(),
                    values: values.iter().map($convert).collect(),
                });
            }
        };
    }
    try_as!(f32, |&v| v);
    try_as!(half::f16, |&v| v.to_f32());
    try_as!(i64, |&v| v as f32);
    try_as!(i32, |&v| v as f32);
    try_as!(u8, |&v| f32::from(v));
    try_as!(bool, |&v| f32::from(u8::from(v)));
    Err(format!(
        "output type {:?} is not one Dokuei reads (float32, float16, int64, int32, uint8, bool)",
        value.dtype()
    ))
}

fn element_type(d: DType) -> TensorElementType {
    match d {
        DType::Float32 => TensorElementType::Float32,
        DType::Float16 => TensorElementType::Float16,
        DType::Uint8 => TensorElementType::Uint8,
        DType::Int64 => TensorElementType::Int64,
    }
}
