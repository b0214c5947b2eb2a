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
/// 4 GiB before reading. It must be refused before parsing, as a parse error naming the element.
#[test]
fn an_absurd_element_length_is_refused_before_parsing() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let bytes = std::fs::read(dir.join("oom-c19943b8855bf15cd3617f56007bc85b4ac5487b")).unwrap();
    let err = open_and_decode_bytes("oom-input", &bytes, 4).unwrap_err();
    assert_eq!(err.kind(), "parse", "{err}");
    assert!(err.to_string().contains("declares"), "{err}");
}
