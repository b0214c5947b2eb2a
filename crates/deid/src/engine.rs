//! Applies Table E.1-1 to a data set: every element at every depth of every sequence, with the
//! actions the chosen options give, and the rest handled by value representation (dates, times,
//! UIDs, person names) rather than left as found.

use std::collections::{BTreeMap, HashMap};

use dicom_core::dictionary::DataDictionary;
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use crate::keys::SiteKey;
use crate::pixels::RegionTable;
use crate::pseudonyms::{Pseudonyms, identity, normalise_name};
use crate::{Attribute, Code, DeidError, EDITION, ProfileOption, rows_for};

type Elem = dicom_object::mem::InMemElement;

/// Attributes whose X/D, X/Z/D or Z/D action must be D when they are present: Type 1 (or Type
/// 2 that cannot be emptied under X/D) in a module of an object that carries them, so that
/// removing or emptying them would make a valid object invalid (found with dciodvfy on the
/// test corpora: RT General Plan, Enhanced General Equipment, Waveform Identification, Enhanced
/// MR Image).
const DUMMY_WHEN_PRESENT: [Tag; 6] = [
    Tag(0x300A, 0x0006), // RT Plan Date
    Tag(0x300A, 0x0007), // RT Plan Time
    Tag(0x0008, 0x002A), // Acquisition DateTime
    Tag(0x0018, 0x1000), // Device Serial Number
    Tag(0x0008, 0x0023), // Content Date (Type 1 in SR Document General)
    Tag(0x0008, 0x0033), // Content Time
];

/// Attributes the table says to remove (X) that are Type 2C in the Patient Module when the
/// patient is an animal (PS3.3 C.7.1.1): emptied instead, which identifies nobody and keeps a
/// veterinary object valid.
const EMPTY_WHEN_PRESENT: [Tag; 2] = [
    Tag(0x0010, 0x2297), // Responsible Person
    Tag(0x0010, 0x2299), // Responsible Organization
];

/// The action for a present attribute once the data set's validity is taken into account:
/// Table E.1-1's "X unless Z/D is required" choices, made without the object's module tables.
fn conformant(code: Code, tag: Tag, vr: VR) -> Code {
    match code {
        Code::XD | Code::XZD | Code::ZD if DUMMY_WHEN_PRESENT.contains(&tag) => Code::D,
        Code::X | Code::XZ | Code::XZD if EMPTY_WHEN_PRESENT.contains(&tag) => Code::Z,
        // A sequence the table lets be replaced (X/Z/D, such as Referenced Performed Procedure
        // Step: Type 2 in SR Document Series, Type 3 with one item in General Series) keeps its
        // items with their UIDs replaced and any text dummied: valid in both.
        Code::XZD if vr == VR::SQ => Code::D,
        // Acquisition Context (Type 2) is emptied; other X/Z sequences are removed, since an
        // empty one is invalid wherever an item is required.
        Code::XZ if vr == VR::SQ && tag == Tag(0x0040, 0x0555) => Code::Z,
        Code::XZ if vr == VR::SQ => Code::X,
        other => other,
    }
}

/// Other Patient IDs and Medical Record Locator: retired, but still found in old files.
const OTHER_PATIENT_IDS: Tag = Tag(0x0010, 0x1000);
const MEDICAL_RECORD_LOCATOR: Tag = Tag(0x0010, 0x1090);

/// A private attribute the Retain Safe Private option keeps: the private creator that reserves
/// the block, the group and the element's low byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePrivate {
    pub creator: String,
    pub group: u16,
    pub element: u8,
}

/// What is done to a data set: the options of the profile, the pseudonym prefix and the
/// private attributes known to be safe.
#[derive(Debug, Clone)]
pub struct Policy {
    options: [bool; 10],
    safe_private: Vec<SafePrivate>,
    /// The site's region table (Clean Pixel Data): files it matches have its regions blanked.
    regions: Option<std::sync::Arc<RegionTable>>,
    /// Clean Recognizable Visual Features: the caller has defaced every image that could show
    /// a face, or left it out (see `dokuei_review::deid`); the files say so.
    visual_features_cleaned: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::basic()
    }
}

impl Policy {
    /// The Basic Application Level Confidentiality Profile, no option.
    pub fn basic() -> Self {
        Policy {
            options: [false; 10],
            safe_private: Vec::new(),
            regions: None,
            visual_features_cleaned: false,
        }
    }

    /// Adds an option. The two longitudinal options exclude each other; Clean Graphics needs
    /// a graphics cleaner Dokuei does not have yet, so it is refused rather than pretended.
    pub fn with(mut self, option: ProfileOption) -> Result<Self, DeidError> {
        use ProfileOption::*;
        let clash = match option {
            RetainLongitudinalFullDates => self.has(RetainLongitudinalModifiedDates),
            RetainLongitudinalModifiedDates => self.has(RetainLongitudinalFullDates),
            _ => false,
        };
        if clash {
            return Err(DeidError::Policy(
                "full dates and modified dates are two forms of one option: choose one".into(),
            ));
        }
        if option == CleanGraphics {
            return Err(DeidError::Policy(
                "Clean Graphics is not supported yet: overlays and curves are removed instead"
                    .into(),
            ));
        }
        self.options[option as usize] = true;
        Ok(self)
    }

    /// The private attributes the Retain Safe Private option keeps.
    pub fn with_safe_private(mut self, list: Vec<SafePrivate>) -> Self {
        self.safe_private = list;
        self
    }

    /// Cleans burned-in text by the site's region table (PS3.15 E.3.1 Clean Pixel Data): an
    /// image a signature matches has its regions blanked; an image that may show text and that
    /// no signature matches is still refused.
    pub fn with_region_table(mut self, table: RegionTable) -> Self {
        self.regions = Some(std::sync::Arc::new(table));
        self
    }

    /// Records the Clean Recognizable Visual Features Option (113102) in every file: for the
    /// caller that defaced or left out, before this run, every image that could show a face.
    pub fn with_visual_features_cleaned(mut self) -> Self {
        self.visual_features_cleaned = true;
        self
    }

    pub fn region_table(&self) -> Option<&RegionTable> {
        self.regions.as_deref()
    }

    /// Whether the region table matches this data set (its pixels must then be read whole).
    pub fn cleans_pixels_of(&self, data: &InMemDicomObject) -> bool {
        self.regions
            .as_deref()
            .is_some_and(|t| t.signature_for(data).is_some())
    }

    pub fn has(&self, option: ProfileOption) -> bool {
        self.options[option as usize]
    }

    pub fn options(&self) -> Vec<ProfileOption> {
        ProfileOption::ALL
            .into_iter()
            .filter(|o| self.has(*o))
            .collect()
    }

    /// The action for a row under the chosen options: an option that keeps (K) wins over one
    /// that cleans (C), which wins over the Basic Profile's action.
    pub fn action(&self, row: &Attribute) -> Code {
        let chosen: Vec<Code> = self
            .options()
            .into_iter()
            .filter_map(|o| row.option(o))
            .collect();
        if chosen.contains(&Code::K) {
            Code::K
        } else if chosen.contains(&Code::C) {
            Code::C
        } else {
            chosen.first().copied().unwrap_or(row.basic)
        }
    }

    /// How the output's dates relate to the input's, as Longitudinal Temporal Information
    /// Modified (0028,0303) says it.
    fn temporal(&self) -> &'static str {
        if self.has(ProfileOption::RetainLongitudinalFullDates) {
            "UNMODIFIED"
        } else if self.has(ProfileOption::RetainLongitudinalModifiedDates) {
            "MODIFIED"
        } else {
            "REMOVED"
        }
    }

    /// Deidentification Method (0012,0063): the profile, edition and options in words.
    pub fn method(&self) -> Vec<String> {
        let mut v = vec![format!("Dokuei: PS3.15 {EDITION} Basic Profile")];
        v.extend(
            self.options()
                .into_iter()
                .map(|o| option_code(o).2.to_owned()),
        );
        if self.visual_features_cleaned {
            v.push(CLEAN_VISUAL_FEATURES.2.to_owned());
        }
        v
    }
}

/// Clean Pixel Data Option in CID 7050, given to files whose burned-in text was blanked.
const CLEAN_PIXEL_DATA: (&str, &str, &str) = ("113101", "DCM", "Clean Pixel Data Option");

/// Clean Recognizable Visual Features Option in CID 7050.
const CLEAN_VISUAL_FEATURES: (&str, &str, &str) =
    ("113102", "DCM", "Clean Recognizable Visual Features Option");

/// The device and image size a region table's signature would match on (not identifying: no
/// serial number, station or institution).
fn device(data: &InMemDicomObject) -> String {
    let text = |tag| {
        data.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_matches(['\0', ' ']).to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "Modality {}, Manufacturer {}, Manufacturer's Model Name {}, {} × {} pixels",
        text(tags::MODALITY),
        text(tags::MANUFACTURER),
        text(tags::MANUFACTURER_MODEL_NAME),
        text(tags::COLUMNS),
        text(tags::ROWS)
    )
}

/// An option's code in CID 7050 (De-identification Method): value, scheme, meaning.
fn option_code(o: ProfileOption) -> (&'static str, &'static str, &'static str) {
    use ProfileOption::*;
    match o {
        RetainSafePrivate => ("113111", "DCM", "Retain Safe Private Option"),
        RetainUids => ("113110", "DCM", "Retain UIDs Option"),
        RetainDeviceIdentity => ("113109", "DCM", "Retain Device Identity Option"),
        RetainInstitutionIdentity => ("113112", "DCM", "Retain Institution Identity Option"),
        RetainPatientCharacteristics => ("113108", "DCM", "Retain Patient Characteristics Option"),
        RetainLongitudinalFullDates => (
            "113106",
            "DCM",
            "Retain Longitudinal Temporal Information Full Dates Option",
        ),
        RetainLongitudinalModifiedDates => (
            "113107",
            "DCM",
            "Retain Longitudinal Temporal Information Modified Dates Option",
        ),
        CleanDescriptors => ("113105", "DCM", "Clean Descriptors Option"),
        CleanStructuredContent => ("113104", "DCM", "Clean Structured Content Option"),
        CleanGraphics => ("113103", "DCM", "Clean Graphics Option"),
    }
}

/// What was done to one file, by kind, with the attributes' keywords and counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Attributes removed (X, and X/… where removal keeps the object valid).
    pub removed: BTreeMap<String, usize>,
    /// Attributes emptied (Z).
    pub emptied: BTreeMap<String, usize>,
    /// Attributes given a dummy value (D).
    pub dummied: BTreeMap<String, usize>,
    /// Free text kept after a check found no identifier of this patient in it (C).
    pub cleaned: BTreeMap<String, usize>,
    /// UIDs replaced.
    pub uids: usize,
    /// Dates and date-times moved by the patient's offset.
    pub dates_shifted: usize,
    /// Private elements removed (creators included).
    pub private_removed: usize,
    /// Private elements kept as safe.
    pub private_kept: usize,
    /// Overlay and curve elements removed.
    pub graphics_removed: usize,
    /// Patient Name and ID replaced by the pseudonym.
    pub pseudonym: String,
    /// Burned-in text blanked by the region table: which signature, how much.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixels_cleaned: Option<String>,
    /// The day shift applied, if dates were shifted. Never written to the report (it would
    /// undo the shift for anyone holding the output).
    #[serde(skip)]
    pub day_shift: Option<i64>,
}

impl Summary {
    fn note(map: &mut BTreeMap<String, usize>, tag: Tag) {
        *map.entry(keyword(tag)).or_default() += 1;
    }

    /// One line: counts of each kind.
    pub fn line(&self) -> String {
        let n = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
        let mut s = format!(
            "{} removed, {} emptied, {} dummy values, {} UIDs replaced, {} private removed",
            n(&self.removed),
            n(&self.emptied),
            n(&self.dummied),
            self.uids,
            self.private_removed
        );
        if self.dates_shifted > 0 {
            s += &format!(", {} dates shifted", self.dates_shifted);
        }
        if n(&self.cleaned) > 0 {
            s += &format!(", {} descriptions kept after check", n(&self.cleaned));
        }
        if self.graphics_removed > 0 {
            s += &format!(", {} overlay/curve elements removed", self.graphics_removed);
        }
        if self.private_kept > 0 {
            s += &format!(", {} safe private kept", self.private_kept);
        }
        if let Some(p) = &self.pixels_cleaned {
            s += &format!(", pixels cleaned by {p}");
        }
        s
    }
}

fn keyword(tag: Tag) -> String {
    if tag.group() % 2 == 1 {
        return format!("({:04X},{:04X})", tag.group(), tag.element());
    }
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias.to_owned())
        .unwrap_or_else(|| format!("({:04X},{:04X})", tag.group(), tag.element()))
}

/// A de-identified file and what was done to it.
#[derive(Debug)]
pub struct Deidentified {
    pub object: DefaultDicomObject,
    pub summary: Summary,
}

/// De-identifies data sets under one policy and one site key, giving patients pseudonyms
/// from one store.
#[derive(Debug)]
pub struct Deidentifier {
    policy: Policy,
    key: SiteKey,
    pseudonyms: std::sync::Mutex<Pseudonyms>,
}

/// How attributes Table E.1-1 does not list are treated inside a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Kept (the table names every identifying attribute of the standard's modules).
    Normal,
    /// Inside a sequence the table says to replace with a dummy (D), such as the Content
    /// Sequence of a structured report: free text and names are replaced too.
    Strict,
    /// Inside a sequence the table says to clean (C): free text is kept only when no
    /// identifier of this patient is in it.
    Check,
}

/// What one data set's cleaning needs to know about its patient.
#[derive(Debug, Clone)]
pub struct Patient {
    pseudonym: String,
    shift: i64,
    /// Values that identify this patient (names' parts, IDs, accession, birth date),
    /// upper-cased: a description containing one is not kept.
    identifiers: Vec<String>,
}

impl Patient {
    /// The patient's pseudonym, e.g. `DOKUEI-000001`.
    pub fn pseudonym(&self) -> &str {
        &self.pseudonym
    }
}

impl Deidentifier {
    pub fn new(policy: Policy, key: SiteKey, pseudonyms: Pseudonyms) -> Self {
        Deidentifier {
            policy,
            key,
            pseudonyms: std::sync::Mutex::new(pseudonyms),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn key(&self) -> &SiteKey {
        &self.key
    }

    /// The patient of a data set: the pseudonym (given now, and stored, if the patient is new),
    /// the day shift and the values that identify them.
    pub fn patient(&self, data: &InMemDicomObject) -> Result<Patient, DeidError> {
        let text = |tag| {
            data.get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                .unwrap_or_default()
        };
        let name = text(tags::PATIENT_NAME);
        let id = text(tags::PATIENT_ID);
        let who = identity(&id, &text(tags::ISSUER_OF_PATIENT_ID), &name);
        let pseudonym = self
            .pseudonyms
            .lock()
            .map_err(|_| DeidError::Invalid("the pseudonym store is unavailable".into()))?
            .pseudonym(
                &self.key.patient_key(&who),
                &crate::reid::Identity {
                    patient_id: id.clone(),
                    issuer: text(tags::ISSUER_OF_PATIENT_ID),
                    name: name.clone(),
                },
            )?;
        let mut identifiers: Vec<String> = normalise_name(&name)
            .split(['^', '=', ' ', '\\'])
            .map(str::to_owned)
            .collect();
        identifiers.extend(
            [
                id,
                text(OTHER_PATIENT_IDS),
                text(tags::ACCESSION_NUMBER),
                text(tags::PATIENT_BIRTH_DATE),
                text(MEDICAL_RECORD_LOCATOR),
            ]
            .into_iter()
            .flat_map(|v| {
                v.split('\\')
                    .map(|s| s.trim().to_uppercase())
                    .collect::<Vec<_>>()
            }),
        );
        identifiers.retain(|s| s.chars().count() >= 3);
        Ok(Patient {
            pseudonym,
            shift: self.key.day_shift(&who),
            identifiers,
        })
    }

    /// De-identifies one file, or refuses it with the reason (pixel data that may carry
    /// burned-in text).
    pub fn deidentify(&self, file: DefaultDicomObject) -> Result<Deidentified, DeidError> {
        let patient = self.patient(&file)?;
        self.deidentify_for(file, &patient, false)
    }

    /// De-identifies one file of `patient` (see [`Deidentifier::patient`]).
    /// `pixels_elsewhere`: the data set was read without its Pixel Data, which the caller
    /// copies over byte for byte.
    pub fn deidentify_for(
        &self,
        file: DefaultDicomObject,
        patient: &Patient,
        pixels_elsewhere: bool,
    ) -> Result<Deidentified, DeidError> {
        let mut ts = file.meta().transfer_syntax().to_owned();
        let has_pixels = pixels_elsewhere
            || [
                tags::PIXEL_DATA,
                tags::FLOAT_PIXEL_DATA,
                tags::DOUBLE_FLOAT_PIXEL_DATA,
            ]
            .iter()
            .any(|t| file.get(*t).is_some());
        // Burned-in text: blanked by the site's region table when a signature matches (the
        // match is on the input's own attributes, before any is removed), else refused when
        // the image may show text.
        let signature = self
            .policy
            .regions
            .as_deref()
            .filter(|_| has_pixels)
            .and_then(|t| t.signature_for(&file));
        let cleaned = match signature {
            Some(_) if pixels_elsewhere => {
                return Err(DeidError::Invalid(
                    "the region table matches it, so its pixel data must be read to be cleaned"
                        .into(),
                ));
            }
            Some(sig) => Some(crate::pixels::clean(&file, sig)?),
            None => None,
        };
        if cleaned.is_some() {
            ts = crate::pixels::EXPLICIT_LE.to_owned();
        }
        let data: InMemDicomObject = file.into_inner();
        if cleaned.is_none()
            && let Some(reason) = burned_in_reason(&data, has_pixels)
        {
            return Err(DeidError::Refused(match self.policy.regions.as_deref() {
                None => format!("{reason}; no region table is set to clean it"),
                Some(t) => format!(
                    "{reason}; no signature of the region table {} matches it ({})",
                    t.path.display(),
                    device(&data)
                ),
            }));
        }
        let mut summary = Summary {
            pseudonym: patient.pseudonym.clone(),
            day_shift: self
                .policy
                .has(ProfileOption::RetainLongitudinalModifiedDates)
                .then_some(patient.shift),
            ..Summary::default()
        };
        let mut out = self.clean(data, patient, &mut summary, true, Mode::Normal);
        let pixels_cleaned = cleaned.is_some();
        if let Some(c) = cleaned {
            summary.pixels_cleaned = Some(c.note.clone());
            c.apply(&mut out);
        }
        self.mark(&mut out, pixels_cleaned);

        let text = |tag| {
            out.get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        };
        let class = text(tags::SOP_CLASS_UID)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| DeidError::Invalid("the data set has no SOP Class UID".into()))?;
        let instance = text(tags::SOP_INSTANCE_UID)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| DeidError::Invalid("the data set has no SOP Instance UID".into()))?;
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(ts.trim_end_matches(['\0', ' ']))
            .media_storage_sop_class_uid(class)
            .media_storage_sop_instance_uid(instance)
            .implementation_class_uid(dokuei_results::common::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(dokuei_results::common::IMPLEMENTATION_VERSION_NAME)
            .build()
            .map_err(|e| DeidError::Invalid(e.to_string()))?;
        Ok(Deidentified {
            object: out.with_exact_meta(meta),
            summary,
        })
    }

    /// The markers PS3.15 E.1.1 asks for.
    fn mark(&self, out: &mut InMemDicomObject, pixels_cleaned: bool) {
        out.put(DataElement::new(
            tags::PATIENT_IDENTITY_REMOVED,
            VR::CS,
            PrimitiveValue::from("YES"),
        ));
        out.put(DataElement::new(
            tags::DEIDENTIFICATION_METHOD,
            VR::LO,
            PrimitiveValue::Strs(
                self.policy
                    .method()
                    .into_iter()
                    .chain(pixels_cleaned.then(|| CLEAN_PIXEL_DATA.2.to_owned()))
                    .collect(),
            ),
        ));
        let mut codes = vec![("113100", "DCM", "Basic Application Confidentiality Profile")];
        codes.extend(self.policy.options().into_iter().map(option_code));
        if pixels_cleaned {
            codes.push(CLEAN_PIXEL_DATA);
        }
        if self.policy.visual_features_cleaned {
            codes.push(CLEAN_VISUAL_FEATURES);
        }
        let items: Vec<InMemDicomObject> = codes
            .into_iter()
            .map(|(value, scheme, meaning)| {
                InMemDicomObject::from_element_iter([
                    DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
                    DataElement::new(
                        tags::CODING_SCHEME_DESIGNATOR,
                        VR::SH,
                        PrimitiveValue::from(scheme),
                    ),
                    DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
                ])
            })
            .collect();
        out.put(DataElement::new(
            tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(items, Length::UNDEFINED),
        ));
        out.put(DataElement::new(
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
            VR::CS,
            PrimitiveValue::from(self.policy.temporal()),
        ));
    }

    /// Cleans one data set (the file's, or a sequence item's).
    fn clean(
        &self,
        data: InMemDicomObject,
        patient: &Patient,
        summary: &mut Summary,
        top: bool,
        mode: Mode,
    ) -> InMemDicomObject {
        // Private creators by group and block, for the safe-private allow-list.
        let mut creators: HashMap<(u16, u8), String> = HashMap::new();
        for e in data.iter() {
            let t = e.tag();
            if t.group() % 2 == 1
                && (0x10..=0xFF).contains(&t.element())
                && let Ok(s) = e.to_str()
            {
                creators.insert((t.group(), t.element() as u8), s.trim().to_owned());
            }
        }
        let mut kept_blocks: Vec<(u16, u8)> = Vec::new();
        let mut out: Vec<Elem> = Vec::new();
        let mut private_creators: Vec<Elem> = Vec::new();
        for e in data {
            let e = known_vr(e);
            let tag = e.tag();
            if e.vr() == VR::UN && group_is_standard(tag) && !un_is_plain_data(tag) {
                // Bytes whose structure is unknown here (a sequence encoded as UN with a
                // defined length, or an attribute the dictionary does not know): nothing in
                // them can be checked, so they do not leave.
                Summary::note(&mut summary.removed, tag);
                continue;
            }
            let (group, element) = (tag.group(), tag.element());
            if element == 0 || group == 0x0002 || group == 0x0000 {
                // Group lengths: stale after any change, retired in data sets. File Meta
                // elements do not belong in a data set; the meta group is written anew.
                Summary::note(&mut summary.removed, tag);
                continue;
            }
            if group % 2 == 1 {
                if (0x10..=0xFF).contains(&element) {
                    private_creators.push(e);
                    continue;
                }
                let block = (group, (element >> 8) as u8);
                let safe = self.policy.has(ProfileOption::RetainSafePrivate)
                    && creators.get(&block).is_some_and(|c| {
                        self.policy.safe_private.iter().any(|s| {
                            s.creator == *c && s.group == group && s.element == element as u8
                        })
                    });
                if safe {
                    summary.private_kept += 1;
                    kept_blocks.push(block);
                    // A kept private sequence's items are standard data sets: cleaned.
                    let vr = e.vr();
                    match e.into_value() {
                        Value::Sequence(seq) => {
                            out.push(self.items(tag, seq, patient, summary, Mode::Strict))
                        }
                        value => out.push(DataElement::new(tag, vr, value)),
                    }
                } else {
                    summary.private_removed += 1;
                }
                continue;
            }
            // Overlays (60xx) and curves (50xx): removed whole when their data is, so no
            // overlay module is left without its data.
            if (0x5000..=0x50FF).contains(&group) || (0x6000..=0x60FF).contains(&group) {
                summary.graphics_removed += 1;
                continue;
            }
            if top && (tag == tags::PATIENT_NAME || tag == tags::PATIENT_ID) {
                out.push(DataElement::new(
                    tag,
                    e.vr(),
                    PrimitiveValue::from(patient.pseudonym.as_str()),
                ));
                continue;
            }
            if tag == tags::SPECIFIC_CHARACTER_SET {
                out.push(e);
                continue;
            }
            let rows = rows_for(group, element);
            let mut code = match rows.first() {
                Some(row) => conformant(self.policy.action(row), tag, e.vr()),
                None => self.unlisted(e.vr(), &e, mode),
            };
            // Dates kept by another option (device calibration, say) beside shifted ones
            // would give the shift away: with modified dates, every date moves.
            if code == Code::K
                && matches!(e.vr(), VR::DA | VR::DT)
                && self
                    .policy
                    .has(ProfileOption::RetainLongitudinalModifiedDates)
            {
                code = Code::C;
            }
            if let Some(kept) = self.apply(code, e, patient, summary, mode) {
                out.push(kept);
            }
        }
        for c in private_creators {
            let t = c.tag();
            if kept_blocks.contains(&(t.group(), t.element() as u8)) {
                out.push(c);
            } else {
                summary.private_removed += 1;
            }
        }
        InMemDicomObject::from_element_iter(out)
    }

    /// The action for an attribute Table E.1-1 does not list, by its value representation:
    /// dates and times follow the date option, UIDs other than well-known ones are replaced,
    /// person names are emptied, sequences are cleaned; free text follows the sequence's mode.
    fn unlisted(&self, vr: VR, e: &Elem, mode: Mode) -> Code {
        match vr {
            VR::DA | VR::DT | VR::TM => {
                if self.policy.has(ProfileOption::RetainLongitudinalFullDates) {
                    Code::K
                } else if self
                    .policy
                    .has(ProfileOption::RetainLongitudinalModifiedDates)
                {
                    Code::C
                } else {
                    Code::Z
                }
            }
            VR::UI => {
                if self.policy.has(ProfileOption::RetainUids) || well_known_uid(e) {
                    Code::K
                } else {
                    Code::U
                }
            }
            VR::PN => Code::Z,
            VR::LT | VR::ST | VR::UT | VR::UC | VR::UR if mode == Mode::Strict => Code::D,
            VR::LO | VR::SH | VR::LT | VR::ST | VR::UT | VR::UC | VR::UR if mode == Mode::Check => {
                Code::C
            }
            _ => Code::K,
        }
    }

    /// Applies one action; `None` removes the element.
    fn apply(
        &self,
        code: Code,
        e: Elem,
        patient: &Patient,
        summary: &mut Summary,
        mode: Mode,
    ) -> Option<Elem> {
        let tag = e.tag();
        let vr = e.vr();
        match code {
            Code::X | Code::XD => {
                Summary::note(&mut summary.removed, tag);
                None
            }
            Code::Z | Code::XZ | Code::XZD | Code::ZD => {
                if vr == VR::SQ {
                    Summary::note(&mut summary.emptied, tag);
                    return Some(DataElement::new(
                        tag,
                        vr,
                        DataSetSequence::<InMemDicomObject>::empty(),
                    ));
                }
                Summary::note(&mut summary.emptied, tag);
                Some(DataElement::new(tag, vr, PrimitiveValue::Empty))
            }
            Code::D => {
                // A dummy UID stands for its original (two Annotation Group UIDs stay two).
                let original = strings(&e).join("\\");
                match e.into_value() {
                    Value::Sequence(seq) => {
                        Some(self.items(tag, seq, patient, summary, Mode::Strict))
                    }
                    _ => {
                        Summary::note(&mut summary.dummied, tag);
                        Some(self.dummy(tag, vr, patient, &original))
                    }
                }
            }
            Code::U => {
                if vr == VR::SQ {
                    return match e.into_value() {
                        Value::Sequence(seq) => {
                            Some(self.items(tag, seq, patient, summary, Mode::Strict))
                        }
                        _ => None,
                    };
                }
                let values = strings(&e);
                if values.is_empty() {
                    return Some(e);
                }
                summary.uids += values.len();
                let new: Vec<String> = values.iter().map(|u| self.key.uid(u)).collect();
                Some(DataElement::new(tag, vr, PrimitiveValue::Strs(new.into())))
            }
            // The sequence is kept for its references (U*: UIDs replaced), and anything else
            // in it treated as inside a sequence to replace.
            Code::XZUStar => match e.into_value() {
                Value::Sequence(seq) => Some(self.items(tag, seq, patient, summary, Mode::Strict)),
                _ => {
                    Summary::note(&mut summary.removed, tag);
                    None
                }
            },
            Code::K => match e.into_value() {
                Value::Sequence(seq) => Some(self.items(tag, seq, patient, summary, mode)),
                value => Some(DataElement::new(tag, vr, value)),
            },
            Code::C => self.clean_value(e, patient, summary, mode),
        }
    }

    /// Cleans a sequence's items by the same rules, keeping the sequence.
    fn items(
        &self,
        tag: Tag,
        seq: DataSetSequence<InMemDicomObject>,
        patient: &Patient,
        summary: &mut Summary,
        mode: Mode,
    ) -> Elem {
        let items: Vec<InMemDicomObject> = seq
            .into_items()
            .into_iter()
            .map(|item| self.clean(item, patient, summary, false, mode))
            .collect();
        DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
    }

    /// C: dates moved by the patient's offset, times of day kept, sequences cleaned, UIDs
    /// replaced, and free text kept only when no identifier of this patient is in it.
    fn clean_value(
        &self,
        e: Elem,
        patient: &Patient,
        summary: &mut Summary,
        mode: Mode,
    ) -> Option<Elem> {
        let tag = e.tag();
        let vr = e.vr();
        match vr {
            VR::SQ => match e.into_value() {
                // A sequence to clean keeps its strictness when inside one to replace.
                Value::Sequence(seq) => {
                    let inner = if mode == Mode::Strict {
                        Mode::Strict
                    } else {
                        Mode::Check
                    };
                    Some(self.items(tag, seq, patient, summary, inner))
                }
                _ => None,
            },
            VR::DA | VR::DT => {
                if !self
                    .policy
                    .has(ProfileOption::RetainLongitudinalModifiedDates)
                {
                    // No date option asked for cleaning dates: there is nothing to keep.
                    Summary::note(&mut summary.emptied, tag);
                    return Some(DataElement::new(tag, vr, PrimitiveValue::Empty));
                }
                let values = strings(&e);
                let mut shifted = Vec::with_capacity(values.len());
                for v in &values {
                    match shift_date(v, vr, patient.shift) {
                        Some(s) => shifted.push(s),
                        None => {
                            // A value that is not a date cannot be shifted: not kept.
                            Summary::note(&mut summary.emptied, tag);
                            return Some(DataElement::new(tag, vr, PrimitiveValue::Empty));
                        }
                    }
                }
                summary.dates_shifted += shifted.len();
                Some(DataElement::new(
                    tag,
                    vr,
                    PrimitiveValue::Strs(shifted.into()),
                ))
            }
            VR::TM => Some(e),
            VR::UI => self.apply(Code::U, e, patient, summary, mode),
            VR::AE
            | VR::CS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::UC
            | VR::UT
            | VR::UR => {
                let text = strings(&e).join("\\").to_uppercase();
                let dates_hidden = !self.policy.has(ProfileOption::RetainLongitudinalFullDates);
                if patient
                    .identifiers
                    .iter()
                    .any(|i| text.contains(i.as_str()))
                    || (dates_hidden && holds_a_date(&text))
                {
                    Summary::note(&mut summary.removed, tag);
                    None
                } else {
                    Summary::note(&mut summary.cleaned, tag);
                    Some(e)
                }
            }
            VR::US
            | VR::SS
            | VR::UL
            | VR::SL
            | VR::FL
            | VR::FD
            | VR::SV
            | VR::UV
            | VR::AT
            | VR::AS
            | VR::DS
            | VR::IS => Some(e),
            // Bytes (maker notes, timestamps) cannot be checked: removed.
            _ => {
                Summary::note(&mut summary.removed, tag);
                None
            }
        }
    }

    /// D: a non-empty value of the right representation that says nothing about anyone.
    fn dummy(&self, tag: Tag, vr: VR, patient: &Patient, original: &str) -> Elem {
        let text = |s: &str| DataElement::new(tag, vr, PrimitiveValue::from(s));
        match vr {
            VR::DA => text("19000101"),
            VR::DT => text("19000101000000"),
            VR::TM => text("000000"),
            VR::PN => text("ANONYMIZED"),
            VR::AS => text("000D"),
            VR::DS | VR::IS => text("0"),
            VR::UI => text(&self.key.uid(&format!("dummy/{tag}/{original}"))),
            VR::UR => text("urn:oid:2.25"),
            VR::AE | VR::CS | VR::LO | VR::LT | VR::SH | VR::ST | VR::UC | VR::UT => {
                // A pseudonym stands in where an identifier of the patient stood.
                if tag == OTHER_PATIENT_IDS || tag == tags::PATIENT_ID {
                    text(&patient.pseudonym)
                } else {
                    text("ANONYMIZED")
                }
            }
            VR::US => DataElement::new(tag, vr, PrimitiveValue::from(0u16)),
            VR::SS => DataElement::new(tag, vr, PrimitiveValue::from(0i16)),
            VR::UL => DataElement::new(tag, vr, PrimitiveValue::from(0u32)),
            VR::SL => DataElement::new(tag, vr, PrimitiveValue::from(0i32)),
            VR::FL => DataElement::new(tag, vr, PrimitiveValue::from(0f32)),
            VR::FD => DataElement::new(tag, vr, PrimitiveValue::from(0f64)),
            _ => DataElement::new(tag, vr, PrimitiveValue::from(vec![0u8, 0u8])),
        }
    }
}

/// An element read as UN (explicit VR files that did not know the attribute) whose attribute
/// the dictionary knows as text: given its real VR and values, so the rules for dates, UIDs
/// and names apply to it.
fn known_vr(e: Elem) -> Elem {
    // A sequence whatever its VR says (UN of undefined length is read as one): treated as SQ,
    // so its items are cleaned.
    if e.vr() != VR::SQ && e.items().is_some() {
        let tag = e.tag();
        return match e.into_value() {
            Value::Sequence(seq) => DataElement::new(tag, VR::SQ, seq),
            other => DataElement::new(tag, VR::UN, other),
        };
    }
    if e.vr() != VR::UN || e.tag().group() % 2 == 1 {
        return e;
    }
    let Some(vr) = StandardDataDictionary
        .by_tag(e.tag())
        .and_then(|d| match d.vr {
            dicom_core::dictionary::VirtualVr::Exact(vr) => Some(vr),
            _ => None,
        })
    else {
        return e;
    };
    if vr == VR::SQ {
        // A sequence written as UN with a defined length: its value is implicit VR little
        // endian items (PS3.5 6.2.2). Read them so they are cleaned; if they do not read,
        // the element stays UN and is removed.
        let tag = e.tag();
        let parsed = e.value().to_bytes().ok().and_then(|b| un_items(&b));
        return match parsed {
            Some(items) => {
                DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
            }
            None => e,
        };
    }
    let textual = matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::TM
            | VR::UC
            | VR::UI
            | VR::UR
            | VR::UT
    );
    let Ok(bytes) = e.value().to_bytes() else {
        return e;
    };
    if !textual {
        return e;
    }
    let text: String = bytes.iter().map(|&b| b as char).collect();
    let values: Vec<String> = text
        .trim_end_matches(['\0', ' '])
        .split('\\')
        .map(|v| v.trim_end_matches(['\0', ' ']).to_owned())
        .collect();
    DataElement::new(e.tag(), vr, PrimitiveValue::Strs(values.into()))
}

/// The items of a sequence value in implicit VR little endian, when each has a defined length
/// (or `None`).
fn un_items(bytes: &[u8]) -> Option<Vec<InMemDicomObject>> {
    use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
    let ts = TransferSyntaxRegistry.get("1.2.840.10008.1.2")?;
    let mut items = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let group = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]);
        let element = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
        let len = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        pos += 8;
        match (group, element) {
            (0xFFFE, 0xE0DD) => break,
            (0xFFFE, 0xE000) if len != u32::MAX => {
                let end = pos
                    .checked_add(len as usize)
                    .filter(|e| *e <= bytes.len())?;
                items.push(InMemDicomObject::read_dataset_with_ts(&bytes[pos..end], ts).ok()?);
                pos = end;
            }
            _ => return None,
        }
    }
    Some(items)
}

fn group_is_standard(tag: Tag) -> bool {
    tag.group().is_multiple_of(2)
}

/// Whether a UN element of a standard attribute holds plain values (numbers or bytes whose
/// meaning is fixed) rather than a structure or text this module could not read.
fn un_is_plain_data(tag: Tag) -> bool {
    match StandardDataDictionary.by_tag(tag).map(|d| d.vr) {
        Some(dicom_core::dictionary::VirtualVr::Exact(vr)) => !matches!(vr, VR::SQ | VR::UN),
        Some(_) => true,
        None => false,
    }
}

/// A data set's strings (multi-valued), without padding.
fn strings(e: &Elem) -> Vec<String> {
    e.value()
        .to_multi_str()
        .map(|v| {
            v.iter()
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// UIDs that name things, not instances: SOP classes, transfer syntaxes, coding schemes and
/// everything under the DICOM root (1.2.840.10008).
fn well_known_uid(e: &Elem) -> bool {
    let name = keyword(e.tag());
    if name.contains("ClassUID")
        || name.contains("TransferSyntax")
        || name.contains("CodingSchemeUID")
        || name.contains("ContextGroupExtensionCreatorUID")
        || name == "MappingResourceUID"
    {
        return true;
    }
    let values = strings(e);
    !values.is_empty() && values.iter().all(|v| v.starts_with("1.2.840.10008."))
}

/// Whether free text holds something that reads as a calendar date (`20240301`,
/// `2024-03-01`, `01.03.2024`, `1/3/2024`…): kept beside removed or shifted dates, it would
/// give them away.
fn holds_a_date(text: &str) -> bool {
    let b = text.as_bytes();
    let digits_at =
        |i: usize, n: usize| i + n <= b.len() && b[i..i + n].iter().all(u8::is_ascii_digit);
    let sep = |i: usize| i < b.len() && matches!(b[i], b'-' | b'.' | b'/');
    let number = |i: usize, n: usize| -> u32 {
        b[i..i + n]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    for i in 0..b.len() {
        if i > 0 && b[i - 1].is_ascii_digit() {
            continue;
        }
        // YYYYMMDD
        if digits_at(i, 8) && !digits_at(i + 8, 1) {
            let (y, m, d) = (number(i, 4), number(i + 4, 2), number(i + 6, 2));
            if (1900..=2100).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d) {
                return true;
            }
        }
        // YYYY-MM-DD
        if digits_at(i, 4)
            && sep(i + 4)
            && digits_at(i + 5, 1)
            && sep(i + 6 + usize::from(digits_at(i + 6, 1)))
        {
            return true;
        }
        // D.M.YYYY, DD/MM/YY and the like
        for first in 1..=2 {
            if digits_at(i, first) && sep(i + first) {
                for second in 1..=2 {
                    let j = i + first + 1;
                    if digits_at(j, second) && sep(j + second) && digits_at(j + second + 1, 2) {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// Moves a DA (YYYYMMDD, or a range) or the date part of a DT back by `days`; `None` when
/// the value is not a date.
fn shift_date(value: &str, vr: VR, days: i64) -> Option<String> {
    if vr == VR::DA && value.contains('-') {
        let (a, b) = value.split_once('-')?;
        let one = |s: &str| {
            if s.is_empty() {
                Some(String::new())
            } else {
                shift_date(s, VR::DA, days)
            }
        };
        return Some(format!("{}-{}", one(a)?, one(b)?));
    }
    let digits = value.get(..8)?;
    let date = chrono::NaiveDate::parse_from_str(digits, "%Y%m%d").ok()?;
    let moved = date.checked_sub_signed(chrono::Duration::days(days))?;
    Some(format!("{}{}", moved.format("%Y%m%d"), &value[8..]))
}

/// Why pixel data may show text that identifies the patient, or `None`: the image says
/// Burned In Annotation YES, or is of a kind that commonly carries text (ultrasound, secondary
/// capture, endoscopy and photographs) and does not say NO, or is a radiograph that does not
/// say either way.
pub fn burned_in_risk(data: &InMemDicomObject) -> Option<String> {
    burned_in_reason(data, data.get(tags::PIXEL_DATA).is_some())
}

fn burned_in_reason(data: &InMemDicomObject, has_pixels: bool) -> Option<String> {
    if !has_pixels {
        return None;
    }
    let text = |tag| {
        data.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_uppercase())
    };
    // An overlay kept in the unused high bits of the pixels (retired, PS3.5 8.1.2) travels
    // with them even though its 60xx group is removed.
    let in_pixel_bits = data.iter().any(|e| {
        let t = e.tag();
        (0x6000..=0x601E).contains(&t.group())
            && t.element() == 0x0102
            && e.to_int::<u16>().is_ok_and(|bit| bit != 0)
    });
    if in_pixel_bits {
        return Some("an overlay is stored in the pixels' unused high bits (Overlay Bit Position not 0), which Dokuei clears only in images the region table cleans".into());
    }
    let flag = text(tags::BURNED_IN_ANNOTATION);
    if flag.as_deref() == Some("YES") {
        return Some("Burned In Annotation is YES: the pixels show text".into());
    }
    if flag.as_deref() == Some("NO") {
        return None;
    }
    let modality = text(tags::MODALITY).unwrap_or_default();
    let class = text(tags::SOP_CLASS_UID).unwrap_or_default();
    // Secondary Capture (1.1.7) and its multi-frame kinds (1.1.7.1 to 1.1.7.4); not 1.1.77.*
    // (visible light) or 1.1.78.* (ophthalmic), which only share the prefix.
    if class == "1.2.840.10008.5.1.4.1.1.7"
        || class
            .strip_prefix("1.2.840.10008.5.1.4.1.1.7.")
            .is_some_and(|rest| matches!(rest, "1" | "2" | "3" | "4"))
    {
        return Some(
            "a secondary capture that does not say Burned In Annotation NO: screenshots carry text"
                .into(),
        );
    }
    match modality.as_str() {
        "US" | "IVUS" | "ES" | "XC" | "GM" | "SM" | "OT" | "DOC" => Some(format!(
            "modality {modality} commonly shows text in its pixels, and the file does not say Burned In Annotation NO"
        )),
        "CR" | "DX" | "MG" | "XA" | "RF" | "PX" | "IO" => Some(format!(
            "a radiograph ({modality}) that does not say whether its pixels carry text (Burned In Annotation absent)"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_free_text_are_found() {
        for t in [
            "POST-OP 01.03.2024",
            "CT 20240301",
            "FOLLOW UP 2024-03-01",
            "1/3/24 CONTROL",
        ] {
            assert!(holds_a_date(t), "{t}");
        }
        for t in ["CHEST 5MM", "SERIES 12345678", "T2 3.0T", "AXIAL 1.25"] {
            assert!(!holds_a_date(t), "{t}");
        }
    }

    #[test]
    fn dates_shift_by_whole_days_and_keep_their_time() {
        assert_eq!(
            shift_date("20240301", VR::DA, 1).as_deref(),
            Some("20240229")
        );
        assert_eq!(
            shift_date("20240301101500.123+0900", VR::DT, 366).as_deref(),
            Some("20230301101500.123+0900")
        );
        assert_eq!(
            shift_date("20240110-20240120", VR::DA, 10).as_deref(),
            Some("20231231-20240110")
        );
        assert_eq!(
            shift_date("-20240120", VR::DA, 10).as_deref(),
            Some("-20240110")
        );
        assert_eq!(shift_date("2024", VR::DA, 1), None);
        assert_eq!(shift_date("notadate", VR::DA, 1), None);
    }

    #[test]
    fn options_override_the_basic_profile_and_keep_wins_over_clean() {
        let date = rows_for(0x0008, 0x0020)[0];
        assert_eq!(Policy::basic().action(date), Code::Z);
        let full = Policy::basic()
            .with(ProfileOption::RetainLongitudinalFullDates)
            .expect("option");
        assert_eq!(full.action(date), Code::K);
        let modified = Policy::basic()
            .with(ProfileOption::RetainLongitudinalModifiedDates)
            .expect("option");
        assert_eq!(modified.action(date), Code::C);
        assert!(
            full.clone()
                .with(ProfileOption::RetainLongitudinalModifiedDates)
                .is_err()
        );
        assert!(Policy::basic().with(ProfileOption::CleanGraphics).is_err());
        // Device Serial Number: K with device identity even when descriptors are cleaned.
        let serial = rows_for(0x0018, 0x1000)[0];
        let both = Policy::basic()
            .with(ProfileOption::RetainDeviceIdentity)
            .and_then(|p| p.with(ProfileOption::CleanDescriptors))
            .expect("options");
        assert_eq!(both.action(serial), Code::K);
    }
}
