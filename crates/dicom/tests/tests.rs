//! Integration tests of dokuei-dicom, in one test binary. Each module covers one area; add new
//! areas as modules here:
//!
//! - `pydicom_reference`: decoded stored values against pydicom on real files;
//! - `geometry`: sorting, splitting and gap detection on synthetic series.

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod geometry;
mod pydicom_reference;
