//! Loading a whole stack into one volume, in parallel, in its stored type; or one slice's
//! modality values at a time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::{Array3, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::decode::{Frame, Pixels, decode_frame_of, open_for_decoding};
use crate::error::DicomError;
use crate::index::{Rescale, Series};
use crate::stack::Stack;

/// Stored values of a greyscale stack: slices × rows × columns, one copy in the stored type.
#[derive(Debug, Clone)]
pub enum VolumeData {
    U8(Array3<u8>),
    I8(Array3<i8>),
    U16(Array3<u16>),
    I16(Array3<i16>),
    U32(Array3<u32>),
    I32(Array3<i32>),
}

impl VolumeData {
    pub fn dim(&self) -> (usize, usize, usize) {
        match self {
            VolumeData::U8(a) => a.dim(),
            VolumeData::I8(a) => a.dim(),
            VolumeData::U16(a) => a.dim(),
            VolumeData::I16(a) => a.dim(),
            VolumeData::U32(a) => a.dim(),
            VolumeData::I32(a) => a.dim(),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let (s, r, c) = self.dim();
        let each = match self {
            VolumeData::U8(_) | VolumeData::I8(_) => 1,
            VolumeData::U16(_) | VolumeData::I16(_) => 2,
            VolumeData::U32(_) | VolumeData::I32(_) => 4,
        };
        s * r * c * each
    }

    /// Stored value at (slice, row, column).
    pub fn get(&self, s: usize, r: usize, c: usize) -> Option<i64> {
        let i = [s, r, c];
        Some(match self {
            VolumeData::U8(a) => i64::from(*a.get(i)?),
            VolumeData::I8(a) => i64::from(*a.get(i)?),
            VolumeData::U16(a) => i64::from(*a.get(i)?),
            VolumeData::I16(a) => i64::from(*a.get(i)?),
            VolumeData::U32(a) => i64::from(*a.get(i)?),
            VolumeData::I32(a) => i64::from(*a.get(i)?),
        })
    }
}

/// A loaded stack.
#[derive(Debug, Clone)]
pub struct Volume {
    pub data: VolumeData,
    /// Modality LUT per slice (HU = stored × slope + intercept).
    pub rescale: Vec<Rescale>,
}

impl Volume {
    /// The modality value (HU for CT) at (slice, row, column).
    pub fn value(&self, s: usize, r: usize, c: usize) -> Option<f64> {
        Some(self.rescale.get(s)?.apply(self.data.get(s, r, c)? as f64))
    }

    /// All modality values of slice `s`, row-major, as f32 (what models take).
    pub fn slice_values(&self, s: usize) -> Option<Vec<f32>> {
        let rescale = *self.rescale.get(s)?;
        let (slope, intercept) = (rescale.slope as f32, rescale.intercept as f32);
        macro_rules! map {
            ($a:expr) => {{
                let view = $a.index_axis(ndarray::Axis(0), s);
                view.iter().map(|&v| v as f32 * slope + intercept).collect()
            }};
        }
        if s >= self.data.dim().0 {
            return None;
        }
        Some(match &self.data {
            VolumeData::U8(a) => map!(a),
            VolumeData::I8(a) => map!(a),
            VolumeData::U16(a) => map!(a),
            VolumeData::I16(a) => map!(a),
            VolumeData::U32(a) => map!(a),
            VolumeData::I32(a) => map!(a),
        })
    }
}

/// Progress of a load: frames decoded so far out of the total.
pub trait Progress: Sync {
    fn frames_done(&self, done: usize, total: usize);
}

impl<F: Fn(usize, usize) + Sync> Progress for F {
    fn frames_done(&self, done: usize, total: usize) {
        self(done, total)
    }
}

/// Decodes every frame of `stack` into one volume, in parallel. `cancel` stops the load
/// between frames (the result is then an error, and nothing partial is returned).
pub fn load_volume(
    series: &Series,
    stack: &Stack,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Volume, LoadError> {
    let total = stack.frames.len();
    let first = stack.frames.first().ok_or(LoadError::Empty)?;
    // The first frame decides the stored type of the whole volume.
    let first_frame = decode(series, first.instance, first.frame)?;
    let (rows, columns) = (stack.rows as usize, stack.columns as usize);
    let shape = (total, rows, columns);
    let mut data = match &first_frame.pixels {
        Pixels::U8(_) => VolumeData::U8(Array3::zeros(shape)),
        Pixels::I8(_) => VolumeData::I8(Array3::zeros(shape)),
        Pixels::U16(_) => VolumeData::U16(Array3::zeros(shape)),
        Pixels::I16(_) => VolumeData::I16(Array3::zeros(shape)),
        Pixels::U32(_) => VolumeData::U32(Array3::zeros(shape)),
        Pixels::I32(_) => VolumeData::I32(Array3::zeros(shape)),
        Pixels::Rgb8(_) | Pixels::Rgb16(_) | Pixels::Rgb32(_) => {
            return Err(LoadError::Colour);
        }
    };
    let done = AtomicUsize::new(0);
    let fill = |index: usize, mut slice: Slice<'_>| -> Result<(), LoadError> {
        if cancel.load(Ordering::Relaxed) {
            return Err(LoadError::Cancelled);
        }
        let f = &stack.frames[index];
        if slice.fill_native_fast(series, f.instance, f.frame) {
            progress.frames_done(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            return Ok(());
        }
        let frame = decode_slice(series, stack, index)?;
        slice.copy_from(&frame.pixels, index)?;
        progress.frames_done(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        Ok(())
    };
    macro_rules! par_fill {
        ($a:expr, $variant:ident) => {
            $a.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .try_for_each(|(i, view)| fill(i, Slice::$variant(view)))
        };
    }
    match &mut data {
        VolumeData::U8(a) => par_fill!(a, U8),
        VolumeData::I8(a) => par_fill!(a, I8),
        VolumeData::U16(a) => par_fill!(a, U16),
        VolumeData::I16(a) => par_fill!(a, I16),
        VolumeData::U32(a) => par_fill!(a, U32),
        VolumeData::I32(a) => par_fill!(a, I32),
    }?;
    Ok(Volume {
        data,
        rescale: stack.frames.iter().map(|f| f.rescale).collect(),
    })
}

/// A colour stack (RGB, YBR or palette; ultrasound cine, secondary captures, colour maps) as
/// 8-bit RGB: slices × rows × columns × 3.
#[derive(Debug, Clone)]
pub struct RgbVolume {
    pub data: ndarray::Array4<u8>,
}

/// Decodes every frame of a colour `stack` into one RGB volume, in parallel. Each file is
/// opened once, however many of its frames the stack holds (a cine loop is one file of
/// hundreds of frames); palettes are looked up and 16-bit colour is scaled to 8 bits, as the
/// viewer shows them. `cancel` stops the load between frames.
pub fn load_rgb_volume(
    series: &Series,
    stack: &Stack,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<RgbVolume, LoadError> {
    let total = stack.frames.len();
    if total == 0 {
        return Err(LoadError::Empty);
    }
    let (rows, columns) = (stack.rows as usize, stack.columns as usize);
    let mut data = ndarray::Array4::<u8>::zeros((total, rows, columns, 3));
    // Slices grouped by the file they come from, each file opened once.
    let mut by_instance: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, f) in stack.frames.iter().enumerate() {
        by_instance.entry(f.instance).or_default().push(i);
    }
    let opened: Vec<(usize, dicom_object::DefaultDicomObject)> = by_instance
        .keys()
        .copied()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|i| Ok((i, open_for_decoding(&series.instances[i])?)))
        .collect::<Result<_, DicomError>>()?;
    let objects: std::collections::BTreeMap<usize, dicom_object::DefaultDicomObject> =
        opened.into_iter().collect();
    let done = AtomicUsize::new(0);
    data.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .try_for_each(|(index, mut slice)| {
            if cancel.load(Ordering::Relaxed) {
                return Err(LoadError::Cancelled);
            }
            let f = &stack.frames[index];
            let instance = &series.instances[f.instance];
            let frame = decode_frame_of(&objects[&f.instance], instance, f.frame)?;
            if frame.rows != stack.rows || frame.columns != stack.columns {
                return Err(LoadError::Mixed(format!(
                    "slice {} is {}×{}",
                    index + 1,
                    frame.columns,
                    frame.rows
                )));
            }
            if !frame.pixels.is_color() && frame.photometric != crate::Photometric::Palette {
                return Err(LoadError::Mixed(format!(
                    "slice {} is greyscale in a colour stack",
                    index + 1
                )));
            }
            // Colour has no window: the identity window over 8 bits, as the viewer renders it.
            let image =
                crate::render::render(&frame, f.rescale, crate::Window::linear(127.5, 256.0));
            let rgb = slice
                .as_slice_mut()
                .ok_or_else(|| LoadError::Mixed("a slice is not contiguous".into()))?;
            rgb.copy_from_slice(&image.data);
            progress.frames_done(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            Ok(())
        })?;
    Ok(RgbVolume { data })
}

/// Decodes frame `index` of `stack` on its own into modality values (rescale applied),
/// row-major f32: what a model takes, one slice at a time, so a caller can start working on
/// the first slices before the last are read. Plain little-endian files take the same direct
/// read as [`load_volume`]; everything else goes through the general decoder.
pub fn frame_values(series: &Series, stack: &Stack, index: usize) -> Result<Vec<f32>, LoadError> {
    let f = stack.frames.get(index).ok_or_else(|| {
        LoadError::Mixed(format!(
            "slice {} asked of a stack of {}",
            index + 1,
            stack.frames.len()
        ))
    })?;
    let (rows, columns) = (stack.rows as usize, stack.columns as usize);
    let (slope, intercept) = (f.rescale.slope as f32, f.rescale.intercept as f32);
    macro_rules! fast {
        ($t:ty, $variant:ident) => {{
            let mut stored = vec![<$t>::default(); rows * columns];
            if let Ok(view) = ArrayViewMut2::from_shape((rows, columns), &mut stored[..]) {
                if Slice::$variant(view).fill_native_fast(series, f.instance, f.frame) {
                    return Ok(stored
                        .iter()
                        .map(|&v| f32::from(v) * slope + intercept)
                        .collect());
                }
            }
        }};
    }
    let image = series.instances[f.instance].image.as_ref();
    match image.map(|i| (i.bits_allocated, i.pixel_representation)) {
        Some((16, 1)) => fast!(i16, I16),
        Some((16, 0)) => fast!(u16, U16),
        Some((8, 0)) => fast!(u8, U8),
        _ => {}
    }
    let frame = decode_slice(series, stack, index)?;
    macro_rules! map {
        ($v:expr) => {
            $v.iter().map(|&v| v as f32 * slope + intercept).collect()
        };
    }
    Ok(match &frame.pixels {
        Pixels::U8(v) => map!(v),
        Pixels::I8(v) => map!(v),
        Pixels::U16(v) => map!(v),
        Pixels::I16(v) => map!(v),
        Pixels::U32(v) => map!(v),
        Pixels::I32(v) => map!(v),
        Pixels::Rgb8(_) | Pixels::Rgb16(_) | Pixels::Rgb32(_) => return Err(LoadError::Colour),
    })
}

/// Decodes slice `index` of `stack` with the general decoder; it must have the stack's size.
fn decode_slice(series: &Series, stack: &Stack, index: usize) -> Result<Frame, LoadError> {
    let f = &stack.frames[index];
    let frame = decode(series, f.instance, f.frame)?;
    if frame.rows != stack.rows || frame.columns != stack.columns {
        return Err(LoadError::Mixed(format!(
            "slice {} is {}×{}",
            index + 1,
            frame.columns,
            frame.rows
        )));
    }
    Ok(frame)
}

/// Decodes one frame of a series (opening its file).
pub fn decode(series: &Series, instance: usize, frame: u32) -> Result<Frame, DicomError> {
    let inst = &series.instances[instance];
    let obj = open_for_decoding(inst)?;
    decode_frame_of(&obj, inst, frame)
}

enum Slice<'a> {
    U8(ArrayViewMut2<'a, u8>),
    I8(ArrayViewMut2<'a, i8>),
    U16(ArrayViewMut2<'a, u16>),
    I16(ArrayViewMut2<'a, i16>),
    U32(ArrayViewMut2<'a, u32>),
    I32(ArrayViewMut2<'a, i32>),
}

impl Slice<'_> {
    /// Reads a plain little-endian, single-frame, 8- or 16-bit greyscale file straight into the
    /// slice: the pixel data is the file's last element in nearly every such file, so its bytes
    /// are read in place after checking the element header in front of them. Returns false (and
    /// leaves the slice for the general decoder) whenever any of that does not hold.
    fn fill_native_fast(&mut self, series: &Series, instance: usize, frame: u32) -> bool {
        let inst = &series.instances[instance];
        let (Some(info), crate::source::Source::File { path }) = (&inst.image, &inst.source) else {
            return false;
        };
        let explicit = match inst.transfer_syntax.trim_end_matches('\0') {
            "1.2.840.10008.1.2.1" => true,
            "1.2.840.10008.1.2" => false,
            _ => return false,
        };
        if frame != 0
            || info.frames != 1
            || info.samples_per_pixel != 1
            || !cfg!(target_endian = "little")
        {
            return false;
        }
        let signed = info.pixel_representation == 1;
        let bits = u32::from(info.bits_stored);
        let target: &mut [u8] = match (self, info.bits_allocated, signed) {
            (Slice::U16(v), 16, false) => match v.as_slice_mut() {
                Some(s) => bytemuck::cast_slice_mut(s),
                None => return false,
            },
            (Slice::I16(v), 16, true) => match v.as_slice_mut() {
                Some(s) => bytemuck::cast_slice_mut(s),
                None => return false,
            },
            (Slice::U8(v), 8, false) => match v.as_slice_mut() {
                Some(s) => s,
                None => return false,
            },
            _ => return false,
        };
        if !read_trailing_pixel_data(path, target, explicit) {
            return false;
        }
        // Keep only the stored bits (sign-extended for signed data), as the decoder does.
        if bits < u32::from(info.bits_allocated) {
            match info.bits_allocated {
                16 => {
                    let words: &mut [u16] = bytemuck::cast_slice_mut(target);
                    for w in words {
                        *w = if signed {
                            crate::decode::sign_extend(u32::from(*w), bits) as u16
                        } else {
                            (u32::from(*w) & crate::decode::mask(bits)) as u16
                        };
                    }
                }
                _ => {
                    let mask = crate::decode::mask(bits) as u8;
                    target.iter_mut().for_each(|b| *b &= mask);
                }
            }
        }
        true
    }

    fn copy_from(self, pixels: &Pixels, index: usize) -> Result<(), LoadError> {
        macro_rules! copy {
            ($view:expr, $v:expr) => {{
                let mut view = $view;
                for (dst, src) in view.iter_mut().zip($v.iter()) {
                    *dst = *src;
                }
                Ok(())
            }};
        }
        match (self, pixels) {
            (Slice::U8(view), Pixels::U8(v)) => copy!(view, v),
            (Slice::I8(view), Pixels::I8(v)) => copy!(view, v),
            (Slice::U16(view), Pixels::U16(v)) => copy!(view, v),
            (Slice::I16(view), Pixels::I16(v)) => copy!(view, v),
            (Slice::U32(view), Pixels::U32(v)) => copy!(view, v),
            (Slice::I32(view), Pixels::I32(v)) => copy!(view, v),
            _ => Err(LoadError::Mixed(format!(
                "slice {} has a different pixel type from the first slice",
                index + 1
            ))),
        }
    }
}

/// Reads the last `target.len()` bytes of `path` into `target` if they are the value of a
/// Pixel Data element of exactly that length (explicit VR OB/OW, or implicit VR).
fn read_trailing_pixel_data(path: &std::path::Path, target: &mut [u8], explicit: bool) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let header_len: u64 = if explicit { 12 } else { 8 };
    let n = target.len() as u64;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    if len < n + header_len || file.seek(SeekFrom::Start(len - n - header_len)).is_err() {
        return false;
    }
    let mut header = [0u8; 12];
    let header = &mut header[..header_len as usize];
    if file.read_exact(header).is_err() {
        return false;
    }
    let tag_ok = header[..4] == [0xE0, 0x7F, 0x10, 0x00];
    let length_ok = if explicit {
        (&header[4..6] == b"OW" || &header[4..6] == b"OB")
            && header[6..8] == [0, 0]
            && u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as u64 == n
    } else {
        u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as u64 == n
    };
    tag_ok && length_ok && file.read_exact(target).is_ok()
}

/// Why a stack could not be loaded as one volume.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Dicom(#[from] DicomError),
    #[error("the stack has no frames")]
    Empty,
    #[error("colour images are shown frame by frame, not loaded as a volume")]
    Colour,
    #[error("the stack mixes image formats: {0}")]
    Mixed(String),
    #[error("loading was cancelled")]
    Cancelled,
}
