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
    let channel_kind = if channels > 1 {
        "neighbouring_slices"
    } else {
        "one_window"
    };
    let rest = format!(
        r#"
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
"#
    );
    let args = ["segmenter".to_string(), channels.to_string()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fixture(dir, &args, "segmenter", &rest).unwrap()
}

/// Makes the fixed-weight test model `make_test_model.py ARGS` in `dir` and its manifest: a
/// `[model]` table for `test-{id}` (CT, a demonstration) followed by `rest` (input,
/// pre-processing, output, labels). Returns the model loaded on one thread, or why it was
/// refused.
fn fixture(dir: &Path, args: &[&str], id: &str, rest: &str) -> Result<Model, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let onnx = dir.join("model.onnx");
    let status = Command::new(root.join(".dokuei/venv/bin/python"))
        .arg(root.join("scripts/reference/make_test_model.py"))
        .arg(&onnx)
        .args(args)
        .status()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success(), "make_test_model.py {args:?} failed");
    let manifest = format!(
        r#"[model]
id = "test-{id}"
name = "Test {id} (fixed weights)"
version = "0.0.1"
sha256 = "{}"
file = "model.onnx"
publisher = "Dokuei tests"
intended_use = "Testing the stack pipeline"
modality = "CT"
body_part = "CHEST"
clinical_use = "demonstration — not for clinical use"
model_card = "MODEL_CARD.md"
{rest}"#,
        file_sha256(&onnx).unwrap()
    );
    std::fs::write(dir.join("manifest.toml"), manifest).unwrap();
    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    Model::load(&runtime, dir, Some(1)).map_err(|e| e.to_string())
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
    let rest = format!(
        r#"
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
"#
    );
    fixture(dir, &["detector"], kind, &rest).unwrap()
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

#[test]
fn resampling_to_a_pixel_spacing_sizes_the_model_input_from_the_series() {
    // The fixed-box detector with `pixel_spacing_mm = [1.6, 1.6]` instead of a fixed resize:
    // the 48² phantom at 0.8 mm becomes 24² model pixels, so the box (8, 4)–(12, 8) comes back
    // scaled by 2: rows 8–15, columns 16–23 of the image.
    let dir = tempfile::tempdir().unwrap();
    detector(dir.path(), "detection", r#"["boxes", "scores", "labels"]"#);
    let path = dir.path().join("manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("resize = [32, 32]", "pixel_spacing_mm = [1.6, 1.6]"),
    )
    .unwrap();
    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    let mut model = Model::load(&runtime, dir.path(), Some(1)).unwrap();
    let analysis =
        analyse_stack(&mut model, &Phantom, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert!(!analysis.findings.is_empty());
    for f in &analysis.findings {
        let s = f.geometry.slices[0];
        assert_eq!(f.geometry.bbox_voxels, [s, 8, 16, s, 15, 23]);
    }
    // A series that does not state its pixel spacing cannot be resampled to one.
    let err =
        analyse_stack(&mut model, &NoSpacing, &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(err, AnalysisError::NoPixelSpacing { .. })
            && err.to_string().contains("[1.6, 1.6] mm"),
        "{err}"
    );
}

/// The phantom, but its files do not say how far apart its pixels are.
struct NoSpacing;

impl SliceSource for NoSpacing {
    fn len(&self) -> usize {
        Phantom.len()
    }
    fn rows(&self) -> usize {
        Phantom.rows()
    }
    fn columns(&self) -> usize {
        Phantom.columns()
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
        Phantom.modality()
    }
    fn slice_spacing(&self) -> f64 {
        Phantom.slice_spacing()
    }
    fn pixel_spacing(&self) -> Option<[f64; 2]> {
        None
    }
}

/// 21 slices of 40 × 28 pixels, 1 mm apart each way (patches of 8 × 32 × 32 overlap along the
/// slices and the rows and are padded along the columns): a textured -1000 HU background, a
/// graded sphere (1500 HU at its centre falling to 1000 HU at radius 6 mm) centred on slice 10,
/// row 20, column 12, and a 3-voxel cube at 1500 HU on slices 6–8 by the right edge.
struct Block;

impl SliceSource for Block {
    fn len(&self) -> usize {
        21
    }
    fn rows(&self) -> usize {
        40
    }
    fn columns(&self) -> usize {
        28
    }
    fn values(&self, i: usize) -> Result<Vec<f32>, String> {
        Ok((0..40 * 28)
            .map(|p| {
                let (r, c) = ((p / 28) as f64, (p % 28) as f64);
                let d =
                    ((i as f64 - 10.0).powi(2) + (r - 20.0).powi(2) + (c - 12.0).powi(2)).sqrt();
                if d <= 6.0 {
                    (1500.0 - 500.0 * d / 6.0) as f32
                } else if (6..=8).contains(&i) && (29.0..=31.0).contains(&r) && c >= 25.0 {
                    1500.0
                } else {
                    -1000.0 + ((i * 1120 + p) * 7919 % 97) as f32
                }
            })
            .collect())
    }
    fn geometry(&self, i: usize) -> SliceGeometry {
        SliceGeometry {
            position: [0.0, 0.0, -(i as f64)],
            row_direction: [1.0, 0.0, 0.0],
            column_direction: [0.0, 1.0, 0.0],
            pixel_spacing: [1.0, 1.0],
        }
    }
    fn instance_uid(&self, i: usize) -> String {
        format!("1.2.826.0.1.3680043.10.10.{i}")
    }
    fn series_uid(&self) -> String {
        "1.2.826.0.1.3680043.10.10".into()
    }
    fn modality(&self) -> String {
        "CT".into()
    }
    fn slice_spacing(&self) -> f64 {
        1.0
    }
}

/// The fixed-weight 3D segmenter (`make_test_model.py segmenter3d`, its batch size fixed at
/// `batch` when given) under a manifest with `preprocess_extra` in its [preprocess] table.
fn segmenter3d(dir: &Path, preprocess_extra: &str, batch: Option<usize>) -> Result<Model, String> {
    let shape_batch = batch.map_or(-1, |b| b as i64);
    let rest = format!(
        r#"
[input]
name = "image"
layout = "NCDHW"
dtype = "float32"
shape = [{shape_batch}, 1, 8, 32, 32]
channels = "one_window"

[preprocess]
windows = [{{ center = 1250.0, width = 500.0 }}]
normalise = {{ kind = "min_max" }}
{preprocess_extra}

[output]
kind = "segmentation"
names = ["logits"]
logits = true

[[labels]]
name = "dense"
color = [255, 60, 60, 150]
threshold = 0.5
min_size = 0.0

[postprocess]
components_3d = true
"#
    );
    let batch = batch.map(|b| b.to_string());
    let args: Vec<&str> = std::iter::once("segmenter3d")
        .chain(batch.as_deref())
        .collect();
    fixture(dir, &args, "segmenter3d", &rest)
}

#[test]
fn a_3d_model_runs_in_blended_patches_as_the_numpy_reference_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Gaussian weights with the default batch of 4 patches per run; constant weights with a
    // graph whose batch is fixed at 3, so the last of the 8 patches' batches is padded.
    for (blend, batch) in [("gaussian", None), ("constant", Some(3))] {
        let dir = tempfile::tempdir().unwrap();
        let mut model = segmenter3d(
            dir.path(),
            &format!("patch = [8, 32, 32]\noverlap = 0.25\nblend = \"{blend}\""),
            batch,
        )
        .unwrap();
        assert_eq!(model.batch, batch.unwrap_or(4));
        let mut last = 0;
        let analysis = analyse_stack(
            &mut model,
            &Block,
            &mut |p| last = p.done,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(last, 21, "progress ends at the last slice");

        let input: Vec<u8> = (0..Block.len())
            .flat_map(|i| Block.values(i).unwrap())
            .flat_map(f32::to_le_bytes)
            .collect();
        std::fs::write(dir.path().join("in.f32"), input).unwrap();
        let status = Command::new(root.join(".dokuei/venv/bin/python"))
            .arg(root.join("scripts/reference/sliding_window.py"))
            .arg(dir.path().join("manifest.toml"))
            .arg(dir.path().join("model.onnx"))
            .args(["21", "40", "28"])
            .arg(dir.path().join("in.f32"))
            .arg(dir.path().join("out.f32"))
            .status()
            .unwrap();
        assert!(status.success(), "sliding_window.py failed");
        let reference: Vec<f32> = std::fs::read(dir.path().join("out.f32"))
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(reference.len(), 21 * 40 * 28);

        // Every voxel clearly above the threshold in the reference is in one of Dokuei's
        // findings, every clearly below is in none, and each finding's score is the
        // reference's maximum over its mask.
        let plane = 40 * 28;
        let mut ours = vec![false; reference.len()];
        for f in &analysis.findings {
            let mut max = 0.0f32;
            for m in &f.geometry.mask {
                for &(start, len) in &m.runs {
                    for k in start..start + len {
                        let v = m.slice as usize * plane + k as usize;
                        ours[v] = true;
                        max = max.max(reference[v]);
                    }
                }
            }
            assert!(
                (f.score - f64::from(max)).abs() < 1e-4,
                "{blend}: score {} vs reference {max}",
                f.score
            );
        }
        let mut compared = 0;
        for (v, &p) in reference.iter().enumerate() {
            if (p - 0.5).abs() > 1e-4 {
                assert_eq!(ours[v], p >= 0.5, "{blend}: voxel {v}, reference {p}");
                compared += 1;
            }
        }
        assert!(compared > reference.len() - 20, "{compared}");
        // The sphere and the cube by the edge are both found; the sphere where it is.
        assert_eq!(
            analysis.findings.len(),
            2,
            "{blend}: {:#?}",
            analysis.findings
        );
        let sphere = analysis
            .findings
            .iter()
            .map(|f| &f.geometry)
            .max_by(|a, b| a.size.volume_mm3.total_cmp(&b.size.volume_mm3))
            .unwrap();
        assert!(
            (sphere.centroid_voxels[0] - 10.0).abs() < 0.5
                && (sphere.centroid_voxels[1] - 20.0).abs() < 0.5
                && (sphere.centroid_voxels[2] - 12.0).abs() < 0.5,
            "{blend}: {:?}",
            sphere.centroid_voxels
        );
    }
}

#[test]
fn a_3d_manifest_that_does_not_fit_its_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, expected) in [
        ("", "layout NCDHW needs preprocess.patch"),
        ("patch = [8, 16, 16]", "fixes dimension 3 to 32"),
        (
            "patch = [8, 32, 32]\noverlap = 1.0",
            "preprocess.overlap is 1",
        ),
        (
            "patch = [8, 32, 32]\nresize = [32, 32]\npixel_spacing_mm = [1.0, 1.0]",
            "choose one",
        ),
    ] {
        let err = segmenter3d(dir.path(), extra, None).unwrap_err();
        assert!(
            err.contains(expected) && err.contains("manifest.toml"),
            "{extra}: {err}"
        );
    }
}

#[test]
fn a_3d_model_with_an_in_plane_resize_reports_in_image_pixels() {
    // Slices resized to 20 × 14 before patching (one patch across, padded), outputs resized
    // back: the sphere is still found where it is, in the 40 × 28 image's pixels (in model
    // pixels its centre would be at row 10, column 6).
    let dir = tempfile::tempdir().unwrap();
    let mut model =
        segmenter3d(dir.path(), "patch = [8, 32, 32]\nresize = [20, 14]", None).unwrap();
    let analysis = analyse_stack(&mut model, &Block, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let sphere = analysis
        .findings
        .iter()
        .map(|f| &f.geometry)
        .max_by(|a, b| a.size.volume_mm3.total_cmp(&b.size.volume_mm3))
        .unwrap();
    let c = sphere.centroid_voxels;
    assert!(
        (c[0] - 10.0).abs() < 0.5 && (c[1] - 20.0).abs() < 1.0 && (c[2] - 12.0).abs() < 1.0,
        "{c:?}"
    );
    assert!(sphere.bbox_voxels[4] < 40 && sphere.bbox_voxels[5] < 28);
}

#[test]
fn a_label_index_output_becomes_one_finding_set_per_label() {
    // The labeller gives 1 where the windowed image is in (0.5, 0.9] and 2 above 0.9: on the
    // graded sphere, a shell of label 1 around a core of label 2; the cube is all label 2.
    // Each label's findings cover exactly its pixels, with score 1.
    let dir = tempfile::tempdir().unwrap();
    let rest = r#"
[input]
name = "image"
layout = "NCHW"
dtype = "float32"
shape = [-1, 1, -1, -1]
channels = "one_window"

[preprocess]
windows = [{ center = 1250.0, width = 500.0 }]
normalise = { kind = "min_max" }

[output]
kind = "segmentation"
names = ["labels"]
argmax = true

[[labels]]
name = "dense"
color = [255, 160, 0, 150]
threshold = 0.5

[[labels]]
name = "very dense"
color = [255, 0, 0, 150]
threshold = 0.5

[postprocess]
components_3d = true
"#;
    let mut model = fixture(dir.path(), &["labeller"], "labeller", rest).unwrap();
    let analysis = analyse_stack(&mut model, &Block, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let plane = 40 * 28;
    let expected = |label: usize| -> Vec<usize> {
        (0..Block.len())
            .flat_map(|s| {
                let v = Block.values(s).unwrap();
                (0..plane).filter_map(move |p| {
                    let x = ((v[p] - 1000.0) / 500.0).clamp(0.0, 1.0);
                    let index = usize::from(x > 0.5) + usize::from(x > 0.9);
                    (index == label).then_some(s * plane + p)
                })
            })
            .collect()
    };
    for (label, name) in [(1, "dense"), (2, "very dense")] {
        let mut ours: Vec<usize> = analysis
            .findings
            .iter()
            .filter(|f| f.label == name)
            .inspect(|f| assert_eq!(f.score, 1.0))
            .flat_map(|f| f.geometry.mask.iter())
            .flat_map(|m| {
                m.runs.iter().flat_map(move |&(start, len)| {
                    (start..start + len).map(move |k| m.slice as usize * plane + k as usize)
                })
            })
            .collect();
        ours.sort_unstable();
        let want = expected(label);
        assert!(!want.is_empty(), "{name}");
        assert_eq!(ours, want, "{name}");
    }
}

#[test]
fn models_taking_uint8_or_float16_and_giving_float16_run_as_declared() {
    // The phantom clipped to 0–255 (air 0, the sphere 255) into a uint8 or float16 input; the
    // model's float16 or float32 probabilities come back as f32: the sphere is found where it
    // is, with the score the model computes (sigmoid(10), rounded to the output's type).
    for (input, output) in [("uint8", "float16"), ("float16", "float32")] {
        let dir = tempfile::tempdir().unwrap();
        let rest = format!(
            r#"
[input]
name = "image"
layout = "NCHW"
dtype = "{input}"
shape = [-1, 1, -1, -1]
channels = "one_window"

[preprocess]
clip = [0.0, 255.0]

[output]
kind = "segmentation"
names = ["probabilities"]

[[labels]]
name = "dense"
color = [255, 60, 60, 150]
threshold = 0.5
min_size = 50.0

[postprocess]
components_3d = true
"#
        );
        let args = ["typed", input, output];
        let mut model = fixture(dir.path(), &args, "typed", &rest).unwrap();
        let analysis =
            analyse_stack(&mut model, &Phantom, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(analysis.findings.len(), 1, "{input}/{output}");
        let f = &analysis.findings[0];
        let c = f.geometry.centroid_lps_mm;
        let off =
            ((c[0] - CENTRE[0]).powi(2) + (c[1] - CENTRE[1]).powi(2) + (c[2] - CENTRE[2]).powi(2))
                .sqrt();
        assert!(off < 1.0, "{input}/{output}: {c:?}");
        let expected = 1.0 / (1.0 + (-10.0f64).exp());
        assert!(
            (f.score - expected).abs() < 1e-3,
            "{input}/{output}: {}",
            f.score
        );
    }
}
