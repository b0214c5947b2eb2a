//! Integration tests of dokuei-infer, in one test binary (a process loads ONNX Runtime once):
//!
//! - `onnx_runtime`: loading the library the set-up installs, provider choice;
//! - `contract`: a model described only by a manifest loads, runs, and is refused when it does
//!   not match its manifest;
//! - `pipeline`: a whole stack through a segmentation model.

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
mod onnx_runtime;
mod pipeline;
