//! JPEG XL (jxl-oxide): the input is the compressed stream of one frame, wrapped in a small valid file
//! (transfer syntax 1.2.840.10008.1.2.4.112), whose first five bytes give the image size and depth the header declares
//! (`synth::codec_input_file`).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The malloc limit: Dokuei's memory cap in fuzz/run.sh (256 MiB) plus 64 MiB. Refusing, not
/// aborting, here: jxl-oxide reserves the section sizes a stream's table of contents declares
/// with `try_reserve` before the data is there (found by this target); a refused reservation
/// is its decode error. An allocation it does not ask for fallibly still aborts.
#[global_allocator]
static ALLOCATOR: dokuei_dicom::testdata::CappedAllocator =
    dokuei_dicom::testdata::CappedAllocator::refusing(320 << 20);

fuzz_target!(
    // Panics inside third-party codecs are caught by Dokuei and become decode errors; only a
    // panic that escapes Dokuei is a finding (it aborts across the fuzzer's C boundary).
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| {
    if let Some(file) = dokuei_dicom::synth::codec_input_file("1.2.840.10008.1.2.4.112", data) {
        let _ = dokuei_dicom::decode::open_and_decode_bytes("fuzz-input", &file, 1);
    }
}
);
