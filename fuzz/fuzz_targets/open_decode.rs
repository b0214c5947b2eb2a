//! Any bytes, opened and decoded as a DICOM file: must return, never panic or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dokuei_dicom::decode::open_and_decode_bytes("fuzz-input", data, 4);
});
