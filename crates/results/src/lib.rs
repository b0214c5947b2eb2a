//! AI results and physician assessments as standard DICOM, following IHE AI Results (AIR) and
//! AI Result Assessment (AIRA):
//!
//! - [`seg::write_seg`]: a Segmentation (BINARY) with one segment per finding;
//! - [`sr::write_measurement_report`]: a Comprehensive 3D SR, TID 1500, one measurement group per
//!   finding (volumetric, referencing its segment) plus a planar group (bounding box on the key
//!   slice) for viewers that draw only planar SR content;
//! - [`sr::write_assessment`]: the physician's TID 1500 at sign-off (VERIFIED), one group per AI
//!   finding with the verdict in Dokuei's private coding scheme ([`codes::PRIVATE_CODES`]);
//! - [`kos::write_key_objects`]: a Key Object Selection document (TID 2010) of the images a
//!   reader marked as key images, with their notes;
//! - [`read`]: SEG and TID 1500 SR from any tool, back into findings.
//!
//! The crate knows findings, decisions and the source series' attributes; it does not know the
//! ledger or the screen.

pub mod codes;
pub mod common;
mod ds;
pub mod kos;
pub mod model;
pub mod pmap;
pub mod read;
pub mod seg;
mod source;
pub mod sr;
pub mod uid;

pub use common::ResultsError;
/// An ISO 8601 UTC time (as the ledger writes) as DICOM DA, TM and DT.
pub use ds::from_iso as iso_to_dicom;
pub use model::*;
