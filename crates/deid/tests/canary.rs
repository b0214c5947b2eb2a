//! The canary test: a file that carries a unique identifying value in every attribute Table
//! E.1-1 names, at three sequence depths, in private elements, structured-report content,
//! overlays and the File Meta Information, in ASCII and in Japanese (ISO 2022 IR 87). After
//! de-identification none of those values, in any encoding, nor any original UID or date, may
//! appear anywhere in the output's bytes.

use std::collections::BTreeSet;
use std::path::Path;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dokuei_deid::{ATTRIBUTES, Deidentifier, Policy, ProfileOption, Pseudonyms, SiteKey};
use encoding::{EncoderTrap, Encoding};

const KANJI: &str = "山田太郎花子佐藤鈴木高橋中村小林加藤吉本松井上木村清水森池林斎";

/// What the fixture planted, to look for in the output.
#[derive(Default)]
struct Planted {
    /// ASCII values (names, texts, codes, numbers as text).
    ascii: BTreeSet<String>,
    /// Japanese values, as text: searched in ISO 2022 IR 87, Shift_JIS, EUC-JP and UTF-8.
    japanese: BTreeSet<String>,
    uids: BTreeSet<String>,
    dates: BTreeSet<String>,
    /// Times of day (kept with the modified-dates option, as PS3.15 allows).
    times: BTreeSet<String>,
    /// Tags planted at the top level (the attribute rows), to check each one's fate.
    top: Vec<Tag>,
}

struct Fixture {
    planted: Planted,
    counter: usize,
    /// The patient's family name, put into every free text in the "identifying text" run so
    /// that a description cleaning must remove them.
    family: Option<String>,
}

fn jis(text: &str) -> String {
    let bytes = encoding::all::ISO_2022_JP
        .encode(text, EncoderTrap::Strict)
        .expect("JIS X 0208 text");
    String::from_utf8(bytes).expect("ISO 2022 bytes are 7-bit")
}

impl Fixture {
    fn next(&mut self) -> usize {
        self.counter += 1;
        self.counter
    }

    fn kanji(&mut self) -> String {
        let n = self.next();
        let k: Vec<char> = KANJI.chars().collect();
        let m = k.len();
        [k[n % m], k[(n / m) % m], k[(n / m / m) % m], '様']
            .iter()
            .collect()
    }

    fn text(&mut self, prefix: &str, max: usize) -> String {
        let n = self.next();
        let token = format!("{prefix}{n:05}Q");
        let mut v = match &self.family {
            Some(f) => format!("{token} {f}"),
            None => token.clone(),
        };
        v.truncate(max);
        self.planted.ascii.insert(token);
        v
    }

    /// A value consistent with `vr` that no other attribute has.
    fn value(&mut self, tag: Tag, vr: VR, depth: usize) -> Option<DataElement<InMemDicomObject>> {
        let n = self.next();
        let p = |v: String| Some(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        match vr {
            VR::AE => {
                let t = self.text("AE", 16);
                p(t)
            }
            VR::CS => {
                let t = format!("CNRY{n:05}Q");
                self.planted.ascii.insert(t.clone());
                match &self.family {
                    Some(f) => p(format!("{t} {f}")),
                    None => p(t),
                }
            }
            VR::SH => {
                let t = self.text("SH", 16);
                p(t)
            }
            VR::LO | VR::LT | VR::ST | VR::UT | VR::UC => {
                let ascii = self.text(&format!("{vr:?}"), 40);
                let kanji = self.kanji();
                self.planted.japanese.insert(kanji.clone());
                p(format!("{ascii} {}", jis(&kanji)))
            }
            VR::PN => {
                let family = self.text("PNF", 30);
                let given = self.text("PNG", 30);
                let (a, b) = (self.kanji(), self.kanji());
                self.planted.japanese.insert(a.clone());
                self.planted.japanese.insert(b.clone());
                p(format!("{family}^{given}={}^{}", jis(&a), jis(&b)))
            }
            VR::UI => {
                let u = format!("1.2.826.0.1.3680043.10.1043.{depth}.{n}");
                self.planted.uids.insert(u.clone());
                p(u)
            }
            VR::DA => {
                let d = chrono::NaiveDate::from_ymd_opt(1931, 1, 1).expect("date")
                    + chrono::Duration::days(n as i64);
                let d = d.format("%Y%m%d").to_string();
                self.planted.dates.insert(d.clone());
                p(d)
            }
            VR::DT => {
                let d = chrono::NaiveDate::from_ymd_opt(1931, 1, 1).expect("date")
                    + chrono::Duration::days(n as i64);
                let d = d.format("%Y%m%d").to_string();
                self.planted.dates.insert(d.clone());
                p(format!("{d}101010"))
            }
            VR::TM => {
                let t = format!("235959.{n:06}");
                self.planted.times.insert(t.clone());
                p(t)
            }
            VR::DS => {
                let t = format!("7777.{n:05}");
                self.planted.ascii.insert(t.clone());
                p(t)
            }
            VR::IS => {
                let t = format!("91{n:07}");
                self.planted.ascii.insert(t.clone());
                p(t)
            }
            VR::AS => p("042Y".into()),
            VR::UR => {
                let t = self.text("urn:cnry:", 40);
                p(t)
            }
            VR::OB | VR::OW | VR::UN | VR::OF | VR::OD | VR::OL | VR::OV => {
                let t = format!("BINCNRY{n:05}Q");
                self.planted.ascii.insert(t.clone());
                Some(DataElement::new(
                    tag,
                    vr,
                    PrimitiveValue::from(t.into_bytes()),
                ))
            }
            VR::US => Some(DataElement::new(tag, vr, PrimitiveValue::from(7u16))),
            VR::UL => Some(DataElement::new(tag, vr, PrimitiveValue::from(7u32))),
            VR::SS => Some(DataElement::new(tag, vr, PrimitiveValue::from(7i16))),
            VR::SL => Some(DataElement::new(tag, vr, PrimitiveValue::from(7i32))),
            VR::FL => Some(DataElement::new(tag, vr, PrimitiveValue::from(7f32))),
            VR::FD => Some(DataElement::new(tag, vr, PrimitiveValue::from(7f64))),
            VR::SQ => {
                // One item with an identifying name and free text in it.
                let name = self.value(tags::PERSON_NAME, VR::PN, depth + 1)?;
                let text = self.value(tags::TEXT_VALUE, VR::UT, depth + 1)?;
                let item = InMemDicomObject::from_element_iter([name, text]);
                Some(DataElement::new(
                    tag,
                    vr,
                    DataSetSequence::new(vec![item], Length::UNDEFINED),
                ))
            }
            _ => None,
        }
    }

    /// Every exact-tag row of the table, with a value.
    fn rows(&mut self, depth: usize) -> Vec<DataElement<InMemDicomObject>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        // Set by the fixture itself at the top level.
        let own = [
            tags::PATIENT_NAME,
            tags::CONTENT_SEQUENCE,
            tags::SPECIFIC_CHARACTER_SET,
            tags::SOP_CLASS_UID,
            tags::MODALITY,
            CARRIER,
        ];
        for row in ATTRIBUTES.iter() {
            let Some((g, e)) = row.tag.exact() else {
                continue;
            };
            let tag = Tag(g, e);
            // File Meta Information is planted in the meta group instead; a tag in two rows
            // (retired and current names) once.
            if g == 0x0002 || !seen.insert(tag) || (depth == 0 && own.contains(&tag)) {
                continue;
            }
            let Some(entry) = StandardDataDictionary.by_tag(tag) else {
                continue;
            };
            let vr = entry.vr().relaxed();
            if let Some(el) = self.value(tag, vr, depth) {
                if depth == 0 {
                    self.planted.top.push(tag);
                }
                out.push(el);
            }
        }
        out
    }

    fn private(&mut self, group: u16) -> Vec<DataElement<InMemDicomObject>> {
        let creator = self.text("PRIVCREATOR", 64);
        let lo = self.text("PRIVLO", 64);
        let name = self.value(tags::PATIENT_NAME, VR::PN, 9).expect("name");
        vec![
            DataElement::new(Tag(group, 0x0010), VR::LO, PrimitiveValue::from(creator)),
            DataElement::new(Tag(group, 0x1001), VR::LO, PrimitiveValue::from(lo)),
            DataElement::new(
                Tag(group, 0x1002),
                VR::SQ,
                DataSetSequence::new(
                    vec![InMemDicomObject::from_element_iter([name])],
                    Length::UNDEFINED,
                ),
            ),
        ]
    }

    /// A structured report's content: text, a name, a date and a UID, two levels deep.
    fn content(&mut self) -> DataElement<InMemDicomObject> {
        let item =
            |f: &mut Fixture, value_type: &str, tag: Tag, vr: VR, nested: Vec<InMemDicomObject>| {
                let mut els = vec![
                    DataElement::new(
                        tags::RELATIONSHIP_TYPE,
                        VR::CS,
                        PrimitiveValue::from("CONTAINS"),
                    ),
                    DataElement::new(tags::VALUE_TYPE, VR::CS, PrimitiveValue::from(value_type)),
                    DataElement::new(
                        tags::CONCEPT_NAME_CODE_SEQUENCE,
                        VR::SQ,
                        DataSetSequence::new(
                            vec![InMemDicomObject::from_element_iter([
                                DataElement::new(
                                    tags::CODE_VALUE,
                                    VR::SH,
                                    PrimitiveValue::from("121071"),
                                ),
                                DataElement::new(
                                    tags::CODING_SCHEME_DESIGNATOR,
                                    VR::SH,
                                    PrimitiveValue::from("DCM"),
                                ),
                                DataElement::new(
                                    tags::CODE_MEANING,
                                    VR::LO,
                                    PrimitiveValue::from("Finding"),
                                ),
                            ])],
                            Length::UNDEFINED,
                        ),
                    ),
                ];
                els.extend(f.value(tag, vr, 5));
                if !nested.is_empty() {
                    els.push(DataElement::new(
                        tags::CONTENT_SEQUENCE,
                        VR::SQ,
                        DataSetSequence::new(nested, Length::UNDEFINED),
                    ));
                }
                InMemDicomObject::from_element_iter(els)
            };
        let deep = item(self, "TEXT", tags::TEXT_VALUE, VR::UT, vec![]);
        let items = vec![
            item(self, "TEXT", tags::TEXT_VALUE, VR::UT, vec![deep]),
            item(self, "PNAME", tags::PERSON_NAME, VR::PN, vec![]),
            item(self, "DATE", tags::DATE, VR::DA, vec![]),
            item(self, "UIDREF", tags::UID, VR::UI, vec![]),
        ];
        DataElement::new(
            tags::CONTENT_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(items, Length::UNDEFINED),
        )
    }
}

/// A sequence the table does not list (kept and cleaned item by item).
const CARRIER: Tag = tags::ANATOMIC_REGION_SEQUENCE;
const INNER_CARRIER: Tag = tags::PRIMARY_ANATOMIC_STRUCTURE_SEQUENCE;

fn fixture(dir: &Path, family: Option<&str>) -> (std::path::PathBuf, Planted) {
    assert!(dokuei_deid::rows_for(CARRIER.group(), CARRIER.element()).is_empty());
    assert!(dokuei_deid::rows_for(INNER_CARRIER.group(), INNER_CARRIER.element()).is_empty());
    let mut f = Fixture {
        planted: Planted::default(),
        counter: 0,
        family: family.map(str::to_uppercase),
    };
    let mut top = f.rows(0);
    // Depth 3: every row again inside an item of a sequence inside an item of a sequence.
    let depth3 = InMemDicomObject::from_element_iter(f.rows(2));
    let mut depth2_elements = f.rows(1);
    depth2_elements.push(DataElement::new(
        INNER_CARRIER,
        VR::SQ,
        DataSetSequence::new(vec![depth3], Length::UNDEFINED),
    ));
    top.retain(|e| e.tag() != CARRIER);
    top.push(DataElement::new(
        CARRIER,
        VR::SQ,
        DataSetSequence::new(
            vec![InMemDicomObject::from_element_iter(depth2_elements)],
            Length::UNDEFINED,
        ),
    ));
    top.extend(f.private(0x0009));
    top.extend(f.private(0x0011));
    top.retain(|e| e.tag() != tags::CONTENT_SEQUENCE);
    top.push(f.content());
    // An overlay with data, a description and comments.
    let overlay_text = f.text("OVLDESC", 64);
    let overlay_comment = f.text("OVLCOMMENT", 64);
    top.extend([
        DataElement::new(Tag(0x6000, 0x0010), VR::US, PrimitiveValue::from(4u16)),
        DataElement::new(Tag(0x6000, 0x0011), VR::US, PrimitiveValue::from(4u16)),
        DataElement::new(
            Tag(0x6000, 0x0022),
            VR::LO,
            PrimitiveValue::from(overlay_text),
        ),
        DataElement::new(
            Tag(0x6000, 0x4000),
            VR::LT,
            PrimitiveValue::from(overlay_comment),
        ),
    ]);
    let overlay_bits = format!("OVLBITS{:05}Q", f.next());
    f.planted.ascii.insert(overlay_bits.clone());
    top.push(DataElement::new(
        Tag(0x6000, 0x3000),
        VR::OW,
        PrimitiveValue::from(overlay_bits.into_bytes()),
    ));
    // The patient: a name in ASCII and Japanese, an ID; the character sets.
    let family_name = family.unwrap_or("Kanarifam").to_owned();
    let patient_name = format!("{family_name}^Tester={}^{}", jis("木村"), jis("清"));
    if family.is_some() {
        f.planted.ascii.insert(family_name.to_uppercase());
    }
    f.planted.ascii.insert(family_name.clone());
    f.planted.japanese.insert("木村".into());
    top.retain(|e| {
        ![
            tags::PATIENT_NAME,
            tags::SPECIFIC_CHARACTER_SET,
            tags::SOP_CLASS_UID,
            tags::MODALITY,
        ]
        .contains(&e.tag())
    });
    top.extend([
        DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::Strs(["".to_owned(), "ISO 2022 IR 87".to_owned()].into()),
        ),
        DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from(patient_name),
        ),
        DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
        ),
        DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("CT")),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(2u16)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(2u16)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(12u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(11u16)),
        DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from("MONOCHROME2"),
        ),
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(vec![0u8; 8])),
    ]);
    let obj = InMemDicomObject::from_element_iter(top);
    let uid = |tag| {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .expect("planted")
            .trim_end_matches('\0')
            .to_owned()
    };
    let meta_ae = f.text("METAAE", 16);
    let meta_private = format!("METAPRIV{:05}Q", f.next());
    f.planted.ascii.insert(meta_private.clone());
    let meta_creator = format!("1.2.826.0.1.3680043.10.1043.8.{}", f.next());
    f.planted.uids.insert(meta_creator.clone());
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax("1.2.840.10008.1.2.1")
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
        .media_storage_sop_instance_uid(uid(tags::SOP_INSTANCE_UID))
        .implementation_class_uid("1.2.826.0.1.3680043.10.1043.9.1")
        .source_application_entity_title(meta_ae)
        .private_information_creator_uid(meta_creator)
        .private_information(meta_private.into_bytes())
        .build()
        .expect("meta");
    f.planted
        .uids
        .insert("1.2.826.0.1.3680043.10.1043.9.1".into());
    let path = dir.join("canary.dcm");
    obj.with_exact_meta(meta)
        .write_to_file(&path)
        .expect("fixture written");
    (path, f.planted)
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Everything planted that is still in `bytes`.
fn leaks(bytes: &[u8], planted: &Planted, with_dates: bool) -> Vec<String> {
    let mut found = Vec::new();
    for v in planted.ascii.iter().chain(&planted.uids) {
        if find(bytes, v.as_bytes()) {
            found.push(v.clone());
        }
    }
    if with_dates {
        for d in planted.dates.iter().chain(&planted.times) {
            if find(bytes, d.as_bytes()) {
                found.push(format!("date {d}"));
            }
        }
    }
    for k in &planted.japanese {
        let iso = jis(k);
        // The JIS X 0208 bytes between the escape sequences, with or without them.
        let core = iso
            .trim_start_matches("\u{1b}$B")
            .trim_end_matches("\u{1b}(B");
        let encodings: [(&str, Vec<u8>); 4] = [
            ("ISO 2022 IR 87", core.as_bytes().to_vec()),
            (
                "Shift_JIS",
                encoding::all::WINDOWS_31J
                    .encode(k, EncoderTrap::Strict)
                    .expect("sjis"),
            ),
            (
                "EUC-JP",
                encoding::all::EUC_JP
                    .encode(k, EncoderTrap::Strict)
                    .expect("euc"),
            ),
            ("UTF-8", k.as_bytes().to_vec()),
        ];
        for (name, enc) in encodings {
            if find(bytes, &enc) {
                found.push(format!("{k} in {name}"));
            }
        }
    }
    found
}

fn deidentify(path: &Path, policy: Policy) -> (Vec<u8>, DefaultDicomObject) {
    let source = dokuei_dicom::Source::File {
        path: path.to_path_buf(),
    };
    let obj = source
        .open(dokuei_dicom::source::ReadDepth::Full)
        .expect("fixture read")
        .expect("DICOM");
    let d = Deidentifier::new(
        policy,
        SiteKey::from_bytes([42; 32]),
        Pseudonyms::in_memory("SITE"),
    );
    let out = d.deidentify(obj).expect("de-identified");
    let mut bytes = Vec::new();
    out.object.write_all(&mut bytes).expect("written");
    if let Ok(d) = std::env::var("DOKUEI_CANARY_DUMP") {
        std::fs::write(d, &bytes).expect("dump");
    }
    let back = dicom_object::OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(bytes[128..].to_vec()))
        .expect("the output reads back");
    (bytes, back)
}

#[test]
fn the_fixture_plants_every_named_attribute_and_its_values_are_findable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, planted) = fixture(dir.path(), None);
    // Each exact row with a dictionary entry, at the top level.
    let exact = ATTRIBUTES.iter().filter(|a| a.tag.is_exact()).count();
    assert!(
        planted.top.len() > 550,
        "{} of {exact} rows planted",
        planted.top.len()
    );
    let bytes = std::fs::read(&path).expect("read");
    // The search finds what is there: every planted value is in the input.
    let found: BTreeSet<String> = leaks(&bytes, &planted, true).into_iter().collect();
    let mut absent = Vec::new();
    for v in planted.ascii.iter().chain(&planted.uids) {
        if !found.contains(v) {
            absent.push(v.clone());
        }
    }
    for d in planted.dates.iter().chain(&planted.times) {
        if !found.contains(&format!("date {d}")) {
            absent.push(d.clone());
        }
    }
    for k in &planted.japanese {
        if !found.contains(&format!("{k} in ISO 2022 IR 87")) {
            absent.push(k.clone());
        }
    }
    assert!(
        absent.is_empty(),
        "planted but not in the input: {absent:?}"
    );
    let missing: Vec<String> = found.into_iter().collect();
    let all = planted.ascii.len() + planted.uids.len() + planted.dates.len() + planted.times.len();
    assert!(
        missing.len() == all + planted.japanese.len(),
        "only {} of {} planted values found in the input",
        missing.len(),
        all + planted.japanese.len()
    );
}

#[test]
fn basic_profile_leaves_no_planted_value_in_any_encoding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, planted) = fixture(dir.path(), None);
    let (bytes, back) = deidentify(&path, Policy::basic());
    let found = leaks(&bytes, &planted, true);
    assert!(found.is_empty(), "{} leaked: {found:?}", found.len());
    // The markers.
    let s = |tag| {
        back.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    assert_eq!(s(tags::PATIENT_IDENTITY_REMOVED), "YES");
    assert_eq!(
        s(tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED),
        "REMOVED"
    );
    assert!(s(tags::DEIDENTIFICATION_METHOD).contains("2023b"));
    assert_eq!(s(tags::PATIENT_NAME), "SITE-000001");
    assert_eq!(s(tags::PATIENT_ID), "SITE-000001");
    // No private group, no overlay group, no group length left.
    assert!(back.iter().all(|e| e.tag().group() % 2 == 0));
    assert!(
        back.iter()
            .all(|e| !(0x6000..=0x60FF).contains(&e.tag().group()))
    );
    // The meta group names the new instance, and nothing of the old.
    assert_eq!(
        back.meta()
            .media_storage_sop_instance_uid()
            .trim_end_matches('\0'),
        s(tags::SOP_INSTANCE_UID)
    );
    assert!(back.meta().source_application_entity_title().is_none());
    assert!(back.meta().private_information_creator_uid().is_none());
}

#[test]
fn with_options_identifying_descriptions_go_and_dates_move_by_one_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Every free text names the patient: clean descriptors and structured content must drop
    // them all.
    let (path, planted) = fixture(dir.path(), Some("Kfam"));
    let policy = Policy::basic()
        .with(ProfileOption::RetainLongitudinalModifiedDates)
        .and_then(|p| p.with(ProfileOption::CleanDescriptors))
        .and_then(|p| p.with(ProfileOption::CleanStructuredContent))
        .expect("options");
    let (bytes, back) = deidentify(&path, policy);
    let found = leaks(&bytes, &planted, false);
    assert!(found.is_empty(), "{} leaked: {found:?}", found.len());
    let s = |tag| {
        back.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    assert_eq!(
        s(tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED),
        "MODIFIED"
    );
    // Every date kept at the top level moved back by the same number of days.
    let mut shifts = BTreeSet::new();
    let input = dicom_object::open_file(&path).expect("input");
    for tag in &planted.top {
        let (Some(a), Some(b)) = (input.get(*tag), back.get(*tag)) else {
            continue;
        };
        if b.vr() != VR::DA {
            continue;
        }
        let day = |e: &dicom_object::mem::InMemElement| {
            chrono::NaiveDate::parse_from_str(e.to_str().ok()?.trim(), "%Y%m%d").ok()
        };
        if let (Some(x), Some(y)) = (day(a), day(b)) {
            shifts.insert((x - y).num_days());
        }
    }
    assert_eq!(shifts.len(), 1, "one offset for the patient: {shifts:?}");
    let shift = *shifts.iter().next().expect("a shift");
    assert!((1..=dokuei_deid::keys::MAX_DAY_SHIFT).contains(&shift));
}

#[test]
fn the_same_holds_when_the_pixel_data_is_copied_over_byte_for_byte() {
    // `run` reads the fixture up to its Pixel Data and copies that element from the input
    // file: the header is cleaned the same way, and the pixels arrive unchanged.
    let dir = tempfile::tempdir().expect("temp dir");
    let (full, planted) = fixture(dir.path(), None);
    // The table names attributes after Pixel Data (Digital Signatures): with them the file
    // takes the in-memory path. Without them, Pixel Data is last.
    let mut obj = dicom_object::open_file(&full).expect("fixture");
    let after: Vec<Tag> = obj
        .iter()
        .map(|e| e.tag())
        .filter(|t| *t > tags::PIXEL_DATA)
        .collect();
    assert!(!after.is_empty());
    for t in after {
        obj.remove_element(t);
    }
    let path = dir.path().join("pixels-last.dcm");
    obj.write_to_file(&path).expect("written");
    assert!(
        dokuei_dicom::Source::File { path: full.clone() }
            .open_split()
            .expect("split")
            .is_none(),
        "elements after the Pixel Data: the in-memory path"
    );
    assert!(
        dokuei_dicom::Source::File { path: path.clone() }
            .open_split()
            .expect("split")
            .is_some(),
        "the fixture's Pixel Data is last: the copy path applies"
    );
    let out = dir.path().join("out");
    let d = Deidentifier::new(
        Policy::basic(),
        SiteKey::from_bytes([42; 32]),
        Pseudonyms::in_memory("SITE"),
    );
    let report = dokuei_deid::run::run(
        &d,
        std::slice::from_ref(&path),
        &out,
        &std::sync::atomic::AtomicBool::new(false),
        |_, _| {},
    )
    .expect("run");
    let written = out.join(report.files[0].output.as_deref().expect("written"));
    let bytes = std::fs::read(&written).expect("output");
    let found = leaks(&bytes, &planted, true);
    assert!(found.is_empty(), "{} leaked: {found:?}", found.len());
    // Byte for byte the same file as the in-memory path writes.
    let (whole, _) = deidentify(&path, Policy::basic());
    assert_eq!(bytes, whole);
}

#[test]
fn sequences_written_as_un_are_cleaned_and_unknown_un_bytes_removed() {
    // (0018,A001) Contributing Equipment Sequence, not in Table E.1-1, written as UN with a
    // defined length: one implicit VR little endian item holding an operator's name and an
    // institution. And an attribute no dictionary knows, as UN, holding a name.
    let mut item = Vec::new();
    let mut put = |group: u16, element: u16, value: &[u8]| {
        item.extend(group.to_le_bytes());
        item.extend(element.to_le_bytes());
        item.extend((value.len() as u32).to_le_bytes());
        item.extend(value);
    };
    put(0x0008, 0x0070, b"VENDOR");
    put(0x0008, 0x0080, b"GENERAL HOSP");
    put(0x0008, 0x1070, b"SMITH^JANE");
    let mut seq = vec![0xFE, 0xFF, 0x00, 0xE0];
    seq.extend((item.len() as u32).to_le_bytes());
    seq.extend(&item);
    let obj = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
        ),
        DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ),
        DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("CT")),
        DataElement::new(Tag(0x0018, 0xA001), VR::UN, PrimitiveValue::from(seq)),
        DataElement::new(
            Tag(0x0018, 0xFFF0),
            VR::UN,
            PrimitiveValue::from(b"DOE^JOHN".to_vec()),
        ),
    ]);
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax("1.2.840.10008.1.2.1")
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
        .media_storage_sop_instance_uid("1.2.3.4")
        .build()
        .expect("meta");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("un.dcm");
    obj.with_exact_meta(meta)
        .write_to_file(&path)
        .expect("written");
    let (bytes, back) = deidentify(&path, Policy::basic());
    for leak in ["SMITH", "GENERAL HOSP", "DOE^JOHN"] {
        assert!(!find(&bytes, leak.as_bytes()), "{leak} leaked");
    }
    // The sequence itself is kept, read as a sequence, with its harmless part.
    let kept = back.get(Tag(0x0018, 0xA001)).expect("sequence kept");
    let items = kept.items().expect("read as a sequence");
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]
            .get(tags::MANUFACTURER)
            .and_then(|e| e.to_str().ok())
            .as_deref(),
        Some("VENDOR")
    );
    assert!(back.get(Tag(0x0018, 0xFFF0)).is_none());
}
