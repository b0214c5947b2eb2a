//! Defacing a head CT and MR: a generated head phantom (skin, skull, brain with ventricles, eyes,
//! nose, jaw, neck) is defaced into a DERIVED series. Beyond the plane no body voxel is
//! left, the eyes and nose are gone, every intracranial voxel and everything before the plane
//! is unchanged, and the new series names its sources. A chest CT is refused (no brain).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicBool;

use dokuei_review::deface::{deface_series, stack_grid};
use dokuei_review::dicom::synth::{HeadRegion, Phantom, SyntheticCt};
use dokuei_review::dicom::volume::load_volume;
use dokuei_review::viewer::OpenStudy;

fn head() -> SyntheticCt {
    SyntheticCt {
        phantom: Phantom::Head,
        rows: 128,
        columns: 128,
        pixel_spacing: [2.0, 2.0],
        slices: 104,
        slice_spacing: 2.5,
        origin: [-128.0, -128.0, -128.75],
        seed: 21,
        series_description: "Head CT phantom".into(),
        ..SyntheticCt::default()
    }
}

fn hu_of(study: &OpenStudy) -> Vec<f32> {
    let series = study.series(0).unwrap();
    let stack = study.stack(0, 0).unwrap();
    let v = load_volume(
        series,
        stack,
        &|_: usize, _: usize| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    (0..stack.frames.len())
        .flat_map(|k| v.slice_values(k).unwrap())
        .collect()
}

#[test]
fn a_head_ct_loses_its_face_beyond_the_plane_and_keeps_everything_inside_the_skull() {
    defaced_head(head(), -1000.0);
}

/// The same head as a T1-weighted MR, where the skull is dark and values have no unit: the
/// removed voxels take the background's value.
#[test]
fn a_head_mr_loses_its_face_beyond_the_plane_and_keeps_everything_inside_the_skull() {
    defaced_head(
        SyntheticCt {
            phantom: Phantom::HeadMr,
            series_description: "Head MR phantom".into(),
            // Noise on every voxel, the background's too: the thresholds are the data's own.
            noise_hu: 25.0,
            ..head()
        },
        0.0,
    );
}

fn defaced_head(ct: SyntheticCt, air: f32) {
    let dir = tempfile::tempdir().unwrap();
    let center = ct.volume_center();
    ct.write(&dir.path().join("head")).unwrap();
    let study = OpenStudy::open(&[dir.path().join("head")]).unwrap();
    let series = study.series(0).unwrap();
    let stack = study.stack(0, 0).unwrap();
    let out = dir.path().join("defaced");
    let report = deface_series(series, stack, &out, 5.0, &AtomicBool::new(false)).unwrap();
    println!("{:?}", report.plane);
    assert_eq!(report.files.len(), 104);
    // The brain found: the phantom's intracranial space is 4/3·π·65·85·70 mm³ = 1620 ml.
    let p = report.plane;
    assert!((1400.0..1750.0).contains(&p.brain_ml), "{p:?}");
    assert!((20.0..80.0).contains(&p.degrees_from_anterior), "{p:?}");

    let defaced = OpenStudy::open(std::slice::from_ref(&out)).unwrap();
    let (before, after) = (hu_of(&study), hu_of(&defaced));
    assert_eq!(before.len(), after.len());
    let grid = stack_grid(stack).unwrap();
    let per = grid.rows * grid.columns;
    let (mut eye, mut eye_gone, mut nose, mut nose_gone, mut brain) = (0, 0, 0, 0, 0);
    for (i, (&b, &a)) in before.iter().zip(&after).enumerate() {
        let pos = grid.position(i / per, (i % per) / grid.columns, i % grid.columns);
        let region = SyntheticCt::head_region(pos, center);
        if p.removes(pos) {
            assert_eq!(a, air, "a body voxel is left beyond the plane at {pos:?}");
        } else {
            assert_eq!(a, b, "a voxel before the plane changed at {pos:?}");
        }
        match region {
            HeadRegion::Intracranial => {
                brain += 1;
                assert_eq!(a, b, "an intracranial voxel changed at {pos:?}");
            }
            HeadRegion::Eye => {
                eye += 1;
                eye_gone += usize::from(a == air);
            }
            HeadRegion::Nose => {
                nose += 1;
                nose_gone += usize::from(a == air);
            }
            _ => {}
        }
    }
    assert!(
        brain > 100_000 && eye > 500 && nose > 500,
        "{brain} {eye} {nose}"
    );
    assert_eq!(
        (eye_gone, nose_gone),
        (eye, nose),
        "the eyes and nose are gone"
    );
    assert!(report.removed_voxels > (eye + nose) as u64);

    // A DERIVED series of its own that names each source image.
    let s = defaced.series(0).unwrap();
    assert_eq!(s.uid, report.series_uid);
    assert_ne!(s.uid, series.uid);
    let first = dicom_object::open_file(&report.files[0]).unwrap();
    let text = |tag| {
        first
            .element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(['\0', ' '])
            .to_owned()
    };
    use dicom_dictionary_std::tags;
    assert!(text(tags::IMAGE_TYPE).starts_with("DERIVED\\"));
    assert_eq!(text(tags::RECOGNIZABLE_VISUAL_FEATURES), "NO");
    assert!(text(tags::DERIVATION_DESCRIPTION).contains("Defaced by Dokuei"));
    let source = first.element(tags::SOURCE_IMAGE_SEQUENCE).unwrap();
    let item = &source.items().unwrap()[0];
    let referenced = item
        .element(tags::REFERENCED_SOP_INSTANCE_UID)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches('\0')
        .to_owned();
    assert!(
        series
            .instances
            .iter()
            .any(|i| i.sop_instance_uid == referenced)
    );
}

#[test]
fn a_chest_ct_and_a_single_slice_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 20,
        ..SyntheticCt::default()
    }
    .write(&dir.path().join("chest"))
    .unwrap();
    let study = OpenStudy::open(&[dir.path().join("chest")]).unwrap();
    let e = deface_series(
        study.series(0).unwrap(),
        study.stack(0, 0).unwrap(),
        &dir.path().join("out"),
        5.0,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(e.message.contains("no brain found"), "{}", e.message);
    SyntheticCt {
        phantom: Phantom::Head,
        slices: 1,
        ..head()
    }
    .write(&dir.path().join("one"))
    .unwrap();
    let one = OpenStudy::open(&[dir.path().join("one")]).unwrap();
    let e = deface_series(
        one.series(0).unwrap(),
        one.stack(0, 0).unwrap(),
        &dir.path().join("out1"),
        5.0,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(e.message.contains("at least 8 slices"), "{}", e.message);
}
