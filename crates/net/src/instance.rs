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
    // Unique per writer: a retrieve and a push may write the same instance at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{n}.partial", std::process::id()));
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

/// Why a received instance was not stored, with the C-STORE status that says so: 0xA700 (out of
/// resources) when it could not be written, 0xC000 (cannot understand) when it could not be
/// read or placed.
#[derive(Debug)]
pub(crate) struct NotStored {
    pub status: u16,
    pub reason: String,
}

fn unreadable(reason: String) -> NotStored {
    NotStored {
        status: 0xC000,
        reason,
    }
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
) -> Result<StoredInstance, NotStored> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(ts)
        .implementation_class_uid(crate::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(crate::IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| unreadable(format!("building the file meta information: {e}")))?;
    let mut head = vec![0u8; 128];
    head.extend_from_slice(b"DICM");
    meta.write(&mut head)
        .map_err(|e| unreadable(format!("encoding the file meta information: {e}")))?;
    // The attributes before the pixel data are enough to place the instance (and reading them
    // checks the data set is readable); the pixel data are written as they came.
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .from_reader(std::io::Read::chain(&head[128..], data))
        .map_err(|e| unreadable(format!("reading the data set: {e}")))?;
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
        return Err(unreadable(format!(
            "the data set's SOP Instance UID {own_instance} is not the one announced ({sop_instance})"
        )));
    }
    let path = root
        .join(uid_component(&study).map_err(|e| unreadable(format!("Study Instance UID: {e}")))?)
        .join(uid_component(&series).map_err(|e| unreadable(format!("Series Instance UID: {e}")))?)
        .join(format!(
            "{}.dcm",
            uid_component(sop_instance)
                .map_err(|e| unreadable(format!("SOP Instance UID: {e}")))?
        ));
    write_atomically(&path, &[&head, data]).map_err(|reason| NotStored {
        status: 0xA700,
        reason,
    })?;
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

/// What a Part 10 file is, read from its header only (up to the pixel data): enough to plan a
/// send without holding the files in memory.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub path: PathBuf,
    pub sop_class: String,
    pub sop_instance: String,
    pub transfer_syntax: String,
    pub study_uid: String,
    pub bytes: u64,
}

impl Header {
    pub fn read(path: &Path) -> Result<Header, String> {
        let obj = dicom_object::OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| format!("{}: not a readable DICOM file: {e}", path.display()))?;
        let clean = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
        let meta = obj.meta();
        let study_uid = obj
            .element(tags::STUDY_INSTANCE_UID)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| clean(&s))
            .unwrap_or_default();
        Ok(Header {
            path: path.to_path_buf(),
            sop_class: clean(&meta.media_storage_sop_class_uid),
            sop_instance: clean(&meta.media_storage_sop_instance_uid),
            transfer_syntax: clean(&meta.transfer_syntax),
            study_uid,
            bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        })
    }
}

/// A Part 10 file read for sending: its meta information and its data set's bytes.
pub(crate) struct Outgoing {
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
        // Preamble, magic, the group length element (12 bytes) and the group, by the length the
        // file declares (dicom-object recomputes its own from the elements it keeps).
        if bytes.len() < 144 || bytes[132..136] != [0x02, 0x00, 0x00, 0x00] {
            return Err(format!(
                "{}: the file meta information does not start with its group length",
                path.display()
            ));
        }
        let declared = u32::from_le_bytes([bytes[140], bytes[141], bytes[142], bytes[143]]);
        let data_offset = 144 + declared as usize;
        if data_offset > bytes.len() {
            return Err(format!(
                "{}: truncated file meta information",
                path.display()
            ));
        }
        let clean = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
        Ok(Outgoing {
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

    /// The data set in another (uncompressed) transfer syntax.
    pub fn reencoded(&self, ts: &str) -> Result<Vec<u8>, String> {
        let obj = decode_data(self.data(), &self.transfer_syntax)?;
        crate::dimse::encode_data(&obj, ts)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn element(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = value.to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        let mut out = Vec::new();
        out.extend(group.to_le_bytes());
        out.extend(element.to_le_bytes());
        out.extend(vr);
        out.extend((v.len() as u16).to_le_bytes());
        out.extend(v);
        out
    }

    /// A meta group without (0002,0001) and with an element dicom-object does not keep: the
    /// data set starts where the file's own group length says, not where a rebuilt table would.
    #[test]
    fn the_data_set_starts_where_the_declared_group_length_says() {
        let mut group = Vec::new();
        group.extend(element(2, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.7"));
        group.extend(element(2, 0x0003, b"UI", b"1.2.3.4"));
        group.extend(element(2, 0x0010, b"UI", b"1.2.840.10008.1.2.1"));
        group.extend(element(2, 0x0016, b"AE", b"SOMEWHERE"));
        let data = element(8, 0x0018, b"UI", b"1.2.3.4");
        let mut file = vec![0u8; 128];
        file.extend(b"DICM");
        file.extend(element(2, 0, b"UL", &(group.len() as u32).to_le_bytes()));
        file.extend(&group);
        file.extend(&data);
        // dicom-object's own idea of the group's length differs (it is what misplaced the
        // data set before).
        let rebuilt = FileMetaTable::from_reader(&file[128..]).unwrap();
        assert_ne!(rebuilt.information_group_length as usize, group.len());
        let o = Outgoing::parse(PathBuf::from("test.dcm"), file).unwrap();
        assert_eq!(o.sop_instance, "1.2.3.4");
        assert_eq!(o.data(), &data[..]);
    }
}
