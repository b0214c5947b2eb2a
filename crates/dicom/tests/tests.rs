//! Integration tests of dokuei-dicom, in one test binary. Each module covers one area; add new
//! areas as modules here:
//!
//! - `colour_volumes`: colour multi-frame files loaded as RGB volumes;
//! - `pydicom_reference`: decoded stored values against pydicom on real files;
//! - `geometry`: sorting, splitting and gap detection on synthetic series;
//! - `grouping`: series grouped into stacks as dcm2niix and GDCM group them;
//! - `mpr`: planes reformatted through a loaded volume, with slabs;
//! - `dcmtk_render`: 8-bit rendering against DCMTK's dcmj2pnm;
//! - `bad_input`: truncated, empty, garbage and absurd files, and zip archives;
//! - `tolerance`: deviations pydicom and DCMTK read through open here too, with a warning.

// (What the fuzzer found is replayed by `fuzz_replay.rs`, a binary of its own: it installs a
// capped allocator.)

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod colour_volumes;
mod dcmtk_render;
mod geometry;
mod grouping;
mod mpr;
mod pydicom_reference;
mod tolerance;
