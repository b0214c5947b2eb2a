//! JPEG XL (jxl-oxide): the input is the compressed stream of one frame, wrapped in a small valid file
//! (transfer syntax 1.2.840.10008.1.2.4.112), whose first five bytes give the image size and depth the header declares
//! (`synth::codec_input_file`).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The malloc limit: Dokuei's memory cap in fuzz/run.sh (256 MiB) plus 64 MiB.
#[global_allocator]
static ALLOCATOR: dokuei_dicom::testdata::CappedAllocator =
    dokuei_dicom::testdata::CappedAllocator::new(320 << 20);

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
