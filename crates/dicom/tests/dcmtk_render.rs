//! 8-bit rendering against DCMTK's `dcmj2pnm` (Debian `dcmtk`): for the same window, every
//! pixel within ±1.

use std::path::Path;
use std::process::Command;

use dokuei_dicom::render::{Voi, render, render_voi};
use dokuei_dicom::stack::stacks;
use dokuei_dicom::testdata::{self, Collection};
use dokuei_dicom::voi::Window;
use dokuei_dicom::{index, volume};

/// Reads a binary PGM (P5, maxval 255).
fn read_pgm(path: &Path) -> (usize, usize, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P5");
    assert_eq!(fields[3], "255");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, bytes[i + 1..].to_vec())
}

fn compare(collection: Collection, name: &str, center: f64, width: f64) {
    compare_with(
        collection,
        name,
        None,
        &["+Ww", &center.to_string(), &width.to_string()],
        Window::linear(center, width),
    );
}

/// Renders frame 0 of the first stack (with the file's VOI LUT when `use_lut`, else `window`)
/// and compares with `dcmj2pnm ARGS`.
fn compare_with(
    collection: Collection,
    name: &str,
    use_lut: Option<()>,
    dcmtk_args: &[&str],
    window: Window,
) {
    let path = testdata::file(collection, name).unwrap();
    let idx = index(std::slice::from_ref(&path));
    let series = &idx.patients[0].studies[0].series[0];
    let stack = &stacks(series)[0];
    let f = stack.frames.iter().find(|f| f.frame == 0).unwrap();
    let frame = volume::decode(series, f.instance, 0).unwrap();
    let ours = match use_lut {
        Some(()) => render_voi(
            &frame,
            f.rescale,
            Voi::Lut(f.voi_lut.as_ref().expect("the file has a VOI LUT")),
        ),
        None => render(&frame, f.rescale, window),
    };

    let dir = tempfile::tempdir().unwrap();
    let pgm = dir.path().join("out.pgm");
    let status = Command::new("dcmj2pnm")
        .arg("--quiet")
        .args(dcmtk_args)
        .arg(&path)
        .arg(&pgm)
        .status()
        .expect("dcmj2pnm is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success(), "dcmj2pnm failed on {name}");
    let (w, h, theirs) = read_pgm(&pgm);
    assert_eq!((w as u32, h as u32), (ours.width, ours.height), "{name}");
    let worst = ours
        .data
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (i16::from(*a) - i16::from(*b)).abs())
        .max()
        .unwrap();
    assert!(
        worst <= 1,
        "{name}: differs from DCMTK by up to {worst} levels"
    );
}

#[test]
fn ct_with_rescale_matches_dcmtk() {
    compare(Collection::Pydicom, "CT_small.dcm", 40.0, 400.0);
    compare(Collection::Pydicom, "CT_small.dcm", -600.0, 1500.0);
}

#[test]
fn mr_and_big_endian_match_dcmtk() {
    compare(Collection::Pydicom, "MR_small.dcm", 600.0, 1200.0);
    compare(Collection::Pydicom, "MR_small_bigendian.dcm", 600.0, 1200.0);
}

#[test]
fn monochrome1_radiographs_match_dcmtk() {
    compare(Collection::PydicomData, "RG1_UNCI.dcm", 15000.0, 30000.0);
    compare(Collection::PydicomData, "RG3_UNCR.dcm", 550.0, 1000.0);
}

#[test]
fn compressed_files_match_dcmtk() {
    // JPEG lossless and RLE. (dcmj2pnm decodes neither JPEG 2000 nor JPEG-LS; those files are
    // covered by the pydicom comparison of stored values.)
    compare(Collection::Pydicom, "MR_small_RLE.dcm", 600.0, 1200.0);
    compare(Collection::PydicomData, "JPEG-LL.dcm", 2000.0, 4000.0);
}

#[test]
fn a_voi_lut_sequence_matches_dcmtk() {
    compare_with(
        Collection::PydicomData,
        "vlut_04.dcm",
        Some(()),
        &["+Wl", "1"],
        Window::linear(0.0, 1.0),
    );
}

/// 12-bit JPEG Extended (libjpeg-turbo here) against DCMTK's own 12-bit IJG decoder: `dcmdjpeg`
/// writes the file uncompressed, and both must hold the same stored values.
#[test]
fn twelve_bit_jpeg_matches_dcmtk_dcmdjpeg() {
    let path = testdata::file(Collection::Pydicom, "JPGExtended.dcm").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.dcm");
    let status = Command::new("dcmdjpeg")
        .arg(&path)
        .arg(&plain)
        .status()
        .expect("dcmdjpeg is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success(), "dcmdjpeg failed");
    let decode_first = |p: &Path| {
        let idx = index(&[p.to_path_buf()]);
        let instance = idx.instances().next().unwrap().clone();
        let frame = dokuei_dicom::decode::decode_frame(&instance, 0).unwrap();
        (0..frame.pixels.len())
            .map(|i| frame.pixels.get(i).unwrap())
            .collect::<Vec<i64>>()
    };
    let (ours, theirs) = (decode_first(&path), decode_first(&plain));
    assert_eq!(ours.len(), theirs.len());
    assert!(ours.iter().any(|&v| v > 255), "not 12-bit data");
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .max()
        .unwrap();
    let differing = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    println!(
        "JPGExtended.dcm: {differing} of {} samples differ from dcmdjpeg, by at most {worst}",
        ours.len()
    );
    assert!(worst <= 1, "differs from DCMTK by up to {worst}");
}
