//! Dokuei's study engine: reading DICOM studies and turning stored pixel values into what a
//! radiologist sees. It knows nothing of models, the ledger or the GUI.
//!
//! So far it holds the VOI (window/level) transform and the window presets; the study index
//! and series decoding arrive with the study-engine work.

pub mod geometry;
pub mod voi;

pub use voi::{CT_PRESETS, VoiFunction, Window, WindowPreset};
