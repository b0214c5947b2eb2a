//! Running a model over a whole stack, slice by slice (2D or 2.5D) or in overlapping 3D patches
//! blended back together, batched when the model's batch dimension is dynamic, and turning its
//! outputs (segmentation, heatmap, detection or classification) into findings. The stack comes through [`SliceSource`], so this crate knows
//! nothing of DICOM files.
//!
//! Three stages overlap through bounded channels: a producer thread reads and pre-processes the
//! next batches, the calling thread runs the model, and a post-processing thread maps outputs
//! back to image space (3D: blends the patches, finishing slices as the patch grid moves past
//! them). Memory stays bounded: at most two batches wait between stages; segmentation keeps only
//! the voxels above threshold; heatmaps keep their map (it is shown).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use crate::findings::{
    DetectedBox, Finding, FindingContext, LabelRule, SliceGeometry, SparseProbabilities,
    above_threshold, finding_from_box, findings_from_image_scores, findings_from_sparse,
};
use crate::manifest::{Channels, Layout, Manifest, OutputKind, ScoreAggregate};
use crate::model::{Model, ModelError, OutputTensor};
use crate::patches::{Blender, grid};
use crate::preprocess::{ResizeMap, SliceValues, prepare, resampled_size, resize_bilinear};

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
    /// Pixel spacing (mm, between rows then between columns) when the series states it; `None`
    /// when [`SliceSource::geometry`] had to assume one. Models that resample to a pixel
    /// spacing need it.
    fn pixel_spacing(&self) -> Option<[f64; 2]> {
        Some(self.geometry(0).pixel_spacing)
    }
}

/// Progress of an analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalysisProgress {
    pub done: usize,
    pub total: usize,
    /// Estimated seconds left, from the pace so far.
    pub eta_seconds: f64,
}

/// A heatmap model's map of one label over the stack, quantised to 0–255 (probability × 255),
/// slices × rows × columns, for display.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelMap {
    pub label: String,
    pub slices: usize,
    pub rows: usize,
    pub columns: usize,
    pub values: Vec<u8>,
}

/// What an analysis produced, and where its time went.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    /// Heatmap models: the map of each label.
    pub maps: Vec<LabelMap>,
    /// Heatmap and classification models: the image-level score of each label on each slice
    /// (`image_scores[slice][label]`).
    pub image_scores: Vec<Vec<f32>>,
    pub wall_seconds: f64,
    /// Time inside `session.run` alone.
    pub inference_seconds: f64,
    /// From the last batch's outputs gathered to the findings made (components, geometry).
    pub findings_seconds: f64,
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
        "the model `{model}` declares {found} output(s) for a {kind:?} model; it needs {needed}"
    )]
    OutputCount {
        model: String,
        kind: OutputKind,
        needed: &'static str,
        found: usize,
    },
    /// `slice` counts from 0; the message from 1, as the viewer shows slice numbers.
    #[error("cannot read slice {} of the series: {reason}", .slice + 1)]
    Slice { slice: usize, reason: String },
    #[error(
        "the model `{model}` resamples to {target:?} mm pixels, but this series has no usable pixel spacing"
    )]
    NoPixelSpacing { model: String, target: [f64; 2] },
    #[error("the analysis stopped unexpectedly: {0}")]
    Internal(String),
    #[error(
        "the model `{model}` returned {found} values in output `{output}` for slices {first}–{last}; its manifest implies {expected}"
    )]
    OutputShape {
        model: String,
        output: String,
        first: usize,
        last: usize,
        expected: usize,
        found: usize,
    },
    #[error("the analysis was cancelled; no findings were kept")]
    Cancelled,
}

/// One batch of pre-processed positions (2D: `count` slices from `first`; 3D: one patch per
/// origin in `patches`), on its way to the model.
struct Batch {
    first: usize,
    count: usize,
    patches: Vec<[usize; 3]>,
    shape: Vec<usize>,
    data: Vec<f32>,
    map: ResizeMap,
}

/// One batch of outputs, on its way to post-processing.
struct Ran {
    first: usize,
    count: usize,
    patches: Vec<[usize; 3]>,
    outputs: Vec<OutputTensor>,
    map: ResizeMap,
}

/// A 3D model's patches over the stack, in model space.
struct Patching {
    /// Slices × rows × columns after any in-plane resize.
    dims: [usize; 3],
    patch: [usize; 3],
    origins: Vec<[usize; 3]>,
    blend: crate::manifest::Blend,
}

/// What post-processing gathered over the whole stack.
struct Gathered {
    /// Heatmaps: per label, slices × rows × columns in image space (the map is shown).
    probabilities: Vec<Vec<f32>>,
    /// Segmentation: per label, only the voxels at or above the label's threshold, as
    /// (voxel index, probability) in index order; the whole volume is never held.
    above: Vec<Vec<(usize, f32)>>,
    /// Per slice, per label (heatmap and classification).
    image_scores: Vec<Vec<f32>>,
    boxes: Vec<DetectedBox>,
}

/// How the manifest's outputs are read.
struct Shape {
    kind: OutputKind,
    layout: Layout,
    labels: usize,
    logits: bool,
    /// Segmentation as one label index per pixel.
    argmax: bool,
    rows: usize,
    columns: usize,
    total: usize,
    /// Per label, the probability a voxel needs to belong to a finding.
    thresholds: Vec<f32>,
}

/// Runs the model on every slice of `source`. `cancel` is checked between batches: a cancelled
/// analysis returns [`AnalysisError::Cancelled`] and no partial findings.
pub fn analyse_stack(
    model: &mut Model,
    source: &dyn SliceSource,
    progress: &mut dyn FnMut(AnalysisProgress),
    cancel: &AtomicBool,
) -> Result<Analysis, AnalysisError> {
    let started = Instant::now();
    let mut m = model.manifest.clone();
    let id = m.model.id.clone();
    if !m.model.modality.is_empty() && !m.model.modality.eq_ignore_ascii_case(&source.modality()) {
        return Err(AnalysisError::WrongModality {
            model: id,
            expected: m.model.modality.clone(),
            found: source.modality(),
        });
    }
    let (needed, found) = match m.output.kind {
        OutputKind::Segmentation | OutputKind::Classification => ("1", 1),
        OutputKind::Heatmap => ("2 (map, score)", 2),
        OutputKind::Detection => ("2 or 3 (boxes, scores[, labels])", 2),
    };
    let count = m.output.names.len();
    let too_many = match m.output.kind {
        OutputKind::Detection => count > 3,
        _ => count > found,
    };
    if count < found || too_many {
        return Err(AnalysisError::OutputCount {
            model: id,
            kind: m.output.kind,
            needed,
            found: count,
        });
    }
    if let Some(target) = m.preprocess.pixel_spacing_mm {
        let spacing = source
            .pixel_spacing()
            .filter(|s| s.iter().all(|&v| v.is_finite() && v > 0.0));
        let Some(spacing) = spacing else {
            return Err(AnalysisError::NoPixelSpacing { model: id, target });
        };
        m.preprocess.resize = Some(resampled_size(
            (source.rows(), source.columns()),
            spacing,
            target,
        ));
    }
    let neighbours = if m.input.channels == Channels::NeighbouringSlices {
        m.preprocess.neighbours
    } else {
        0
    };
    let window = 2 * neighbours + 1;
    if source.len() < window {
        return Err(AnalysisError::TooFewSlices {
            model: id,
            needed: window,
            neighbours,
            found: source.len(),
        });
    }
    let shape = Shape {
        kind: m.output.kind,
        layout: m.input.layout,
        labels: m.labels.len(),
        logits: m.output.logits,
        argmax: m.output.argmax,
        rows: source.rows(),
        columns: source.columns(),
        total: source.len(),
        thresholds: m.labels.iter().map(|l| l.threshold as f32).collect(),
    };
    let patching = m.preprocess.patch.map(|patch| {
        let (rows, columns) = m
            .preprocess
            .resize
            .map_or((source.rows(), source.columns()), |[r, c]| (r, c));
        let dims = [source.len(), rows, columns];
        Patching {
            dims,
            patch,
            origins: grid(dims, patch, m.preprocess.overlap),
            blend: m.preprocess.blend,
        }
    });
    let batch = model.batch.max(1);
    let mut inference = 0.0;
    let mut patches_done = 0;
    let gathered = std::thread::scope(|scope| -> Result<Gathered, AnalysisError> {
        let (to_model, batches) = sync_channel::<Result<Batch, AnalysisError>>(2);
        let (to_post, ran) = sync_channel::<Ran>(2);
        let m = &m;
        let shape = &shape;
        let patching = patching.as_ref();
        scope.spawn(move || match patching {
            Some(p) => produce_patches(m, source, p, batch, cancel, &to_model),
            None => produce(m, source, neighbours, batch, cancel, &to_model),
        });
        let post = scope.spawn(move || gather(shape, patching, &ran));
        for next in batches {
            if cancel.load(Ordering::Relaxed) {
                return Err(AnalysisError::Cancelled);
            }
            let b = next?;
            let outputs = run_batch(model, batch, b.count, b.shape, b.data)?;
            inference += model.last_run.as_secs_f64();
            // Progress in slices; the fraction done (for the ETA) in positions or patches.
            let (slices, done, fraction) = match patching {
                None => {
                    let done = b.first + b.count;
                    ((b.first, done), done, done as f64 / shape.total as f64)
                }
                Some(p) => {
                    patches_done += b.patches.len();
                    let first = b.patches.first().map_or(0, |o| o[0]);
                    let last = b.patches.last().map_or(0, |o| o[0] + p.patch[0]);
                    let fraction = patches_done as f64 / p.origins.len() as f64;
                    (
                        (first, last.min(shape.total)),
                        patches_done * shape.total / p.origins.len(),
                        fraction,
                    )
                }
            };
            let patch = patching.map(|p| p.patch);
            check_outputs(m, shape, &outputs, b.count, b.map, patch, slices)?;
            if to_post
                .send(Ran {
                    first: b.first,
                    count: b.count,
                    patches: b.patches,
                    outputs,
                    map: b.map,
                })
                .is_err()
            {
                break;
            }
            let elapsed = started.elapsed().as_secs_f64();
            progress(AnalysisProgress {
                done,
                total: shape.total,
                eta_seconds: elapsed * (1.0 - fraction) / fraction.max(f64::MIN_POSITIVE),
            });
        }
        drop(to_post);
        if cancel.load(Ordering::Relaxed) {
            return Err(AnalysisError::Cancelled);
        }
        post.join()
            .map_err(|_| AnalysisError::Internal("post-processing panicked".into()))
    })?;
    let findings_started = Instant::now();
    let model_ref = model.reference();
    let geometry: Vec<SliceGeometry> = (0..shape.total).map(|i| source.geometry(i)).collect();
    let uids: Vec<String> = (0..shape.total).map(|i| source.instance_uid(i)).collect();
    let series_uid = source.series_uid();
    let cx = FindingContext {
        model: &model_ref,
        series_uid: &series_uid,
        geometry: &geometry,
        instance_uids: &uids,
        rows: shape.rows,
        columns: shape.columns,
        slice_spacing: source.slice_spacing(),
    };
    let findings = findings_of(&m, &shape, &gathered, &cx);
    let maps = if shape.kind == OutputKind::Heatmap {
        m.labels
            .iter()
            .zip(&gathered.probabilities)
            .map(|(label, p)| LabelMap {
                label: label.name.clone(),
                slices: shape.total,
                rows: shape.rows,
                columns: shape.columns,
                values: p
                    .iter()
                    .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                    .collect(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Analysis {
        findings,
        maps,
        image_scores: gathered.image_scores,
        wall_seconds: started.elapsed().as_secs_f64(),
        inference_seconds: inference,
        findings_seconds: findings_started.elapsed().as_secs_f64(),
    })
}

/// How many channels the model's input has (its declared channel dimension; 1 if dynamic).
fn input_channels(m: &Manifest) -> usize {
    let channel_dim = match m.input.layout {
        Layout::Nhwc => 3,
        Layout::Nchw | Layout::Ncdhw => 1,
    };
    m.input
        .shape
        .get(channel_dim)
        .copied()
        .filter(|&c| c > 0)
        .unwrap_or(1) as usize
}

/// The producer: reads the slices each position needs (itself, or itself and its clamped
/// neighbours for 2.5D), pre-processes them and sends them in batches.
fn produce(
    m: &Manifest,
    source: &dyn SliceSource,
    neighbours: usize,
    batch: usize,
    cancel: &AtomicBool,
    to_model: &SyncSender<Result<Batch, AnalysisError>>,
) {
    let total = source.len();
    let channels = input_channels(m);
    let (rows, columns) = (source.rows(), source.columns());
    // Slices read for the previous positions, kept while a 2.5D window still needs them.
    let mut cache: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    let mut first = 0;
    while first < total {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let count = batch.min(total - first);
        let mut b: Option<Batch> = None;
        let result = (first..first + count).try_for_each(|i| -> Result<(), AnalysisError> {
            let wanted: Vec<usize> = (0..2 * neighbours + 1)
                .map(|k| (i + k).saturating_sub(neighbours).min(total - 1))
                .collect();
            let lowest = wanted.iter().copied().min().unwrap_or(i);
            cache.retain(|&s, _| s >= lowest);
            for &s in &wanted {
                if let std::collections::btree_map::Entry::Vacant(e) = cache.entry(s) {
                    let values = source
                        .values(s)
                        .map_err(|reason| AnalysisError::Slice { slice: s, reason })?;
                    e.insert(values);
                }
            }
            let slices: Vec<SliceValues<'_>> = wanted
                .iter()
                .filter_map(|s| cache.get(s))
                .map(|v| SliceValues {
                    rows,
                    columns,
                    values: v,
                })
                .collect();
            let (shape, data, map) = prepare(&m.preprocess, m.input.layout, channels, &slices)
                .map_err(|reason| AnalysisError::Slice { slice: i, reason })?;
            match &mut b {
                None => {
                    // The first position's tensor becomes the batch's (no copy).
                    let mut data_all = data;
                    data_all.reserve(data_all.len() * (count - 1));
                    let mut shape = shape;
                    shape[0] = 1;
                    b = Some(Batch {
                        first,
                        count: 1,
                        patches: Vec::new(),
                        shape,
                        data: data_all,
                        map,
                    });
                }
                Some(b) => {
                    b.data.extend_from_slice(&data);
                    b.count += 1;
                    b.shape[0] = b.count;
                }
            }
            Ok(())
        });
        let sent = match result {
            Ok(()) => b.map(|b| to_model.send(Ok(b)).is_ok()).unwrap_or(false),
            Err(e) => {
                let _ = to_model.send(Err(e));
                false
            }
        };
        if !sent {
            return;
        }
        first += count;
    }
}

/// The 3D producer: pre-processes slices into model space as the patch grid reaches them
/// (keeping only those a later patch still needs), cuts the patches (zeros past the stack's
/// edges) and sends them in batches.
fn produce_patches(
    m: &Manifest,
    source: &dyn SliceSource,
    p: &Patching,
    batch: usize,
    cancel: &AtomicBool,
    to_model: &SyncSender<Result<Batch, AnalysisError>>,
) {
    let channels = input_channels(m);
    let (rows, columns) = (source.rows(), source.columns());
    let [depth, h, w] = p.dims;
    let [pd, ph, pw] = p.patch;
    let plane = h * w;
    // Prepared slices, channels × h × w each, by slice index.
    let mut prepared: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    let map = ResizeMap {
        image: (rows, columns),
        model: (h, w),
    };
    for chunk in p.origins.chunks(batch) {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let mut data = Vec::with_capacity(chunk.len() * channels * pd * ph * pw);
        let result = chunk
            .iter()
            .try_for_each(|&[z0, y0, x0]| -> Result<(), AnalysisError> {
                prepared.retain(|&s, _| s >= z0);
                for s in z0..(z0 + pd).min(depth) {
                    if let std::collections::btree_map::Entry::Vacant(e) = prepared.entry(s) {
                        let values = source
                            .values(s)
                            .map_err(|reason| AnalysisError::Slice { slice: s, reason })?;
                        let one = [SliceValues {
                            rows,
                            columns,
                            values: &values,
                        }];
                        let (_, planes, _) =
                            prepare(&m.preprocess, Layout::Nchw, channels, &one)
                                .map_err(|reason| AnalysisError::Slice { slice: s, reason })?;
                        e.insert(planes);
                    }
                }
                let height = ph.min(h.saturating_sub(y0));
                let width = pw.min(w.saturating_sub(x0));
                for c in 0..channels {
                    for dz in 0..pd {
                        let Some(planes) = prepared.get(&(z0 + dz)) else {
                            data.resize(data.len() + ph * pw, 0.0);
                            continue;
                        };
                        let channel = &planes[c * plane..(c + 1) * plane];
                        for dy in 0..height {
                            let at = (y0 + dy) * w + x0;
                            data.extend_from_slice(&channel[at..at + width]);
                            data.resize(data.len() + pw - width, 0.0);
                        }
                        data.resize(data.len() + (ph - height) * pw, 0.0);
                    }
                }
                Ok(())
            });
        let batch = result.map(|()| Batch {
            first: chunk[0][0],
            count: chunk.len(),
            patches: chunk.to_vec(),
            shape: vec![chunk.len(), channels, pd, ph, pw],
            data,
            map,
        });
        let failed = batch.is_err();
        if to_model.send(batch).is_err() || failed {
            return;
        }
    }
}

/// Runs one batch of `count` positions or patches (`shape[0] == count`). A model whose batch
/// size is fixed at `batch` gets a short last batch padded with zeros to that size, and only
/// the first `count` items of each output are kept.
fn run_batch(
    model: &mut Model,
    batch: usize,
    count: usize,
    mut shape: Vec<usize>,
    mut data: Vec<f32>,
) -> Result<Vec<OutputTensor>, ModelError> {
    let pad = if model.batch_fixed {
        batch.saturating_sub(count)
    } else {
        0
    };
    if pad == 0 {
        return model.run_f32(&shape, data);
    }
    let per_item = data.len() / count.max(1);
    data.resize(data.len() + pad * per_item, 0.0);
    shape[0] = count + pad;
    let mut outputs = model.run_f32(&shape, data)?;
    for o in &mut outputs {
        let per_item = o.values.len() / (count + pad);
        o.values.truncate(per_item * count);
        if let Some(n) = o.shape.first_mut() {
            *n = count as i64;
        }
    }
    Ok(outputs)
}

/// The outputs must hold what the manifest implies for this batch.
/// `count` positions (2D) or patches (3D, of size `patch`) ran for `slices` (first, end).
fn check_outputs(
    m: &Manifest,
    shape: &Shape,
    outputs: &[OutputTensor],
    count: usize,
    map: ResizeMap,
    patch: Option<[usize; 3]>,
    slices: (usize, usize),
) -> Result<(), AnalysisError> {
    let (h, w) = map.model;
    let labels = shape.labels;
    let fail = |k: usize, expected: usize| AnalysisError::OutputShape {
        model: m.model.id.clone(),
        output: m.output.names[k].clone(),
        first: slices.0 + 1,
        last: slices.1,
        expected,
        found: outputs[k].values.len(),
    };
    let voxels = patch.map_or(h * w, |p| p.iter().product());
    let wants: Vec<(usize, usize)> = match shape.kind {
        OutputKind::Segmentation if shape.argmax => vec![(0, count * voxels)],
        OutputKind::Segmentation => vec![(0, count * labels * voxels)],
        OutputKind::Heatmap => vec![(0, count * labels * h * w), (1, count * labels)],
        OutputKind::Classification => vec![(0, count * labels)],
        OutputKind::Detection => {
            // boxes [count, N, 4], scores [count, N], labels [count, N].
            let n = outputs[1].values.len() / count.max(1);
            let mut v = vec![(0, count * n * 4), (1, count * n)];
            if outputs.len() > 2 {
                v.push((2, count * n));
            }
            v
        }
    };
    for (k, expected) in wants {
        if outputs[k].values.len() != expected {
            return Err(fail(k, expected));
        }
    }
    Ok(())
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The post-processing thread: maps every batch's outputs back to image space (3D: blends the
/// patches first, taking each slice once no later patch can reach it).
fn gather(shape: &Shape, patching: Option<&Patching>, ran: &Receiver<Ran>) -> Gathered {
    let (rows, columns, total, labels) = (shape.rows, shape.columns, shape.total, shape.labels);
    let plane = rows * columns;
    let maps = matches!(shape.kind, OutputKind::Segmentation | OutputKind::Heatmap);
    let dense = shape.kind == OutputKind::Heatmap;
    let mut g = Gathered {
        probabilities: if dense {
            vec![vec![0.0f32; total * plane]; labels]
        } else {
            Vec::new()
        },
        above: if dense {
            Vec::new()
        } else {
            vec![Vec::new(); labels]
        },
        image_scores: Vec::new(),
        boxes: Vec::new(),
    };
    if matches!(shape.kind, OutputKind::Heatmap | OutputKind::Classification) {
        g.image_scores = vec![vec![0.0; labels]; total];
    }
    if let Some(p) = patching {
        let mut blender = Blender::new(labels, p.dims, p.patch, p.blend);
        let voxels: usize = p.patch.iter().product();
        let model = (p.dims[1], p.dims[2]);
        // Label indices are blended as one indicator map per label (a weighted vote).
        let per_patch = if shape.argmax {
            voxels
        } else {
            labels * voxels
        };
        let blended = if shape.argmax {
            Probabilities::Plain
        } else {
            Probabilities::of(shape)
        };
        for r in ran {
            for (k, &origin) in r.patches.iter().enumerate() {
                let out = &r.outputs[0].values[k * per_patch..(k + 1) * per_patch];
                let one_hot;
                let out = if shape.argmax {
                    one_hot = (1..=labels)
                        .flat_map(|l| out.iter().map(move |&v| f32::from(v == l as f32)))
                        .collect::<Vec<f32>>();
                    &one_hot
                } else {
                    out
                };
                for (slice, values) in blender.add(origin, out) {
                    take_map(&mut g, shape, slice, &values, model, Layout::Nchw, blended);
                }
            }
        }
        for (slice, values) in blender.finish() {
            take_map(&mut g, shape, slice, &values, model, Layout::Nchw, blended);
        }
        return g;
    }
    for r in ran {
        let (h, w) = r.map.model;
        for b in 0..r.count {
            let slice = r.first + b;
            if maps {
                let per_slice = if shape.argmax { h * w } else { labels * h * w };
                let raw = &r.outputs[0].values[b * per_slice..(b + 1) * per_slice];
                take_map(
                    &mut g,
                    shape,
                    slice,
                    raw,
                    (h, w),
                    shape.layout,
                    Probabilities::of(shape),
                );
            }
            let scores = match shape.kind {
                OutputKind::Heatmap => Some(1),
                OutputKind::Classification => Some(0),
                _ => None,
            };
            if let Some(k) = scores {
                let v = &r.outputs[k].values[b * labels..(b + 1) * labels];
                g.image_scores[slice] = v
                    .iter()
                    .map(|&x| if shape.logits { sigmoid(x) } else { x })
                    .collect();
            }
            if shape.kind == OutputKind::Detection {
                let n = r.outputs[1].values.len() / r.count.max(1);
                for j in 0..n {
                    let bx = &r.outputs[0].values[(b * n + j) * 4..(b * n + j + 1) * 4];
                    let score = r.outputs[1].values[b * n + j];
                    let label = r
                        .outputs
                        .get(2)
                        .map_or(0, |t| t.values[b * n + j].max(0.0) as usize);
                    // Boxes are (x1, y1, x2, y2) in continuous model-input coordinates
                    // (pixel i spans [i, i + 1)); scaled to the image's.
                    let sy = rows as f64 / h as f64;
                    let sx = columns as f64 / w as f64;
                    g.boxes.push(DetectedBox {
                        slice,
                        label,
                        score,
                        rows_columns: [
                            f64::from(bx[1]) * sy,
                            f64::from(bx[0]) * sx,
                            f64::from(bx[3]) * sy,
                            f64::from(bx[2]) * sx,
                        ],
                    });
                }
            }
        }
    }
    g
}

/// How a map's raw values become probabilities.
#[derive(Clone, Copy)]
enum Probabilities {
    /// Already probabilities (or blended indicators).
    Plain,
    Logits,
    /// One label index per pixel: 1 where it is the label's, else 0.
    LabelIndex,
}

impl Probabilities {
    fn of(shape: &Shape) -> Probabilities {
        match (shape.argmax, shape.logits) {
            (true, _) => Probabilities::LabelIndex,
            (false, true) => Probabilities::Logits,
            (false, false) => Probabilities::Plain,
        }
    }
}

/// One slice of a segmentation or heatmap output, `raw` in model space (labels × h × w; NHWC
/// interleaves the labels; label indices: h × w), into image space: the heatmap's map, or
/// segmentation's voxels at or above each label's threshold.
fn take_map(
    g: &mut Gathered,
    shape: &Shape,
    slice: usize,
    raw: &[f32],
    (h, w): (usize, usize),
    layout: Layout,
    kind: Probabilities,
) {
    let (rows, columns, labels) = (shape.rows, shape.columns, shape.labels);
    let plane = rows * columns;
    let resized = (h, w) != (rows, columns);
    let offset = slice * plane;
    for l in 0..labels {
        let index = (l + 1) as f32;
        let value = |i: usize| match kind {
            Probabilities::LabelIndex => f32::from(raw[i] == index),
            Probabilities::Logits | Probabilities::Plain => match layout {
                Layout::Nhwc => raw[i * labels + l],
                _ => raw[l * h * w + i],
            },
        };
        let probability = |x: f32| match kind {
            Probabilities::Logits => sigmoid(x),
            Probabilities::Plain | Probabilities::LabelIndex => x,
        };
        let plane_values = || -> Vec<f32> {
            let p: Vec<f32> = (0..h * w).map(|i| probability(value(i))).collect();
            resize_bilinear(&p, h, w, rows, columns)
        };
        if shape.kind == OutputKind::Heatmap {
            let target = &mut g.probabilities[l][offset..offset + plane];
            if resized {
                target.copy_from_slice(&plane_values());
            } else {
                // Straight into the volume: one pass, no intermediate plane.
                for (i, t) in target.iter_mut().enumerate() {
                    *t = probability(value(i));
                }
            }
        } else {
            let (threshold, above) = (shape.thresholds[l], &mut g.above[l]);
            let mut keep = |i: usize, v: f32| {
                if v >= threshold {
                    above.push((offset + i, v));
                }
            };
            if resized {
                plane_values()
                    .into_iter()
                    .enumerate()
                    .for_each(|(i, v)| keep(i, v));
            } else {
                (0..plane).for_each(|i| keep(i, probability(value(i))));
            }
        }
    }
}

/// Findings from what was gathered, as the output kind and labels say, highest score first.
fn findings_of(m: &Manifest, shape: &Shape, g: &Gathered, cx: &FindingContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (l, label) in m.labels.iter().enumerate() {
        match shape.kind {
            OutputKind::Segmentation | OutputKind::Heatmap => {
                let rule = LabelRule {
                    label: &label.name,
                    threshold: label.threshold,
                    min_size: label.min_size,
                    in_3d: m.postprocess.components_3d,
                    mean_score: m.postprocess.score == ScoreAggregate::Mean,
                };
                // Heatmaps hold the whole map (it is shown); segmentation only what passed.
                let thresholded;
                let above = if shape.kind == OutputKind::Heatmap {
                    thresholded = above_threshold(&g.probabilities[l], label.threshold as f32);
                    &thresholded
                } else {
                    &g.above[l]
                };
                let p = SparseProbabilities {
                    slices: shape.total,
                    rows: shape.rows,
                    columns: shape.columns,
                    above,
                };
                let mut found = findings_from_sparse(p, &rule, cx);
                if shape.kind == OutputKind::Heatmap {
                    for f in &mut found {
                        let [s0, s1] = f.geometry.slices;
                        f.image_score = (s0..=s1)
                            .filter_map(|s| g.image_scores.get(s as usize)?.get(l).copied())
                            .map(f64::from)
                            .reduce(f64::max);
                    }
                }
                findings.extend(found);
            }
            OutputKind::Classification => {
                let scores: Vec<f32> = g.image_scores.iter().map(|s| s[l]).collect();
                findings.extend(findings_from_image_scores(
                    &scores,
                    &label.name,
                    label.threshold,
                    cx,
                ));
            }
            OutputKind::Detection => {
                findings.extend(
                    g.boxes
                        .iter()
                        .filter(|b| b.label == l && f64::from(b.score) >= label.threshold)
                        .filter_map(|b| finding_from_box(b, &label.name, label.min_size, cx)),
                );
            }
        }
    }
    findings.sort_by(|a, b| b.score.total_cmp(&a.score));
    findings
}
