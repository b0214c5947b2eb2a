//! Instances on disk: received ones written as Part 10 files (the data set's bytes as they came,
//! under their study and series), and files read back for sending.

use std::io::Write;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTable, FileMetaTableBuilder};
use serde::{Deserialize, Serialize};

use crate::dimse::decode_data;

/// An instance that arrived (by C-GET, C-MOVE, a push, or WADO-RS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct StoredInstance {
    pub study_uid: String,
    pub series_uid: String,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax: String,
    pub path: PathBuf,
    #[specta(type = f64)]
    pub bytes: u64,
}

/// A UID as a path component (digits and dots only, so nothing can climb out of the cache).
pub(crate) fn uid_component(uid: &str) -> Result<&str, String> {
    let ok = !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !uid.starts_with('.');
    if ok {
        Ok(uid)
    } else {
        Err(format!("{uid:?} is not a valid UID"))
    }
}

/// Writes `path` through a temporary file and a rename, so a half-written file is never seen
/// under its name. Not synced to disk: these are cached copies of what the PACS holds, and a
/// retrieve that a crash interrupts is retried; an fsync per instance would halve throughput.
pub(crate) fn write_atomically(path: &Path, parts: &[&[u8]]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = path.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for p in parts {
            f.write_all(p)?;
        }
        f.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}

/// Stores a received data set (in transfer syntax `ts`) under `root/<study>/<series>/` as a
/// Part 10 file. The data set is read to find its study and series and to check that it is
/// what the command said; its bytes are written as they came.
pub(crate) fn store_received(
    root: &Path,
    sop_class: &str,
    sop_instance: &str,
    ts: &str,
    data: &[u8],
) -> Result<StoredInstance, String> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(ts)
        .implementation_class_uid(crate::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(crate::IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| format!("building the file meta information: {e}"))?;
    let mut head = vec![0u8; 128];
    head.extend_from_slice(b"DICM");
    meta.write(&mut head)
        .map_err(|e| format!("writing the file meta information: {e}"))?;
    // The attributes before the pixel data are enough to place the instance (and reading them
    // checks the data set is readable); the pixel data are written as they came.
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .from_reader(std::io::Read::chain(&head[128..], data))
        .map_err(|e| format!("reading the data set: {e}"))?;
    let text = |tag| -> String {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .unwrap_or_default()
    };
    let study = text(tags::STUDY_INSTANCE_UID);
    let series = text(tags::SERIES_INSTANCE_UID);
    let own_instance = text(tags::SOP_INSTANCE_UID);
    if own_instance != sop_instance {
        return Err(format!(
            "the data set's SOP Instance UID {own_instance} is not the one announced ({sop_instance})"
        ));
    }
    let path = root
        .join(uid_component(&study).map_err(|e| format!("Study Instance UID: {e}"))?)
        .join(uid_component(&series).map_err(|e| format!("Series Instance UID: {e}"))?)
        .join(format!(
            "{}.dcm",
            uid_component(sop_instance).map_err(|e| format!("SOP Instance UID: {e}"))?
        ));
    write_atomically(&path, &[&head, data])?;
    Ok(StoredInstance {
        study_uid: study,
        series_uid: series,
        sop_instance_uid: sop_instance.to_string(),
        sop_class_uid: sop_class.to_string(),
        transfer_syntax: ts.to_string(),
        bytes: (head.len() + data.len()) as u64,
        path,
    })
}

/// A Part 10 file read for sending: its meta information and its data set's bytes.
pub(crate) struct Outgoing {
    pub path: PathBuf,
    pub sop_class: String,
    pub sop_instance: String,
    pub transfer_syntax: String,
    bytes: Vec<u8>,
    data_offset: usize,
}

impl Outgoing {
    pub fn read(path: &Path) -> Result<Outgoing, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Outgoing::parse(path.to_path_buf(), bytes)
    }

    /// A Part 10 file's bytes (`path` names it in errors).
    pub fn parse(path: PathBuf, bytes: Vec<u8>) -> Result<Outgoing, String> {
        let path = path.as_path();
        if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
            return Err(format!("{} is not a DICOM Part 10 file", path.display()));
        }
        let meta = FileMetaTable::from_reader(&bytes[128..])
            .map_err(|e| format!("{}: file meta information: {e}", path.display()))?;
        // Preamble, magic, the group length element (12 bytes) and the group.
        let data_offset = 132 + 12 + meta.information_group_length as usize;
        if data_offset > bytes.len() {
            return Err(format!(
                "{}: truncated file meta information",
                path.display()
            ));
        }
        let clean = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
        Ok(Outgoing {
            path: path.to_path_buf(),
            sop_class: clean(&meta.media_storage_sop_class_uid),
            sop_instance: clean(&meta.media_storage_sop_instance_uid),
            transfer_syntax: clean(&meta.transfer_syntax),
            bytes,
            data_offset,
        })
    }

    pub fn data(&self) -> &[u8] {
        &self.bytes[self.data_offset..]
    }

    /// The whole file.
    pub fn file_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The Study Instance UID in the data set.
    pub fn study_uid(&self) -> Result<String, String> {
        let obj = decode_data(self.data(), &self.transfer_syntax)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        obj.element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .ok_or_else(|| format!("{}: no Study Instance UID", self.path.display()))
    }

    /// The data set in another (uncompressed) transfer syntax.
    pub fn reencoded(&self, ts: &str) -> Result<Vec<u8>, String> {
        let obj = decode_data(self.data(), &self.transfer_syntax)?;
        crate::dimse::encode_data(&obj, ts)
    }
}
