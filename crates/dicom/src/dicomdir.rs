//! DICOMDIR (PS3.10 media directory): the files it references.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;

use crate::error::DicomError;

/// The image files a DICOMDIR references, as paths relative to its folder. Records that point
/// nowhere are left out; the index reports files that are listed but unreadable.
pub fn referenced_files(dicomdir: &Path) -> Result<Vec<PathBuf>, DicomError> {
    // Through Dokuei's own reader: lengths checked before anything is allocated.
    let source = crate::source::Source::File {
        path: dicomdir.to_path_buf(),
    };
    let opened = source.open(crate::source::ReadDepth::Full);
    files_of(
        dicomdir,
        opened,
        dicomdir.parent().unwrap_or(Path::new(".")),
    )
}

/// [`referenced_files`] of a DICOMDIR's bytes from anywhere (the fuzzer), `label` naming them;
/// referenced paths are resolved under `base`.
pub fn referenced_files_in_bytes(
    label: &str,
    bytes: &[u8],
    base: &Path,
) -> Result<Vec<PathBuf>, DicomError> {
    let source = crate::source::Source::File {
        path: PathBuf::from(label),
    };
    let opened = source
        .open_bytes(
            bytes,
            crate::source::sniff(bytes),
            crate::source::ReadDepth::Full,
        )
        .map(|o| o.map(|o| o.object));
    files_of(Path::new(label), opened, base)
}

fn files_of(
    dicomdir: &Path,
    opened: Result<Option<dicom_object::DefaultDicomObject>, DicomError>,
    base: &Path,
) -> Result<Vec<PathBuf>, DicomError> {
    let err = |reason: String| DicomError::Dicomdir {
        source_name: dicomdir.display().to_string(),
        reason,
    };
    let obj = opened
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("it is not a DICOM file".into()))?;
    let records = obj
        .get(tags::DIRECTORY_RECORD_SEQUENCE)
        .and_then(|e| e.items())
        .ok_or_else(|| err("it has no Directory Record Sequence".into()))?;
    let mut files = Vec::new();
    for record in records {
        let Some(id) = record.get(tags::REFERENCED_FILE_ID) else {
            continue;
        };
        // Referenced File ID is a multi-valued CS: one path component per value.
        let parts: Vec<String> = match id.value().to_multi_str() {
            Ok(parts) => parts.iter().map(|p| p.trim().to_owned()).collect(),
            Err(_) => continue,
        };
        let mut path = base.to_path_buf();
        for part in parts.iter().filter(|p| !p.is_empty()) {
            // Media file systems are case-insensitive; a copied tree may not be.
            path = find_case_insensitive(&path, part);
        }
        files.push(path);
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn find_case_insensitive(dir: &Path, name: &str) -> PathBuf {
    let exact = dir.join(name);
    if exact.exists() {
        return exact;
    }
    std::fs::read_dir(dir)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .find(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case(name))
                .map(|e| e.path())
        })
        .unwrap_or(exact)
}
