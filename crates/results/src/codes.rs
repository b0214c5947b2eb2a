//! Coded concepts: the standard codes the writers use, and Dokuei's private coding scheme for
//! what the standard has no codes for yet (a physician's verdict on an AI result). The private
//! scheme is declared in every object that uses it (Coding Scheme Identification Sequence) and
//! defined in the one table below, so it can be replaced when IHE AIRA's codes are published.

use serde::{Deserialize, Serialize};

/// A coded concept: (value, coding scheme designator, meaning).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Code {
    pub value: String,
    pub scheme: String,
    pub meaning: String,
}

impl Code {
    pub fn new(value: &str, scheme: &str, meaning: &str) -> Code {
        Code {
            value: value.to_owned(),
            scheme: scheme.to_owned(),
            meaning: meaning.to_owned(),
        }
    }

    /// Same concept (value and scheme; meanings may be worded differently).
    pub fn same_concept(&self, other: &Code) -> bool {
        self.value == other.value && self.scheme == other.scheme
    }
}

pub(crate) fn dcm(value: &str, meaning: &str) -> Code {
    Code::new(value, "DCM", meaning)
}

pub(crate) fn sct(value: &str, meaning: &str) -> Code {
    Code::new(value, "SCT", meaning)
}

/// Segmented property category when a model's manifest gives none.
pub fn default_category() -> Code {
    sct("49755003", "Morphologically Abnormal Structure")
}

/// Segmented property type (and SR finding) when a model's manifest gives none.
pub fn default_type() -> Code {
    sct("52988006", "Lesion")
}

/// The designator of Dokuei's private coding scheme.
pub const PRIVATE_SCHEME: &str = "99DOKUEI";
/// Its UID (a `2.25.` UID fixed once for the scheme) and name, as declared in the Coding Scheme
/// Identification Sequence.
pub const PRIVATE_SCHEME_UID: &str = "2.25.302546195658349867231474307960346226771";
pub const PRIVATE_SCHEME_NAME: &str = "Dokuei AI result assessment codes";
pub const PRIVATE_SCHEME_VERSION: &str = "1";

/// Every private code Dokuei writes: (value, meaning). The one table to replace when standard
/// codes exist (IHE AIRA).
pub const PRIVATE_CODES: &[(&str, &str)] = &[
    ("AIRA-VERDICT", "AI result assessment"),
    ("AIRA-ACCEPTED", "AI result accepted"),
    ("AIRA-REJECTED", "AI result rejected"),
    ("AIRA-MODIFIED", "AI result modified"),
    ("AIRA-ADDED", "Finding added by reader"),
    ("AIRA-REASON", "Reason for rejection"),
    ("REJ-ANATOMY", "Normal anatomical structure"),
    ("REJ-ARTEFACT", "Imaging artefact"),
    ("REJ-BENIGN", "Benign or already known finding"),
    ("REJ-OUTSIDE", "Outside the model's intended use"),
    ("REJ-OTHER", "Other reason"),
    ("PROBABILITY", "AI model probability"),
];

/// A private code by value; panics only on a value missing from [`PRIVATE_CODES`], which the
/// tests cover.
pub(crate) fn private(value: &str) -> Code {
    let meaning = PRIVATE_CODES
        .iter()
        .find(|(v, _)| *v == value)
        .map_or(value, |(_, m)| m);
    Code::new(value, PRIVATE_SCHEME, meaning)
}

// Standard codes, by what they are used for.
pub(crate) fn segmentation_derivation() -> Code {
    dcm("113076", "Segmentation")
}
pub(crate) fn source_image_purpose() -> Code {
    dcm("121322", "Source image for image processing operation")
}
pub(crate) fn algorithm_family_ai() -> Code {
    dcm("123110", "Artificial Intelligence")
}
/// Contributing Equipment purpose (CID 7005): the equipment that processed the images.
pub(crate) fn processing_equipment() -> Code {
    dcm("109102", "Processing Equipment")
}
