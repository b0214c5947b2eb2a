//! Real DICOM files for tests, looked up by name. `scripts/testdata.sh` (run by
//! `scripts/setup.sh --test`) unpacks them from the pydicom and pydicom-data wheels into
//! `.dokuei/testdata/`; nothing is committed.

use std::path::PathBuf;

/// The collections the set-up unpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// pydicom 3.0.2's `pydicom/data/test_files`.
    Pydicom,
    /// pydicom-data 1.0.0's `data_store/data` (without CQ500).
    PydicomData,
}

impl Collection {
    pub fn dir(self) -> PathBuf {
        root().join(match self {
            Collection::Pydicom => "pydicom",
            Collection::PydicomData => "pydicom-data",
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
