//! Real DICOM files for tests, looked up by name. `scripts/testdata.sh` (run by
//! `scripts/setup.sh --test`) unpacks them from registry packages (pydicom, pydicom-data,
//! deid-data, dicompyler-core, nibabel), has dcmqi write SEG and SR and
//! imagecodecs re-encode HTJ2K and JPEG XL into `.dokuei/testdata/`; nothing is committed.

use std::path::PathBuf;

/// The collections the set-up unpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// pydicom 3.0.2's `pydicom/data/test_files`.
    Pydicom,
    /// pydicom-data 1.0.0's `data_store/data` (without CQ500).
    PydicomData,
    /// deid-data 0.0.20's source archive: ultrasound stills and cine loops (greyscale, RGB),
    /// images with burned-in annotations, CT.
    DeidData,
    /// dicompyler-core 0.5.6's source archive: RT Structure Set, Dose and Plan, a CT slice.
    Dicompyler,
    /// nibabel's test DICOM files (Siemens diffusion and mosaic, Philips).
    Nibabel,
    /// SEG (binary, labelmap) and SR TID 1500 that dcmqi writes from a corpus CT series.
    Dcmqi,
    /// Corpus images re-encoded losslessly as High-Throughput JPEG 2000 (OpenJPH) and JPEG XL
    /// (libjxl); `sources.json` names the file each was made from.
    Reencoded,
}

impl Collection {
    /// Every collection, in the order reports list them.
    pub const ALL: [Collection; 7] = [
        Collection::Pydicom,
        Collection::PydicomData,
        Collection::DeidData,
        Collection::Dicompyler,
        Collection::Nibabel,
        Collection::Dcmqi,
        Collection::Reencoded,
    ];
}

impl Collection {
    pub fn dir(self) -> PathBuf {
        root().join(match self {
            Collection::Pydicom => "pydicom",
            Collection::PydicomData => "pydicom-data",
            Collection::DeidData => "deid-data",
            Collection::Dicompyler => "dicompyler",
            Collection::Nibabel => "nibabel",
            Collection::Dcmqi => "dcmqi",
            Collection::Reencoded => "reencoded",
        })
    }
}

/// `.dokuei/testdata` at the workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.dokuei/testdata")
}

/// The path of a test file, or an error that says how to get it.
pub fn file(collection: Collection, name: &str) -> Result<PathBuf, String> {
    let path = collection.dir().join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "test file {} is missing: run `bash scripts/setup.sh --test`",
            path.display()
        ))
    }
}

/// The Python interpreter of the reference venv (pydicom, numpy, decoders).
pub fn reference_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.dokuei/venv/bin/python")
}

/// A global allocator for the fuzz targets and the replay of what they found: a single allocation
/// larger than its limit either aborts the process, printing its size and a backtrace (the
/// fuzzer's malloc limit, without a sanitizer: libFuzzer's `-malloc_limit_mb` needs a sanitizer's
/// allocator hooks, and the targets run without one so that the rate is real), or is refused,
/// as `malloc` refuses past a hard memory limit: code that asks fallibly (`try_reserve`) gets an
/// error, code that does not aborts. Memory that C codecs allocate with `malloc` is not seen here;
/// `-rss_limit_mb` covers it.
#[derive(Debug)]
pub struct CappedAllocator {
    limit: usize,
    refuse: bool,
}

static REFUSALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl CappedAllocator {
    /// Aborts on an allocation past `limit` bytes.
    pub const fn new(limit: usize) -> CappedAllocator {
        CappedAllocator {
            limit,
            refuse: false,
        }
    }

    /// Refuses an allocation past `limit` bytes, counting it (see [`CappedAllocator::refusals`]).
    pub const fn refusing(limit: usize) -> CappedAllocator {
        CappedAllocator {
            limit,
            refuse: true,
        }
    }

    /// Allocations refused so far in this process.
    pub fn refusals() -> usize {
        REFUSALS.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the allocation may go ahead.
    fn check(&self, size: usize) -> bool {
        if size <= self.limit {
            return true;
        }
        if self.refuse {
            REFUSALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return false;
        }
        // Small allocations are still served while this is printed.
        eprintln!(
            "an allocation of {size} bytes exceeded the limit of {} bytes\n{}",
            self.limit,
            std::backtrace::Backtrace::force_capture()
        );
        std::process::abort();
    }
}

// The one place the test support allocates through the system allocator directly.
#[allow(unsafe_code)]
// SAFETY: every call goes to the system allocator unchanged after a size check, or returns null
// (allocation failure, which callers of GlobalAlloc must handle).
unsafe impl std::alloc::GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if !self.check(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if !self.check(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if !self.check(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}
