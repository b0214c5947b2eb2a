//! Running a model on a series: the use case behind `dokuei analyse` and the Analyse button.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use dokuei_dicom::Series;
use dokuei_dicom::stack::Stack;
use dokuei_dicom::volume::{LoadError, frame_values};
use dokuei_infer::OnnxRuntime;
use dokuei_infer::cache::ModelCache;
use dokuei_infer::findings::SliceGeometry;
use dokuei_infer::model::{Model, ModelError};
use dokuei_infer::pipeline::{
    Analysis, AnalysisError, AnalysisProgress, SliceSource, analyse_stack,
};

use crate::{AppError, ErrorCode};

/// A stack seen as modality values, for the model pipeline. Slices are decoded as the
/// pipeline asks for them, so the model starts on the first batch while the rest are still on
/// disk (loading the whole volume first cost ~30 ms before the first run on a 300-slice CT).
struct StackSource<'a> {
    series: &'a Series,
    stack: &'a Stack,
}

impl SliceSource for StackSource<'_> {
    fn len(&self) -> usize {
        self.stack.frames.len()
    }
    fn rows(&self) -> usize {
        self.stack.rows as usize
    }
    fn columns(&self) -> usize {
        self.stack.columns as usize
    }
    fn values(&self, i: usize) -> Result<Vec<f32>, String> {
        frame_values(self.series, self.stack, i).map_err(|e| match e {
            // Decoding errors name their file already; the others get it here.
            LoadError::Dicom(d) => d.to_string(),
            other => {
                let file = self
                    .stack
                    .frames
                    .get(i)
                    .map(|f| self.series.instances[f.instance].source.file_name())
                    .unwrap_or_default();
                match other {
                    LoadError::Colour => {
                        format!("`{file}` is a colour image; models take greyscale values")
                    }
                    other => format!("`{file}`: {other}"),
                }
            }
        })
    }
    fn geometry(&self, i: usize) -> SliceGeometry {
        crate::reading::slice_geometry(self.series, self.stack, i)
    }
    fn instance_uid(&self, i: usize) -> String {
        self.series.instances[self.stack.frames[i].instance]
            .sop_instance_uid
            .clone()
    }
    fn series_uid(&self) -> String {
        self.series.uid.clone()
    }
    fn modality(&self) -> String {
        self.series.modality.clone()
    }
    fn slice_spacing(&self) -> f64 {
        crate::reading::slice_spacing(self.stack)
    }
    fn pixel_spacing(&self) -> Option<[f64; 2]> {
        // The file's Pixel Spacing, else the frame geometry's when it is not the 1 mm the index
        // assumes without one (enhanced multi-frame files state it per frame).
        let first = self.stack.frames.first()?;
        let stated = self.series.instances[first.instance]
            .image
            .as_ref()
            .and_then(|im| im.pixel_spacing);
        stated.or_else(|| {
            first
                .geometry
                .map(|g| g.pixel_spacing)
                .filter(|&s| s != [1.0, 1.0])
        })
    }
}

impl From<ModelError> for AppError {
    fn from(e: ModelError) -> Self {
        let code = match e {
            ModelError::Runtime(r) => return r.into(),
            ModelError::Integrity { .. } => ErrorCode::ModelIntegrity,
            ModelError::Manifest(_) | ModelError::Mismatch { .. } => ErrorCode::ModelInvalid,
            ModelError::Read { .. } | ModelError::Session { .. } | ModelError::Run { .. } => {
                ErrorCode::ModelFailed
            }
        };
        AppError::new(code, e.to_string())
    }
}

impl From<AnalysisError> for AppError {
    fn from(e: AnalysisError) -> Self {
        match e {
            AnalysisError::Model(m) => m.into(),
            AnalysisError::Cancelled => AppError::new(ErrorCode::Cancelled, e.to_string()),
            AnalysisError::Slice { .. } => AppError::new(ErrorCode::DecodeFailed, e.to_string()),
            AnalysisError::Internal(_) => AppError::new(ErrorCode::ModelFailed, e.to_string()),
            other => AppError::new(ErrorCode::ModelNotApplicable, other.to_string()),
        }
    }
}

/// Takes the model in `model_dir` from `models` (loaded and checked there before the series is
/// touched, or reused while its files are unchanged), loads stack `stack` of `series`, and runs
/// the model on it.
#[allow(clippy::too_many_arguments)]
pub fn analyse_series(
    runtime: &OnnxRuntime,
    models: &ModelCache,
    model_dir: &Path,
    series: &Series,
    stack: usize,
    threads: Option<usize>,
    progress: &mut dyn FnMut(AnalysisProgress),
    cancel: &AtomicBool,
) -> Result<(Arc<Mutex<Model>>, Analysis), AppError> {
    let shared = models.get(runtime, model_dir, threads)?;
    let st = &crate::study::stack_of(series, stack)?;
    let source = StackSource { series, stack: st };
    let analysis = {
        let mut model = shared.lock().unwrap_or_else(|e| e.into_inner());
        analyse_stack(&mut model, &source, progress, cancel)?
    };
    Ok((shared, analysis))
}
