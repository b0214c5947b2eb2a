//! Sessions kept between analyses: building an ONNX Runtime session (and hashing a large model
//! file) costs time on every analysis, so a model loaded once is reused while its files stay as
//! they were.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::OnnxRuntime;
use crate::manifest::Manifest;
use crate::model::{Model, ModelError};

/// How many models stay loaded; the least recently used goes first.
pub const CAPACITY: usize = 4;

/// A file's length and modification time when its model was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(u64, Option<SystemTime>);

fn stamp(path: &Path) -> Result<Stamp, ModelError> {
    let meta = std::fs::metadata(path).map_err(|e| ModelError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Stamp(meta.len(), meta.modified().ok()))
}

/// What a cached session is found by: the model file's SHA-256 as its manifest declares it,
/// the manifest it was loaded with (two manifests may give one file different labels or
/// thresholds) and the thread count the session was built with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    sha256: String,
    manifest: PathBuf,
    threads: Option<usize>,
}

struct Entry {
    model: Arc<Mutex<Model>>,
    /// The manifest's and the model file's stamps at load.
    stamps: [Stamp; 2],
    used: u64,
}

/// Loaded models by SHA-256 (see [`Key`]). An entry is reused only while neither the manifest
/// nor the model file changed on disk (length or modification time); otherwise the model is
/// loaded again, with the SHA-256 and graph checks of [`Model::load`]. The session in memory
/// is the one whose bytes were checked, so a reused entry runs exactly the verified model.
#[derive(Default)]
pub struct ModelCache {
    entries: Mutex<(HashMap<Key, Entry>, u64)>,
}

impl std::fmt::Debug for ModelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCache")
            .field("loaded", &self.len())
            .finish()
    }
}

impl ModelCache {
    /// The model in `dir`, from the cache or loaded (and then cached).
    pub fn get(
        &self,
        runtime: &OnnxRuntime,
        dir: &Path,
        threads: Option<usize>,
    ) -> Result<Arc<Mutex<Model>>, ModelError> {
        let (manifest, manifest_path) = Manifest::read(dir)?;
        let onnx = manifest_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&manifest.model.file);
        let key = Key {
            sha256: manifest.model.sha256.to_ascii_lowercase(),
            manifest: std::fs::canonicalize(&manifest_path).unwrap_or(manifest_path.clone()),
            threads,
        };
        let stamps = [stamp(&manifest_path)?, stamp(&onnx)?];
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, clock) = &mut *guard;
        *clock += 1;
        if let Some(entry) = entries.get_mut(&key) {
            if entry.stamps == stamps {
                entry.used = *clock;
                return Ok(entry.model.clone());
            }
            entries.remove(&key);
        }
        let model = Arc::new(Mutex::new(Model::load(runtime, dir, threads)?));
        if entries.len() >= CAPACITY
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            key,
            Entry {
                model: model.clone(),
                stamps,
                used: *clock,
            },
        );
        Ok(model)
    }

    /// How many models are loaded.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.0.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
