//! Series sorting and splitting on synthetic series written as real DICOM files.

use dokuei_dicom::index;
use dokuei_dicom::stack::{SortedBy, stacks};
use dokuei_dicom::synth::SyntheticCt;

fn only_series(dir: &std::path::Path) -> dokuei_dicom::Series {
    let idx = index(&[dir.to_path_buf()]);
    assert!(idx.problems.is_empty(), "{:?}", idx.problems);
    let series: Vec<_> = idx.series().collect();
    assert_eq!(series.len(), 1);
    series[0].clone()
}

#[test]
fn shuffled_names_and_reversed_instance_numbers_sort_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let ct = SyntheticCt {
        slices: 12,
        shuffle_file_names: true,
        reverse_instance_numbers: true,
        ..Default::default()
    };
    ct.write(dir.path()).unwrap();
    let series = only_series(dir.path());
    let stacks = stacks(&series);
    assert_eq!(stacks.len(), 1);
    let s = &stacks[0];
    assert_eq!(s.sorted_by, SortedBy::Position);
    assert_eq!(s.frames.len(), 12);
    // Axial stacks are shown head first: z decreasing.
    let z: Vec<f64> = s
        .frames
        .iter()
        .map(|f| f.geometry.unwrap().position[2])
        .collect();
    let expected: Vec<f64> = (0..12).rev().map(|k| ct.position(k)[2]).collect();
    for (a, b) in z.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-3, "{z:?} != {expected:?}");
    }
    assert_eq!(s.spacing.spacing, 2.5);
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
}

#[test]
fn a_missing_slice_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 10,
        skip: vec![4],
        ..Default::default()
    }
    .write(dir.path())
    .unwrap();
    let series = only_series(dir.path());
    let s = &stacks(&series)[0];
    assert_eq!(s.frames.len(), 9);
    assert_eq!(s.spacing.gaps.len(), 1);
    assert_eq!(s.spacing.gaps[0].missing, 1);
    assert!(
        s.warnings()[0].contains("1 slice(s) missing"),
        "{:?}",
        s.warnings()
    );
}

#[test]
fn a_series_with_two_orientations_is_split() {
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 8,
        ..Default::default()
    }
    .write(&dir.path().join("ax"))
    .unwrap();
    SyntheticCt {
        slices: 5,
        orientation: [1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
        ..Default::default()
    }
    .write(&dir.path().join("cor"))
    .unwrap();
    let series = only_series(dir.path());
    let stacks = stacks(&series);
    assert_eq!(stacks.len(), 2);
    assert_eq!(stacks[0].frames.len(), 8);
    assert!(stacks[0].label.starts_with("axial"), "{}", stacks[0].label);
    assert_eq!(stacks[1].frames.len(), 5);
    assert!(
        stacks[1].label.starts_with("coronal"),
        "{}",
        stacks[1].label
    );
}

#[test]
fn repeated_positions_are_split_into_phases() {
    let dir = tempfile::tempdir().unwrap();
    // Two acquisitions over the same positions in one series, as in a two-phase study.
    for phase in [1, 2] {
        SyntheticCt {
            slices: 6,
            acquisition_number: phase,
            shuffle_file_names: true,
            ..Default::default()
        }
        .write(dir.path())
        .unwrap();
    }
    let series = only_series(dir.path());
    assert_eq!(series.instances.len(), 12);
    let stacks = stacks(&series);
    let labels: Vec<&str> = stacks.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(stacks.len(), 2, "{labels:?}");
    assert!(
        labels.contains(&"axial 64×64, phase 1") && labels.contains(&"axial 64×64, phase 2"),
        "{labels:?}"
    );
    for s in &stacks {
        assert_eq!(s.frames.len(), 6);
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
        let acquisitions: Vec<_> = s
            .frames
            .iter()
            .map(|f| {
                series.instances[f.instance]
                    .image
                    .as_ref()
                    .unwrap()
                    .acquisition_number
            })
            .collect();
        assert!(
            acquisitions.windows(2).all(|w| w[0] == w[1]),
            "phases mixed: {acquisitions:?}"
        );
    }
}

#[test]
fn hounsfield_values_come_out_of_the_volume() {
    let dir = tempfile::tempdir().unwrap();
    let ct = SyntheticCt {
        slices: 4,
        ..Default::default()
    };
    ct.write(dir.path()).unwrap();
    let series = only_series(dir.path());
    let stack = &stacks(&series)[0];
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let volume = dokuei_dicom::volume::load_volume(&series, stack, &|_, _| {}, &cancel).unwrap();
    assert_eq!(volume.data.dim(), (4, 64, 64));
    // Corner: air, -1000 HU; centre of the body between the lungs: soft tissue, 40 HU.
    assert_eq!(volume.value(0, 0, 0), Some(-1000.0));
    assert_eq!(volume.value(0, 32, 32), Some(40.0));
}

#[test]
fn the_fast_paths_equal_frame_by_frame_decoding() {
    // Synthetic files (12 bits stored in 16, rescaled to HU) and a real signed CT take the
    // direct-read path, an RLE-compressed MR the general decoder: every voxel of the volume
    // must equal what the decoder gives for that slice, and each slice's modality values read
    // on their own (as the model pipeline reads them) must equal the volume's.
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 5,
        ..Default::default()
    }
    .write(&dir.path().join("syn"))
    .unwrap();
    let pydicom = |name| {
        dokuei_dicom::testdata::file(dokuei_dicom::testdata::Collection::Pydicom, name).unwrap()
    };
    let (ct_small, rle) = (pydicom("CT_small.dcm"), pydicom("MR_small_RLE.dcm"));
    for paths in [vec![dir.path().join("syn")], vec![ct_small], vec![rle]] {
        let idx = index(&paths);
        let series = &idx.patients[0].studies[0].series[0];
        let stack = &stacks(series)[0];
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let volume = dokuei_dicom::volume::load_volume(series, stack, &|_, _| {}, &cancel).unwrap();
        for (s, f) in stack.frames.iter().enumerate() {
            let frame = dokuei_dicom::volume::decode(series, f.instance, f.frame).unwrap();
            for r in 0..frame.rows as usize {
                for c in 0..frame.columns as usize {
                    let i = r * frame.columns as usize + c;
                    assert_eq!(
                        volume.data.get(s, r, c),
                        frame.pixels.get(i),
                        "{paths:?} slice {s} ({r},{c})"
                    );
                }
            }
            let one = dokuei_dicom::volume::frame_values(series, stack, s).unwrap();
            assert_eq!(Some(one), volume.slice_values(s), "{paths:?} slice {s}");
        }
        let past = dokuei_dicom::volume::frame_values(series, stack, stack.frames.len());
        assert!(past.is_err(), "{paths:?}");
    }
}

#[test]
fn cancelling_a_load_returns_no_volume() {
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 6,
        ..Default::default()
    }
    .write(dir.path())
    .unwrap();
    let series = only_series(dir.path());
    let stack = &stacks(&series)[0];
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let result = dokuei_dicom::volume::load_volume(
        &series,
        stack,
        &|done, _| {
            if done >= 2 {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        },
        &cancel,
    );
    assert_eq!(
        result.unwrap_err(),
        dokuei_dicom::volume::LoadError::Cancelled
    );
}

#[test]
fn enhanced_multi_frame_ct_uses_per_frame_positions() {
    // pydicom-data's eCT_Supplemental.dcm: one enhanced CT instance, two frames whose positions
    // are only in the Per-frame Functional Groups.
    let path = dokuei_dicom::testdata::file(
        dokuei_dicom::testdata::Collection::PydicomData,
        "eCT_Supplemental.dcm",
    )
    .unwrap();
    let idx = index(&[path]);
    let series = &idx.patients[0].studies[0].series[0];
    assert_eq!(series.instances.len(), 1);
    let s = &stacks(series)[0];
    assert_eq!(s.frames.len(), 2);
    assert_eq!(s.sorted_by, SortedBy::Position);
    let z: Vec<f64> = s
        .frames
        .iter()
        .map(|f| f.geometry.unwrap().position[2])
        .collect();
    assert!(z[0] != z[1], "both frames got the same position: {z:?}");
    assert!((s.spacing.spacing - 10.0).abs() < 1e-6, "{:?}", s.spacing);
    // Each frame decodes on its own.
    for f in &s.frames {
        let frame = dokuei_dicom::volume::decode(series, f.instance, f.frame).unwrap();
        assert_eq!((frame.rows, frame.columns), (512, 512));
    }
}

#[test]
fn slice_values_are_the_rescaled_voxels() {
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 3,
        noise_hu: 15.0,
        ..Default::default()
    }
    .write(dir.path())
    .unwrap();
    let series = only_series(dir.path());
    let stack = &stacks(&series)[0];
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let volume = dokuei_dicom::volume::load_volume(&series, stack, &|_, _| {}, &cancel).unwrap();
    for s in 0..3 {
        let values = volume.slice_values(s).unwrap();
        assert_eq!(values.len(), 64 * 64);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(f64::from(*v), volume.value(s, i / 64, i % 64).unwrap());
        }
    }
    assert!(volume.slice_values(3).is_none());
}
