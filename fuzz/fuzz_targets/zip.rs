//! Any bytes, read as a zip archive of DICOM files: every entry listed, read (under the memory
//! cap) and opened as the index opens a file.
#![no_main]

use std::io::Cursor;

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
    let Ok(names) = dokuei_dicom::source::zip_entry_names(Cursor::new(data)) else {
        return;
    };
    for name in names.iter().take(16) {
        if let Ok(bytes) =
            dokuei_dicom::source::read_zip_entry(Cursor::new(data), name, 64 << 20, name)
        {
            let _ = dokuei_dicom::index::header_of_bytes(name, &bytes);
        }
    }
}
);
