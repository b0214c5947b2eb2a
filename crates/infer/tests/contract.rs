//! The model contract with a second, differently shaped model (NHWC, 3 channels,
//! classification) made at test time with `onnx.helper`: it runs through the same code with
//! only a manifest, and a model that does not match its manifest is refused before any study
//! is touched, with a message naming both.

use std::path::{Path, PathBuf};
use std::process::Command;

use dokuei_infer::OnnxRuntime;
use dokuei_infer::model::{Model, ModelError, file_sha256};

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.dokuei/venv/bin/python")
}

/// Writes the test model and a manifest for it into `dir`; `edit` changes the manifest text.
fn model_dir(dir: &Path, edit: impl FnOnce(String) -> String) {
    let onnx = dir.join("model.onnx");
    let status = Command::new(python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/reference/make_test_model.py"),
        )
        .arg(&onnx)
        .status()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success());
    let sha = file_sha256(&onnx).unwrap();
    let manifest = format!(
        r#"
[model]
id = "test-nhwc-classifier"
name = "Test NHWC classifier"
version = "0.0.1"
sha256 = "{sha}"
file = "model.onnx"
publisher = "Dokuei tests"
intended_use = "Testing the model contract"
modality = "CR"
body_part = "CHEST"
clinical_use = "demonstration — not for clinical use"
model_card = "MODEL_CARD.md"

[input]
name = "image"
layout = "NHWC"
dtype = "float32"
shape = [-1, 32, 32, 3]
channels = "windows"

[preprocess]
windows = [{{ center = 40.0, width = 400.0 }}, {{ center = -600.0, width = 1500.0 }}, {{ center = 400.0, width = 1800.0 }}]
normalise = {{ kind = "min_max" }}
resize = [32, 32]

[output]
kind = "classification"
names = ["scores"]

[[labels]]
name = "abnormal"
color = [255, 80, 0, 160]
threshold = 0.5

[[labels]]
name = "normal"
color = [0, 160, 255, 160]
threshold = 0.5
"#
    );
    std::fs::write(dir.join("manifest.toml"), edit(manifest)).unwrap();
}

fn load(dir: &Path) -> Result<Model, ModelError> {
    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    Model::load(&runtime, dir, Some(1))
}

#[test]
fn a_model_described_only_by_its_manifest_runs() {
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| m);
    let mut model = load(dir.path()).unwrap();
    assert!(model.manifest.model.is_demonstration());
    assert_eq!(
        model.provider.used,
        dokuei_infer::ExecutionProviderKind::Cpu
    );
    // A batch of two images: constant channels (0.2, 0.4, 0.6) and (1, 0, 0.5).
    let mut data = Vec::new();
    for rgb in [[0.2f32, 0.4, 0.6], [1.0, 0.0, 0.5]] {
        for _ in 0..32 * 32 {
            data.extend_from_slice(&rgb);
        }
    }
    let outputs = model.run_f32(&[2, 32, 32, 3], data).unwrap();
    let (shape, scores) = (&outputs[0].shape, &outputs[0].values);
    assert_eq!(shape, &vec![2, 2]);
    let w = [[1.0f32, -1.0], [0.5, 0.25], [-2.0, 1.5]];
    let b = [0.1f32, -0.2];
    for (n, rgb) in [[0.2f32, 0.4, 0.6], [1.0, 0.0, 0.5]].iter().enumerate() {
        for k in 0..2 {
            let logit = (0..3).map(|c| rgb[c] * w[c][k]).sum::<f32>() + b[k];
            let expected = 1.0 / (1.0 + (-logit).exp());
            assert!(
                (scores[n * 2 + k] - expected).abs() <= 1e-5,
                "[{n},{k}] {} vs {expected}",
                scores[n * 2 + k]
            );
        }
    }
}

#[test]
fn a_wrong_sha256_is_refused_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        let start = m.find("sha256 = \"").unwrap() + 10;
        format!("{}{}{}", &m[..start], "0".repeat(64), &m[start + 64..])
    });
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::Integrity { .. }), "{err}");
    assert!(
        err.to_string().contains("model.onnx") && err.to_string().contains("refusing"),
        "{err}"
    );
}

#[test]
fn an_unknown_tensor_name_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        m.replace("name = \"image\"", "name = \"pixels\"")
    });
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("`pixels`") && err.contains("[\"image\"]") && err.contains("manifest.toml"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        m.replace("names = [\"scores\"]", "names = [\"probabilities\"]")
    });
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("`probabilities`") && err.contains("[\"scores\"]"),
        "{err}"
    );
}

#[test]
fn a_wrong_rank_dtype_or_dimension_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        // A 3D segmentation manifest, valid on its own, over the 2D classifier.
        m.replace("layout = \"NHWC\"", "layout = \"NCDHW\"")
            .replace("[-1, 32, 32, 3]", "[-1, 3, 8, 32, 32]")
            .replace(
                "resize = [32, 32]",
                "resize = [32, 32]\npatch = [8, 32, 32]",
            )
            .replace("kind = \"classification\"", "kind = \"segmentation\"")
    });
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("rank 4 in the model") && err.contains("5 in the manifest"),
        "{err}"
    );

    // An integer input under a 0–1 normalisation would get only 0s and 1s: refused.
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        m.replace("dtype = \"float32\"", "dtype = \"uint8\"")
    });
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("Uint8 takes whole numbers"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        m.replace("dtype = \"float32\"", "dtype = \"float16\"")
    });
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("Float32 in the model but Float16 in the manifest"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        m.replace("[-1, 32, 32, 3]", "[-1, 64, 64, 3]")
    });
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("dimension 1 is 32 in the model but 64 in the manifest"),
        "{err}"
    );
}

#[test]
fn a_malformed_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        m.replace(
            "threshold = 0.5\n\n[[labels]]",
            "threshold = 1.5\n\n[[labels]]",
        )
    });
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("manifest.toml") && err.contains("threshold 1.5"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        m.replace("[output]", "[output]\nsurprise = 1")
    });
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("manifest.toml") && err.contains("surprise"),
        "{err}"
    );
}

/// The declared pre-processing equals the numpy reference for the same manifest.
#[test]
fn preprocessing_matches_the_numpy_reference() {
    use dokuei_infer::manifest::Manifest;
    use dokuei_infer::preprocess::{SliceValues, prepare};
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| {
        m.replace("resize = [32, 32]", "resize = [32, 32]\nneighbours = 0")
    });
    let (manifest, manifest_path) = Manifest::read(dir.path()).unwrap();
    // A 50×70 slice of CT-like values: a gradient from air to bone with structure.
    let (rows, cols) = (50usize, 70usize);
    let values: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let (r, c) = ((i / cols) as f32, (i % cols) as f32);
            -1100.0 + 35.0 * c + 13.0 * r + 200.0 * ((r * 0.3).sin() * (c * 0.2).cos())
        })
        .collect();
    let slice = SliceValues {
        rows,
        columns: cols,
        values: &values,
    };
    let (shape, ours, map) =
        prepare(&manifest.preprocess, manifest.input.layout, 3, &[slice]).unwrap();
    assert_eq!(shape, vec![1, 32, 32, 3]);
    assert_eq!(map.image, (50, 70));

    let input = dir.path().join("in.f32");
    let output = dir.path().join("out.f32");
    std::fs::write(
        &input,
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let status = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/preprocess.py"))
        .args([
            manifest_path.display().to_string(),
            rows.to_string(),
            cols.to_string(),
            "3".into(),
        ])
        .arg(&input)
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let theirs: Vec<f32> = std::fs::read(&output)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "max abs difference {worst}");
    // The three windows give three different channels.
    assert!(ours[0] != ours[1] || ours[1] != ours[2]);
}

/// Dokuei's raw output equals Python onnxruntime's on the same pre-processed input.
#[test]
fn raw_outputs_match_python_onnxruntime() {
    use dokuei_infer::preprocess::{SliceValues, prepare};
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| m);
    let mut model = load(dir.path()).unwrap();
    let (rows, cols) = (40usize, 48usize);
    let values: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919) % 2400) as f32 - 1000.0)
        .collect();
    let slice = SliceValues {
        rows,
        columns: cols,
        values: &values,
    };
    let (shape, input, _) = prepare(
        &model.manifest.preprocess,
        model.manifest.input.layout,
        3,
        &[slice],
    )
    .unwrap();
    let ours = model
        .run_f32(&shape, input.clone())
        .unwrap()
        .remove(0)
        .values;

    let src = dir.path().join("x.f32");
    let dst = dir.path().join("y.f32");
    std::fs::write(
        &src,
        input
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let dims = shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let status = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/ort_run.py"))
        .arg(dir.path().join("model.onnx"))
        .arg("image")
        .arg(&src)
        .arg(&dims)
        .arg("scores")
        .arg(&dst)
        .status()
        .unwrap();
    assert!(status.success());
    let theirs: Vec<f32> = std::fs::read(&dst)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "max abs difference {worst}");
}

/// A model is loaded once and its session reused while its files are unchanged; a changed
/// file is loaded (and checked) again, so a tampered file is refused, not run from the cache.
#[test]
fn sessions_are_cached_by_hash_until_the_files_change() {
    use dokuei_infer::cache::ModelCache;
    use std::sync::Arc;
    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    model_dir(dir.path(), |m| m);
    let cache = ModelCache::default();
    let first = cache.get(&runtime, dir.path(), Some(1)).unwrap();
    let again = cache.get(&runtime, dir.path(), Some(1)).unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second analysis reuses the session"
    );
    let two_threads = cache.get(&runtime, dir.path(), Some(2)).unwrap();
    assert!(
        !Arc::ptr_eq(&first, &two_threads),
        "another thread count is another session"
    );
    assert_eq!(cache.len(), 2);
    // The same manifest copied elsewhere: same hash, another manifest, another entry.
    let copy = tempfile::tempdir().unwrap();
    for f in ["manifest.toml", "model.onnx"] {
        std::fs::copy(dir.path().join(f), copy.path().join(f)).unwrap();
    }
    let copied = cache.get(&runtime, copy.path(), Some(1)).unwrap();
    assert!(!Arc::ptr_eq(&first, &copied));
    // Changing the model file (one byte appended: new length) makes the cache load it again,
    // and the SHA-256 check refuses it.
    let onnx = dir.path().join("model.onnx");
    let mut bytes = std::fs::read(&onnx).unwrap();
    bytes.push(0);
    std::fs::write(&onnx, bytes).unwrap();
    match cache.get(&runtime, dir.path(), Some(1)) {
        Err(ModelError::Integrity { path, .. }) => assert_eq!(path, onnx),
        other => panic!("a changed model file must be refused, got {other:?}"),
    }
    // At most CAPACITY models stay loaded.
    for i in 0..dokuei_infer::cache::CAPACITY + 1 {
        let _ = cache.get(&runtime, copy.path(), Some(3 + i)).unwrap();
    }
    assert_eq!(cache.len(), dokuei_infer::cache::CAPACITY);
}
