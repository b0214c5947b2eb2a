//! The models on offer: where they are looked for, and each one's summary (integrity, labels,
//! model card).

use std::path::{Path, PathBuf};

use dokuei_infer::manifest::{Manifest, OutputKind};
use dokuei_infer::model::file_sha256;
use serde::Serialize;

/// A label a model reports, with its colour.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct LabelInfo {
    pub name: String,
    /// RGBA, 0–255.
    pub color: [u8; 4],
    pub threshold: f64,
}

/// A model found in a models folder, as the models panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct ModelSummary {
    /// The model's folder (what `analyse` takes).
    pub dir: String,
    pub id: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub intended_use: String,
    pub modality: String,
    pub body_part: String,
    pub clinical_use: String,
    /// Demonstration models carry a persistent "not for clinical use" banner.
    pub demonstration: bool,
    /// segmentation, heatmap, detection or classification.
    pub kind: String,
    pub labels: Vec<LabelInfo>,
    /// The SHA-256 the manifest declares.
    pub sha256: String,
    /// Whether the `.onnx` file matches it.
    pub integrity_ok: bool,
    /// Why the model cannot be used (unreadable manifest, missing file, SHA-256 mismatch).
    pub problem: Option<String>,
    /// The model card (Markdown), empty when it cannot be read.
    pub model_card: String,
    /// Where it will run (e.g. "CPU", "CUDA"), filled in by the caller that knows the runtime.
    pub execution_provider: String,
}

pub(super) fn kind_name(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Segmentation => "segmentation",
        OutputKind::Heatmap => "heatmap",
        OutputKind::Detection => "detection",
        OutputKind::Classification => "classification",
    }
}

/// The models in each folder of `roots` (every sub-folder with a `manifest.toml`), sorted by
/// name. A model that cannot be used is listed with its problem, not hidden.
pub fn list_models(roots: &[PathBuf]) -> Vec<ModelSummary> {
    let mut out = Vec::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join(dokuei_infer::manifest::MANIFEST_FILE).is_file())
            .collect();
        dirs.sort();
        out.extend(dirs.iter().map(|d| summarise_model(d)));
    }
    out
}

/// Describes the model in `dir` and checks its file against the manifest's SHA-256.
pub fn summarise_model(dir: &Path) -> ModelSummary {
    let dir_text = dir.display().to_string();
    let (manifest, manifest_path) = match Manifest::read(dir) {
        Ok(m) => m,
        Err(e) => {
            return ModelSummary {
                dir: dir_text,
                id: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                name: String::new(),
                version: String::new(),
                publisher: String::new(),
                intended_use: String::new(),
                modality: String::new(),
                body_part: String::new(),
                clinical_use: String::new(),
                demonstration: false,
                kind: String::new(),
                labels: Vec::new(),
                sha256: String::new(),
                integrity_ok: false,
                problem: Some(e.to_string()),
                model_card: String::new(),
                execution_provider: String::new(),
            };
        }
    };
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let m = &manifest.model;
    let onnx = base.join(&m.file);
    let problem = match file_sha256(&onnx) {
        Ok(found) if found.eq_ignore_ascii_case(&m.sha256) => None,
        Ok(found) => Some(format!(
            "the model file `{}` does not match its manifest: SHA-256 {found}, manifest says {}",
            onnx.display(),
            m.sha256
        )),
        Err(e) => Some(format!(
            "cannot read the model file `{}`: {e}",
            onnx.display()
        )),
    };
    ModelSummary {
        dir: dir_text,
        id: m.id.clone(),
        name: m.name.clone(),
        version: m.version.clone(),
        publisher: m.publisher.clone(),
        intended_use: m.intended_use.clone(),
        modality: m.modality.clone(),
        body_part: m.body_part.clone(),
        clinical_use: m.clinical_use.clone(),
        demonstration: m.is_demonstration(),
        kind: kind_name(manifest.output.kind).to_owned(),
        labels: manifest
            .labels
            .iter()
            .map(|l| LabelInfo {
                name: l.name.clone(),
                color: l.color,
                threshold: l.threshold,
            })
            .collect(),
        sha256: m.sha256.to_ascii_lowercase(),
        integrity_ok: problem.is_none(),
        problem,
        model_card: std::fs::read_to_string(base.join(&m.model_card)).unwrap_or_default(),
        execution_provider: String::new(),
    }
}

/// Environment variable naming extra model folders (separated like `PATH`).
pub const MODELS_PATH_ENV: &str = "DOKUEI_MODELS";

/// Where models are looked for, in order: the folders in `DOKUEI_MODELS`, the user's
/// configured folders, `models/` next to the executable, and the `models/` folder of the
/// source checkout the app runs from (nearest above the current folder, else the one it was
/// compiled in). Duplicates and missing folders are dropped.
pub fn model_roots(configured: &[PathBuf]) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os(MODELS_PATH_ENV)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    candidates.extend(configured.iter().cloned());
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("models"));
    }
    if let Some(checkout) = std::env::current_dir().ok().and_then(|cwd| {
        cwd.ancestors()
            .map(|a| a.join("models"))
            .find(|m| m.join("ct-nodule-demo").is_dir())
    }) {
        candidates.push(checkout);
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    let mut seen = std::collections::HashSet::new();
    candidates
        .into_iter()
        .filter(|p| p.is_dir())
        .filter(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())))
        .collect()
}
