//! Dokuei's inference engine: loads ONNX Runtime, chooses an execution provider, and (as it
//! grows) runs diagnostic-support models described by a manifest.
//!
//! This crate knows nothing of the ledger or the viewer.

pub mod cache;
pub mod findings;
pub mod manifest;
pub mod model;
pub mod patches;
pub mod pipeline;
pub mod preprocess;
pub mod runtime;

pub use runtime::{
    ExecutionProviderKind, LibrarySource, ORT_VERSION, OnnxRuntime, ProviderChoice, ProviderStatus,
    RuntimeError, SkippedProvider,
};
