//! The reading workflow: readers, the models on offer, recording an analysis and its findings,
//! a decision on every finding, sign-off, and commit-then-reveal. The rules (what may be done
//! when) live here, so the desktop app, the CLI and the tests share them; every action is
//! written to the ledger when it happens. One module per use case.

mod analyses;
mod decisions;
mod geometry;
mod key_images;
mod models;
mod readers;
mod review;
mod sign_off;
mod signing;

pub use analyses::*;
pub use decisions::*;
pub use geometry::*;
pub use key_images::*;
pub use models::*;
pub use readers::*;
pub use review::*;
pub use sign_off::*;
pub use signing::*;
