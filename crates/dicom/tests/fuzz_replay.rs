//! Inputs the fuzz targets (fuzz/, `bash fuzz/run.sh`) found to crash, hang or allocate past the
//! memory cap, replayed through the same entry point as the target that found them: each must
//! now end in a clear error naming the input (or succeed), promptly, and without any single
//! allocation over 256 MiB: such an allocation is refused, and the test fails unless the input is
//! one where a third-party codec asks for it fallibly and turns the refusal into its error
//! (`FALLIBLE_RESERVATIONS`). `tests/fuzz_regressions/<target>/` holds them.
//!
//! A test binary of its own (not a module of `tests.rs`) because it installs a global allocator
//! that refuses allocations past the limit and counts them.

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use dokuei_dicom::testdata::CappedAllocator;

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator::refusing(256 << 20);

/// Targets whose inputs may make a third-party codec ask, fallibly, for more than the limit:
/// jxl-oxide reserves the section sizes a JPEG XL stream's table of contents declares before
/// the data is there; the refused reservation becomes its decode error.
const FALLIBLE_RESERVATIONS: &[&str] = &["decode_jpegxl"];

/// Runs one input through its target's entry point; `Err` carries the error text.
fn replay(target: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
    use dokuei_dicom::decode::open_and_decode_bytes;
    let codec = |ts: &str| match dokuei_dicom::synth::codec_input_file(ts, bytes) {
        Some(file) => open_and_decode_bytes(name, &file, 1).map(|_| ()),
        None => Ok(()),
    };
    let result = match target {
        "index_header" => dokuei_dicom::index::header_of_bytes(name, bytes).map(|_| ()),
        "open_decode" => open_and_decode_bytes(name, bytes, 4).map(|_| ()),
        "decode_jpeg" => codec("1.2.840.10008.1.2.4.51"),
        "decode_jpegls" => codec("1.2.840.10008.1.2.4.80"),
        "decode_j2k" => codec("1.2.840.10008.1.2.4.90"),
        "decode_jpegxl" => codec("1.2.840.10008.1.2.4.112"),
        "decode_rle" => codec("1.2.840.10008.1.2.5"),
        "decode_deflate" => {
            let file = dokuei_dicom::synth::image_file("1.2.840.10008.1.2.1.99", 1, 1, 1, 8, bytes);
            open_and_decode_bytes(name, &file, 1).map(|_| ())
        }
        "dicomdir" => dokuei_dicom::dicomdir::referenced_files_in_bytes(
            name,
            bytes,
            Path::new("/nonexistent"),
        )
        .map(|_| ()),
        other => panic!("no replay for fuzz target `{other}`"),
    };
    result.map_err(|e| e.to_string())
}

#[test]
fn what_the_fuzzer_found_ends_in_clear_errors() {
    // Third-party codecs panic (in their own threads, too) on some of these inputs; Dokuei
    // catches those panics. Their messages are left out of the output; every other is printed.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info
            .location()
            .is_some_and(|l| l.file().contains("/.cargo/registry/"))
        {
            default_hook(info);
        }
    }));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut replayed = 0;
    for target in std::fs::read_dir(&root).unwrap() {
        let target = target.unwrap().path();
        let target_name = target.file_name().unwrap().to_string_lossy().into_owned();
        for input in std::fs::read_dir(&target).unwrap() {
            let path = input.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let started = Instant::now();
            let refused = CappedAllocator::refusals();
            let result = replay(&target_name, &name, &bytes);
            if !FALLIBLE_RESERVATIONS.contains(&target_name.as_str()) {
                assert_eq!(
                    CappedAllocator::refusals(),
                    refused,
                    "{target_name}/{name} asked for more than 256 MiB at once"
                );
            }
            if let Err(e) = result {
                assert!(
                    e.contains(&name) || e.contains("DICOMDIR"),
                    "{target_name}/{name}: the error does not name the input: {e}"
                );
                println!("{target_name}/{name}: {e}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{target_name}/{name} took {:?}",
                started.elapsed()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= 6, "only {replayed} input(s) replayed");
}

/// Found 2026-11-22: an element declaring 4 GiB in a 31 KiB file made dicom-parser reserve
/// 4 GiB before reading. That element lies after the data set, in stray bytes (pydicom reads the
/// file; DCMTK stops at the element): the walk that checks lengths finds where the data set
/// ends, so the image decodes as in pydicom and nothing is reserved for the stray bytes. An
/// absurd length inside a data set is still refused before parsing (`bad_input`).
#[test]
fn an_absurd_element_length_after_the_data_set_is_left_out() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions/open_decode/oom-c19943b8855bf15cd3617f56007bc85b4ac5487b");
    let frames =
        dokuei_dicom::decode::open_and_decode_bytes("oom-input", &std::fs::read(path).unwrap(), 4)
            .unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].rows, frames[0].columns), (100, 100));
}
