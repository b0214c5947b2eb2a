//! A shallow walk over a data set's element headers that checks every declared length against
//! the bytes that are really there, before dicom-rs parses it: dicom-parser 0.10 reserves
//! memory for a value's declared length before reading it, so a corrupt length of 4 GiB in a
//! 30 KiB file would allocate 4 GiB (found by fuzzing; see
//! `tests/fuzz_regressions/`).

use std::io::{Read, Seek, SeekFrom};

/// Checks the data set that starts at the reader's current position and runs to `end`.
/// `explicit` and `big_endian` describe its transfer syntax. Returns a description of the
/// first impossible length, or `None` when every length fits. Deflated data sets cannot be
/// walked and are not checked.
pub(crate) fn first_impossible_length<R: Read + Seek>(
    r: &mut R,
    end: u64,
    explicit: bool,
    big_endian: bool,
) -> Option<String> {
    let u16_of = |b: [u8; 2]| {
        if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_of = |b: [u8; 4]| {
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    // Inside encapsulated pixel data, items are fragments of raw bytes, not element lists.
    let mut in_fragments = false;
    loop {
        let pos = r.stream_position().ok()?;
        if pos + 8 > end {
            return None;
        }
        let mut head = [0u8; 8];
        r.read_exact(&mut head).ok()?;
        let group = u16_of([head[0], head[1]]);
        let element = u16_of([head[2], head[3]]);
        // Items and delimiters (FFFE,xxxx) never have a VR; their content is walked inline.
        let (length, header_len, container) = if group == 0xFFFE {
            (u32_of([head[4], head[5], head[6], head[7]]), 8, true)
        } else if explicit && head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase() {
            let vr = [head[4], head[5]];
            if matches!(
                &vr,
                b"OB"
                    | b"OD"
                    | b"OF"
                    | b"OL"
                    | b"OV"
                    | b"OW"
                    | b"SQ"
                    | b"SV"
                    | b"UC"
                    | b"UN"
                    | b"UR"
                    | b"UT"
                    | b"UV"
            ) {
                let mut len = [0u8; 4];
                r.read_exact(&mut len).ok()?;
                (u32_of(len), 12, &vr == b"SQ")
            } else {
                (u32::from(u16_of([head[6], head[7]])), 8, false)
            }
        } else {
            (u32_of([head[4], head[5], head[6], head[7]]), 8, false)
        };
        if group == 0xFFFE && element == 0xE0DD {
            in_fragments = false;
        }
        if length == u32::MAX {
            // Undefined length: a sequence, an item or encapsulated pixel data, whose content
            // follows as items and elements.
            if (group, element) == (0x7FE0, 0x0010) {
                in_fragments = true;
            }
            continue;
        }
        let value_start = pos + header_len;
        if value_start + u64::from(length) > end {
            return Some(format!(
                "element ({group:04X},{element:04X}) at byte {pos} declares {length} bytes but only {} remain",
                end.saturating_sub(value_start)
            ));
        }
        // Sequences and items of defined length are walked into; other values (and pixel
        // data fragments) are skipped.
        if !container || in_fragments {
            r.seek(SeekFrom::Start(value_start + u64::from(length)))
                .ok()?;
        }
    }
}

/// Checks a Part 10 file whose file meta group starts at `meta_start` (just after "DICM"):
/// the meta group (explicit VR little endian), then the data set in the transfer syntax the
/// meta group names.
pub(crate) fn check_part10<R: Read + Seek>(r: &mut R, meta_start: u64, end: u64) -> Option<String> {
    r.seek(SeekFrom::Start(meta_start)).ok()?;
    let mut ts = String::new();
    // Walk the meta group by hand to learn the transfer syntax and where the data set starts.
    loop {
        let pos = r.stream_position().ok()?;
        let mut head = [0u8; 8];
        if pos + 8 > end || r.read_exact(&mut head).is_err() {
            return None;
        }
        if u16::from_le_bytes([head[0], head[1]]) != 0x0002 {
            r.seek(SeekFrom::Start(pos)).ok()?;
            break;
        }
        let element = u16::from_le_bytes([head[2], head[3]]);
        let (length, header_len) = if matches!(&[head[4], head[5]], b"OB" | b"UN" | b"UT" | b"SQ") {
            let mut len = [0u8; 4];
            r.read_exact(&mut len).ok()?;
            (u64::from(u32::from_le_bytes(len)), 12)
        } else {
            (u64::from(u16::from_le_bytes([head[6], head[7]])), 8)
        };
        if pos + header_len + length > end {
            return Some(format!(
                "file meta element (0002,{element:04X}) declares {length} bytes but only {} remain",
                end.saturating_sub(pos + header_len)
            ));
        }
        if element == 0x0010 && length < 128 {
            let mut value = vec![0u8; length as usize];
            r.read_exact(&mut value).ok()?;
            ts = String::from_utf8_lossy(&value)
                .trim_end_matches(['\0', ' '])
                .to_owned();
        }
        r.seek(SeekFrom::Start(pos + header_len + length)).ok()?;
    }
    match ts.as_str() {
        // Deflated data sets cannot be walked without inflating them.
        "1.2.840.10008.1.2.1.99" => None,
        "1.2.840.10008.1.2" => first_impossible_length(r, end, false, false),
        "1.2.840.10008.1.2.2" => first_impossible_length(r, end, true, true),
        _ => first_impossible_length(r, end, true, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn a_length_past_the_end_is_found() {
        // (0010,0010) PN, explicit LE, claims 0xFFFE bytes in a 12-byte buffer
        let bytes = [
            0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xFE, 0xFF, b'A', b'B', b'C', b'D',
        ];
        let msg =
            first_impossible_length(&mut Cursor::new(&bytes), bytes.len() as u64, true, false)
                .unwrap();
        assert!(msg.contains("(0010,0010)"), "{msg}");
    }

    #[test]
    fn sound_elements_pass() {
        // (0010,0010) PN "AB", then (7FE0,0010) OW of 4 bytes
        let bytes = [
            0x10, 0x00, 0x10, 0x00, b'P', b'N', 2, 0, b'A', b'B', 0xE0, 0x7F, 0x10, 0x00, b'O',
            b'W', 0, 0, 4, 0, 0, 0, 1, 2, 3, 4,
        ];
        assert_eq!(
            first_impossible_length(&mut Cursor::new(&bytes), bytes.len() as u64, true, false),
            None
        );
    }
}
