//! `dokuei bench mpr`: reformatting a coronal and a sagittal plane (and a MIP slab) through a
//! synthetic 16-bit CT loaded in memory, against taking one of its axial slices out as values
//! (the floor: the same number of output values read straight from memory) in the same run.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use dokuei_review::dicom::index::index;
use dokuei_review::dicom::mpr::{
    PlaneSpec, Slab, SlabMode, View, VolumeGeometry, reformat, standard_plane,
};
use dokuei_review::dicom::stack::stacks;
use dokuei_review::dicom::synth::{Sphere, SyntheticCt};
use dokuei_review::dicom::volume::load_volume;
use dokuei_review::{AppError, ErrorCode};

fn fail(e: &dyn std::fmt::Display) -> AppError {
    AppError::new(ErrorCode::InvalidArgument, e.to_string())
}

/// Median and 95th percentile of `repeat` timings of `f`, in ms.
fn time(repeat: usize, mut f: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut ms = Vec::with_capacity(repeat);
    let mut out = 0;
    for _ in 0..repeat {
        let start = Instant::now();
        out = std::hint::black_box(f());
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (pick(0.5), pick(0.95), out)
}

pub fn run(size: u16, slices: usize, repeat: usize) -> Result<(), AppError> {
    let dir = tempfile::tempdir().map_err(|e| fail(&e))?;
    let spacing = 350.0 / f64::from(size);
    let ct = SyntheticCt {
        rows: size,
        columns: size,
        pixel_spacing: [spacing, spacing],
        slices,
        slice_spacing: 2.5,
        origin: [-175.0, -175.0, 0.0],
        spheres: vec![Sphere {
            center: [40.0, -20.0, 2.5 * slices as f64 / 2.0],
            radius: 5.0,
            hu: 300.0,
        }],
        noise_hu: 10.0,
        ..SyntheticCt::default()
    };
    println!("writing a {slices}-slice {size}×{size} CT…");
    ct.write(dir.path()).map_err(|e| fail(&e))?;
    let index = index(&[dir.path().to_path_buf()]);
    let series = index.series().next().ok_or_else(|| fail(&"no series"))?;
    let stack = stacks(series)
        .into_iter()
        .next()
        .ok_or_else(|| fail(&"no stack"))?;
    let volume = load_volume(
        series,
        &stack,
        &|_: usize, _: usize| {},
        &AtomicBool::new(false),
    )
    .map_err(|e| fail(&e))?;
    let g = VolumeGeometry::of_stack(&stack).map_err(|e| fail(&e))?;
    let centre = g.patient_of(
        f64::from(size) / 2.0,
        f64::from(size) / 2.0,
        slices as f64 / 2.0,
    );
    println!(
        "reformatting through a {slices}×{size}×{size} volume ({:.0} MB), {} threads, {repeat} rounds (p50 / p95):",
        volume.data.bytes() as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // The floor: one axial slice's values straight out of memory.
    let (floor, floor95, n) = time(repeat, || {
        volume.slice_values(slices / 2).map_or(0, |v| v.len())
    });
    println!("  axial slice out of memory (floor)  {floor:7.2} / {floor95:7.2} ms  ({n} values)");
    for (name, view, step, slab) in [
        ("coronal, native grid", View::Coronal, None, None),
        ("sagittal, native grid", View::Sagittal, None, None),
        ("coronal, square pixels", View::Coronal, Some(spacing), None),
        (
            "sagittal, square pixels",
            View::Sagittal,
            Some(spacing),
            None,
        ),
        (
            "coronal, 10 mm MIP slab",
            View::Coronal,
            None,
            Some(Slab {
                thickness_mm: 10.0,
                step_mm: spacing,
                mode: SlabMode::Mip,
            }),
        ),
    ] {
        let plane = match step {
            Some(s) => standard_plane(&g, view, centre, s),
            None => {
                // The volume's own sampling: in-plane spacing across, slice spacing down.
                let p = standard_plane(&g, view, centre, spacing);
                let down = 2.5;
                PlaneSpec {
                    spacing: [down, spacing],
                    rows: ((p.rows - 1) as f64 * spacing / down).round() as usize + 1,
                    ..p
                }
            }
        };
        let (p50, p95, n) = time(repeat, || reformat(&volume, &g, &plane, slab).len());
        println!(
            "  {name:<34} {p50:7.2} / {p95:7.2} ms  ({} × {} = {n} values; {:.1}× the floor, {:.1}× per value)",
            plane.columns,
            plane.rows,
            p50 / floor,
            (p50 / n as f64) / (floor / (size as f64 * size as f64))
        );
    }
    Ok(())
}
