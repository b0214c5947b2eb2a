//! Dokuei's study engine: reading DICOM studies and turning stored pixel values into what a
//! radiologist sees. It knows nothing of models, the ledger or the GUI.
//!
//! - [`index()`] scans folders, files, DICOMDIRs and zip archives (headers only) into
//!   Patient → Study → Series → Instance, listing unreadable files with a reason;
//! - [`stack`] sorts a series into displayable stacks by position along the slice normal;
//! - [`decode`] turns a frame into stored values; [`volume`] loads a stack in parallel;
//! - [`voi`] and [`render`] map stored values to display values.

pub mod decode;
pub mod dicomdir;
mod error;
pub mod geometry;
pub mod index;
mod jpeg12;
mod lengths;
pub mod mpr;
pub mod render;
mod rle;
pub mod source;
pub mod stack;
pub mod synth;
pub mod testdata;
pub mod voi;
pub mod volume;

pub use decode::{Frame, Photometric, Pixels, decode_frame};
pub use error::DicomError;
pub use index::{
    FileProblem, ImageInfo, Instance, Patient, Rescale, Series, Severity, Study, StudyIndex, index,
};
pub use source::Source;
pub use voi::{CT_PRESETS, VoiFunction, Window, WindowPreset};
