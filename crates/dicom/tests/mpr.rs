//! Reformatting a generated CT (non-square pixels; one stack axial, one oblique): a nodule of
//! known centre shows at that patient point in the axial, coronal and sagittal planes; a plane
//! on a slice reproduces the slice; a MIP slab shows a nodule that lies off the plane, and an
//! average slab something in between.

use std::sync::atomic::AtomicBool;

use dokuei_dicom::index::index;
use dokuei_dicom::mpr::{
    PlaneSpec, Slab, SlabMode, View, VolumeGeometry, reformat, standard_plane,
};
use dokuei_dicom::stack::stacks;
use dokuei_dicom::synth::{Sphere, SyntheticCt};
use dokuei_dicom::volume::{Volume, load_volume};

const NODULE: [f64; 3] = [6.0, -4.0, 40.0];

fn loaded(ct: SyntheticCt) -> (Volume, VolumeGeometry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    ct.write(dir.path()).unwrap();
    let index = index(&[dir.path().to_path_buf()]);
    let series = index.series().next().unwrap();
    let stack = stacks(series).remove(0);
    let volume = load_volume(
        series,
        &stack,
        &|_: usize, _: usize| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let g = VolumeGeometry::of_stack(&stack).unwrap();
    (volume, g, dir)
}

fn ct(orientation: [f64; 6]) -> SyntheticCt {
    SyntheticCt {
        rows: 96,
        columns: 80,
        // Rows 0.9 mm apart, columns 0.6 mm: non-square pixels.
        pixel_spacing: [0.9, 0.6],
        slices: 40,
        slice_spacing: 2.0,
        orientation,
        origin: [-24.0, -43.2, 0.0],
        spheres: vec![Sphere {
            center: NODULE,
            radius: 6.0,
            hu: 300.0,
        }],
        ..SyntheticCt::default()
    }
}

/// The value at the pixel nearest to a patient point, and that pixel's distance from it
/// along the plane (mm).
fn at(plane: &PlaneSpec, values: &[f32], p: [f64; 3]) -> f32 {
    let (i, j, depth) = plane.pixel_of(p);
    assert!(depth.abs() < 1e-6, "the point is {depth} mm off the plane");
    let (i, j) = (i.round() as usize, j.round() as usize);
    assert!(
        i < plane.columns && j < plane.rows,
        "({i}, {j}) is outside the plane"
    );
    values[j * plane.columns + i]
}

#[test]
fn the_nodule_is_at_its_patient_point_in_all_three_planes_of_an_axial_and_an_oblique_stack() {
    let t = 15f64.to_radians();
    for orientation in [
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        // Rows turned 15° about the left-right axis.
        [1.0, 0.0, 0.0, 0.0, t.cos(), -t.sin()],
    ] {
        let (volume, g, _dir) = loaded(ct(orientation));
        for view in [View::Axial, View::Coronal, View::Sagittal] {
            let plane = standard_plane(&g, view, NODULE, 0.5);
            let values = reformat(&volume, &g, &plane, None);
            assert_eq!(values.len(), plane.rows * plane.columns);
            let centre = at(&plane, &values, NODULE);
            assert!(
                centre > 250.0,
                "{view:?} {orientation:?}: {centre} HU at the nodule"
            );
            // 12 mm away along the plane's row: outside the 6 mm nodule.
            let beside = [0, 1, 2].map(|a| NODULE[a] + plane.row[a] * 12.0);
            let b = at(&plane, &values, beside);
            assert!(
                b < 100.0,
                "{view:?} {orientation:?}: {b} HU beside the nodule"
            );
            // The plane leaves the volume somewhere (corners of the box), as NaN.
            assert!(
                values
                    .iter()
                    .all(|v| v.is_nan() || (-1100.0..1000.0).contains(v))
            );
        }
    }
}

#[test]
fn a_plane_on_a_slice_reproduces_it() {
    let (volume, g, _dir) = loaded(ct([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]));
    let k = 17;
    let plane = PlaneSpec {
        origin: g.patient_of(0.0, 0.0, k as f64),
        row: g.row,
        column: g.column,
        spacing: g.spacing,
        rows: g.dims.1,
        columns: g.dims.2,
    };
    let values = reformat(&volume, &g, &plane, None);
    let slice = volume.slice_values(k).unwrap();
    assert_eq!(values.len(), slice.len());
    for (a, b) in values.iter().zip(&slice) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
}

#[test]
fn a_mip_slab_shows_a_nodule_off_the_plane() {
    let (volume, g, _dir) = loaded(ct([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]));
    // A coronal plane 9 mm behind the nodule's centre: beyond its 6 mm radius.
    let off = [NODULE[0], NODULE[1] + 9.0, NODULE[2]];
    let plane = standard_plane(&g, View::Coronal, off, 0.5);
    let thin = at(&plane, &reformat(&volume, &g, &plane, None), off);
    assert!(thin < 100.0, "{thin} HU without a slab");
    let slab = |mode| Slab {
        thickness_mm: 24.0,
        step_mm: 0.5,
        mode,
    };
    let mip = at(
        &plane,
        &reformat(&volume, &g, &plane, Some(slab(SlabMode::Mip))),
        off,
    );
    assert!(mip > 250.0, "{mip} HU in a 24 mm MIP");
    let avg = at(
        &plane,
        &reformat(&volume, &g, &plane, Some(slab(SlabMode::Average))),
        off,
    );
    assert!(
        avg > thin && avg < mip,
        "average {avg} between {thin} and {mip}"
    );
    let min = at(
        &plane,
        &reformat(&volume, &g, &plane, Some(slab(SlabMode::MinIp))),
        off,
    );
    assert!(min <= thin, "MinIP {min} above the plane's own {thin}");
}
