//! Pixel decoding: one frame of one instance to its stored values.
//!
//! Stored values are what the file holds after decompression, before the Modality LUT:
//! greyscale and palette indices as integers of the stored type, colour as RGB (YBR is
//! converted to RGB here, as every viewer and pydicom do). Rescale to HU, the VOI window and
//! MONOCHROME1 inversion are applied at display time (`render`), so the volume in memory keeps
//! one copy in its stored type.

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use serde::Serialize;

use crate::error::DicomError;
use crate::index::{ImageInfo, Instance};
use crate::source::ReadDepth;

/// Largest single frame decoded (rows × columns × samples × bytes), to refuse absurd headers
/// before anything is allocated.
pub const MAX_FRAME_BYTES: u64 = 1 << 30;

/// How stored values are to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Photometric {
    /// Minimum is black.
    Monochrome2,
    /// Minimum is white: inverted at display.
    Monochrome1,
    /// Stored values are indices into the instance's palette.
    Palette,
    /// Interleaved R, G, B samples.
    Rgb,
}

/// Stored values of one frame, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    /// Interleaved RGB, 8 bits per sample.
    Rgb8(Vec<u8>),
    /// Interleaved RGB, 16 bits per sample.
    Rgb16(Vec<u16>),
    /// Interleaved RGB, 32 bits per sample.
    Rgb32(Vec<u32>),
}

impl Pixels {
    /// Number of samples (pixels × samples per pixel).
    pub fn len(&self) -> usize {
        match self {
            Pixels::U8(v) | Pixels::Rgb8(v) => v.len(),
            Pixels::I8(v) => v.len(),
            Pixels::U16(v) | Pixels::Rgb16(v) => v.len(),
            Pixels::I16(v) => v.len(),
            Pixels::U32(v) | Pixels::Rgb32(v) => v.len(),
            Pixels::I32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `i` as an integer (for tests, probes and histograms).
    pub fn get(&self, i: usize) -> Option<i64> {
        Some(match self {
            Pixels::U8(v) | Pixels::Rgb8(v) => i64::from(*v.get(i)?),
            Pixels::I8(v) => i64::from(*v.get(i)?),
            Pixels::U16(v) | Pixels::Rgb16(v) => i64::from(*v.get(i)?),
            Pixels::I16(v) => i64::from(*v.get(i)?),
            Pixels::U32(v) | Pixels::Rgb32(v) => i64::from(*v.get(i)?),
            Pixels::I32(v) => i64::from(*v.get(i)?),
        })
    }

    pub fn is_color(&self) -> bool {
        matches!(self, Pixels::Rgb8(_) | Pixels::Rgb16(_) | Pixels::Rgb32(_))
    }
}

/// A palette (PALETTE COLOR): index → 8-bit RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    /// First stored value mapped; values below map to the first entry.
    pub first_mapped: i64,
    /// Entries as RGB triplets, scaled to 8 bits.
    pub rgb: Vec<[u8; 3]>,
}

impl Palette {
    pub fn lookup(&self, stored: i64) -> [u8; 3] {
        let i = (stored - self.first_mapped).clamp(0, self.rgb.len() as i64 - 1);
        self.rgb[i as usize]
    }
}

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub rows: u32,
    pub columns: u32,
    pub photometric: Photometric,
    pub bits_stored: u16,
    pub pixels: Pixels,
    pub palette: Option<Palette>,
}

/// A transfer syntax's human name, and whether Dokuei can decode its pixel data.
pub fn transfer_syntax_info(uid: &str) -> (String, bool) {
    let registry = TransferSyntaxRegistry;
    match registry.get(uid) {
        Some(ts) => (ts.name().to_owned(), ts.can_decode_all()),
        None => ("unknown transfer syntax".to_owned(), false),
    }
}

/// Decodes frame `frame` (0-based) of `instance`.
pub fn decode_frame(instance: &Instance, frame: u32) -> Result<Frame, DicomError> {
    let obj = open_for_decoding(instance)?;
    decode_frame_of(&obj, instance, frame)
}

/// Reads the whole instance, after checking that its pixel data can be decoded at all.
pub fn open_for_decoding(instance: &Instance) -> Result<DefaultDicomObject, DicomError> {
    let source_name = instance.source.to_string();
    if instance.image.is_none() {
        return Err(DicomError::NoPixelData { source_name });
    }
    ensure_decodable(&source_name, &instance.transfer_syntax)?;
    instance
        .source
        .open(ReadDepth::Full)?
        .ok_or(DicomError::NotDicom { source_name })
}

/// An error unless this build can decode pixel data in `ts_uid`.
fn ensure_decodable(source_name: &str, ts_uid: &str) -> Result<(), DicomError> {
    let (ts_name, decodable) = transfer_syntax_info(ts_uid);
    if decodable {
        Ok(())
    } else {
        Err(DicomError::UnsupportedTransferSyntax {
            source_name: source_name.to_owned(),
            ts_uid: ts_uid.to_owned(),
            ts_name,
        })
    }
}

/// Opens an in-memory file and decodes its first frames (at most `max_frames`): the whole read
/// path for bytes that come from anywhere (the fuzzer, a network source). `label` names the
/// bytes in errors. `Ok` with no frames means the bytes are DICOM without pixel data.
pub fn open_and_decode_bytes(
    label: &str,
    bytes: &[u8],
    max_frames: u32,
) -> Result<Vec<Frame>, DicomError> {
    let source = crate::source::Source::File {
        path: std::path::PathBuf::from(label),
    };
    let obj = source
        .open_bytes(bytes, crate::source::sniff(bytes), ReadDepth::Full)?
        .ok_or_else(|| DicomError::NotDicom {
            source_name: label.to_owned(),
        })?
        .object;
    let image = crate::index::image_info(&obj, &source)?;
    let instance = Instance {
        source,
        sop_instance_uid: String::new(),
        sop_class_uid: String::new(),
        instance_number: None,
        transfer_syntax: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned(),
        image,
    };
    let frames = instance
        .image
        .as_ref()
        .map_or(0, |i| i.frames)
        .min(max_frames);
    if frames > 0 {
        ensure_decodable(label, &instance.transfer_syntax)?;
    }
    (0..frames)
        .map(|f| decode_frame_of(&obj, &instance, f))
        .collect()
}

/// Decodes one frame of an already opened instance (for multi-frame files, open once and
/// decode each frame).
pub fn decode_frame_of(
    obj: &DefaultDicomObject,
    instance: &Instance,
    frame: u32,
) -> Result<Frame, DicomError> {
    let source_name = instance.source.to_string();
    let info = instance
        .image
        .as_ref()
        .ok_or_else(|| DicomError::NoPixelData {
            source_name: source_name.clone(),
        })?;
    if frame >= info.frames {
        return Err(DicomError::NoSuchFrame {
            source_name,
            frame,
            frames: info.frames,
        });
    }
    let (ts_name, _) = transfer_syntax_info(&instance.transfer_syntax);
    let implausible = |reason: String| DicomError::ImplausibleImage {
        source_name: source_name.clone(),
        reason,
    };
    let pixels_per_frame = u64::from(info.rows) * u64::from(info.columns);
    let bytes_per_sample = u64::from(info.bits_allocated.div_ceil(8));
    let frame_bytes = pixels_per_frame * u64::from(info.samples_per_pixel) * bytes_per_sample;
    if frame_bytes > MAX_FRAME_BYTES.min(crate::source::memory_cap()) {
        return Err(implausible(format!(
            "{} × {} × {} samples would need {} MiB per frame",
            info.rows,
            info.columns,
            info.samples_per_pixel,
            frame_bytes >> 20
        )));
    }
    let element = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| DicomError::NoPixelData {
            source_name: source_name.clone(),
        })?;
    // Native pixel data must hold every frame the header promises; checking here turns a
    // wrong Number of Frames or a truncated file into a clear error instead of a decoder's.
    if let dicom_core::DicomValue::Primitive(p) = element.value() {
        let have = p.calculate_byte_len() as u64;
        let need = if info.bits_allocated == 1 {
            (pixels_per_frame * u64::from(info.frames)).div_ceil(8)
        } else {
            frame_bytes * u64::from(info.frames)
        };
        let need = if is_ybr_422(info) { need * 2 / 3 } else { need };
        if have < need {
            return Err(implausible(format!(
                "its pixel data has {have} bytes but {} frame(s) of {} × {} need {need}",
                info.frames, info.rows, info.columns
            )));
        }
    }
    let ts_uid = instance.transfer_syntax.trim_end_matches('\0');
    let decode_error = |reason: String| DicomError::Decode {
        source_name: source_name.clone(),
        ts_name: ts_name.clone(),
        reason,
    };
    // Byte buffers Dokuei decodes itself: native data (its frame arithmetic covers 1-bit,
    // YBR_FULL_422 and big-endian 32-bit, which dicom-pixeldata 0.10 gets wrong), RLE (all bit
    // depths), and JPEG stored as RGB without a colour transform. Everything else goes
    // through dicom-pixeldata's codecs.
    let owned: Vec<u8>;
    let (data, encapsulated): (&[u8], bool) = match element.value() {
        dicom_core::DicomValue::Primitive(p) => {
            owned = native_frame(&p.to_bytes(), info, frame, ts_uid == EXPLICIT_BE)
                .ok_or_else(|| implausible("its pixel data is shorter than its frames".into()))?;
            (&owned, false)
        }
        dicom_core::DicomValue::PixelSequence(seq) => {
            let fragments = frame_fragments(seq.fragments(), info.frames, frame);
            // A codec allocates what its own stream header declares: a few bytes that claim
            // 65535 × 65535 must not reach it.
            if let Some(stream) = fragments.as_deref().and_then(codestream_size) {
                let bytes = |rows: u32, columns: u32, samples: u32, bits: u32| {
                    u64::from(rows)
                        * u64::from(columns)
                        * u64::from(samples)
                        * u64::from(bits.div_ceil(8))
                };
                let header = bytes(
                    info.rows,
                    info.columns,
                    u32::from(info.samples_per_pixel),
                    u32::from(info.bits_allocated),
                );
                if stream.rows > info.rows
                    || stream.columns > info.columns
                    || bytes(
                        stream.rows,
                        stream.columns,
                        stream.components,
                        stream.precision,
                    ) > header
                {
                    return Err(decode_error(format!(
                        "the compressed stream declares {} × {} pixels of {} {}-bit sample(s) where the header says {} × {} of {} {}-bit",
                        stream.columns,
                        stream.rows,
                        stream.components,
                        stream.precision,
                        info.columns,
                        info.rows,
                        info.samples_per_pixel,
                        info.bits_allocated
                    )));
                }
            }
            if ts_uid == RLE_LOSSLESS {
                let bytes = fragments
                    .ok_or_else(|| decode_error("cannot find the frame's RLE fragment".into()))?;
                owned = crate::rle::decode(&bytes, info, pixels_per_frame as usize)
                    .map_err(decode_error)?;
                (&owned, false)
            } else if let Some(jpeg) = fragments.as_deref().filter(|f| {
                JPEG_DCT.contains(&ts_uid) && crate::jpeg12::precision(f).is_some_and(|p| p > 8)
            }) {
                let max_samples = pixels_per_frame as usize * info.samples_per_pixel as usize;
                let decoded = crate::jpeg12::decode(jpeg, max_samples).map_err(decode_error)?;
                if (decoded.height, decoded.width, decoded.components)
                    != (
                        info.rows as usize,
                        info.columns as usize,
                        info.samples_per_pixel as usize,
                    )
                {
                    return Err(decode_error(format!(
                        "the JPEG stream is {} × {} × {} where the header says {} × {} × {}",
                        decoded.height,
                        decoded.width,
                        decoded.components,
                        info.rows,
                        info.columns,
                        info.samples_per_pixel
                    )));
                }
                owned = decoded
                    .samples
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect();
                (&owned, true)
            } else if let Some(rgb) = fragments
                .as_deref()
                .filter(|_| {
                    info.samples_per_pixel == 3
                        && info.photometric == "RGB"
                        && JPEG_8BIT.contains(&ts_uid)
                })
                .and_then(jpeg_rgb_without_transform)
            {
                owned = rgb.map_err(decode_error)?;
                (&owned, true)
            } else {
                let decoded = third_party_codec(|| obj.decode_pixel_data_frame(frame))
                    .map_err(decode_error)?
                    .map_err(|e| decode_error(e.to_string()))?;
                owned = decoded.into_data();
                (&owned, true)
            }
        }
        dicom_core::DicomValue::Sequence(_) => {
            return Err(implausible("Pixel Data is a sequence".into()));
        }
    };
    let photometric = info.photometric.as_str();
    let n = (info.rows * info.columns) as usize;

    let short = |have: usize, need: usize| DicomError::Decode {
        source_name: source_name.clone(),
        ts_name: ts_name.clone(),
        reason: format!("the decoder returned {have} bytes for a frame that needs {need}"),
    };

    let (pixels, photometric_out) = if info.samples_per_pixel == 1 {
        let out_photometric = match photometric {
            "MONOCHROME1" => Photometric::Monochrome1,
            "PALETTE COLOR" => Photometric::Palette,
            _ => Photometric::Monochrome2,
        };
        (
            grey_samples(data, info, n)
                .ok_or_else(|| short(data.len(), n * bytes_per_sample as usize))?,
            out_photometric,
        )
    } else {
        // Codecs return interleaved RGB; native and RLE data keep the stored colour space and
        // planar configuration (RLE is decoded to interleaved samples).
        let planar = !encapsulated && ts_uid != RLE_LOSSLESS && info.planar_configuration == 1;
        let expand_422 = is_ybr_422(info) && !encapsulated && ts_uid != RLE_LOSSLESS;
        // (expand_ybr_422 converts to RGB as it expands.)
        let ybr = !encapsulated && !expand_422 && photometric.starts_with("YBR_FULL");
        let rgb = if expand_422 {
            expand_ybr_422(data, n, info.columns as usize)
                .ok_or_else(|| short(data.len(), n * 2))?
        } else {
            let need = n * 3 * bytes_per_sample as usize;
            let bytes = data.get(..need).ok_or_else(|| short(data.len(), need))?;
            if planar {
                deplanarise(bytes, n, bytes_per_sample as usize)
            } else {
                bytes.to_vec()
            }
        };
        let pixels = match info.bits_allocated {
            8 => {
                let mut v = rgb;
                if ybr {
                    ybr_to_rgb(&mut v);
                }
                Pixels::Rgb8(v)
            }
            16 => Pixels::Rgb16(
                rgb.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            32 => Pixels::Rgb32(
                rgb.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            bits => {
                return Err(DicomError::Unsupported {
                    source_name,
                    what: format!("{bits}-bit colour"),
                });
            }
        };
        (pixels, Photometric::Rgb)
    };
    let palette = if photometric_out == Photometric::Palette {
        Some(read_palette(obj).ok_or_else(|| DicomError::Unsupported {
            source_name: source_name.clone(),
            what: "a PALETTE COLOR image without a readable palette".into(),
        })?)
    } else {
        None
    };
    Ok(Frame {
        rows: info.rows,
        columns: info.columns,
        photometric: photometric_out,
        bits_stored: info.bits_stored,
        pixels,
        palette,
    })
}

fn is_ybr_422(info: &ImageInfo) -> bool {
    info.samples_per_pixel == 3 && info.photometric == "YBR_FULL_422" && info.bits_allocated == 8
}

/// Greyscale stored values: little-endian samples of `bits_allocated`, masked to `bits_stored`
/// and sign-extended when Pixel Representation is 1.
fn grey_samples(data: &[u8], info: &ImageInfo, n: usize) -> Option<Pixels> {
    let bits = u32::from(info.bits_stored);
    let signed = info.pixel_representation == 1;
    Some(match info.bits_allocated {
        // Expanded to one byte per pixel (0 or 1) by `native_frame` or the codec.
        1 => Pixels::U8(data.get(..n)?.iter().map(|&b| u8::from(b != 0)).collect()),
        8 => {
            let d = data.get(..n)?;
            if signed {
                Pixels::I8(
                    d.iter()
                        .map(|&b| sign_extend(u32::from(b), bits) as i8)
                        .collect(),
                )
            } else {
                Pixels::U8(
                    d.iter()
                        .map(|&b| (u32::from(b) & mask(bits)) as u8)
                        .collect(),
                )
            }
        }
        16 => {
            let d = data.get(..n * 2)?;
            let raw = d
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])));
            if signed {
                Pixels::I16(raw.map(|v| sign_extend(v, bits) as i16).collect())
            } else {
                Pixels::U16(raw.map(|v| (v & mask(bits)) as u16).collect())
            }
        }
        32 => {
            let d = data.get(..n * 4)?;
            let raw = d
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            if signed {
                Pixels::I32(raw.map(|v| sign_extend(v, bits)).collect())
            } else {
                Pixels::U32(raw.map(|v| v & mask(bits)).collect())
            }
        }
        _ => return None,
    })
}

pub(crate) fn mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

pub(crate) fn sign_extend(v: u32, bits: u32) -> i32 {
    let v = v & mask(bits);
    if bits >= 32 {
        return v as i32;
    }
    let shift = 32 - bits;
    ((v << shift) as i32) >> shift
}

/// Planar configuration 1 (RRR…GGG…BBB…) to interleaved RGB.
fn deplanarise(bytes: &[u8], n: usize, sample_bytes: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes.len()];
    for plane in 0..3 {
        for i in 0..n {
            let src = (plane * n + i) * sample_bytes;
            let dst = (i * 3 + plane) * sample_bytes;
            out[dst..dst + sample_bytes].copy_from_slice(&bytes[src..src + sample_bytes]);
        }
    }
    out
}

/// Uncompressed YBR_FULL_422: each pair of pixels on a row is stored as Y1 Y2 Cb Cr.
/// Expanded to full-resolution RGB.
fn expand_ybr_422(data: &[u8], n: usize, columns: usize) -> Option<Vec<u8>> {
    let bytes = data.get(..n * 2)?;
    let mut out = Vec::with_capacity(n * 3);
    let rows = n / columns;
    let row_bytes = columns * 2;
    for r in 0..rows {
        let row = &bytes[r * row_bytes..(r + 1) * row_bytes];
        for quad in row.chunks_exact(4) {
            let (y1, y2, cb, cr) = (quad[0], quad[1], quad[2], quad[3]);
            out.extend_from_slice(&ybr_pixel(y1, cb, cr));
            out.extend_from_slice(&ybr_pixel(y2, cb, cr));
        }
    }
    Some(out)
}

/// YBR_FULL → RGB in place (ITU-R BT.601 full range, PS3.3 C.7.6.3.1.2), rounded as pydicom
/// rounds.
fn ybr_to_rgb(v: &mut [u8]) {
    for px in v.chunks_exact_mut(3) {
        let rgb = ybr_pixel(px[0], px[1], px[2]);
        px.copy_from_slice(&rgb);
    }
}

fn ybr_pixel(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (f64::from(y), f64::from(cb) - 128.0, f64::from(cr) - 128.0);
    let r = y + 1.402 * cr;
    let g = y - 0.344_136_286_201_022_4 * cb - 0.714_136_286_201_022_4 * cr;
    let b = y + 1.772 * cb;
    let to_u8 = |x: f64| x.round().clamp(0.0, 255.0) as u8;
    [to_u8(r), to_u8(g), to_u8(b)]
}

fn segmented_tag(data: dicom_core::Tag) -> Option<dicom_core::Tag> {
    Some(match data {
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA => {
            tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA
        }
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA => {
            tags::SEGMENTED_GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA
        }
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA => {
            tags::SEGMENTED_BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA
        }
        _ => return None,
    })
}

/// Expands a segmented palette (PS3.3 C.7.9.2): discrete, linear and indirect segments.
fn expand_segmented_lut(words: &[u16], entries: usize) -> Option<Vec<u16>> {
    fn expand(words: &[u16], out: &mut Vec<u16>, depth: u32) -> Option<()> {
        let mut i = 0;
        while i + 1 < words.len() {
            let (kind, len) = (words[i], words[i + 1] as usize);
            match kind {
                0 => {
                    out.extend_from_slice(words.get(i + 2..i + 2 + len)?);
                    i += 2 + len;
                }
                1 => {
                    let y0 = f64::from(*out.last()?);
                    let y1 = f64::from(*words.get(i + 2)?);
                    for k in 1..=len {
                        out.push((y0 + (y1 - y0) * k as f64 / len as f64).round() as u16);
                    }
                    i += 3;
                }
                2 if depth == 0 => {
                    let lo = u32::from(*words.get(i + 2)?);
                    let hi = u32::from(*words.get(i + 3)?);
                    let offset = (lo | (hi << 16)) as usize;
                    // Copy `len` segments starting at the word offset.
                    let mut j = offset;
                    for _ in 0..len {
                        let seg_len = match *words.get(j)? {
                            0 => 2 + *words.get(j + 1)? as usize,
                            1 => 3,
                            _ => return None,
                        };
                        expand(words.get(j..j + seg_len)?, out, depth + 1)?;
                        j += seg_len;
                    }
                    i += 4;
                }
                _ => return None,
            }
            if out.len() > 1 << 20 {
                return None;
            }
        }
        Some(())
    }
    let mut out = Vec::with_capacity(entries);
    expand(words, &mut out, 0)?;
    out.resize(entries, *out.last()?);
    Some(out)
}

/// The Red/Green/Blue Palette Color Lookup Tables, scaled to 8 bits.
fn read_palette(obj: &DefaultDicomObject) -> Option<Palette> {
    let channel = |descriptor: dicom_core::Tag, data: dicom_core::Tag| -> Option<(i64, Vec<u16>)> {
        let d = obj.get(descriptor)?.to_multi_int::<i64>().ok()?;
        let (entries, first, bits) = (*d.first()?, *d.get(1)?, *d.get(2)?);
        let entries = if entries == 0 {
            65_536
        } else {
            entries as usize
        };
        let bytes = match obj.get(data) {
            Some(e) => e.to_bytes().ok()?,
            None => {
                let segmented = obj.get(segmented_tag(data)?)?.to_bytes().ok()?;
                let words: Vec<u16> = segmented
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                let values = expand_segmented_lut(&words, entries)?;
                let values = if bits == 8 {
                    values.iter().map(|v| (v & 0xff) << 8).collect()
                } else {
                    values
                };
                return Some((first, values));
            }
        };
        let values: Vec<u16> = if bits == 8 && bytes.len() < entries * 2 {
            bytes
                .iter()
                .take(entries)
                .map(|&b| u16::from(b) << 8)
                .collect()
        } else {
            let v: Vec<u16> = bytes
                .chunks_exact(2)
                .take(entries)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            if bits == 8 {
                v.iter().map(|x| (x & 0xff) << 8).collect()
            } else {
                v
            }
        };
        (values.len() == entries).then_some((first, values))
    };
    let (first, r) = channel(
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    let (_, g) = channel(
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    let (_, b) = channel(
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    if r.len() != g.len() || g.len() != b.len() {
        return None;
    }
    let rgb = (0..r.len())
        .map(|i| [(r[i] >> 8) as u8, (g[i] >> 8) as u8, (b[i] >> 8) as u8])
        .collect();
    Some(Palette {
        first_mapped: first,
        rgb,
    })
}

const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
/// JPEG Baseline and Extended: the DCT processes, 8 or 12 bits.
const JPEG_DCT: &[&str] = &["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"];
/// JPEG Baseline, Extended, Lossless (process 14 and its SV1 selection).
const JPEG_8BIT: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];

/// The bytes of frame `frame` of native (uncompressed) pixel data, as little-endian samples
/// (1-bit data expanded to one byte per pixel).
fn native_frame(all: &[u8], info: &ImageInfo, frame: u32, big_endian: bool) -> Option<Vec<u8>> {
    let pixels = info.rows as usize * info.columns as usize;
    if info.bits_allocated == 1 {
        // Frames of 1-bit data are packed back to back, not byte-aligned.
        let first_bit = pixels * frame as usize;
        let end_byte = (first_bit + pixels).div_ceil(8);
        all.get(..end_byte)?;
        return Some(
            (first_bit..first_bit + pixels)
                .map(|bit| (all[bit / 8] >> (bit % 8)) & 1)
                .collect(),
        );
    }
    let sample_bytes = info.bits_allocated.div_ceil(8) as usize;
    let mut frame_bytes = pixels * info.samples_per_pixel as usize * sample_bytes;
    if is_ybr_422(info) {
        frame_bytes = frame_bytes * 2 / 3;
    }
    let start = frame_bytes * frame as usize;
    let mut bytes = all.get(start..start + frame_bytes)?.to_vec();
    if big_endian && info.bits_allocated == 32 {
        // A big-endian OW value is read as 16-bit words in native order, so each 32-bit
        // sample arrives with its two halves swapped.
        for s in bytes.chunks_exact_mut(4) {
            s.swap(0, 2);
            s.swap(1, 3);
        }
    }
    Some(bytes)
}

/// Runs a third-party codec. dicom-pixeldata's adapters and jpeg-decoder index buffers by what a
/// stream says and panic on some streams that contradict themselves or the header (found by
/// fuzzing); such a frame is a decode error, never a crash of the study.
fn third_party_codec<T>(codec: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(codec))
        .map_err(|_| "the codec failed on this frame's data".to_owned())
}

/// What a JPEG, JPEG-LS or JPEG 2000 stream declares in its own header (SOFn / SOF55, or SIZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamSize {
    rows: u32,
    columns: u32,
    components: u32,
    /// Bits per sample (the largest of the components' for JPEG 2000).
    precision: u32,
}

/// The size a JPEG, JPEG-LS or JPEG 2000 stream declares, when it is one of those and its header
/// can be found.
fn codestream_size(stream: &[u8]) -> Option<StreamSize> {
    let be16 = |i: usize| {
        Some(u32::from(u16::from_be_bytes([
            *stream.get(i)?,
            *stream.get(i + 1)?,
        ])))
    };
    let be32 = |i: usize| Some(u32::from_be_bytes(stream.get(i..i + 4)?.try_into().ok()?));
    if stream.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 9 <= stream.len() {
            if stream[i] != 0xFF {
                // Decoders skip stray bytes between segments to the next marker: so does this.
                i += 1;
                continue;
            }
            let marker = stream[i + 1];
            if marker == 0xFF {
                i += 1;
                continue;
            }
            // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC); SOF55 (F7) for JPEG-LS.
            if matches!(marker, 0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC))
                || marker == 0xF7
            {
                return Some(StreamSize {
                    precision: u32::from(*stream.get(i + 4)?),
                    rows: be16(i + 5)?,
                    columns: be16(i + 7)?,
                    components: u32::from(*stream.get(i + 9)?),
                });
            }
            if marker == 0xDA {
                return None;
            }
            i += 2 + be16(i + 2)? as usize;
        }
        return None;
    }
    if stream.starts_with(&[0xFF, 0x0A]) {
        return jpeg_xl_size(&stream[2..]);
    }
    // JPEG 2000: the SIZ segment follows SOC (FF4F) directly; in a JP2 file it is inside the
    // codestream box, found by its marker pair.
    let siz = stream
        .windows(4)
        .take(4096)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])?
        + 2;
    let (x, y, x0, y0) = (
        be32(siz + 6)?,
        be32(siz + 10)?,
        be32(siz + 14)?,
        be32(siz + 18)?,
    );
    // Csiz after the tile sizes and offsets; then Ssiz (bit depth - 1, high bit = signed) per
    // component, each followed by its two subsampling bytes.
    let components = be16(siz + 38)?;
    let precision = (0..components.min(16384) as usize)
        .filter_map(|c| {
            stream
                .get(siz + 40 + 3 * c)
                .map(|s| u32::from(s & 0x7F) + 1)
        })
        .max()
        .unwrap_or(0);
    Some(StreamSize {
        rows: y.checked_sub(y0)?,
        columns: x.checked_sub(x0)?,
        components,
        precision,
    })
}

/// The image size in a JPEG XL codestream's SizeHeader (ISO/IEC 18181-1 D.2), read from the
/// bytes after its signature. JPEG XL does not say its sample depth here: the check compares the
/// size only (components 1, precision 8).
fn jpeg_xl_size(header: &[u8]) -> Option<StreamSize> {
    // Bits are read least significant first.
    let mut bit = 0usize;
    let mut read = |n: usize| -> Option<u32> {
        let mut v = 0u32;
        for k in 0..n {
            let byte = *header.get((bit + k) / 8)?;
            v |= u32::from((byte >> ((bit + k) % 8)) & 1) << k;
        }
        bit += n;
        Some(v)
    };
    let small = read(1)? == 1;
    let dimension = |read: &mut dyn FnMut(usize) -> Option<u32>| -> Option<u32> {
        if small {
            return Some(8 * (1 + read(5)?));
        }
        let bits = [9, 13, 18, 30][read(2)? as usize];
        Some(1 + read(bits)?)
    };
    let height = dimension(&mut read)?;
    let ratio = read(3)?;
    let width = match ratio {
        0 => dimension(&mut read)?,
        r => {
            let (num, den) =
                [(1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1)][r as usize - 1];
            (u64::from(height) * num / den) as u32
        }
    };
    Some(StreamSize {
        rows: height,
        columns: width,
        components: 1,
        precision: 8,
    })
}

/// The encapsulated bytes of one frame: one fragment per frame, or all fragments of a
/// single-frame image.
fn frame_fragments(fragments: &[Vec<u8>], frames: u32, frame: u32) -> Option<Vec<u8>> {
    if frames == 1 {
        Some(fragments.concat())
    } else if fragments.len() == frames as usize {
        fragments.get(frame as usize).cloned()
    } else {
        None
    }
}

/// A JPEG whose DICOM header says RGB and which carries neither an Adobe (APP14) nor a JFIF
/// (APP0) marker holds RGB samples without a colour transform (PS3.5 8.2.1); decoders assume
/// YCbCr for three components, so it is decoded here with the transform off. `None` means the
/// default decoder is right for it.
fn jpeg_rgb_without_transform(jpeg: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[0] == 0xFF && jpeg[1] == 0xD8 {
        if jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        if matches!(marker, 0xC0..=0xC3 | 0xDA) {
            break; // frame header or scan: no colour marker came before it
        }
        if marker == 0xEE || (marker == 0xE0 && jpeg.get(i + 4..i + 9) == Some(b"JFIF\0")) {
            return None;
        }
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        i += 2 + len;
    }
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    decoder.set_color_transform(jpeg_decoder::ColorTransform::None);
    Some(third_party_codec(|| decoder.decode()).and_then(|r| r.map_err(|e| e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extension_respects_bits_stored() {
        assert_eq!(sign_extend(0x0FFF, 12), -1);
        assert_eq!(sign_extend(0x07FF, 12), 2047);
        // Bits above Bits Stored (overlay bits, garbage) are ignored.
        assert_eq!(sign_extend(0xF800, 12), -2048);
        assert_eq!(sign_extend(0xFFFF_FFFF, 32), -1);
    }

    #[test]
    fn planar_configuration_one_is_interleaved() {
        let planar = [1, 2, 10, 20, 100, 200];
        assert_eq!(deplanarise(&planar, 2, 1), vec![1, 10, 100, 2, 20, 200]);
    }

    #[test]
    fn segmented_palette_expands_discrete_linear_and_indirect_segments() {
        // discrete [0, 10], linear to 30 over 2 entries, indirect copy of the first segment
        let words = [0, 2, 0, 10, 1, 2, 30, 2, 1, 0, 0];
        assert_eq!(
            expand_segmented_lut(&words, 6).unwrap(),
            vec![0, 10, 20, 30, 0, 10]
        );
    }

    #[test]
    fn big_endian_32_bit_samples_get_their_halves_back_in_order() {
        let info = ImageInfo {
            rows: 1,
            columns: 1,
            frames: 1,
            samples_per_pixel: 1,
            photometric: "MONOCHROME2".into(),
            bits_allocated: 32,
            bits_stored: 32,
            pixel_representation: 0,
            planar_configuration: 0,
            acquisition_number: None,
            frame_of_reference: String::new(),
            echo_number: None,
            trigger_time: None,
            frame_info: Vec::new(),
            pixel_spacing: None,
            spacing_at_detector: false,
            patient_orientation: None,
        };
        // 0x00130EE8 read as two native 16-bit words 0x0013, 0x0EE8 → LE bytes 13 00 E8 0E
        let bytes = native_frame(&[0x13, 0x00, 0xE8, 0x0E], &info, 0, true).unwrap();
        assert_eq!(u32::from_le_bytes(bytes.try_into().unwrap()), 0x0013_0EE8);
    }

    #[test]
    fn one_bit_frames_are_packed_back_to_back() {
        let info = ImageInfo {
            rows: 1,
            columns: 3,
            frames: 2,
            samples_per_pixel: 1,
            photometric: "MONOCHROME2".into(),
            bits_allocated: 1,
            bits_stored: 1,
            pixel_representation: 0,
            planar_configuration: 0,
            acquisition_number: None,
            frame_of_reference: String::new(),
            echo_number: None,
            trigger_time: None,
            frame_info: Vec::new(),
            pixel_spacing: None,
            spacing_at_detector: false,
            patient_orientation: None,
        };
        // bits (LSB first): frame 0 = 1,0,1; frame 1 = 1,1,0
        assert_eq!(
            native_frame(&[0b0001_1101], &info, 1, false).unwrap(),
            vec![1, 1, 0]
        );
    }

    #[test]
    fn codestream_sizes_are_read_from_jpeg_and_jpeg_2000_headers() {
        // SOI, SOF0: length 11, precision 8, 300 rows, 200 columns, 1 component
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 1, 44, 0, 200, 1, 1, 0x11, 0,
        ];
        let size = |rows, columns, components, precision| StreamSize {
            rows,
            columns,
            components,
            precision,
        };
        assert_eq!(codestream_size(&jpeg), Some(size(300, 200, 1, 8)));
        // SOC, SIZ: Lsiz, Rsiz, Xsiz 640, Ysiz 480, XOsiz 0, YOsiz 0, tile size and offsets,
        // Csiz 3, then 12-bit unsigned components.
        let mut j2k = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 47, 0, 0];
        j2k.extend(640u32.to_be_bytes());
        j2k.extend(480u32.to_be_bytes());
        j2k.extend([0u8; 24]);
        j2k.extend([0, 3]);
        j2k.extend([11, 1, 1, 11, 1, 1, 11, 1, 1]);
        assert_eq!(codestream_size(&j2k), Some(size(480, 640, 3, 12)));
        assert_eq!(codestream_size(b"RLE bytes"), None);
        // JPEG XL: signature, then div8 = 0, height selector 1 (13 bits) = 299 → 300,
        // ratio 0, width selector 0 (9 bits) = 199 → 200; bits least significant first.
        let mut bits: Vec<u8> = vec![0];
        let push = |bits: &mut Vec<u8>, v: u32, n: usize| {
            bits.extend((0..n).map(|k| ((v >> k) & 1) as u8))
        };
        push(&mut bits, 1, 2);
        push(&mut bits, 299, 13);
        push(&mut bits, 0, 3);
        push(&mut bits, 0, 2);
        push(&mut bits, 199, 9);
        let mut jxl = vec![0xFF, 0x0A];
        jxl.extend(
            bits.chunks(8)
                .map(|c| c.iter().enumerate().fold(0u8, |b, (k, &v)| b | (v << k))),
        );
        assert_eq!(codestream_size(&jxl), Some(size(300, 200, 1, 8)));
    }

    #[test]
    fn ybr_grey_stays_grey() {
        assert_eq!(ybr_pixel(128, 128, 128), [128, 128, 128]);
        assert_eq!(ybr_pixel(76, 85, 255), [254, 0, 0]);
    }
}
