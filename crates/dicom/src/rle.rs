//! DICOM RLE Lossless (PS3.5 Annex G), for every bit depth. dicom-pixeldata 0.10's decoder
//! fails on 32-bit samples, so Dokuei decodes RLE itself.

use crate::index::ImageInfo;

/// Decodes one RLE frame to interleaved little-endian samples (`pixels` × samples per pixel).
pub(crate) fn decode(frame: &[u8], info: &ImageInfo, pixels: usize) -> Result<Vec<u8>, String> {
    let header = frame
        .get(..64)
        .ok_or_else(|| format!("RLE frame of {} bytes has no 64-byte header", frame.len()))?;
    let word = |i: usize| {
        u32::from_le_bytes([
            header[i * 4],
            header[i * 4 + 1],
            header[i * 4 + 2],
            header[i * 4 + 3],
        ]) as usize
    };
    let segments = word(0);
    let sample_bytes = info.bits_allocated.div_ceil(8) as usize;
    let samples = info.samples_per_pixel as usize;
    let expected = samples * sample_bytes;
    if segments != expected || segments > 15 {
        return Err(format!(
            "RLE header lists {segments} segments; {samples} sample(s) of {sample_bytes} byte(s) need {expected}"
        ));
    }
    let mut out = vec![0u8; pixels * expected];
    for seg in 0..segments {
        let start = word(seg + 1);
        let end = if seg + 1 < segments {
            word(seg + 2)
        } else {
            frame.len()
        };
        let data = frame
            .get(start..end.max(start))
            .ok_or_else(|| format!("RLE segment {seg} lies outside the frame"))?;
        // Segment order: each sample's bytes, most significant first.
        let (sample, msb_index) = (seg / sample_bytes, seg % sample_bytes);
        let le_byte = sample_bytes - 1 - msb_index;
        let decoded =
            packbits(data, pixels).ok_or_else(|| format!("RLE segment {seg} is corrupt"))?;
        if decoded.len() < pixels {
            return Err(format!(
                "RLE segment {seg} has {} of {pixels} bytes",
                decoded.len()
            ));
        }
        for (p, &b) in decoded.iter().take(pixels).enumerate() {
            out[(p * samples + sample) * sample_bytes + le_byte] = b;
        }
    }
    Ok(out)
}

/// PackBits as DICOM uses it; stops once `want` bytes are produced.
fn packbits(data: &[u8], want: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(want);
    let mut i = 0;
    while i < data.len() && out.len() < want {
        let n = data[i] as i8;
        i += 1;
        match n {
            0..=127 => {
                let len = n as usize + 1;
                out.extend_from_slice(data.get(i..i + len)?);
                i += len;
            }
            -127..=-1 => {
                let byte = *data.get(i)?;
                out.extend(std::iter::repeat_n(byte, (1 - isize::from(n)) as usize));
                i += 1;
            }
            -128 => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_literal_and_run() {
        // literal of 3, run of 4 × 0xAA
        assert_eq!(
            packbits(&[2, 1, 2, 3, 0xFD, 0xAA], 7).unwrap(),
            vec![1, 2, 3, 0xAA, 0xAA, 0xAA, 0xAA]
        );
        assert!(
            packbits(&[5, 1], 6).is_none(),
            "a literal past the end is corrupt"
        );
    }
}
