//! Where instances come from (a file, or an entry of a zip archive) and how their bytes are
//! read: header only for the index, whole for decoding.

use std::fmt;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use serde::Serialize;

use crate::error::DicomError;

/// The largest file Dokuei reads into memory (a 2 GiB enhanced multi-frame is already
/// extraordinary); larger ones are refused with a clear error instead of exhausting memory.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// One DICOM instance's location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    File { path: PathBuf },
    ZipEntry { archive: PathBuf, entry: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path } => write!(f, "{}", path.display()),
            Source::ZipEntry { archive, entry } => write!(f, "{}!/{entry}", archive.display()),
        }
    }
}

/// How much of an instance to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadDepth {
    /// Stop before Pixel Data (fast: used to index studies).
    Header,
    /// Everything (to decode pixels).
    Full,
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Preamble + "DICM" + file meta group.
    Part10,
    /// "DICM" + file meta group, without the 128-byte preamble.
    NoPreamble,
    /// A file meta group at the very start: neither preamble nor "DICM".
    MetaOnly,
    /// A bare data set without preamble or meta group, in the given transfer syntax.
    Bare(&'static str),
    NotDicom,
}

impl Kind {
    /// Where the file meta group starts, for the kinds that have one.
    fn meta_start(self) -> Option<u64> {
        match self {
            Kind::Part10 => Some(132),
            Kind::NoPreamble => Some(4),
            Kind::MetaOnly => Some(0),
            Kind::Bare(_) | Kind::NotDicom => None,
        }
    }
}

const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";

/// The most memory one file may make Dokuei use for its data set or one decoded frame, in
/// bytes: 2 GiB, or `DOKUEI_MAX_DECODE_MB` mebibytes when that is set. Inflating, reading and
/// decoding refuse anything larger with a clear error instead of exhausting memory.
pub fn memory_cap() -> u64 {
    static CAP: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        std::env::var("DOKUEI_MAX_DECODE_MB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&mb| mb > 0)
            .map_or(MAX_FILE_BYTES, |mb| mb << 20)
    })
}

/// Recognises a DICOM file from its first 132 bytes. A bare data set (no meta group, as some
/// old systems write) is recognised when it starts with a plausible group 0008 element.
pub(crate) fn sniff(head: &[u8]) -> Kind {
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        return Kind::Part10;
    }
    if head.starts_with(b"DICM\x02\x00") {
        return Kind::NoPreamble;
    }
    if head.len() < 8 {
        return Kind::NotDicom;
    }
    let le_group = u16::from_le_bytes([head[0], head[1]]);
    let be_group = u16::from_be_bytes([head[0], head[1]]);
    let vr_like = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
    match (le_group, be_group) {
        (0x0002, _) if vr_like => Kind::MetaOnly,
        (0x0008, _) if vr_like => Kind::Bare(EXPLICIT_LE),
        (0x0008, _) => {
            // Implicit VR: bytes 4..8 are a 32-bit length; a header element is short.
            let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            if len < 0x1_0000 {
                Kind::Bare(IMPLICIT_LE)
            } else {
                Kind::NotDicom
            }
        }
        (_, 0x0008) if vr_like => Kind::Bare(EXPLICIT_BE),
        _ => Kind::NotDicom,
    }
}

/// A file read up to its Pixel Data (see [`Source::open_split`]).
#[derive(Debug)]
pub struct Split {
    /// The data set without its Pixel Data.
    pub object: DefaultDicomObject,
    pub path: PathBuf,
    /// The Pixel Data element's bytes in the file (header and value): start and end offsets.
    pub pixel_data: (u64, u64),
    /// The file, still open, for the copy of those bytes (at no particular position).
    pub file: std::fs::File,
}

/// An opened instance, with what was tolerated while reading it.
#[derive(Debug)]
pub struct Opened {
    pub object: DefaultDicomObject,
    /// Deviations from the standard that pydicom and DCMTK read through too (trailing bytes,
    /// a wrong meta group length, a missing preamble…), in words for the user.
    pub notes: Vec<String>,
}

impl Source {
    /// The file name shown in messages (the entry name for a zip entry).
    pub fn file_name(&self) -> String {
        match self {
            Source::File { path } => path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            Source::ZipEntry { entry, .. } => entry.rsplit('/').next().unwrap_or(entry).to_owned(),
        }
    }

    /// Whether the name suggests the file was meant to be DICOM (so that unreadable content is
    /// a problem to report rather than a stray file to skip).
    pub fn looks_like_dicom_by_name(&self) -> bool {
        let name = self.file_name().to_ascii_lowercase();
        name.ends_with(".dcm") || name.ends_with(".dicom") || name.ends_with(".ima")
    }

    fn read_bytes(&self, limit: u64) -> Result<Vec<u8>, DicomError> {
        let io = |e: std::io::Error| DicomError::Io {
            source_name: self.to_string(),
            reason: e.to_string(),
        };
        match self {
            Source::File { path } => {
                let len = std::fs::metadata(path).map_err(io)?.len();
                if len > memory_cap() {
                    return Err(DicomError::TooLarge {
                        source_name: self.to_string(),
                        bytes: len,
                        cap_mib: memory_cap() >> 20,
                    });
                }
                let mut buf = Vec::with_capacity(len.min(limit) as usize);
                std::fs::File::open(path)
                    .map_err(io)?
                    .take(limit)
                    .read_to_end(&mut buf)
                    .map_err(io)?;
                Ok(buf)
            }
            Source::ZipEntry { archive, entry } => {
                let file = std::fs::File::open(archive).map_err(io)?;
                read_zip_entry(
                    std::io::BufReader::new(file),
                    entry,
                    limit,
                    &self.to_string(),
                )
            }
        }
    }

    /// Opens the instance. `Ok(None)` means it is not DICOM at all.
    pub fn open(&self, depth: ReadDepth) -> Result<Option<DefaultDicomObject>, DicomError> {
        Ok(self.open_noted(depth)?.map(|o| o.object))
    }

    /// Opens the instance and says what was tolerated. `Ok(None)` means it is not DICOM at all.
    pub fn open_noted(&self, depth: ReadDepth) -> Result<Option<Opened>, DicomError> {
        match self {
            Source::File { .. } => {
                // Files are sniffed from their head only, then read from disk as they are
                // walked and parsed: no whole-file copy, and one open.
                let (mut reader, kind, end) = self.open_sniffed()?;
                let Some(meta_start) = kind.meta_start() else {
                    if kind == Kind::NotDicom {
                        return Ok(None);
                    }
                    let bytes = self.read_bytes(memory_cap())?;
                    return self.open_bytes(&bytes, kind, depth);
                };
                reader
                    .seek(SeekFrom::Start(meta_start))
                    .map_err(|e| DicomError::Io {
                        source_name: self.to_string(),
                        reason: e.to_string(),
                    })?;
                self.open_part10(reader, kind, meta_start, end, depth)
                    .map(Some)
            }
            Source::ZipEntry { .. } => {
                let bytes = self.read_bytes(memory_cap())?;
                self.open_bytes(&bytes, sniff(&bytes), depth)
            }
        }
    }

    /// Reads a file's data set up to its Pixel Data, and says where the Pixel Data element lies
    /// in the file (start, end), so that a copy can take those bytes over without reading them.
    /// `Ok(None)` when the file does not lend itself to that: not a plain Part 10 file, a
    /// deflated data set, no top-level Pixel Data, or elements after it other than padding.
    pub fn open_split(&self) -> Result<Option<Split>, DicomError> {
        let Source::File { path } = self else {
            return Ok(None);
        };
        let (mut r, kind, end) = self.open_sniffed()?;
        let Some(meta_start) = kind.meta_start() else {
            return Ok(None);
        };
        let io = |e: std::io::Error| DicomError::Io {
            source_name: self.to_string(),
            reason: e.to_string(),
        };
        let layout = crate::lengths::scan_part10(&mut r, meta_start, end)
            .map_err(|reason| self.parse_error(reason))?;
        let m = &layout.meta;
        let Some((pixel_start, pixel_end)) = layout.pixel_data else {
            return Ok(None);
        };
        if m.transfer_syntax == crate::lengths::DEFLATED || pixel_end != layout.data_end {
            return Ok(None);
        }
        let meta = self.rebuilt_meta(m)?;
        let mut head = b"DICM".to_vec();
        meta.write(&mut head)
            .map_err(|e| self.parse_error(e.to_string()))?;
        r.seek(SeekFrom::Start(layout.data_start)).map_err(io)?;
        let data = Cursor::new(head).chain((&mut r).take(pixel_start - layout.data_start));
        let object = OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .from_reader(data)
            .map_err(|e| self.parse_error(e.to_string()))?;
        Ok(Some(Split {
            object,
            path: path.clone(),
            pixel_data: (pixel_start, pixel_end),
            file: r.into_file(),
        }))
    }

    /// Opens a file once for a walk: its reader (after the head it sniffed), what the head
    /// says it is, and its length. A file past the memory cap is refused, as `read_bytes` does.
    fn open_sniffed(&self) -> Result<(Positioned, Kind, u64), DicomError> {
        let io = |e: std::io::Error| DicomError::Io {
            source_name: self.to_string(),
            reason: e.to_string(),
        };
        let Source::File { path } = self else {
            return Err(io(std::io::Error::other("not a file")));
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let end = file.metadata().map_err(io)?.len();
        if end > memory_cap() {
            return Err(DicomError::TooLarge {
                source_name: self.to_string(),
                bytes: end,
                cap_mib: memory_cap() >> 20,
            });
        }
        let mut r = Positioned::new(file);
        let mut head = Vec::with_capacity(132);
        (&mut r).take(132).read_to_end(&mut head).map_err(io)?;
        Ok((r, sniff(&head), end))
    }

    pub(crate) fn open_bytes(
        &self,
        bytes: &[u8],
        kind: Kind,
        depth: ReadDepth,
    ) -> Result<Option<Opened>, DicomError> {
        match (kind, kind.meta_start()) {
            (Kind::NotDicom, _) => Ok(None),
            (Kind::Bare(ts_uid), _) => self.open_bare(bytes, ts_uid).map(Some),
            (_, Some(meta_start)) => self
                .open_part10(
                    Cursor::new(bytes),
                    kind,
                    meta_start,
                    bytes.len() as u64,
                    depth,
                )
                .map(Some),
            (_, None) => Ok(None),
        }
    }

    /// Reads a file that has a file meta group: the walk in `lengths` finds the parts and
    /// checks every length, then dicom-rs reads a rebuilt meta group followed by exactly the
    /// data set's bytes.
    fn open_part10<R: Read + Seek>(
        &self,
        mut r: R,
        kind: Kind,
        meta_start: u64,
        end: u64,
        depth: ReadDepth,
    ) -> Result<Opened, DicomError> {
        let layout = crate::lengths::scan_part10(&mut r, meta_start, end)
            .map_err(|reason| self.parse_error(reason))?;
        let mut notes = Vec::new();
        match kind {
            Kind::NoPreamble => notes.push("the file has no 128-byte preamble".to_owned()),
            Kind::MetaOnly => {
                notes.push("the file has neither the 128-byte preamble nor `DICM`".to_owned())
            }
            _ => {}
        }
        notes.extend(layout.notes.iter().cloned());
        let m = &layout.meta;
        let meta = self.rebuilt_meta(m)?;
        let io = |e: std::io::Error| DicomError::Io {
            source_name: self.to_string(),
            reason: e.to_string(),
        };
        r.seek(SeekFrom::Start(layout.data_start)).map_err(io)?;
        if m.transfer_syntax == crate::lengths::DEFLATED {
            let (object, inflated_notes) =
                self.read_deflated(r.take(layout.data_end - layout.data_start), meta)?;
            notes.extend(inflated_notes);
            return Ok(Opened { object, notes });
        }
        let mut head = b"DICM".to_vec();
        meta.write(&mut head)
            .map_err(|e| self.parse_error(e.to_string()))?;
        let data = Cursor::new(head).chain(r.take(layout.data_end - layout.data_start));
        let object = open_options(depth)
            .read_preamble(ReadPreamble::Never)
            .from_reader(data)
            .map_err(|e| self.parse_error(e.to_string()))?;
        Ok(Opened { object, notes })
    }

    /// Inflates a Deflated Explicit VR Little Endian data set, never to more than
    /// [`memory_cap`], then walks and reads it like any other.
    fn read_deflated<R: Read>(
        &self,
        compressed: R,
        meta: dicom_object::FileMetaTable,
    ) -> Result<(DefaultDicomObject, Vec<String>), DicomError> {
        let cap = memory_cap();
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(compressed)
            .take(cap + 1)
            .read_to_end(&mut inflated)
            .map_err(|e| {
                self.parse_error(format!("its deflated data set cannot be inflated: {e}"))
            })?;
        if inflated.len() as u64 > cap {
            return Err(DicomError::TooLarge {
                source_name: self.to_string(),
                bytes: inflated.len() as u64,
                cap_mib: memory_cap() >> 20,
            });
        }
        let (data_end, notes) = crate::lengths::walk_data_set(
            &mut Cursor::new(&inflated),
            inflated.len() as u64,
            crate::lengths::Encoding::EXPLICIT_LE,
        )
        .map_err(|reason| self.parse_error(format!("in its inflated data set, {reason}")))?;
        use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
        let ts = TransferSyntaxRegistry.get(EXPLICIT_LE).ok_or_else(|| {
            self.parse_error("explicit VR little endian is not registered".into())
        })?;
        let dataset = InMemDicomObject::read_dataset_with_ts(&inflated[..data_end as usize], ts)
            .map_err(|e| self.parse_error(format!("in its inflated data set, {e}")))?;
        Ok((dataset.with_exact_meta(meta), notes))
    }

    /// Reads a data set that has no file meta group, and gives it one so the rest of Dokuei
    /// can treat it like any other file.
    fn open_bare(&self, bytes: &[u8], ts_uid: &str) -> Result<Opened, DicomError> {
        let (data_end, mut notes) = crate::lengths::walk_data_set(
            &mut Cursor::new(bytes),
            bytes.len() as u64,
            crate::lengths::Encoding::of(ts_uid),
        )
        .map_err(|reason| self.parse_error(reason))?;
        notes.insert(0, "the file has no file meta group".to_owned());
        use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
        let registry = TransferSyntaxRegistry;
        let ts = registry
            .get(ts_uid)
            .ok_or_else(|| self.parse_error(format!("unknown transfer syntax {ts_uid}")))?;
        let dataset =
            InMemDicomObject::read_dataset_with_ts(Cursor::new(&bytes[..data_end as usize]), ts)
                .map_err(|e| self.parse_error(format!("no file meta header, and {e}")))?;
        let uid = |tag| {
            dataset
                .get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        };
        let sop_class = uid(tags::SOP_CLASS_UID)
            .ok_or_else(|| self.parse_error("no file meta header and no SOP Class UID".into()))?;
        let sop_instance = uid(tags::SOP_INSTANCE_UID).ok_or_else(|| {
            self.parse_error("no file meta header and no SOP Instance UID".into())
        })?;
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(ts_uid)
            .media_storage_sop_class_uid(sop_class)
            .media_storage_sop_instance_uid(sop_instance)
            .build()
            .map_err(|e| self.parse_error(e.to_string()))?;
        Ok(Opened {
            object: dataset.with_exact_meta(meta),
            notes,
        })
    }

    /// A clean file meta group from the values the walk found (dicom-rs then reads the data
    /// set after it, whatever the file's own group looked like).
    fn rebuilt_meta(
        &self,
        m: &crate::lengths::MetaValues,
    ) -> Result<dicom_object::FileMetaTable, DicomError> {
        let mut builder = FileMetaTableBuilder::new()
            .transfer_syntax(m.transfer_syntax.as_str())
            .media_storage_sop_class_uid(m.sop_class_uid.as_str())
            .media_storage_sop_instance_uid(m.sop_instance_uid.as_str());
        if !m.implementation_class_uid.is_empty() {
            builder = builder.implementation_class_uid(m.implementation_class_uid.as_str());
        }
        builder
            .build()
            .map_err(|e| self.parse_error(format!("its file meta group is unusable: {e}")))
    }

    fn parse_error(&self, reason: String) -> DicomError {
        DicomError::Parse {
            source_name: self.to_string(),
            reason,
        }
    }
}

/// dicom-object's options for a read of this depth (header only stops before Pixel Data).
fn open_options(depth: ReadDepth) -> OpenFileOptions {
    let options = OpenFileOptions::new();
    match depth {
        ReadDepth::Header => options.read_until(tags::PIXEL_DATA),
        ReadDepth::Full => options,
    }
}

/// Lists the instances under the given paths: folders are walked recursively, `.zip` archives
/// are listed, a `DICOMDIR` contributes the files it references, anything else is a file.
/// Unreadable folders and archives are returned as problems.
pub fn discover(paths: &[PathBuf]) -> (Vec<Source>, Vec<crate::index::FileProblem>) {
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in walkdir::WalkDir::new(path)
                .follow_links(true)
                .sort_by_file_name()
            {
                match entry {
                    Ok(e) if e.file_type().is_file() => {
                        add_file(e.path(), &mut sources, &mut problems, false);
                    }
                    Ok(_) => {}
                    Err(e) => problems.push(crate::index::FileProblem::refused(
                        e.path().map_or_else(
                            || path.display().to_string(),
                            |p| p.display().to_string(),
                        ),
                        "io",
                        e.to_string(),
                    )),
                }
            }
        } else {
            add_file(path, &mut sources, &mut problems, true);
        }
    }
    sources.sort();
    sources.dedup();
    (sources, problems)
}

fn add_file(
    path: &Path,
    sources: &mut Vec<Source>,
    problems: &mut Vec<crate::index::FileProblem>,
    explicit: bool,
) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase());
    match name.as_deref() {
        Some(n) if n.ends_with(".zip") => match list_zip(path) {
            Ok(entries) => sources.extend(entries),
            Err(reason) => problems.push(crate::index::FileProblem::refused(
                path.display().to_string(),
                "io",
                reason,
            )),
        },
        // Inside a folder walk the referenced files are found anyway; the DICOMDIR itself is
        // a directory, not an image, and is skipped by the index.
        Some("dicomdir") if explicit => match crate::dicomdir::referenced_files(path) {
            Ok(files) => sources.extend(files.into_iter().map(|path| Source::File { path })),
            Err(e) => problems.push(crate::index::FileProblem::refused(
                path.display().to_string(),
                e.kind(),
                e.to_string(),
            )),
        },
        _ => sources.push(Source::File {
            path: path.to_path_buf(),
        }),
    }
}

fn list_zip(path: &Path) -> Result<Vec<Source>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    Ok(zip_entry_names(std::io::BufReader::new(file))?
        .into_iter()
        .map(|entry| Source::ZipEntry {
            archive: path.to_path_buf(),
            entry,
        })
        .collect())
}

/// The names of a zip archive's file entries (folders left out).
pub fn zip_entry_names<R: Read + Seek>(archive: R) -> Result<Vec<String>, String> {
    let zip =
        zip::ZipArchive::new(archive).map_err(|e| format!("not a readable zip archive: {e}"))?;
    let mut entries = Vec::new();
    for name in zip.file_names() {
        let name = name.map_err(|e| format!("unreadable entry name in zip archive: {e}"))?;
        if !name.ends_with('/') {
            entries.push(name.into_owned());
        }
    }
    Ok(entries)
}

/// The first `limit` bytes of a zip entry. An entry that says it inflates to more than
/// [`memory_cap`] is refused before anything is inflated, and no entry is read past `limit`,
/// whatever it says. `name` names the entry in errors.
pub fn read_zip_entry<R: Read + Seek>(
    archive: R,
    entry: &str,
    limit: u64,
    name: &str,
) -> Result<Vec<u8>, DicomError> {
    let io = |e: String| DicomError::Io {
        source_name: name.to_owned(),
        reason: e,
    };
    let mut zip = zip::ZipArchive::new(archive)
        .map_err(|e| io(format!("not a readable zip archive: {e}")))?;
    let mut f = zip.by_name(entry).map_err(|e| io(e.to_string()))?;
    if f.size() > memory_cap() {
        return Err(DicomError::TooLarge {
            source_name: name.to_owned(),
            bytes: f.size(),
            cap_mib: memory_cap() >> 20,
        });
    }
    let limit = limit.min(memory_cap());
    let mut buf = Vec::with_capacity(f.size().min(limit) as usize);
    (&mut f)
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| io(e.to_string()))?;
    Ok(buf)
}

/// A buffered file reader that keeps its own position: `stream_position` costs no system call,
/// and a seek that lands inside the buffer moves within it (std's `BufReader` asks the OS for
/// both, which was most of the system calls of a header walk: 70 per file).
pub(crate) struct Positioned {
    inner: std::io::BufReader<std::fs::File>,
    pos: u64,
}

impl Positioned {
    /// A reader at the start of a file just opened.
    pub(crate) fn new(file: std::fs::File) -> Positioned {
        Positioned {
            inner: std::io::BufReader::with_capacity(8192, file),
            pos: 0,
        }
    }

    /// The file, at no particular position.
    pub(crate) fn into_file(self) -> std::fs::File {
        self.inner.into_inner()
    }
}

impl Read for Positioned {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Positioned {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => i128::from(n),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
            SeekFrom::End(_) => {
                self.pos = self.inner.seek(to)?;
                return Ok(self.pos);
            }
        };
        let delta = target - i128::from(self.pos);
        let (Ok(target), Ok(delta)) = (u64::try_from(target), i64::try_from(delta)) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek to a position before the start of the file",
            ));
        };
        self.inner.seek_relative(delta)?;
        self.pos = target;
        Ok(target)
    }

    fn stream_position(&mut self) -> std::io::Result<u64> {
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_positioned_reader_reads_and_seeks_as_the_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bytes");
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut r = Positioned::new(std::fs::File::open(&path).unwrap());
        let mut buf = [0u8; 10];
        // Within the buffer, forwards and back, past it, from the end, relative.
        for (to, at) in [
            (SeekFrom::Start(5), 5u64),
            (SeekFrom::Start(3), 3),
            (SeekFrom::Current(100), 113),
            (SeekFrom::Start(20_000), 20_000),
            (SeekFrom::Start(100), 100),
            (SeekFrom::End(-10), 39_990),
            (SeekFrom::Current(-30_000), 10_000),
        ] {
            assert_eq!(r.seek(to).unwrap(), at, "{to:?}");
            assert_eq!(r.stream_position().unwrap(), at);
            r.read_exact(&mut buf).unwrap();
            assert_eq!(&buf[..], &bytes[at as usize..at as usize + 10], "{to:?}");
            assert_eq!(r.stream_position().unwrap(), at + 10);
        }
        assert!(r.seek(SeekFrom::Current(-20_000)).is_err());
    }

    #[test]
    fn sniff_recognises_part10_bare_and_other_files() {
        let mut part10 = vec![0u8; 132];
        part10[128..132].copy_from_slice(b"DICM");
        assert_eq!(sniff(&part10), Kind::Part10);
        // (0008,0005) CS, explicit VR little endian
        assert_eq!(
            sniff(&[0x08, 0x00, 0x05, 0x00, b'C', b'S', 2, 0]),
            Kind::Bare(EXPLICIT_LE)
        );
        // (0008,0005) implicit VR little endian, length 10
        assert_eq!(
            sniff(&[0x08, 0x00, 0x05, 0x00, 10, 0, 0, 0]),
            Kind::Bare(IMPLICIT_LE)
        );
        assert_eq!(
            sniff(&[0x00, 0x08, 0x00, 0x05, b'C', b'S', 0, 2]),
            Kind::Bare(EXPLICIT_BE)
        );
        assert_eq!(sniff(b"%PDF-1.7\n..."), Kind::NotDicom);
        assert_eq!(sniff(b""), Kind::NotDicom);
    }
}
