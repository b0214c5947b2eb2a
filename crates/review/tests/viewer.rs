//! The viewer's use cases on synthetic DICOM written by the project: the browser tree, a
//! stack's geometry and display defaults, and slices as modality values.

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use dokuei_review::dicom::synth::{Sphere, SyntheticCt, SyntheticCxr};
use dokuei_review::viewer::{
    OpenStudy, load_stack, loaded_slice_bytes, slice_bytes, stack_view, study_tree, thumbnail_png,
};

#[test]
fn a_ct_series_opens_with_its_geometry_and_slices_in_hounsfield_units() {
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 6,
        rows: 40,
        columns: 48,
        pixel_spacing: [0.8, 0.6],
        spheres: vec![Sphere {
            center: [0.0, 0.0, 5.0],
            radius: 4.0,
            hu: 200.0,
        }],
        ..SyntheticCt::default()
    }
    .write(&dir.path().join("ct"))
    .unwrap();
    std::fs::write(dir.path().join("ct/broken.dcm"), b"DICM but not really").unwrap();
    let study = OpenStudy::open(&[dir.path().to_path_buf()]).unwrap();
    let tree = study_tree(&study);
    assert_eq!(tree.studies.len(), 1);
    let series = &tree.studies[0].series[0];
    assert_eq!(series.modality, "CT");
    assert_eq!(series.images, 6);
    assert_eq!(series.stacks[0].slices, 6);
    assert_eq!(tree.studies[0].patient_name, "Synthetic^Phantom");
    // The broken file is named, and the rest opened.
    assert_eq!(tree.problems.len(), 1, "{:?}", tree.problems);
    assert!(tree.problems[0].file.ends_with("broken.dcm"));

    let view = stack_view(&study, series.key, 0).unwrap();
    assert_eq!((view.rows, view.columns, view.slices), (40, 48, 6));
    // Stored 12-bit unsigned with intercept -1024: HU fit in i16.
    assert_eq!(view.format, "i16");
    assert_eq!(view.pixel_spacing, [0.8, 0.6]);
    assert!(view.spacing_known && !view.spacing_at_detector);
    assert_eq!(view.slice_spacing, Some(2.5));
    assert_eq!(view.plane, "axial");
    let m = view.markers.as_ref().unwrap();
    assert_eq!(
        (
            m.left.as_str(),
            m.right.as_str(),
            m.top.as_str(),
            m.bottom.as_str()
        ),
        ("R", "L", "A", "P")
    );
    assert!(
        view.presets
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case("lung"))
    );
    assert_eq!(view.window.name, "file");
    assert_eq!((view.window.center, view.window.width), (40.0, 400.0));
    // Positions ascend along the normal (head first for axial is handled by the stack order).
    assert_eq!(view.positions.len(), 6);

    // Slice bytes are HU: air outside the body, the sphere's 200 HU at its centre.
    let middle = view
        .locations
        .iter()
        .position(|l| l.is_some_and(|z| (z - 5.0).abs() < 1.3))
        .unwrap() as u32;
    let bytes = slice_bytes(&study, series.key, 0, middle).unwrap();
    assert_eq!(bytes.len(), 40 * 48 * 2);
    let hu = |r: usize, c: usize| {
        let i = (r * 48 + c) * 2;
        i16::from_le_bytes([bytes[i], bytes[i + 1]])
    };
    assert_eq!(hu(0, 0), -1000);
    // (0, 0) mm is column 22.4 / 0.6 ≈ 37, row 22.4 / 0.8 = 28.
    assert_eq!(hu(28, 37), 200);
    assert_eq!(hu(20, 24), 40);
    // The same bytes from the stack loaded in memory, for every slice.
    let loaded = load_stack(&study, series.key, 0, &Default::default()).unwrap();
    for s in 0..6 {
        assert_eq!(
            loaded_slice_bytes(&loaded, s).unwrap(),
            slice_bytes(&study, series.key, 0, s).unwrap()
        );
    }
    // A slice that does not exist is a clear error.
    let err = slice_bytes(&study, series.key, 0, 6).unwrap_err();
    assert!(
        err.message.contains("slice 7 does not exist"),
        "{}",
        err.message
    );
}

#[test]
fn a_radiograph_opens_with_detector_spacing_and_orientation_markers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cxr.dcm");
    SyntheticCxr {
        size: 64,
        spacing: 2.8,
        opacities: 0,
        ..SyntheticCxr::default()
    }
    .write(&file)
    .unwrap();
    let study = OpenStudy::open(&[file]).unwrap();
    let tree = study_tree(&study);
    let series = &tree.studies[0].series[0];
    assert_eq!(series.modality, "DX");
    assert!(
        series.stacks[0].warnings.is_empty(),
        "{:?}",
        series.stacks[0].warnings
    );
    let view = stack_view(&study, series.key, 0).unwrap();
    assert_eq!(view.pixel_spacing, [2.8, 2.8]);
    assert!(view.spacing_known && view.spacing_at_detector);
    assert!(view.presets.is_empty());
    assert_eq!(view.slice_spacing, None);
    // Patient Orientation L\F: rows run to the patient's left, columns to the feet.
    let m = view.markers.as_ref().unwrap();
    assert_eq!(
        (
            m.left.as_str(),
            m.right.as_str(),
            m.top.as_str(),
            m.bottom.as_str()
        ),
        ("R", "L", "H", "F")
    );
    assert_eq!(view.format, "i16");
    assert_eq!(
        slice_bytes(&study, series.key, 0, 0).unwrap().len(),
        64 * 64 * 2
    );
    // A 32-pixel thumbnail, as PNG.
    let png = thumbnail_png(&study, series.key, 32).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 32);
}

/// Real files from the pydicom test data (`bash scripts/setup.sh --test`).
fn real(collection: dokuei_review::dicom::testdata::Collection, name: &str) -> OpenStudy {
    let path =
        dokuei_review::dicom::testdata::file(collection, name).unwrap_or_else(|e| panic!("{e}"));
    OpenStudy::open(&[path]).unwrap()
}

#[test]
fn monochrome1_colour_and_palette_images_are_served_as_the_viewer_needs() {
    use dokuei_review::dicom::testdata::Collection::PydicomData;
    // MONOCHROME1 radiographs: shown inverted. RG1 has Pixel Spacing 0\0: unknown, so lengths are
    // in pixels; RG3 has Patient Orientation R\F (rows run to the patient's right).
    let rg1 = real(PydicomData, "RG1_UNCI.dcm");
    let v = stack_view(&rg1, 0, 0).unwrap();
    assert!(v.inverted);
    assert!(!v.spacing_known);
    // Unsigned with fewer than 16 bits stored: the values fit in i16.
    assert_eq!(v.format, "i16");
    let rg3 = real(PydicomData, "RG3_UNCI.dcm");
    let v = stack_view(&rg3, 0, 0).unwrap();
    let m = v.markers.unwrap();
    assert_eq!(
        (
            m.left.as_str(),
            m.right.as_str(),
            m.top.as_str(),
            m.bottom.as_str()
        ),
        ("L", "R", "H", "F")
    );
    // RGB and palette colour: three bytes per pixel, already rendered.
    for name in ["US1_UNCI.dcm", "OBXXXX1A.dcm"] {
        let study = real(PydicomData, name);
        let v = stack_view(&study, 0, 0).unwrap();
        assert_eq!(v.format, "rgb8", "{name}");
        let bytes = slice_bytes(&study, 0, 0, 0).unwrap();
        assert_eq!(bytes.len(), (v.rows * v.columns * 3) as usize, "{name}");
        // Colour really is there: some pixel has unequal channels.
        assert!(
            bytes.chunks_exact(3).any(|p| p[0] != p[1] || p[1] != p[2]),
            "{name}"
        );
    }
}

#[test]
fn coronal_and_sagittal_stacks_get_their_orientation_letters_and_non_square_spacing() {
    let dir = tempfile::tempdir().unwrap();
    // Coronal: rows run to the patient's left, columns to the feet. Sagittal: rows posterior.
    let cases = [
        (
            "coronal",
            [1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
            ("R", "L", "S", "I"),
        ),
        (
            "sagittal",
            [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
            ("A", "P", "S", "I"),
        ),
    ];
    for (name, orientation, letters) in cases {
        SyntheticCt {
            slices: 3,
            rows: 20,
            columns: 30,
            pixel_spacing: [1.5, 0.5],
            orientation,
            seed: if name == "coronal" { 11 } else { 12 },
            ..SyntheticCt::default()
        }
        .write(&dir.path().join(name))
        .unwrap();
        let study = OpenStudy::open(&[dir.path().join(name)]).unwrap();
        let v = stack_view(&study, 0, 0).unwrap();
        assert_eq!(v.plane, name);
        let m = v.markers.unwrap();
        assert_eq!(
            (
                m.left.as_str(),
                m.right.as_str(),
                m.top.as_str(),
                m.bottom.as_str()
            ),
            letters,
            "{name}"
        );
        // Row spacing 1.5 mm, column spacing 0.5 mm: the viewer gets both, in that order.
        assert_eq!(v.pixel_spacing, [1.5, 0.5]);
        assert_eq!(v.orientation, orientation);
    }
}

/// A colour cine (120 frames of YBR JPEG in one file) is held in memory as RGB like any stack,
/// and serves the same bytes as rendering each frame on request.
#[test]
fn a_colour_cine_loads_into_memory_and_serves_the_same_bytes() {
    use dokuei_review::dicom::testdata::{self, Collection};
    let Ok(path) = testdata::file(Collection::PydicomData, "color3d_jpeg_baseline.dcm") else {
        panic!("test data missing: run `bash scripts/setup.sh --test`");
    };
    let study = OpenStudy::open(&[path]).unwrap();
    let view = stack_view(&study, 0, 0).unwrap();
    assert_eq!(view.format, "rgb8");
    assert_eq!(view.slices, 120);
    let loaded = load_stack(&study, 0, 0, &Default::default()).unwrap();
    for s in [0, 59, 119] {
        let bytes = loaded_slice_bytes(&loaded, s).unwrap();
        assert_eq!(bytes.len(), (view.rows * view.columns * 3) as usize);
        assert_eq!(bytes, slice_bytes(&study, 0, 0, s).unwrap(), "slice {s}");
    }
    let err = loaded_slice_bytes(&loaded, 120).unwrap_err();
    assert!(
        err.message.contains("slice 121 does not exist"),
        "{}",
        err.message
    );
}
