//! Running a segmentation model over a whole stack, slice by slice (2D or 2.5D), and turning
//! its probability maps into findings. The stack comes through [`SliceSource`], so this crate
//! knows nothing of DICOM files.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::findings::{
    Finding, LabelRule, ModelRef, ProbabilityVolume, SliceGeometry, findings_from_probabilities,
};
use crate::manifest::{Channels, Layout, OutputKind, ScoreAggregate};
use crate::model::{Model, ModelError};
use crate::preprocess::{SliceValues, prepare, resize_bilinear};

/// A stack of slices in display order, as modality values (HU for CT).
pub trait SliceSource: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn rows(&self) -> usize;
    fn columns(&self) -> usize;
    /// Modality values of slice `i`, row-major.
    fn values(&self, i: usize) -> Result<Vec<f32>, String>;
    fn geometry(&self, i: usize) -> SliceGeometry;
    fn instance_uid(&self, i: usize) -> String;
    fn series_uid(&self) -> String;
    fn modality(&self) -> String;
    /// Distance between slice centres, mm.
    fn slice_spacing(&self) -> f64;
}

/// Progress of an analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalysisProgress {
    pub done: usize,
    pub total: usize,
    /// Estimated seconds left, from the pace so far.
    pub eta_seconds: f64,
}

/// What an analysis produced, and where its time went.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    pub wall_seconds: f64,
    /// Time inside `session.run` alone.
    pub inference_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the model `{model}` is for {expected} images; this series is {found}")]
    WrongModality {
        model: String,
        expected: String,
        found: String,
    },
    #[error(
        "the model `{model}` needs {needed} slices (2.5D, {neighbours} on each side); this stack has {found}"
    )]
    TooFewSlices {
        model: String,
        needed: usize,
        neighbours: usize,
        found: usize,
    },
    #[error(
        "the model `{model}` has a {kind:?} output; only segmentation runs over a stack so far"
    )]
    UnsupportedOutput { model: String, kind: OutputKind },
    #[error("cannot read slice {slice} of the series: {reason}")]
    Slice { slice: usize, reason: String },
    #[error(
        "the model `{model}` returned {found} values for slice {slice}; its manifest implies {expected}"
    )]
    OutputShape {
        model: String,
        slice: usize,
        expected: usize,
        found: usize,
    },
    #[error("the analysis was cancelled; no findings were kept")]
    Cancelled,
}

/// Runs a segmentation model on every slice of `source`. `cancel` is checked between slices:
/// a cancelled analysis returns [`AnalysisError::Cancelled`] and no partial findings.
pub fn analyse_stack(
    model: &mut Model,
    source: &dyn SliceSource,
    progress: &mut dyn FnMut(AnalysisProgress),
    cancel: &AtomicBool,
) -> Result<Analysis, AnalysisError> {
    let started = Instant::now();
    let m = model.manifest.clone();
    let id = m.model.id.clone();
    if !m.model.modality.is_empty() && !m.model.modality.eq_ignore_ascii_case(&source.modality()) {
        return Err(AnalysisError::WrongModality {
            model: id,
            expected: m.model.modality.clone(),
            found: source.modality(),
        });
    }
    if m.output.kind != OutputKind::Segmentation {
        return Err(AnalysisError::UnsupportedOutput {
            model: id,
            kind: m.output.kind,
        });
    }
    let neighbours = if m.input.channels == Channels::NeighbouringSlices {
        m.preprocess.neighbours
    } else {
        0
    };
    let needed = 2 * neighbours + 1;
    if source.len() < needed {
        return Err(AnalysisError::TooFewSlices {
            model: id,
            needed,
            neighbours,
            found: source.len(),
        });
    }
    let channel_dim = match m.input.layout {
        Layout::Nchw => 1,
        Layout::Nhwc => 3,
        Layout::Ncdhw => 1,
    };
    let channels = m
        .input
        .shape
        .get(channel_dim)
        .copied()
        .filter(|&c| c > 0)
        .unwrap_or(1) as usize;
    let (rows, columns, total) = (source.rows(), source.columns(), source.len());
    let labels = m.labels.len();
    // One probability volume per label, in image space (the model's output resized back).
    let mut probabilities = vec![vec![0.0f32; total * rows * columns]; labels];
    let mut inference = 0.0;
    for i in 0..total {
        if cancel.load(Ordering::Relaxed) {
            return Err(AnalysisError::Cancelled);
        }
        // The slices this position needs: itself, or itself and its neighbours (clamped).
        let wanted: Vec<usize> = if neighbours > 0 {
            (0..needed)
                .map(|k| (i + k).saturating_sub(neighbours).min(total - 1))
                .collect()
        } else {
            vec![i]
        };
        let values: Vec<Vec<f32>> = wanted
            .iter()
            .map(|&s| {
                source
                    .values(s)
                    .map_err(|reason| AnalysisError::Slice { slice: s, reason })
            })
            .collect::<Result<_, _>>()?;
        let slices: Vec<SliceValues<'_>> = values
            .iter()
            .map(|v| SliceValues {
                rows,
                columns,
                values: v,
            })
            .collect();
        let (shape, input, map) = prepare(&m.preprocess, m.input.layout, channels, &slices)
            .map_err(|reason| AnalysisError::Slice { slice: i, reason })?;
        let t = Instant::now();
        let out = model.run_f32(&shape, input)?;
        inference += t.elapsed().as_secs_f64();
        let (h, w) = map.model;
        let raw = &out[0].values;
        let expected = labels * h * w;
        if raw.len() != expected {
            return Err(AnalysisError::OutputShape {
                model: id,
                slice: i,
                expected,
                found: raw.len(),
            });
        }
        for (l, volume) in probabilities.iter_mut().enumerate() {
            // NCHW output: label planes one after another; NHWC: interleaved.
            let plane: Vec<f32> = match m.input.layout {
                Layout::Nhwc => (0..h * w).map(|p| raw[p * labels + l]).collect(),
                _ => raw[l * h * w..(l + 1) * h * w].to_vec(),
            };
            let plane: Vec<f32> = if m.output.logits {
                plane.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect()
            } else {
                plane
            };
            let back = resize_bilinear(&plane, h, w, rows, columns);
            volume[i * rows * columns..(i + 1) * rows * columns].copy_from_slice(&back);
        }
        let done = i + 1;
        let pace = started.elapsed().as_secs_f64() / done as f64;
        progress(AnalysisProgress {
            done,
            total,
            eta_seconds: pace * (total - done) as f64,
        });
    }
    let model_ref = ModelRef {
        id: m.model.id.clone(),
        version: m.model.version.clone(),
        sha256: m.model.sha256.to_ascii_lowercase(),
        execution_provider: model.provider.used.name().to_owned(),
        thresholds: m
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.threshold))
            .collect::<BTreeMap<_, _>>(),
    };
    let geometry: Vec<SliceGeometry> = (0..total).map(|i| source.geometry(i)).collect();
    let uids: Vec<String> = (0..total).map(|i| source.instance_uid(i)).collect();
    let mut findings = Vec::new();
    for (label, volume) in m.labels.iter().zip(&probabilities) {
        let rule = LabelRule {
            label: &label.name,
            threshold: label.threshold,
            min_size: label.min_size,
            in_3d: m.postprocess.components_3d,
            mean_score: m.postprocess.score == ScoreAggregate::Mean,
        };
        let p = ProbabilityVolume {
            slices: total,
            rows,
            columns,
            values: volume,
        };
        findings.extend(findings_from_probabilities(
            p,
            &rule,
            &geometry,
            source.slice_spacing(),
            &model_ref,
            &source.series_uid(),
            &uids,
        ));
    }
    findings.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(Analysis {
        findings,
        wall_seconds: started.elapsed().as_secs_f64(),
        inference_seconds: inference,
    })
}
