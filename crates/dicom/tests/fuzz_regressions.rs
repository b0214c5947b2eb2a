//! Inputs the fuzzer (fuzz/, target `open_decode`) found to crash or exhaust memory, replayed
//! through the same read path. Each must now end in a clear error (or decode), promptly.

use dokuei_dicom::decode::open_and_decode_bytes;

#[test]
fn fuzz_regressions_end_in_clear_errors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match open_and_decode_bytes(&name, &bytes, 4) {
            Ok(_) => {}
            Err(e) => assert!(
                e.to_string().contains(&name),
                "{name}: the error does not name the input: {e}"
            ),
        }
        replayed += 1;
    }
    assert!(replayed >= 1);
}

/// Found 2026-11-22: an element declaring 4 GiB in a 31 KiB file made dicom-parser reserve
/// 4 GiB before reading. That element lies after the data set, in stray bytes (pydicom reads the
/// file; DCMTK stops at the element): the walk that checks lengths now finds where the data set
/// ends, so the image decodes as in pydicom and nothing is reserved for the stray bytes. An
/// absurd length inside a data set is still refused before parsing (`bad_input`).
#[test]
fn an_absurd_element_length_after_the_data_set_is_left_out() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let bytes = std::fs::read(dir.join("oom-c19943b8855bf15cd3617f56007bc85b4ac5487b")).unwrap();
    let frames = open_and_decode_bytes("oom-input", &bytes, 4).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].rows, frames[0].columns), (100, 100));
}
