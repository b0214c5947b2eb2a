//! 12-bit JPEG (JPEG Extended, process 2/4; transfer syntax 1.2.840.10008.1.2.4.51), common in
//! older CT and MR archives. dicom-rs's JPEG codec (`jpeg-decoder`) decodes 8-bit DCT only, so
//! these frames go to libjpeg-turbo 3.1 (`turbojpeg-sys`, built from the source the crate
//! bundles), whose TurboJPEG 3 API decodes 9–12-bit precision.
//!
//! This is the one module of the study engine that calls C, through five TurboJPEG functions;
//! every call gets buffers whose sizes were checked against the image the header declares.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int};

use turbojpeg_sys as tj;

/// A decoded 12-bit frame: samples interleaved (1 for greyscale, 3 for RGB).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub width: usize,
    pub height: usize,
    pub components: usize,
    pub samples: Vec<u16>,
}

/// The sample precision a JPEG stream's frame header (SOF0–SOF3) declares, if it has one.
pub(crate) fn precision(jpeg: &[u8]) -> Option<u8> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 < jpeg.len() {
        if jpeg[i] != 0xFF {
            // Decoders skip stray bytes between segments to the next marker: so does this.
            i += 1;
            continue;
        }
        let marker = jpeg[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        if matches!(marker, 0xC0..=0xC3) {
            return jpeg.get(i + 4).copied();
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + len;
    }
    None
}

/// A TurboJPEG decompressor, destroyed when dropped.
struct Handle(tj::tjhandle);

impl Handle {
    fn new() -> Result<Handle, String> {
        // SAFETY: tj3Init takes an init type and returns a new handle or null.
        let h = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as c_int) };
        if h.is_null() {
            Err("libjpeg-turbo could not be initialised".into())
        } else {
            Ok(Handle(h))
        }
    }

    fn error(&self) -> String {
        // SAFETY: the handle is valid; tj3GetErrorStr returns a NUL-terminated string owned by
        // the handle, copied here before the handle can change it.
        unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    fn get(&self, param: tj::TJPARAM) -> c_int {
        // SAFETY: the handle is valid; tj3Get only reads a parameter.
        unsafe { tj::tj3Get(self.0, param as c_int) }
    }

    fn set(&self, param: tj::TJPARAM, value: c_int) -> Result<(), String> {
        // SAFETY: the handle is valid; tj3Set only writes a parameter.
        match unsafe { tj::tj3Set(self.0, param as c_int, value) } {
            0 => Ok(()),
            _ => Err(self.error()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once, here.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

/// Decodes a 9–12-bit JPEG stream. `max_samples` bounds what the stream's own header may ask
/// for (the DICOM header's rows × columns × samples), so a lying header allocates nothing.
pub(crate) fn decode(jpeg: &[u8], max_samples: usize) -> Result<Decoded, String> {
    let h = Handle::new()?;
    // SAFETY: the pointer and length describe `jpeg`, which outlives the call.
    let rc = unsafe { tj::tj3DecompressHeader(h.0, jpeg.as_ptr(), jpeg.len() as tj::size_t) };
    if rc != 0 {
        return Err(h.error());
    }
    let width = usize::try_from(h.get(tj::TJPARAM_TJPARAM_JPEGWIDTH)).unwrap_or(0);
    let height = usize::try_from(h.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT)).unwrap_or(0);
    let precision = h.get(tj::TJPARAM_TJPARAM_PRECISION);
    if !(9..=12).contains(&precision) {
        return Err(format!(
            "the stream has {precision}-bit samples, not 9 to 12"
        ));
    }
    let grey = h.get(tj::TJPARAM_TJPARAM_COLORSPACE) == tj::TJCS_TJCS_GRAY as c_int;
    let (format, components) = if grey {
        (tj::TJPF_TJPF_GRAY, 1)
    } else {
        (tj::TJPF_TJPF_RGB, 3)
    };
    let n = width
        .checked_mul(height)
        .and_then(|p| p.checked_mul(components))
        .filter(|&n| n > 0 && n <= max_samples)
        .ok_or_else(|| {
            format!(
                "the stream declares {width} × {height} × {components} samples where the DICOM header allows {max_samples}"
            )
        })?;
    // Warnings (such as the odd scan parameters some DICOM encoders write) do not stop the
    // decoding, as they do not in DCMTK or pydicom.
    h.set(tj::TJPARAM_TJPARAM_STOPONWARNING, 0)?;
    let mut samples = vec![0i16; n];
    // SAFETY: `samples` holds width × height × components 16-bit samples, which is what
    // tj3Decompress12 writes with pitch 0 (rows packed) and this pixel format; `jpeg` outlives
    // the call.
    let rc = unsafe {
        tj::tj3Decompress12(
            h.0,
            jpeg.as_ptr(),
            jpeg.len() as tj::size_t,
            samples.as_mut_ptr(),
            0,
            format as c_int,
        )
    };
    if rc != 0 {
        return Err(h.error());
    }
    Ok(Decoded {
        width,
        height,
        components,
        samples: samples.into_iter().map(|s| s as u16).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_read_from_the_frame_header() {
        // SOI, APP0 of length 4, SOF1 with precision 12
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC1, 0, 11, 12, 0, 16, 0, 16, 1,
        ];
        assert_eq!(precision(&jpeg), Some(12));
        assert_eq!(precision(b"not a jpeg"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let err = decode(&[0xFF, 0xD8, 0xFF, 0xC1, 0, 2, 1, 2, 3], 100).unwrap_err();
        assert!(!err.is_empty());
    }
}
