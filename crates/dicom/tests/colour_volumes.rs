//! Colour multi-frame files (RGB, YBR, palette; a 120-frame cine among them) load as one RGB
//! volume, equal frame for frame to decoding and rendering each frame on its own.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use dokuei_dicom::index;
use dokuei_dicom::render::render;
use dokuei_dicom::stack::stacks;
use dokuei_dicom::testdata::{self, Collection};
use dokuei_dicom::voi::Window;
use dokuei_dicom::volume::{decode, load_rgb_volume};

const FILES: &[(Collection, &str)] = &[
    (Collection::PydicomData, "color3d_jpeg_baseline.dcm"),
    (Collection::Pydicom, "examples_ybr_color.dcm"),
    (Collection::Pydicom, "SC_rgb_rle_2frame.dcm"),
    (Collection::Pydicom, "SC_rgb_rle_16bit_2frame.dcm"),
    (Collection::PydicomData, "SC_rgb_expb_2frame.dcm"),
    (Collection::PydicomData, "SC_rgb_32bit_2frame.dcm"),
    (Collection::PydicomData, "OBXXXX1A_2frame.dcm"),
    (Collection::PydicomData, "OBXXXX1A_rle_2frame.dcm"),
];

#[test]
fn colour_multi_frame_files_load_as_volumes() {
    for (collection, name) in FILES {
        let path = testdata::file(*collection, name).unwrap();
        let idx = index(std::slice::from_ref(&path));
        let series = idx.series().next().unwrap();
        let stack = &stacks(series)[0];
        let started = Instant::now();
        let volume = load_rgb_volume(series, stack, &|_, _| {}, &AtomicBool::new(false))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let as_volume = started.elapsed();
        assert_eq!(
            volume.data.dim(),
            (
                stack.frames.len(),
                stack.rows as usize,
                stack.columns as usize,
                3
            ),
            "{name}"
        );
        let started = Instant::now();
        for (i, f) in stack.frames.iter().enumerate() {
            let frame = decode(series, f.instance, f.frame).unwrap();
            let expected = render(&frame, f.rescale, Window::linear(127.5, 256.0));
            let got = volume.data.index_axis(ndarray::Axis(0), i);
            assert!(
                got.iter().eq(expected.data.iter()),
                "{name}: slice {} differs from the frame rendered alone",
                i + 1
            );
        }
        println!(
            "{name}: {} frame(s) as one volume in {:.1} ms, frame by frame (each opening the file) {:.1} ms",
            stack.frames.len(),
            as_volume.as_secs_f64() * 1e3,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}

#[test]
fn a_greyscale_frame_in_a_colour_stack_is_refused() {
    let path = testdata::file(Collection::Pydicom, "CT_small.dcm").unwrap();
    let idx = index(std::slice::from_ref(&path));
    let series = idx.series().next().unwrap();
    let err = load_rgb_volume(
        series,
        &stacks(series)[0],
        &|_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(err.to_string().contains("greyscale"), "{err}");
}
