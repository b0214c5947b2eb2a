//! A shallow walk over a file's element headers, before dicom-rs parses it. It does three
//! things dicom-rs 0.10 does not:
//!
//! - checks every declared length against the bytes that are really there: dicom-parser
//!   reserves memory for a value's declared length before reading it, so a corrupt length of
//!   4 GiB in a 30 KiB file would allocate 4 GiB (found by fuzzing; see
//!   `tests/fuzz_regressions/`);
//! - finds where the data set really ends, so that what pydicom and DCMTK tolerate after it
//!   (zero padding, stray bytes, Data Set Trailing Padding) is left out rather than failing
//!   the whole file;
//! - reads the file meta group itself, whatever its group length says and whether or not a
//!   preamble and the `DICM` prefix are there, so that the meta group dicom-rs reads is
//!   always a well-formed one.
//!
//! Every deviation it tolerates is described in [`Layout::notes`], shown to the user as a
//! warning on that file.

use std::io::{Read, Seek, SeekFrom};

/// Where a file's parts are, as the walk found them.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Layout {
    /// The file meta group's values (empty strings where the file has none).
    pub meta: MetaValues,
    /// Byte offset of the first data set element.
    pub data_start: u64,
    /// Byte offset just past the last data set element: what follows is not read.
    pub data_end: u64,
    /// Where the top-level Pixel Data element starts, and where the next top-level element
    /// starts after it (or `data_end`): the span a de-identified copy can take over byte for
    /// byte.
    pub pixel_data: Option<(u64, u64)>,
    /// What was tolerated, in words a user can act on.
    pub notes: Vec<String>,
}

/// The file meta group's values that reading the rest depends on.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct MetaValues {
    pub transfer_syntax: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub implementation_class_uid: String,
}

pub(crate) const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// How a data set is encoded, for the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoding {
    pub explicit: bool,
    pub big_endian: bool,
}

impl Encoding {
    pub const EXPLICIT_LE: Encoding = Encoding {
        explicit: true,
        big_endian: false,
    };

    /// The encoding a transfer syntax UID gives its data set (deflated: after inflation).
    pub fn of(ts_uid: &str) -> Encoding {
        match ts_uid {
            "1.2.840.10008.1.2" => Encoding {
                explicit: false,
                big_endian: false,
            },
            "1.2.840.10008.1.2.2" => Encoding {
                explicit: true,
                big_endian: true,
            },
            _ => Encoding::EXPLICIT_LE,
        }
    }
}

/// Whether an explicit-VR header with these VR bytes has two reserved bytes and a 32-bit length.
/// As dicom-rs decides it: the VRs PS3.5 Table 7.1-2 gives a 16-bit length have one; every
/// other VR, including one it does not know (read as UN), has a 32-bit length.
pub(crate) fn long_vr(vr: &[u8; 2]) -> bool {
    !matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// The VR dicom-rs gives an implicit-VR element, as its implicit VR decoder does: OW for Pixel
/// Data and overlay data, else the standard dictionary's (US for "US or SS", OW for "OB or OW"
/// and "US or OW"), else UN.
fn implicit_vr(group: u16, element: u16) -> Option<[u8; 2]> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
    if (group, element) == (0x7FE0, 0x0010) || (group >> 8 == 0x60 && element == 0x3000) {
        return Some(*b"OW");
    }
    Some(
        dicom_dictionary_std::StandardDataDictionary
            .by_tag(dicom_core::Tag(group, element))
            .map_or(dicom_core::VR::UN, |e| e.vr().relaxed())
            .to_bytes(),
    )
}

/// Bytes per value of the binary VRs that dicom-rs reads value by value: a length that is not a
/// multiple of it leaves bytes unread, and the parser reads the next element from the middle of
/// this one (found by fuzzing).
fn value_size(vr: &[u8; 2]) -> Option<u32> {
    Some(match vr {
        b"US" | b"SS" | b"OW" => 2,
        b"UL" | b"SL" | b"FL" | b"AT" | b"OF" | b"OL" => 4,
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => 8,
        _ => return None,
    })
}

/// A sequence or item the walk is inside, with where it ends when its length is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Sequence(Option<u64>),
    Item(Option<u64>),
}

impl Open {
    fn end(self) -> Option<u64> {
        match self {
            Open::Sequence(e) | Open::Item(e) => e,
        }
    }
}

/// Walks the data set that starts at the reader's current position and runs at most to `end`.
/// Returns where the data set really ends (see the module docs) and what was tolerated, or a
/// description of the first impossible length or broken structure.
///
/// The walk reads the structure as dicom-rs will, and refuses what would make the two disagree
/// about where an element starts (found by fuzzing: dicom-rs then reads a length out of the
/// middle of a value and reserves that much): every element must end inside the sequence or
/// item of defined length that holds it, items must close where they say, items appear only in
/// sequences, and binary values hold whole values.
pub(crate) fn walk_data_set<R: Read + Seek>(
    r: &mut R,
    end: u64,
    enc: Encoding,
) -> Result<(u64, Vec<String>), String> {
    walk_data_set_with(r, end, enc, &mut |_, _, _| {})
}

/// As [`walk_data_set`], calling `top_level(offset, group, element)` at each top-level element.
pub(crate) fn walk_data_set_with<R: Read + Seek>(
    r: &mut R,
    end: u64,
    enc: Encoding,
    top_level: &mut dyn FnMut(u64, u16, u16),
) -> Result<(u64, Vec<String>), String> {
    let io = |e: std::io::Error| format!("cannot read the data set: {e}");
    let u16_of = |b: [u8; 2]| {
        if enc.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_of = |b: [u8; 4]| {
        if enc.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut notes = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    // Inside encapsulated pixel data, items are fragments of raw bytes, not element lists.
    let mut in_fragments = false;
    let mut first = true;
    // Bytes that are not elements are "after the data set" only once the pixel data has been
    // read whole; before it, they mean the file was cut short.
    let mut pixel_data_read = false;
    let truncated = |pos: u64| {
        Err(format!(
            "the file ends at byte {end} inside its data set ({} byte(s) at byte {pos} are not a whole element): it is truncated",
            end - pos
        ))
    };
    loop {
        let pos = r.stream_position().map_err(io)?;
        // Sequences and items of defined length end where they said.
        while open.last().and_then(|o| o.end()) == Some(pos) {
            open.pop();
        }
        if pos >= end {
            if !open.is_empty() {
                return truncated(pos);
            }
            return Ok((end, notes));
        }
        if pos + 8 > end {
            if !pixel_data_read || !open.is_empty() {
                return truncated(pos);
            }
            notes.push(format!(
                "{} byte(s) after the data set were ignored",
                end - pos
            ));
            return Ok((pos, notes));
        }
        let mut head = [0u8; 8];
        r.read_exact(&mut head).map_err(io)?;
        let group = u16_of([head[0], head[1]]);
        let element = u16_of([head[2], head[3]]);
        let vr = [head[4], head[5]];
        let vr_ok = vr[0].is_ascii_uppercase() && vr[1].is_ascii_uppercase();
        // Where the elements stop and something else begins, at the top level: zero padding,
        // stray bytes, or the Data Set Trailing Padding element (legal, and nothing to read).
        let zero_tag = group == 0 && element == 0;
        let not_an_element = !first && (zero_tag || (enc.explicit && group != 0xFFFE && !vr_ok));
        if open.is_empty() && ((group, element) == (0xFFFC, 0xFFFC) || not_an_element) {
            if (group, element) != (0xFFFC, 0xFFFC) {
                if !pixel_data_read {
                    return truncated(pos);
                }
                notes.push(trailing_note(r, pos, end)?);
            }
            return Ok((pos, notes));
        }
        first = false;
        if open.is_empty() && !in_fragments {
            top_level(pos, group, element);
        }
        let broken = |what: &str| Err(format!("{what} at byte {pos}"));
        let (length, header_len, value_vr) = if group == 0xFFFE {
            (u32_of([head[4], head[5], head[6], head[7]]), 8, None)
        } else if enc.explicit {
            // dicom-rs reads a VR it does not know as UN, with a 32-bit length.
            if long_vr(&vr) {
                let mut len = [0u8; 4];
                r.read_exact(&mut len).map_err(io)?;
                (u32_of(len), 12, Some(vr))
            } else {
                (u32::from(u16_of([head[6], head[7]])), 8, Some(vr))
            }
        } else {
            (
                u32_of([head[4], head[5], head[6], head[7]]),
                8,
                implicit_vr(group, element),
            )
        };
        let value_start = pos + header_len;
        // The innermost end the value must fit in: the enclosing container's, or the file's.
        let limit = open
            .iter()
            .rev()
            .find_map(|o| o.end())
            .map_or(end, |e| e.min(end));
        let defined = length != u32::MAX;
        if defined && value_start + u64::from(length) > limit {
            return Err(if limit < end {
                format!(
                    "element ({group:04X},{element:04X}) at byte {pos} declares {length} bytes, past the end of the sequence or item that holds it (byte {limit})"
                )
            } else {
                format!(
                    "element ({group:04X},{element:04X}) at byte {pos} declares {length} bytes but only {} remain",
                    end.saturating_sub(value_start)
                )
            });
        }
        if in_fragments {
            match (group, element) {
                // A fragment (or the offset table): raw bytes.
                (0xFFFE, 0xE000) if defined => {
                    r.seek(SeekFrom::Start(value_start + u64::from(length)))
                        .map_err(io)?;
                }
                (0xFFFE, 0xE0DD) => {
                    in_fragments = false;
                    pixel_data_read = true;
                }
                _ => return broken("encapsulated pixel data holds something other than fragments"),
            }
            continue;
        }
        match (group, element) {
            (0xFFFE, 0xE000) => {
                if !matches!(open.last(), Some(Open::Sequence(_))) {
                    return broken("an item outside a sequence");
                }
                open.push(Open::Item(defined.then(|| value_start + u64::from(length))));
                continue;
            }
            (0xFFFE, 0xE00D) => {
                if open.last() != Some(&Open::Item(None)) {
                    return broken("an item delimiter that closes no item of undefined length");
                }
                open.pop();
                continue;
            }
            (0xFFFE, 0xE0DD) => {
                if open.last() != Some(&Open::Sequence(None)) {
                    return broken(
                        "a sequence delimiter that closes no sequence of undefined length",
                    );
                }
                open.pop();
                continue;
            }
            (0xFFFE, _) => return broken("an unknown item tag"),
            _ => {}
        }
        if let Some(size) = value_vr.as_ref().and_then(value_size)
            && defined
            && length % size != 0
        {
            return Err(format!(
                "element ({group:04X},{element:04X}) at byte {pos} has VR {} and {length} bytes, not a multiple of {size}",
                String::from_utf8_lossy(&value_vr.unwrap_or_default())
            ));
        }
        if !defined {
            // Undefined length: encapsulated pixel data, or a sequence (dicom-rs reads any
            // other element of undefined length, UN typically, as a sequence in the same
            // encoding).
            if (group, element) == (0x7FE0, 0x0010) {
                in_fragments = true;
            } else {
                open.push(Open::Sequence(None));
            }
            continue;
        }
        if (group, element) == (0x7FE0, 0x0010) {
            pixel_data_read = true;
        }
        // Sequences of defined length (an implicit-VR one known by its tag) are walked into;
        // other values are skipped.
        if value_vr == Some(*b"SQ") {
            if length > 0 {
                open.push(Open::Sequence(Some(value_start + u64::from(length))));
            }
        } else {
            r.seek(SeekFrom::Start(value_start + u64::from(length)))
                .map_err(io)?;
        }
    }
}

/// Describes the bytes from `pos` to `end` that follow the data set.
fn trailing_note<R: Read + Seek>(r: &mut R, pos: u64, end: u64) -> Result<String, String> {
    let io = |e: std::io::Error| format!("cannot read the data set: {e}");
    r.seek(SeekFrom::Start(pos)).map_err(io)?;
    let mut zeros = true;
    let mut buf = [0u8; 8192];
    let mut left = end - pos;
    while left > 0 && zeros {
        let n = (left as usize).min(buf.len());
        r.read_exact(&mut buf[..n]).map_err(io)?;
        zeros = buf[..n].iter().all(|&b| b == 0);
        left -= n as u64;
    }
    Ok(if zeros {
        format!(
            "{} byte(s) of zero padding after the data set were ignored",
            end - pos
        )
    } else {
        format!(
            "{} byte(s) after the data set that are not DICOM elements were ignored",
            end - pos
        )
    })
}

/// Walks a file whose file meta group starts at `meta_start` (just after `DICM`, or at the
/// start of a file that lacks the preamble and prefix), then its data set. A deflated data set
/// cannot be walked before it is inflated: its `data_end` is `end`.
pub(crate) fn scan_part10<R: Read + Seek>(
    r: &mut R,
    meta_start: u64,
    end: u64,
) -> Result<Layout, String> {
    let io = |e: std::io::Error| format!("cannot read the file meta group: {e}");
    r.seek(SeekFrom::Start(meta_start)).map_err(io)?;
    let mut layout = Layout::default();
    let mut declared_length: Option<u64> = None;
    // Walk the meta group by hand: it is explicit VR little endian (a few writers use implicit
    // VR there; both are accepted), and it ends where group 0002 ends, whatever its group
    // length says.
    loop {
        let pos = r.stream_position().map_err(io)?;
        let mut head = [0u8; 8];
        if pos + 8 > end {
            break;
        }
        r.read_exact(&mut head).map_err(io)?;
        if u16::from_le_bytes([head[0], head[1]]) != 0x0002 {
            r.seek(SeekFrom::Start(pos)).map_err(io)?;
            break;
        }
        let element = u16::from_le_bytes([head[2], head[3]]);
        let vr = [head[4], head[5]];
        let (length, header_len) = if vr[0].is_ascii_uppercase() && vr[1].is_ascii_uppercase() {
            if long_vr(&vr) {
                let mut len = [0u8; 4];
                r.read_exact(&mut len).map_err(io)?;
                (u64::from(u32::from_le_bytes(len)), 12)
            } else {
                (u64::from(u16::from_le_bytes([head[6], head[7]])), 8)
            }
        } else {
            (
                u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]])),
                8,
            )
        };
        if pos + header_len + length > end {
            return Err(format!(
                "file meta element (0002,{element:04X}) declares {length} bytes but only {} remain",
                end.saturating_sub(pos + header_len)
            ));
        }
        if length <= 256 {
            let mut value = vec![0u8; length as usize];
            r.read_exact(&mut value).map_err(io)?;
            // Trimmed as dicom-rs trims UIDs (any whitespace and NULs at the end): a Transfer
            // Syntax UID ending in "\0\t" is the syntax dicom-rs will read the data set in, so
            // it is the one the walk must check the lengths in.
            let text = || {
                String::from_utf8_lossy(&value)
                    .trim_end_matches(|c: char| c.is_whitespace() || c == '\0')
                    .trim_start()
                    .to_owned()
            };
            match element {
                0x0000 if length == 4 => {
                    declared_length = Some(u64::from(u32::from_le_bytes([
                        value[0], value[1], value[2], value[3],
                    ])));
                }
                0x0002 => layout.meta.sop_class_uid = text(),
                0x0003 => layout.meta.sop_instance_uid = text(),
                0x0010 => layout.meta.transfer_syntax = text(),
                0x0012 => layout.meta.implementation_class_uid = text(),
                _ => {}
            }
        }
        r.seek(SeekFrom::Start(pos + header_len + length))
            .map_err(io)?;
    }
    layout.data_start = r.stream_position().map_err(io)?;
    if layout.meta.transfer_syntax.is_empty() {
        return Err("its file meta group has no Transfer Syntax UID".into());
    }
    // The group length counts the bytes after the (0002,0000) element itself (12 bytes).
    let group_bytes = layout.data_start - meta_start;
    match declared_length {
        Some(n) if n + 12 != group_bytes => layout.notes.push(format!(
            "its File Meta Information Group Length says {n} bytes, but the group has {}",
            group_bytes.saturating_sub(12)
        )),
        None => layout
            .notes
            .push("its file meta group has no group length".into()),
        _ => {}
    }
    if layout.meta.transfer_syntax == DEFLATED {
        layout.data_end = end;
        return Ok(layout);
    }
    let mut pixel: Option<(u64, Option<u64>)> = None;
    let (data_end, notes) = walk_data_set_with(
        r,
        end,
        Encoding::of(&layout.meta.transfer_syntax),
        &mut |pos, group, element| match pixel {
            Some((_, None)) => pixel = pixel.map(|(s, _)| (s, Some(pos))),
            None if (group, element) == (0x7FE0, 0x0010) => pixel = Some((pos, None)),
            _ => {}
        },
    )?;
    layout.data_end = data_end;
    layout.pixel_data = pixel.map(|(start, next)| (start, next.unwrap_or(data_end)));
    layout.notes.extend(notes);
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn walk(bytes: &[u8]) -> Result<(u64, Vec<String>), String> {
        walk_data_set(
            &mut Cursor::new(bytes),
            bytes.len() as u64,
            Encoding::EXPLICIT_LE,
        )
    }

    #[test]
    fn a_length_past_the_end_is_found() {
        // (0010,0010) PN, explicit LE, claims 0xFFFE bytes in a 12-byte buffer
        let bytes = [
            0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xFE, 0xFF, b'A', b'B', b'C', b'D',
        ];
        let msg = walk(&bytes).unwrap_err();
        assert!(msg.contains("(0010,0010)"), "{msg}");
    }

    /// (0010,0010) PN "AB", then (7FE0,0010) OW of 4 bytes
    const SOUND: [u8; 26] = [
        0x10, 0x00, 0x10, 0x00, b'P', b'N', 2, 0, b'A', b'B', 0xE0, 0x7F, 0x10, 0x00, b'O', b'W',
        0, 0, 4, 0, 0, 0, 1, 2, 3, 4,
    ];

    #[test]
    fn sound_elements_pass() {
        assert_eq!(walk(&SOUND), Ok((26, vec![])));
    }

    #[test]
    fn what_follows_the_data_set_is_left_out_and_described() {
        let mut zeros = SOUND.to_vec();
        zeros.extend([0u8; 1000]);
        let (end, notes) = walk(&zeros).unwrap();
        assert_eq!(end, 26);
        assert!(
            notes[0].contains("1000 byte(s) of zero padding"),
            "{notes:?}"
        );

        let mut junk = SOUND.to_vec();
        junk.extend(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09");
        let (end, notes) = walk(&junk).unwrap();
        assert_eq!(end, 26);
        assert!(notes[0].contains("not DICOM elements"), "{notes:?}");

        let mut short = SOUND.to_vec();
        short.extend([7u8; 3]);
        assert_eq!(walk(&short).unwrap().0, 26);

        // Before the pixel data, the same bytes mean the file was cut short.
        let cut = [&SOUND[..10], &[7u8; 3][..]].concat();
        assert!(walk(&cut).unwrap_err().contains("truncated"));
        let zeros_early = [&SOUND[..10], &[0u8; 100][..]].concat();
        assert!(walk(&zeros_early).unwrap_err().contains("truncated"));

        // Data Set Trailing Padding is legal: left out, no note.
        let mut padding = SOUND.to_vec();
        padding.extend([
            0xFC, 0xFF, 0xFC, 0xFF, b'O', b'B', 0, 0, 4, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(walk(&padding), Ok((26, vec![])));
    }
}
