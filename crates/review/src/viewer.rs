//! The viewer's use cases: a study opened for reading, its browser tree, each stack's geometry
//! and display defaults, and slices as raw stored values for the webview (window/level is
//! applied on the GPU there, so the bytes cross once whatever the window).

use std::path::PathBuf;

use dokuei_dicom::render::auto_window;
use dokuei_dicom::stack::{Stack, stacks};
use dokuei_dicom::voi::CT_PRESETS;
use dokuei_dicom::{Series, StudyIndex};
use serde::Serialize;

use crate::study::{open_study, series_list};
use crate::{AppError, ErrorCode};

/// A study opened for reading: its index and every series' stacks, in reading-list order.
#[derive(Debug, Clone)]
pub struct OpenStudy {
    pub paths: Vec<PathBuf>,
    pub index: StudyIndex,
    stacks: Vec<Vec<Stack>>,
}

impl OpenStudy {
    /// Opens the folders, files, DICOMDIRs or zip archives in `paths` (headers only).
    pub fn open(paths: &[PathBuf]) -> Result<OpenStudy, AppError> {
        let index = open_study(paths)?;
        let stacks = series_list(&index).into_iter().map(stacks).collect();
        Ok(OpenStudy {
            paths: paths.to_vec(),
            index,
            stacks,
        })
    }

    pub fn series(&self, key: u32) -> Result<&Series, AppError> {
        series_list(&self.index)
            .get(key as usize)
            .copied()
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no series {key}")))
    }

    pub fn stack(&self, series: u32, stack: u32) -> Result<&Stack, AppError> {
        self.stacks
            .get(series as usize)
            .and_then(|s| s.get(stack as usize))
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::NotFound,
                    format!("no stack {stack} in series {series}"),
                )
            })
    }
}

/// The study browser: patients, studies, series and their stacks, and the files that could
/// not be read.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct StudyTree {
    pub studies: Vec<StudyNode>,
    pub problems: Vec<FileProblemView>,
    pub files_scanned: u32,
    pub skipped: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct StudyNode {
    pub patient_name: String,
    pub patient_id: String,
    /// Study Instance UID (the PACS screen does not offer an open study as its own prior).
    pub uid: String,
    pub date: String,
    pub description: String,
    pub accession_number: String,
    pub series: Vec<SeriesNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct SeriesNode {
    /// The series' key for the other commands (its place in reading-list order).
    pub key: u32,
    /// Series Instance UID (findings name the series they were found on).
    pub uid: String,
    pub number: Option<i32>,
    pub modality: String,
    pub description: String,
    pub images: u32,
    pub stacks: Vec<StackNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct StackNode {
    pub index: u32,
    pub label: String,
    pub rows: u32,
    pub columns: u32,
    pub slices: u32,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct FileProblemView {
    pub file: String,
    pub kind: String,
    pub reason: String,
    /// False for a file that was read despite what `reason` says (a warning), true for a file
    /// (or a duplicate copy) that is not shown.
    pub refused: bool,
}

/// The browser tree of an opened study.
pub fn study_tree(study: &OpenStudy) -> StudyTree {
    let mut key = 0u32;
    let mut studies = Vec::new();
    for p in &study.index.patients {
        for s in &p.studies {
            let mut series = Vec::new();
            for se in &s.series {
                let stacks = study.stacks.get(key as usize).map_or(&[][..], |v| v);
                series.push(SeriesNode {
                    key,
                    uid: se.uid.clone(),
                    number: se.number,
                    modality: se.modality.clone(),
                    description: se.description.clone(),
                    images: se.frame_count(),
                    stacks: stacks
                        .iter()
                        .enumerate()
                        .map(|(i, st)| StackNode {
                            index: i as u32,
                            label: st.label.clone(),
                            rows: st.rows,
                            columns: st.columns,
                            slices: st.frames.len() as u32,
                            warnings: st.warnings(),
                        })
                        .collect(),
                });
                key += 1;
            }
            studies.push(StudyNode {
                patient_name: p.name.clone(),
                patient_id: p.id.clone(),
                uid: s.uid.clone(),
                date: s.date.clone(),
                description: s.description.clone(),
                accession_number: s.accession_number.clone(),
                series,
            });
        }
    }
    StudyTree {
        studies,
        problems: study
            .index
            .problems
            .iter()
            .map(|p| FileProblemView {
                file: p.file.clone(),
                kind: p.kind.clone(),
                reason: p.reason.clone(),
                refused: p.severity == dokuei_dicom::Severity::Refused,
            })
            .collect(),
        files_scanned: study.index.files_scanned,
        skipped: study.index.skipped,
    }
}

/// A named window.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct WindowPreset {
    pub name: String,
    pub center: f64,
    pub width: f64,
}

/// The letters at the four edges of the displayed image (where the patient's directions point).
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct EdgeMarkers {
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
}

/// How the viewer shows a stack: size, geometry, pixel format and display defaults.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct StackView {
    pub series: u32,
    pub stack: u32,
    pub rows: u32,
    pub columns: u32,
    pub slices: u32,
    /// Sample type of the bytes `slice_bytes` returns: modality values (HU for CT) as `u8`,
    /// `i16`, `u16` or `f32` (little-endian), the smallest that holds them exactly, or `rgb8`
    /// for colour (3 bytes per pixel, rendered).
    pub format: String,
    /// Between rows, between columns (mm).
    pub pixel_spacing: [f64; 2],
    /// True for projection radiographs: the spacing is at the detector.
    pub spacing_at_detector: bool,
    /// Whether a pixel spacing is known at all (else measurements are in pixels).
    pub spacing_known: bool,
    pub slice_spacing: Option<f64>,
    pub slice_thickness: Option<f64>,
    /// Per slice: Image Position (Patient), mm; made up along z (1 mm apart) when the images
    /// have no geometry (projection radiographs).
    pub positions: Vec<[f64; 3]>,
    /// Image Orientation (Patient): row direction, then column direction.
    pub orientation: [f64; 6],
    /// Per slice: position along the stack's normal (mm), when the geometry is known.
    pub locations: Vec<Option<f64>>,
    /// Whether low values are shown bright (MONOCHROME1).
    pub inverted: bool,
    pub modality: String,
    /// The window shown first: the file's, else one from the middle slice's histogram.
    pub window: WindowPreset,
    /// Named windows for this modality (CT presets on number keys).
    pub presets: Vec<WindowPreset>,
    pub markers: Option<EdgeMarkers>,
    pub plane: String,
    pub warnings: Vec<String>,
    /// Frame of Reference UID of the stack's first image (empty when it gives none): stacks
    /// that share one scroll together by patient position.
    pub frame_of_reference: String,
}

/// The smallest sample type that holds the stack's modality values exactly (see
/// [`StackView::format`]).
fn sample_format(series: &Series, stack: &Stack) -> Result<&'static str, AppError> {
    let first = stack
        .frames
        .first()
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "the stack has no images"))?;
    let image = series.instances[first.instance]
        .image
        .as_ref()
        .ok_or_else(|| AppError::new(ErrorCode::DicomUnreadable, "the stack has no pixel data"))?;
    if image.samples_per_pixel > 1 || image.photometric.starts_with("PALETTE") {
        return Ok("rgb8");
    }
    let bits = u32::from(image.bits_stored.clamp(1, 32));
    let (lo, hi) = if image.pixel_representation == 1 {
        (
            -(2f64.powi(bits as i32 - 1)),
            2f64.powi(bits as i32 - 1) - 1.0,
        )
    } else {
        (0.0, 2f64.powi(bits as i32) - 1.0)
    };
    let integral = |v: f64| (v - v.round()).abs() < 1e-9;
    let mut range = (f64::INFINITY, f64::NEG_INFINITY);
    for f in &stack.frames {
        let r = f.rescale;
        if !integral(r.slope) || !integral(r.intercept) {
            return Ok("f32");
        }
        for v in [r.apply(lo), r.apply(hi)] {
            range = (range.0.min(v), range.1.max(v));
        }
    }
    Ok(match range {
        (a, b) if a >= 0.0 && b <= 255.0 => "u8",
        (a, b) if a >= -32768.0 && b <= 32767.0 => "i16",
        (a, b) if a >= 0.0 && b <= 65535.0 => "u16",
        _ => "f32",
    })
}

/// The view of stack `stack` of series `series`.
pub fn stack_view(study: &OpenStudy, series: u32, stack: u32) -> Result<StackView, AppError> {
    let se = study.series(series)?;
    let st = study.stack(series, stack)?;
    let format = sample_format(se, st)?.to_owned();
    let first = &st.frames[0];
    let image = se.instances[first.instance].image.as_ref();
    let (pixel_spacing, spacing_known, at_detector) = match (first.geometry, image) {
        (Some(g), _) => (g.pixel_spacing, true, false),
        (None, Some(im)) if im.pixel_spacing.is_some() => (
            im.pixel_spacing.unwrap_or([1.0, 1.0]),
            true,
            im.spacing_at_detector,
        ),
        _ => ([1.0, 1.0], false, false),
    };
    let markers = match (
        st.orientation,
        image.and_then(|i| i.patient_orientation.clone()),
    ) {
        (Some(o), _) => {
            let labels = o.edge_labels();
            Some(EdgeMarkers {
                left: labels.left,
                right: labels.right,
                top: labels.top,
                bottom: labels.bottom,
            })
        }
        // Projection images: Patient Orientation gives the row and column directions.
        (None, Some([row, column])) => Some(EdgeMarkers {
            left: opposite(&row),
            right: row,
            top: opposite(&column),
            bottom: column,
        }),
        _ => None,
    };
    let middle = &st.frames[st.frames.len() / 2];
    let window = match middle.windows.first() {
        Some(w) => WindowPreset {
            name: "file".into(),
            center: w.center,
            width: w.width,
        },
        None => {
            let frame = dokuei_dicom::volume::decode(se, middle.instance, middle.frame)?;
            let w = auto_window(&frame, middle.rescale);
            WindowPreset {
                name: "auto".into(),
                center: w.center,
                width: w.width,
            }
        }
    };
    let presets = if se.modality.eq_ignore_ascii_case("CT") {
        CT_PRESETS
            .iter()
            .map(|p| WindowPreset {
                name: p.name.to_owned(),
                center: p.window.center,
                width: p.window.width,
            })
            .collect()
    } else {
        Vec::new()
    };
    let spacing = st.spacing.spacing.abs();
    Ok(StackView {
        series,
        stack,
        rows: st.rows,
        columns: st.columns,
        slices: st.frames.len() as u32,
        format,
        pixel_spacing,
        spacing_at_detector: at_detector,
        spacing_known,
        slice_spacing: (spacing > 0.0 && st.frames.len() > 1).then_some(spacing),
        slice_thickness: st.slice_thickness,
        positions: st
            .frames
            .iter()
            .enumerate()
            .map(|(i, f)| f.geometry.map_or([0.0, 0.0, i as f64], |g| g.position))
            .collect(),
        orientation: st.orientation.map_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], |o| {
            [
                o.row[0],
                o.row[1],
                o.row[2],
                o.column[0],
                o.column[1],
                o.column[2],
            ]
        }),
        locations: st.frames.iter().map(|f| f.location).collect(),
        inverted: image.is_some_and(|i| i.photometric == "MONOCHROME1"),
        modality: se.modality.clone(),
        window,
        presets,
        markers,
        plane: st
            .plane
            .map(|p| format!("{p:?}").to_ascii_lowercase())
            .unwrap_or_default(),
        warnings: st.warnings(),
        frame_of_reference: image
            .map(|i| i.frame_of_reference.clone())
            .unwrap_or_default(),
    })
}

/// The patient direction opposite a DICOM direction string (`L` ↔ `R`, `A` ↔ `P`, `H` ↔ `F`;
/// each letter of an oblique one).
fn opposite(direction: &str) -> String {
    direction
        .chars()
        .map(|c| match c {
            'L' => 'R',
            'R' => 'L',
            'A' => 'P',
            'P' => 'A',
            'H' => 'F',
            'F' => 'H',
            other => other,
        })
        .collect()
}

/// Slice `slice` of a stack as the bytes the webview uploads: modality values, little-endian,
/// in [`StackView::format`] (colour images rendered to RGB).
pub fn slice_bytes(
    study: &OpenStudy,
    series: u32,
    stack: u32,
    slice: u32,
) -> Result<Vec<u8>, AppError> {
    use dokuei_dicom::decode::Pixels;
    let se = study.series(series)?;
    let st = study.stack(series, stack)?;
    let f = st.frames.get(slice as usize).ok_or_else(|| {
        AppError::new(
            ErrorCode::NotFound,
            format!(
                "the stack has {} slice(s); slice {} does not exist",
                st.frames.len(),
                slice + 1
            ),
        )
    })?;
    let format = sample_format(se, st)?;
    let frame = dokuei_dicom::volume::decode(se, f.instance, f.frame)?;
    if format == "rgb8" {
        // Colour and palette images: rendered once to RGB (no window applies).
        let image = dokuei_dicom::render::render(
            &frame,
            f.rescale,
            dokuei_dicom::voi::Window::linear(127.5, 256.0),
        );
        return Ok(if image.channels == 3 {
            image.data
        } else {
            image.data.iter().flat_map(|&v| [v, v, v]).collect()
        });
    }
    let stored: Box<dyn Iterator<Item = i64>> = match &frame.pixels {
        Pixels::U8(v) => Box::new(v.iter().map(|&x| i64::from(x))),
        Pixels::I8(v) => Box::new(v.iter().map(|&x| i64::from(x))),
        Pixels::U16(v) => Box::new(v.iter().map(|&x| i64::from(x))),
        Pixels::I16(v) => Box::new(v.iter().map(|&x| i64::from(x))),
        Pixels::U32(v) => Box::new(v.iter().map(|&x| i64::from(x))),
        Pixels::I32(v) => Box::new(v.iter().map(|&x| i64::from(x))),
        Pixels::Rgb8(_) | Pixels::Rgb16(_) | Pixels::Rgb32(_) => {
            return Err(AppError::new(
                ErrorCode::DecodeFailed,
                "a colour frame in a greyscale stack",
            ));
        }
    };
    Ok(encode(stored, frame.pixels.len(), f.rescale, format))
}

/// Stored values → modality values in `format` (see [`StackView::format`]), little-endian.
/// Integer formats come with integer slope and intercept (see `sample_format`), so they are
/// computed exactly in i64; `f32` goes through the modality LUT in f64.
fn encode(
    stored: impl Iterator<Item = i64>,
    len: usize,
    r: dokuei_dicom::index::Rescale,
    format: &str,
) -> Vec<u8> {
    let (slope, intercept) = (r.slope.round() as i64, r.intercept.round() as i64);
    let modality = |v: i64| v * slope + intercept;
    match format {
        "u8" => stored.map(|v| modality(v) as u8).collect(),
        "i16" => {
            let mut out = Vec::with_capacity(len * 2);
            for v in stored {
                out.extend_from_slice(&(modality(v) as i16).to_le_bytes());
            }
            out
        }
        "u16" => {
            let mut out = Vec::with_capacity(len * 2);
            for v in stored {
                out.extend_from_slice(&(modality(v) as u16).to_le_bytes());
            }
            out
        }
        _ => {
            let mut out = Vec::with_capacity(len * 4);
            for v in stored {
                out.extend_from_slice(&(r.apply(v as f64) as f32).to_le_bytes());
            }
            out
        }
    }
}

/// A thumbnail of a series (its first stack's middle slice at the file's window), PNG, at most
/// `max` pixels on its longer side.
pub fn thumbnail_png(study: &OpenStudy, series: u32, max: u32) -> Result<Vec<u8>, AppError> {
    let se = study.series(series)?;
    let st = study.stack(series, 0)?;
    let (image, _) = crate::study::render_slice(
        se,
        0,
        st.frames.len() / 2,
        &crate::study::WindowChoice::FromFile,
    )?;
    image
        .downscaled(max)
        .png_bytes()
        .map_err(|e| AppError::new(ErrorCode::WriteFailed, e))
}

/// A stack held in memory for the viewer (and for analysis): its pixels and the sample format
/// slices are served in.
#[derive(Debug)]
pub struct LoadedStack {
    pub format: &'static str,
    pub pixels: LoadedPixels,
}

/// What a loaded stack holds: stored values of a greyscale stack, or a colour stack rendered to
/// RGB once (no window applies to colour).
#[derive(Debug)]
pub enum LoadedPixels {
    Values(dokuei_dicom::volume::Volume),
    Rgb(dokuei_dicom::volume::RgbVolume),
}

/// Loads a stack into memory, in parallel: greyscale stacks in their stored type, colour stacks
/// (cine loops, colour captures, palettes) as RGB, each file opened once.
pub fn load_stack(
    study: &OpenStudy,
    series: u32,
    stack: u32,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<LoadedStack, AppError> {
    let se = study.series(series)?;
    let st = study.stack(series, stack)?;
    let format = sample_format(se, st)?;
    let failed = |e: dokuei_dicom::volume::LoadError| {
        AppError::new(
            ErrorCode::DecodeFailed,
            format!("cannot load series {}: {e}", series + 1),
        )
    };
    let pixels = if format == "rgb8" {
        LoadedPixels::Rgb(
            dokuei_dicom::volume::load_rgb_volume(se, st, &|_, _| {}, cancel).map_err(failed)?,
        )
    } else {
        LoadedPixels::Values(
            dokuei_dicom::volume::load_volume(se, st, &|_, _| {}, cancel).map_err(failed)?,
        )
    };
    Ok(LoadedStack { format, pixels })
}

/// Slice `slice` of a loaded stack, as [`slice_bytes`] would serve it.
pub fn loaded_slice_bytes(loaded: &LoadedStack, slice: u32) -> Result<Vec<u8>, AppError> {
    use dokuei_dicom::volume::VolumeData;
    let s = slice as usize;
    let slices = match &loaded.pixels {
        LoadedPixels::Values(v) => v.rescale.len(),
        LoadedPixels::Rgb(v) => v.data.dim().0,
    };
    let missing = || {
        AppError::new(
            ErrorCode::NotFound,
            format!(
                "the stack has {slices} slice(s); slice {} does not exist",
                s + 1
            ),
        )
    };
    let volume = match &loaded.pixels {
        LoadedPixels::Rgb(v) if s < slices => {
            return Ok(v
                .data
                .index_axis(ndarray::Axis(0), s)
                .iter()
                .copied()
                .collect());
        }
        LoadedPixels::Rgb(_) => return Err(missing()),
        LoadedPixels::Values(v) => v,
    };
    let r = *volume.rescale.get(s).ok_or_else(missing)?;
    macro_rules! serve {
        ($a:expr) => {{
            let view = $a.index_axis(ndarray::Axis(0), s);
            encode(
                view.iter().map(|&v| i64::from(v)),
                view.len(),
                r,
                loaded.format,
            )
        }};
    }
    Ok(match &volume.data {
        VolumeData::U8(a) => serve!(a),
        VolumeData::I8(a) => serve!(a),
        VolumeData::U16(a) => serve!(a),
        VolumeData::I16(a) => serve!(a),
        VolumeData::U32(a) => serve!(a),
        VolumeData::I32(a) => serve!(a),
    })
}

/// Where the shell leaves slices for the page's web-process extension (`src-tauri/webext`).
pub const SHARED_MEMORY_DIR: &str = "/dev/shm";

/// How many slices one shared-memory request may ask for.
pub const SHARED_MEMORY_MAX_SLICES: u32 = 256;

/// How many bytes one shared-memory file may hold (a piece of larger slices is refused; one
/// slice is always served). The viewer asks for 16 MiB pieces.
pub const SHARED_MEMORY_MAX_BYTES: usize = 64 << 20;

/// The shared-memory transport (`src-tauri/webext`): writes slices `slices` of a stack, each as
/// the `slice/` resource serves it (`bytes(k)`), one after another into a new file
/// `dokuei-{pid}-{n}-{random}` (0600) in `dir` (`SHARED_MEMORY_DIR` in the app) and returns
/// its name. The page maps it with `dokueiShm(name)`, which unlinks it; a file nobody took is
/// removed by `sweep_shared_memory` (after a while, at exit, or at the next start once its
/// process ended).
pub fn slices_to_shared_memory(
    dir: &std::path::Path,
    slices: std::ops::Range<u32>,
    mut bytes: impl FnMut(u32) -> Result<Vec<u8>, AppError>,
) -> Result<String, AppError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if slices.is_empty() || slices.len() > SHARED_MEMORY_MAX_SLICES as usize {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            format!(
                "asked for {} slice(s) at once; between 1 and {SHARED_MEMORY_MAX_SLICES} are served",
                slices.len()
            ),
        ));
    }
    // A random part, so that no other local user can take the name first (create_new would
    // then fail, and the page would fall back to one fetch per slice).
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!("no random numbers for a shared-memory name: {e}"),
        )
    })?;
    let name = format!(
        "dokuei-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        u64::from_le_bytes(random)
    );
    let path = dir.join(&name);
    let failed = |e: std::io::Error| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!("cannot write shared memory {}: {e}", path.display()),
        )
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(failed)?;
    // A full /dev/shm, a slice that cannot be decoded, a piece too large or a panic in a
    // decoder leaves no file behind (the guard is dropped after the writer).
    struct Unfinished<'a>(Option<&'a std::path::Path>);
    impl Drop for Unfinished<'_> {
        fn drop(&mut self) {
            if let Some(path) = self.0 {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let mut unfinished = Unfinished(Some(&path));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut total = 0usize;
    let written = slices.into_iter().try_for_each(|k| {
        let slice = bytes(k)?;
        total += slice.len();
        if total > SHARED_MEMORY_MAX_BYTES && total > slice.len() {
            return Err(AppError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "asked for more than {} MiB at once; ask for fewer slices",
                    SHARED_MEMORY_MAX_BYTES >> 20
                ),
            ));
        }
        out.write_all(&slice).map_err(failed)
    });
    written.and_then(|()| out.flush().map_err(failed))?;
    unfinished.0 = None;
    Ok(name)
}

/// Removes the shared-memory files (`dokuei-{pid}-…` in `dir`, this user's) that no page
/// took: those of processes that have ended, and this process's own that were last written
/// at least `own_after` ago (`None`: none of them; zero at exit). A page takes its file within
/// moments of asking for it; one it never takes (a page reloaded mid-load, a web process with
/// another /dev/shm) would otherwise hold memory until the app ends. Returns how many it
/// removed.
pub fn sweep_shared_memory(dir: &std::path::Path, own_after: Option<std::time::Duration>) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = std::fs::metadata("/proc/self") else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("dokuei-"))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let ours = pid == std::process::id();
        let ended = !ours && !std::path::Path::new(&format!("/proc/{pid}")).exists();
        let stale = ours
            && own_after.is_some_and(|after| {
                meta.modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age >= after)
            });
        let mine = meta.is_file() && meta.uid() == me.uid();
        if mine && (stale || ended) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A plane the MPR viewer asks for, from the last part of its URL: fifteen comma-separated
/// numbers, the plane's origin (3, the centre of its top-left pixel, LPS mm), row direction
/// (3), column direction (3), spacing between rows and between columns (2, mm), rows, columns,
/// the slab's thickness (mm, 0 for none) and how the slab combines (0 MIP, 1 MinIP, 2 average).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlaneRequest {
    pub plane: dokuei_dicom::mpr::PlaneSpec,
    pub slab_mm: f64,
    pub mode: dokuei_dicom::mpr::SlabMode,
}

/// The largest plane served (pixels on a side) and the thickest slab (mm).
const MAX_PLANE_SIDE: usize = 4096;
const MAX_SLAB_MM: f64 = 500.0;
/// The most samples along the normal per pixel of a slab, and in all for one plane.
const MAX_SLAB_SAMPLES: usize = 256;
const MAX_PLANE_SAMPLES: usize = 1 << 27;

pub fn parse_plane_request(spec: &str) -> Result<PlaneRequest, AppError> {
    use dokuei_dicom::mpr::{PlaneSpec, SlabMode};
    let bad = |why: &str| {
        AppError::new(
            ErrorCode::InvalidArgument,
            format!("not a plane the viewer can ask for ({why}): `{spec}`"),
        )
    };
    let v: Vec<f64> = spec
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("a value is not a number"))?;
    let [
        o0,
        o1,
        o2,
        r0,
        r1,
        r2,
        c0,
        c1,
        c2,
        s0,
        s1,
        rows,
        columns,
        slab,
        mode,
    ] = v[..]
    else {
        return Err(bad("it needs 15 numbers"));
    };
    if v.iter().any(|x| !x.is_finite()) {
        return Err(bad("a value is not finite"));
    }
    let unit = |a: [f64; 3]| {
        let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
        (n > 1e-6).then(|| a.map(|x| x / n))
    };
    let (Some(row), Some(column)) = (unit([r0, r1, r2]), unit([c0, c1, c2])) else {
        return Err(bad("a direction is zero"));
    };
    if (row[0] * column[0] + row[1] * column[1] + row[2] * column[2]).abs() > 1e-3 {
        return Err(bad("row and column are not perpendicular"));
    }
    let side =
        |x: f64| (x >= 1.0 && x <= MAX_PLANE_SIDE as f64 && x.fract() == 0.0).then_some(x as usize);
    let (Some(rows), Some(columns)) = (side(rows), side(columns)) else {
        return Err(bad("rows and columns must be whole numbers from 1 to 4096"));
    };
    if s0 <= 0.0 || s1 <= 0.0 || !(0.0..=MAX_SLAB_MM).contains(&slab) {
        return Err(bad("spacing must be positive and a slab at most 500 mm"));
    }
    let mode = match mode {
        0.0 => SlabMode::Mip,
        1.0 => SlabMode::MinIp,
        2.0 => SlabMode::Average,
        _ => return Err(bad("the slab mode is 0, 1 or 2")),
    };
    Ok(PlaneRequest {
        plane: PlaneSpec {
            origin: [o0, o1, o2],
            row,
            column,
            spacing: [s0, s1],
            rows,
            columns,
        },
        slab_mm: slab,
        mode,
    })
}

/// A plane through a loaded greyscale stack, as the bytes the webview uploads: modality values
/// in the stack's [`StackView::format`], sampled by trilinear interpolation (with the slab
/// along the plane's normal, every finest voxel step); pixels outside the volume take the
/// plane's lowest value.
pub fn plane_bytes(
    study: &OpenStudy,
    series: u32,
    stack: u32,
    loaded: &LoadedStack,
    request: &PlaneRequest,
) -> Result<Vec<u8>, AppError> {
    use dokuei_dicom::mpr::{VolumeGeometry, reformat};
    let st = study.stack(series, stack)?;
    let LoadedPixels::Values(volume) = &loaded.pixels else {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            format!(
                "series {} is in colour: MPR needs a greyscale volume",
                series + 1
            ),
        ));
    };
    let g = VolumeGeometry::of_stack(st).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidArgument,
            format!("series {} cannot be reformatted: {e}", series + 1),
        )
    })?;
    let values = reformat(volume, &g, &request.plane, slab_of(&g, request));
    Ok(encode_plane(&values, loaded.format))
}

/// A plane through a heatmap kept for display (`map`, on the grid of stack `stack` of series
/// `series`), as u8 like its slices: the probability × 255 sampled as `plane_bytes` samples
/// the image, so the two line up. Through a slab the map shows its highest value whatever the
/// image's slab mode: a finding inside the slab stays visible. Outside the volume it is 0.
pub fn map_plane_bytes(
    study: &OpenStudy,
    series: u32,
    stack: u32,
    map: &dokuei_infer::pipeline::LabelMap,
    request: &PlaneRequest,
) -> Result<Vec<u8>, AppError> {
    use dokuei_dicom::mpr::{Slab, SlabMode, VolumeGeometry, reformat_map};
    let st = study.stack(series, stack)?;
    let g = VolumeGeometry::of_stack(st).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidArgument,
            format!("series {} cannot be reformatted: {e}", series + 1),
        )
    })?;
    let slab = slab_of(&g, request).map(|s| Slab {
        mode: SlabMode::Mip,
        ..s
    });
    let wrong_grid = || {
        AppError::new(
            ErrorCode::InvalidArgument,
            format!(
                "the heatmap ({} × {} × {}) is not on the grid of series {} ({} × {} × {})",
                map.slices,
                map.rows,
                map.columns,
                series + 1,
                g.dims.0,
                g.dims.1,
                g.dims.2
            ),
        )
    };
    if (map.slices, map.rows, map.columns) != g.dims {
        return Err(wrong_grid());
    }
    let values = reformat_map(&map.values, &g, &request.plane, slab).ok_or_else(wrong_grid)?;
    Ok(values
        .iter()
        .map(|&v| {
            if v.is_nan() {
                0
            } else {
                v.round().clamp(0.0, 255.0) as u8
            }
        })
        .collect())
}

/// The slab a plane request asks for. It is sampled every finest voxel step, but never more
/// than MAX_SLAB_SAMPLES times nor beyond MAX_PLANE_SAMPLES samples for the whole plane (a
/// huge thin-pixel plane with a thick slab would otherwise keep the cores busy for minutes):
/// then the step widens.
fn slab_of(
    g: &dokuei_dicom::mpr::VolumeGeometry,
    request: &PlaneRequest,
) -> Option<dokuei_dicom::mpr::Slab> {
    let pixels = (request.plane.rows * request.plane.columns) as f64;
    let most = (MAX_PLANE_SAMPLES as f64 / pixels).clamp(1.0, MAX_SLAB_SAMPLES as f64);
    (request.slab_mm > 0.0).then(|| dokuei_dicom::mpr::Slab {
        thickness_mm: request.slab_mm,
        step_mm: g.finest_step().max(request.slab_mm / most),
        mode: request.mode,
    })
}

/// Reformatted modality values in `format` (rounded and clamped for the integer formats); NaN
/// (outside the volume) becomes the lowest value present, or 0 when there is none.
fn encode_plane(values: &[f32], format: &str) -> Vec<u8> {
    let floor = values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f32::INFINITY, f32::min);
    let floor = if floor.is_finite() { floor } else { 0.0 };
    let filled = values.iter().map(|&v| if v.is_nan() { floor } else { v });
    match format {
        "u8" => filled.map(|v| v.round().clamp(0.0, 255.0) as u8).collect(),
        "i16" => filled
            .flat_map(|v| (v.round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
            .collect(),
        "u16" => filled
            .flat_map(|v| (v.round().clamp(0.0, 65535.0) as u16).to_le_bytes())
            .collect(),
        _ => filled.flat_map(f32::to_le_bytes).collect(),
    }
}
