//! Any bytes, read as the study index reads a file (header only): must return, never panic,
//! abort or allocate past the memory cap.
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
    let _ = dokuei_dicom::index::header_of_bytes("fuzz-input", data);
}
);
