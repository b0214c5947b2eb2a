//! Opening a study and showing its images: the use cases behind `dokuei info`, `dokuei render`
//! and (later) the viewer.

use std::path::{Path, PathBuf};

use dokuei_dicom::render::{Rendered, Voi, auto_window, render_voi};
use dokuei_dicom::stack::{Stack, stacks};
use dokuei_dicom::voi::{CT_PRESETS, Window};
use dokuei_dicom::{Series, StudyIndex};

use crate::{AppError, ErrorCode};

/// Scans the given folders, files, DICOMDIRs and zip archives. Unreadable files are listed in
/// the index's problems; only finding nothing at all is an error.
pub fn open_study(paths: &[PathBuf]) -> Result<StudyIndex, AppError> {
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        return Err(AppError::new(
            ErrorCode::StudyNotFound,
            format!("`{}` does not exist", missing.display()),
        ));
    }
    let index = dokuei_dicom::index(paths);
    if index.patients.is_empty() && index.problems.is_empty() {
        return Err(AppError::new(
            ErrorCode::StudyNotFound,
            format!(
                "no DICOM files found in {} ({} file(s) looked at)",
                paths
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", "),
                index.files_scanned
            ),
        ));
    }
    Ok(index)
}

/// Every series of the index in reading-list order (patient, study, series number): the
/// order `--series N` counts in.
pub fn series_list(index: &StudyIndex) -> Vec<&Series> {
    index.series().collect()
}

/// Series `n` (1-based) in [`series_list`] order, as `--series N` counts.
pub fn series_by_number(index: &StudyIndex, n: usize) -> Result<&Series, AppError> {
    let list = series_list(index);
    n.checked_sub(1)
        .and_then(|i| list.get(i).copied())
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!("there are {} series; series {n} does not exist", list.len()),
            )
        })
}

/// Stack `stack` (0-based) of a series.
pub fn stack_of(series: &Series, stack: usize) -> Result<Stack, AppError> {
    let mut all = stacks(series);
    let count = all.len();
    if stack >= count {
        return Err(AppError::new(
            ErrorCode::NotFound,
            format!(
                "the series has {count} stack(s); stack {} does not exist",
                stack + 1
            ),
        ));
    }
    Ok(all.swap_remove(stack))
}

/// Which window to render with.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowChoice {
    /// The first window the file gives; an automatic one when it gives none.
    FromFile,
    /// From the histogram of the slice.
    Auto,
    /// A named preset (case-insensitive), e.g. "lung".
    Preset(String),
    Explicit(Window),
}

impl WindowChoice {
    /// Parses `file`, `auto`, a preset name, or `CENTER,WIDTH`.
    pub fn parse(text: &str) -> Result<Self, AppError> {
        match text.to_ascii_lowercase().as_str() {
            "file" => return Ok(WindowChoice::FromFile),
            "auto" => return Ok(WindowChoice::Auto),
            _ => {}
        }
        if let Some((c, w)) = text.split_once(',') {
            let parse = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            return match (parse(c), parse(w)) {
                (Some(c), Some(w)) if w > 0.0 => Ok(WindowChoice::Explicit(Window::linear(c, w))),
                _ => Err(AppError::new(
                    ErrorCode::InvalidArgument,
                    format!("`{text}` is not a window: use CENTER,WIDTH with a positive width"),
                )),
            };
        }
        if CT_PRESETS.iter().any(|p| p.name.eq_ignore_ascii_case(text)) {
            return Ok(WindowChoice::Preset(text.to_owned()));
        }
        Err(AppError::new(
            ErrorCode::NotFound,
            format!(
                "no window preset `{text}`; presets: {}, or `file`, `auto`, `CENTER,WIDTH`",
                CT_PRESETS
                    .iter()
                    .map(|p| p.name.to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// What a render used: a window, or the file's VOI LUT.
#[derive(Debug, Clone, PartialEq)]
pub enum UsedVoi {
    Window(Window),
    Lut { explanation: String },
}

impl std::fmt::Display for UsedVoi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsedVoi::Window(w) => write!(f, "window centre {} width {}", w.center, w.width),
            UsedVoi::Lut { explanation } if explanation.is_empty() => {
                write!(f, "the file's VOI LUT")
            }
            UsedVoi::Lut { explanation } => write!(f, "the file's VOI LUT \"{explanation}\""),
        }
    }
}

/// Renders slice `slice` (0-based) of stack `stack` of `series` to 8-bit. `FromFile` uses the
/// file's first window, else its VOI LUT, else an automatic window.
pub fn render_slice(
    series: &Series,
    stack: usize,
    slice: usize,
    window: &WindowChoice,
) -> Result<(Rendered, UsedVoi), AppError> {
    let st = stack_of(series, stack)?;
    let f = st.frames.get(slice).ok_or_else(|| {
        AppError::new(
            ErrorCode::NotFound,
            format!(
                "the stack has {} slice(s); slice {} does not exist",
                st.frames.len(),
                slice + 1
            ),
        )
    })?;
    let frame = dokuei_dicom::volume::decode(series, f.instance, f.frame)?;
    let w = match window {
        WindowChoice::Explicit(w) => *w,
        WindowChoice::Preset(name) => CT_PRESETS
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.window)
            .ok_or_else(|| {
                AppError::new(ErrorCode::NotFound, format!("no window preset `{name}`"))
            })?,
        WindowChoice::FromFile => match (f.windows.first(), &f.voi_lut) {
            (Some(w), _) => *w,
            (None, Some(lut)) => {
                let image = render_voi(&frame, f.rescale, Voi::Lut(lut));
                let explanation = lut.explanation.clone();
                return Ok((image, UsedVoi::Lut { explanation }));
            }
            (None, None) => auto_window(&frame, f.rescale),
        },
        WindowChoice::Auto => auto_window(&frame, f.rescale),
    };
    Ok((
        render_voi(&frame, f.rescale, Voi::Window(w)),
        UsedVoi::Window(w),
    ))
}

/// Renders a slice and writes it as PNG.
pub fn export_png(
    series: &Series,
    stack: usize,
    slice: usize,
    window: &WindowChoice,
    out: &Path,
) -> Result<UsedVoi, AppError> {
    let (image, w) = render_slice(series, stack, slice, window)?;
    image
        .write_png(out)
        .map_err(|e| AppError::new(ErrorCode::WriteFailed, e))?;
    Ok(w)
}
