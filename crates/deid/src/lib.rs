//! De-identification by DICOM PS3.15 Annex E: the rules of Table E.1-1 (the Basic Application
//! Level Confidentiality Profile and each of its options), generated from the standard's own
//! table by `scripts/generate_deid_table.py`; their application to data sets at every depth
//! ([`engine`]); the per-site key behind stable UIDs and date shifts ([`keys`]); patient
//! pseudonyms ([`pseudonyms`]); and the run over files and folders ([`run`]).

pub mod deface;
pub mod engine;
pub mod keys;
pub mod pixels;
pub mod pseudonyms;
pub mod reid;
pub mod run;
mod table;

pub use engine::{
    Deidentified, Deidentifier, Patient, Policy, SafePrivate, Summary, burned_in_risk,
};
pub use keys::SiteKey;
pub use pixels::RegionTable;
pub use pseudonyms::Pseudonyms;
pub use table::{ATTRIBUTES, EDITION};

use std::path::PathBuf;

/// Why a file, a key or a setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeidError {
    /// The file is not exported, and why (pixels that may show text).
    #[error("refused: {0}")]
    Refused(String),
    #[error("the options cannot be used: {0}")]
    Policy(String),
    #[error("the data set cannot be de-identified: {0}")]
    Invalid(String),
    #[error("the site key {path} cannot be used: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the pseudonym store {path} cannot be used: {reason}")]
    Store { path: PathBuf, reason: String },
}

/// An action code of Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Replace with a non-zero-length dummy value consistent with the VR.
    D,
    /// Replace with a zero-length value, or a dummy value consistent with the VR.
    Z,
    /// Remove.
    X,
    /// Keep (unchanged for non-sequences; sequences cleaned).
    K,
    /// Clean: replace with values of similar meaning known not to identify the patient.
    C,
    /// Replace UIDs with consistently mapped non-zero-length UIDs.
    U,
    /// X unless D is required to keep the data set conformant (Type 1).
    XD,
    /// X unless Z is required (Type 2).
    XZ,
    /// X unless Z or D is required (Type 2 or Type 1).
    XZD,
    /// Z unless D is required (Type 1).
    ZD,
    /// X unless Z or U* (replacement of any UIDs in a sequence) is required.
    XZUStar,
}

/// The options of the profile, in Table E.1-1's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileOption {
    RetainSafePrivate,
    RetainUids,
    RetainDeviceIdentity,
    RetainInstitutionIdentity,
    RetainPatientCharacteristics,
    RetainLongitudinalFullDates,
    RetainLongitudinalModifiedDates,
    CleanDescriptors,
    CleanStructuredContent,
    CleanGraphics,
}

impl ProfileOption {
    pub const ALL: [ProfileOption; 10] = [
        ProfileOption::RetainSafePrivate,
        ProfileOption::RetainUids,
        ProfileOption::RetainDeviceIdentity,
        ProfileOption::RetainInstitutionIdentity,
        ProfileOption::RetainPatientCharacteristics,
        ProfileOption::RetainLongitudinalFullDates,
        ProfileOption::RetainLongitudinalModifiedDates,
        ProfileOption::CleanDescriptors,
        ProfileOption::CleanStructuredContent,
        ProfileOption::CleanGraphics,
    ];

    fn column(self) -> usize {
        self as usize
    }
}

/// A tag, or a family of tags (`(50xx,xxxx)`, private groups), that a row applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagPattern {
    group: u16,
    group_mask: u16,
    element: u16,
    element_mask: u16,
    /// `(gggg,eeee) where gggg is odd`.
    private: bool,
}

impl TagPattern {
    pub const PRIVATE: TagPattern = TagPattern {
        group: 0,
        group_mask: 0,
        element: 0,
        element_mask: 0,
        private: true,
    };

    /// The tags whose bits under the masks equal `group` and `element`.
    pub const fn masked(group: u16, group_mask: u16, element: u16, element_mask: u16) -> Self {
        TagPattern {
            group,
            group_mask,
            element,
            element_mask,
            private: false,
        }
    }

    pub fn matches(&self, group: u16, element: u16) -> bool {
        if self.private {
            return group % 2 == 1;
        }
        group & self.group_mask == self.group && element & self.element_mask == self.element
    }

    /// A single tag, not a family.
    pub fn is_exact(&self) -> bool {
        !self.private && self.group_mask == 0xFFFF && self.element_mask == 0xFFFF
    }

    /// The tag, when the pattern names a single one.
    pub fn exact(&self) -> Option<(u16, u16)> {
        self.is_exact().then_some((self.group, self.element))
    }
}

/// One row of Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub tag: TagPattern,
    pub retired: bool,
    pub in_composite_iod: bool,
    /// The Basic Profile's action.
    pub basic: Code,
    /// Each option's action (none: the Basic Profile's applies), in [`ProfileOption`] order.
    pub options: [Option<Code>; 10],
}

impl Attribute {
    /// The action `option` gives this attribute, if it changes the Basic Profile's.
    pub fn option(&self, option: ProfileOption) -> Option<Code> {
        self.options[option.column()]
    }
}

/// The rows that apply to `(group, element)`: an exact row first, else the families it belongs
/// to (`(50xx,xxxx)`, `(60xx,3000)`, private groups).
pub fn rows_for(group: u16, element: u16) -> Vec<&'static Attribute> {
    let exact: Vec<&Attribute> = ATTRIBUTES
        .iter()
        .filter(|a| a.tag.is_exact() && a.tag.matches(group, element))
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    ATTRIBUTES
        .iter()
        .filter(|a| a.tag.matches(group, element))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: u16, element: u16) -> &'static Attribute {
        rows_for(group, element)[0]
    }

    #[test]
    fn the_table_is_the_2023b_edition_with_every_row() {
        assert_eq!(EDITION, "2023b");
        assert_eq!(ATTRIBUTES.len(), 611);
    }

    #[test]
    fn rows_read_as_the_standard_gives_them() {
        // Patient's Name: Z; kept by no option.
        let name = row(0x0010, 0x0010);
        assert_eq!(name.name, "Patient's Name");
        assert_eq!(name.basic, Code::Z);
        assert!(ProfileOption::ALL.iter().all(|o| name.option(*o).is_none()));
        // Study Date: Z; K with full dates, C with modified dates.
        let date = row(0x0008, 0x0020);
        assert_eq!(date.basic, Code::Z);
        assert_eq!(
            date.option(ProfileOption::RetainLongitudinalFullDates),
            Some(Code::K)
        );
        assert_eq!(
            date.option(ProfileOption::RetainLongitudinalModifiedDates),
            Some(Code::C)
        );
        // Study Instance UID: U; K when UIDs are retained.
        let uid = row(0x0020, 0x000D);
        assert_eq!(uid.basic, Code::U);
        assert_eq!(uid.option(ProfileOption::RetainUids), Some(Code::K));
        // Patient's Sex: kept with patient characteristics.
        assert_eq!(
            row(0x0010, 0x0040).option(ProfileOption::RetainPatientCharacteristics),
            Some(Code::K)
        );
    }

    #[test]
    fn families_match_their_groups_and_no_other() {
        // Curve data (50xx,xxxx) and overlay data (60xx,3000) and comments (60xx,4000).
        assert!(
            rows_for(0x5002, 0x3000)
                .iter()
                .any(|a| a.tag == TagPattern::masked(0x5000, 0xFF00, 0, 0))
        );
        let overlay = rows_for(0x6002, 0x3000);
        assert_eq!(overlay.len(), 1);
        assert_eq!(overlay[0].basic, Code::X);
        assert_eq!(rows_for(0x6000, 0x4000)[0].basic, Code::X);
        assert!(
            rows_for(0x6000, 0x0010).is_empty(),
            "overlay rows are not in the table"
        );
        // A private element; an unlisted standard one.
        let private = rows_for(0x0009, 0x1001);
        assert_eq!(private.len(), 1);
        assert_eq!(private[0].basic, Code::X);
        assert_eq!(
            private[0].option(ProfileOption::RetainSafePrivate),
            Some(Code::C)
        );
        assert!(
            rows_for(0x0028, 0x0010).is_empty(),
            "Rows is not in the table"
        );
    }
}
