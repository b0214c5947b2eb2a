//! A whole stack through segmentation, detection and classification models: a planted
//! high-density sphere is found where it is, and bad requests (wrong modality, too few slices
//! for 2.5D, cancellation) end cleanly.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use dokuei_infer::OnnxRuntime;
use dokuei_infer::findings::SliceGeometry;
use dokuei_infer::model::{Model, file_sha256};
use dokuei_infer::pipeline::{AnalysisError, SliceSource, analyse_stack};

/// 12 axial slices of 48×48 at 0.8 mm, 2.5 mm apart: -1000 HU everywhere except a sphere of
/// radius 5 mm at 1500 HU centred at (2, -3, 15) mm.
struct Phantom;

const CENTRE: [f64; 3] = [2.0, -3.0, 15.0];

impl SliceSource for Phantom {
    fn len(&self) -> usize {
        12
    }
    fn rows(&self) -> usize {
        48
    }
    fn columns(&self) -> usize {
        48
    }
    fn values(&self, i: usize) -> Result<Vec<f32>, String> {
        let g = self.geometry(i);
        Ok((0..48 * 48)
            .map(|p| {
                let x = g.to_lps((p / 48) as f64, (p % 48) as f64);
                let d = ((x[0] - CENTRE[0]).powi(2)
                    + (x[1] - CENTRE[1]).powi(2)
                    + (x[2] - CENTRE[2]).powi(2))
                .sqrt();
                if d <= 5.0 { 1500.0 } else { -1000.0 }
            })
            .collect())
    }
    fn geometry(&self, i: usize) -> SliceGeometry {
        SliceGeometry {
            position: [-19.2, -19.2, 2.5 * i as f64],
            row_direction: [1.0, 0.0, 0.0],
            column_direction: [0.0, 1.0, 0.0],
            pixel_spacing: [0.8, 0.8],
        }
    }
    fn instance_uid(&self, i: usize) -> String {
        format!("1.2.826.0.1.3680043.10.9.{i}")
    }
    fn series_uid(&self) -> String {
        "1.2.826.0.1.3680043.10.9".into()
    }
    fn modality(&self) -> String {
        "CT".into()
    }
    fn slice_spacing(&self) -> f64 {
        2.5
    }
}

fn segmenter(dir: &Path, channels: usize, extra: &str) -> Model {
    let onnx = dir.join("model.onnx");
    let status =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.dokuei/venv/bin/python"))
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../scripts/reference/make_test_model.py"),
            )
            .arg(&onnx)
            .args(["segmenter", &channels.to_string()])
            .status()
            .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success());
    let channel_kind = if channels > 1 {
        "neighbouring_slices"
    } else {
        "one_window"
    };
    let manifest = format!(
        r#"
[model]
id = "test-segmenter"
name = "Test segmenter (fixed weights)"
version = "0.0.1"
sha256 = "{}"
file = "model.onnx"
publisher = "Dokuei tests"
intended_use = "Testing the stack pipeline"
modality = "CT"
body_part = "CHEST"
clinical_use = "demonstration — not for clinical use"
model_card = "MODEL_CARD.md"

[input]
name = "image"
layout = "NCHW"
dtype = "float32"
shape = [-1, {channels}, -1, -1]
channels = "{channel_kind}"

[preprocess]
windows = [{{ center = 1250.0, width = 500.0 }}]
normalise = {{ kind = "min_max" }}
resize = [32, 32]
{extra}

[output]
kind = "segmentation"
names = ["probabilities"]

[[labels]]
name = "dense nodule"
color = [255, 60, 60, 150]
threshold = 0.5
min_size = 50.0

[postprocess]
components_3d = true
"#,
        file_sha256(&onnx).unwrap()
    );
    std::fs::write(dir.join("manifest.toml"), manifest).unwrap();
    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    Model::load(&runtime, dir, Some(1)).unwrap()
}

#[test]
fn a_planted_sphere_is_found_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = segmenter(dir.path(), 1, "");
    let mut updates = Vec::new();
    let analysis = analyse_stack(
        &mut model,
        &Phantom,
        &mut |p| updates.push(p),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(analysis.findings.len(), 1, "{:?}", analysis.findings);
    let f = &analysis.findings[0];
    let c = f.geometry.centroid_lps_mm;
    let off =
        ((c[0] - CENTRE[0]).powi(2) + (c[1] - CENTRE[1]).powi(2) + (c[2] - CENTRE[2]).powi(2))
            .sqrt();
    assert!(
        off < 5.0,
        "centroid {c:?} is outside the sphere (off by {off:.2} mm)"
    );
    assert!(off < 1.5, "centroid {c:?} is {off:.2} mm from the centre");
    assert!(
        (f.geometry.size.longest_diameter_mm - 10.0).abs() < 3.0,
        "{:?}",
        f.geometry.size
    );
    assert_eq!(f.model.id, "test-segmenter");
    assert_eq!(f.model.execution_provider, "CPU");
    assert_eq!(f.series_uid, "1.2.826.0.1.3680043.10.9");
    assert!(!f.instance_uids.is_empty());
    // Dynamic batch dimension: 12 slices in batches of 4, one progress update per batch.
    assert_eq!(model.batch, dokuei_infer::model::DEFAULT_BATCH);
    let done: Vec<usize> = updates.iter().map(|p| p.done).collect();
    assert_eq!(done, vec![4, 8, 12]);
    assert_eq!(updates.last().unwrap().eta_seconds, 0.0);
    assert!(analysis.inference_seconds <= analysis.wall_seconds);
    // Batching changes nothing: one slice per run gives the same findings, and batches that
    // do not divide the stack (5 + 5 + 2) too.
    for batch in [1, 5] {
        model.batch = batch;
        let again =
            analyse_stack(&mut model, &Phantom, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(again.findings, analysis.findings, "batch {batch}");
    }
}

#[test]
fn a_two_and_a_half_d_model_reads_neighbouring_slices() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = segmenter(dir.path(), 3, "neighbours = 1");
    let analysis =
        analyse_stack(&mut model, &Phantom, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(analysis.findings.len(), 1);
}

/// One slice of the phantom.
struct OneSlice;

impl SliceSource for OneSlice {
    fn len(&self) -> usize {
        1
    }
    fn rows(&self) -> usize {
        48
    }
    fn columns(&self) -> usize {
        48
    }
    fn values(&self, i: usize) -> Result<Vec<f32>, String> {
        Phantom.values(i)
    }
    fn geometry(&self, i: usize) -> SliceGeometry {
        Phantom.geometry(i)
    }
    fn instance_uid(&self, i: usize) -> String {
        Phantom.instance_uid(i)
    }
    fn series_uid(&self) -> String {
        Phantom.series_uid()
    }
    fn modality(&self) -> String {
        "MR".into()
    }
    fn slice_spacing(&self) -> f64 {
        2.5
    }
}

#[test]
fn bad_requests_end_in_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = segmenter(dir.path(), 1, "");
    let err =
        analyse_stack(&mut model, &OneSlice, &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, AnalysisError::WrongModality { .. }), "{err}");
    assert!(
        err.to_string().contains("for CT images; this series is MR"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut model = segmenter(dir.path(), 3, "neighbours = 1");
    model.manifest.model.modality = "MR".into();
    let err =
        analyse_stack(&mut model, &OneSlice, &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(
        err.to_string().contains("needs 3 slices") && err.to_string().contains("has 1"),
        "{err}"
    );
}

#[test]
fn cancelling_mid_series_keeps_no_findings() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = segmenter(dir.path(), 1, "");
    let cancel = AtomicBool::new(false);
    let result = analyse_stack(
        &mut model,
        &Phantom,
        &mut |p| {
            if p.done >= 4 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    );
    assert!(
        matches!(result, Err(AnalysisError::Cancelled)),
        "{result:?}"
    );
}

/// The fixed-box detector (`make_test_model.py detector`) under a manifest of `kind` with
/// `names`: 48×48 slices resized to 32×32 (lung-free window 1250/500, so the sphere is 1).
fn detector(dir: &Path, kind: &str, names: &str) -> Model {
    let onnx = dir.join("model.onnx");
    let status =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.dokuei/venv/bin/python"))
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../scripts/reference/make_test_model.py"),
            )
            .arg(&onnx)
            .arg("detector")
            .status()
            .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success());
    let manifest = format!(
        r#"
[model]
id = "test-{kind}"
name = "Test {kind} (fixed weights)"
version = "0.0.1"
sha256 = "{}"
file = "model.onnx"
publisher = "Dokuei tests"
intended_use = "Testing the stack pipeline"
modality = "CT"
body_part = "CHEST"
clinical_use = "demonstration — not for clinical use"
model_card = "MODEL_CARD.md"

[input]
name = "image"
layout = "NCHW"
dtype = "float32"
shape = [-1, 1, -1, -1]
channels = "one_window"

[preprocess]
windows = [{{ center = 1250.0, width = 500.0 }}]
normalise = {{ kind = "min_max" }}
resize = [32, 32]

[output]
kind = "{kind}"
names = {names}

[[labels]]
name = "dense"
color = [255, 60, 60, 150]
threshold = 0.5
min_size = 2.0
"#,
        file_sha256(&onnx).unwrap()
    );
    std::fs::write(dir.join("manifest.toml"), manifest).unwrap();
    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    Model::load(&runtime, dir, Some(1)).unwrap()
}

/// The slices whose pre-processed image reaches 0.5 somewhere: where the detector's score does.
fn slices_over_half(model: &Model) -> Vec<usize> {
    use dokuei_infer::preprocess::{SliceValues, prepare};
    (0..Phantom.len())
        .filter(|&i| {
            let v = Phantom.values(i).unwrap();
            let slice = SliceValues {
                rows: 48,
                columns: 48,
                values: &v,
            };
            let (_, x, _) = prepare(
                &model.manifest.preprocess,
                model.manifest.input.layout,
                1,
                &[slice],
            )
            .unwrap();
            x.iter().any(|&p| p >= 0.5)
        })
        .collect()
}

#[test]
fn detection_boxes_become_findings_in_image_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = detector(dir.path(), "detection", r#"["boxes", "scores", "labels"]"#);
    let expected = slices_over_half(&model);
    assert!(expected.len() >= 3, "{expected:?}");
    let analysis =
        analyse_stack(&mut model, &Phantom, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let mut slices: Vec<usize> = analysis
        .findings
        .iter()
        .map(|f| f.geometry.slices[0] as usize)
        .collect();
    slices.sort_unstable();
    assert_eq!(slices, expected);
    for f in &analysis.findings {
        // (x1, y1, x2, y2) = (8, 4, 12, 8) in 32² model pixels = columns 12–18, rows 6–12 of the
        // 48² image (scale 1.5): pixel centres inside are rows 6–11, columns 12–17.
        let s = f.geometry.slices[0];
        assert_eq!(f.geometry.bbox_voxels, [s, 6, 12, s, 11, 17]);
        assert_eq!(f.geometry.mask[0].runs.len(), 6);
        assert!((f.geometry.size.area_mm2 - 36.0 * 0.64).abs() < 1e-9);
        assert!(f.score >= 0.5);
        assert_eq!(f.label, "dense");
    }
}

#[test]
fn classification_scores_become_whole_image_findings() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = detector(dir.path(), "classification", r#"["scores"]"#);
    let expected = slices_over_half(&model);
    let analysis =
        analyse_stack(&mut model, &Phantom, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    // The sphere's slices are consecutive: one finding over them, covering the whole image.
    assert_eq!(analysis.findings.len(), 1, "{:?}", analysis.findings);
    let f = &analysis.findings[0];
    let (first, last) = (expected[0] as u32, *expected.last().unwrap() as u32);
    assert_eq!(f.geometry.slices, [first, last]);
    assert_eq!(f.geometry.bbox_voxels, [first, 0, 0, last, 47, 47]);
    assert!(f.geometry.mask.is_empty());
    assert_eq!(f.instance_uids.len(), (last - first + 1) as usize);
    assert_eq!(analysis.image_scores.len(), 12);
    assert_eq!(analysis.image_scores[0], vec![0.0]);
    assert!(analysis.image_scores[expected[0]][0] >= 0.5);
}
