//! Structured reports, TID 1500 "Imaging Measurement Report", as Comprehensive 3D SR:
//!
//! - the AI's report ([`write_measurement_report`]): observer = device (the model), one
//!   volumetric group (TID 1411) per finding with its Tracking UID, finding code, finding site,
//!   the segment it refers to, longest diameter, volume and the model's probability; and one
//!   planar group (TID 1410) per finding with its bounding box as a closed polyline on the key
//!   slice (common web viewers draw only planar SR content);
//! - the physician's assessment ([`write_assessment`]): observer = person, VERIFIED by the
//!   reader at sign-off, one group per AI finding (same Tracking UID) with the verdict and, for
//!   rejections, the coded reason; edited and added findings refer to segments of a new SEG.

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::{FileDicomObject, InMemDicomObject};

use crate::codes::{self, Code, dcm, private, sct};
use crate::common::{self, ResultsError};
use crate::ds::Ds;
use crate::model::{Algorithm, ObjectIdentity, ResultFinding, SourceSeries, StudyContext, Writer};
use crate::seg::SEGMENTATION_STORAGE;

pub const COMPREHENSIVE_3D_SR: &str = "1.2.840.10008.5.1.4.1.1.88.34";

/// One content item of the SR tree.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    ds: Ds,
    children: Vec<Item>,
}

impl Item {
    pub(crate) fn new(relationship: &'static str, value_type: &str, name: &Code) -> Item {
        let mut ds = Ds::new();
        ds.s(tags::RELATIONSHIP_TYPE, VR::CS, relationship)
            .s(tags::VALUE_TYPE, VR::CS, value_type)
            .code(tags::CONCEPT_NAME_CODE_SEQUENCE, name);
        Item {
            ds,
            children: Vec::new(),
        }
    }

    fn container(relationship: &'static str, name: &Code, template: Option<&str>) -> Item {
        let mut it = Item::new(relationship, "CONTAINER", name);
        it.ds.s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
        if let Some(t) = template {
            it.ds
                .seq(tags::CONTENT_TEMPLATE_SEQUENCE, vec![template_item(t)]);
        }
        it
    }

    pub(crate) fn code(relationship: &'static str, name: &Code, value: &Code) -> Item {
        let mut it = Item::new(relationship, "CODE", name);
        it.ds.code(tags::CONCEPT_CODE_SEQUENCE, value);
        it
    }

    pub(crate) fn text(relationship: &'static str, name: &Code, value: &str) -> Item {
        let mut it = Item::new(relationship, "TEXT", name);
        it.ds.s(tags::TEXT_VALUE, VR::UT, value);
        it
    }

    fn uidref(relationship: &'static str, name: &Code, value: &str) -> Item {
        let mut it = Item::new(relationship, "UIDREF", name);
        it.ds.s(tags::UID, VR::UI, value);
        it
    }

    fn pname(relationship: &'static str, name: &Code, value: &str) -> Item {
        let mut it = Item::new(relationship, "PNAME", name);
        it.ds.s(tags::PERSON_NAME, VR::PN, value);
        it
    }

    fn num(name: &Code, value: f64, unit: &Code) -> Item {
        let mut it = Item::new("CONTAINS", "NUM", name);
        let mut mv = Ds::new();
        mv.code(tags::MEASUREMENT_UNITS_CODE_SEQUENCE, unit)
            .ds(tags::NUMERIC_VALUE, &[value])
            .fd(tags::FLOATING_POINT_VALUE, &[value]);
        it.ds.seq(tags::MEASURED_VALUE_SEQUENCE, vec![mv]);
        it
    }

    fn image(
        relationship: &'static str,
        name: Option<&Code>,
        sop_class: &str,
        sop_instance: &str,
        segment: Option<u16>,
    ) -> Item {
        let mut ds = Ds::new();
        ds.s(tags::RELATIONSHIP_TYPE, VR::CS, relationship)
            .s(tags::VALUE_TYPE, VR::CS, "IMAGE");
        if let Some(n) = name {
            ds.code(tags::CONCEPT_NAME_CODE_SEQUENCE, n);
        }
        let mut r = Ds::new();
        r.s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, sop_class).s(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            sop_instance,
        );
        if let Some(s) = segment {
            r.us(tags::REFERENCED_SEGMENT_NUMBER, &[s]);
        }
        ds.seq(tags::REFERENCED_SOP_SEQUENCE, vec![r]);
        Item {
            ds,
            children: Vec::new(),
        }
    }

    /// An item built by hand (a value type this module has no constructor for).
    pub(crate) fn from_ds(ds: Ds) -> Item {
        Item {
            ds,
            children: Vec::new(),
        }
    }

    fn with(mut self, children: Vec<Item>) -> Item {
        self.children.extend(children);
        self
    }

    /// The item as a data set, with its children in a Content Sequence.
    pub(crate) fn into_ds(self) -> Ds {
        let mut ds = self.ds;
        if !self.children.is_empty() {
            let children = self.children.into_iter().map(Item::into_ds).collect();
            ds.seq(tags::CONTENT_SEQUENCE, children);
        }
        ds
    }
}

pub(crate) fn template_item(id: &str) -> Ds {
    let mut d = Ds::new();
    d.s(tags::MAPPING_RESOURCE, VR::CS, "DCMR")
        .s(tags::TEMPLATE_IDENTIFIER, VR::CS, id);
    d
}

fn mm() -> Code {
    Code::new("mm", "UCUM", "millimeter")
}
fn mm2() -> Code {
    Code::new("mm2", "UCUM", "square millimeter")
}
fn mm3() -> Code {
    Code::new("mm3", "UCUM", "cubic millimeter")
}
fn no_units() -> Code {
    Code::new("1", "UCUM", "no units")
}

/// The procedure reported (TID 1500 row 3), from the source modality: CID 100 has one code per
/// modality family.
fn procedure_reported(source: &SourceSeries) -> Code {
    match source.modality.as_str() {
        "CT" => Code::new("25045-6", "LN", "CT unspecified body region"),
        "MR" => Code::new("25056-3", "LN", "MRI unspecified body region"),
        "PT" => Code::new("44136-0", "LN", "PET unspecified body region"),
        "NM" => Code::new("49118-3", "LN", "NM unspecified body region"),
        "CR" | "DX" | "DR" | "RG" | "MG" => {
            Code::new("43468-8", "LN", "XR unspecified body region")
        }
        _ => sct("363679005", "Imaging procedure"),
    }
}

/// Who observed: the device (a model) or a person.
pub(crate) enum Observer<'a> {
    Device(&'a Algorithm),
    Person(&'a str),
}

pub(crate) fn observer_context(o: &Observer<'_>) -> Vec<Item> {
    match o {
        Observer::Device(a) => vec![
            Item::code(
                "HAS OBS CONTEXT",
                &dcm("121005", "Observer Type"),
                &dcm("121007", "Device"),
            ),
            Item::uidref(
                "HAS OBS CONTEXT",
                &dcm("121012", "Device Observer UID"),
                &a.device_uid(),
            ),
            Item::text(
                "HAS OBS CONTEXT",
                &dcm("121013", "Device Observer Name"),
                &a.name,
            ),
            Item::text(
                "HAS OBS CONTEXT",
                &dcm("121014", "Device Observer Manufacturer"),
                &a.manufacturer,
            ),
            Item::text(
                "HAS OBS CONTEXT",
                &dcm("121015", "Device Observer Model Name"),
                &format!("{} {}", a.id, a.version),
            ),
        ],
        Observer::Person(name) => vec![
            Item::code(
                "HAS OBS CONTEXT",
                &dcm("121005", "Observer Type"),
                &dcm("121006", "Person"),
            ),
            Item::pname(
                "HAS OBS CONTEXT",
                &dcm("121008", "Person Observer Name"),
                name,
            ),
        ],
    }
}

fn tracking(f: &ResultFinding) -> Vec<Item> {
    vec![
        Item::text(
            "HAS OBS CONTEXT",
            &dcm("112039", "Tracking Identifier"),
            &f.tracking_id,
        ),
        Item::uidref(
            "HAS OBS CONTEXT",
            &dcm("112040", "Tracking Unique Identifier"),
            &f.tracking_uid,
        ),
    ]
}

fn finding_items(f: &ResultFinding) -> Vec<Item> {
    vec![
        Item::code(
            "CONTAINS",
            &sct("276214006", "Finding category"),
            &f.coding.category,
        ),
        Item::code("CONTAINS", &dcm("121071", "Finding"), &f.coding.finding),
    ]
}

fn site_item(f: &ResultFinding) -> Option<Item> {
    f.coding
        .site
        .as_ref()
        .map(|s| Item::code("HAS CONCEPT MOD", &sct("363698007", "Finding Site"), s))
}

/// TID 1411: the finding's region is segment `segment` of SEG `seg_uid`.
fn volumetric_group(
    f: &ResultFinding,
    seg_uid: &str,
    segment: u16,
    source: &SourceSeries,
    extra: Vec<Item>,
) -> Item {
    let region = vec![
        Item::image(
            "CONTAINS",
            Some(&dcm("121191", "Referenced Segment")),
            SEGMENTATION_STORAGE,
            seg_uid,
            Some(segment),
        ),
        Item::uidref(
            "CONTAINS",
            &dcm("121232", "Source series for segmentation"),
            &source.series_uid,
        ),
    ];
    let mut measurements = Vec::new();
    if f.mask.len() > 1 || f.volume_mm3 > 0.0 {
        measurements.push(Item::num(&sct("118565006", "Volume"), f.volume_mm3, &mm3()));
    }
    measurements.push(Item::num(
        &sct("81827009", "Diameter"),
        f.longest_diameter_mm,
        &mm(),
    ));
    group(f, "1411", region, measurements, extra)
}

/// TID 1410: the finding's bounding box on its key slice, as a closed polyline.
fn planar_group(f: &ResultFinding, source: &SourceSeries, extra: Vec<Item>) -> Option<Item> {
    let im = source.images.get(f.key_slice as usize)?;
    let [r0, c0, r1, c1] = [
        f.bbox[0] as f32,
        f.bbox[1] as f32,
        f.bbox[2] as f32 + 1.0,
        f.bbox[3] as f32 + 1.0,
    ];
    // SCOORD pixel coordinates: (column, row), (0,0) the top-left corner of the first pixel.
    let points = [c0, r0, c1, r0, c1, r1, c0, r1, c0, r0];
    let mut region = Item::new("CONTAINS", "SCOORD", &dcm("111030", "Image Region"));
    region
        .ds
        .s(tags::GRAPHIC_TYPE, VR::CS, "POLYLINE")
        .fl(tags::GRAPHIC_DATA, &points);
    let mut selected = Item::image(
        "SELECTED FROM",
        None,
        &im.sop_class_uid,
        &im.sop_instance_uid,
        None,
    );
    if let Some(frame) = im.frame {
        let mut r = Ds::new();
        r.s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &im.sop_class_uid)
            .s(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                &im.sop_instance_uid,
            )
            .int_str(tags::REFERENCED_FRAME_NUMBER, i64::from(frame));
        selected.ds.seq(tags::REFERENCED_SOP_SEQUENCE, vec![r]);
    }
    region.children.push(selected);
    let mut measurements = Vec::new();
    if f.area_mm2 > 0.0 {
        measurements.push(Item::num(&sct("42798000", "Area"), f.area_mm2, &mm2()));
    }
    measurements.push(Item::num(
        &sct("103339001", "Long axis"),
        f.longest_diameter_mm,
        &mm(),
    ));
    Some(group(f, "1410", vec![region], measurements, extra))
}

/// A measurement group of template `template`: the finding's tracking identifiers and codes,
/// then `region` items, its site, `measurements`, the model's probability and `extra` items.
fn group(
    f: &ResultFinding,
    template: &str,
    region: Vec<Item>,
    measurements: Vec<Item>,
    extra: Vec<Item>,
) -> Item {
    let mut children = tracking(f);
    children.extend(finding_items(f));
    children.extend(region);
    children.extend(site_item(f));
    children.extend(measurements);
    if let Some(p) = f.probability {
        children.push(Item::num(&private("PROBABILITY"), p, &no_units()));
    }
    children.extend(extra);
    Item::container(
        "CONTAINS",
        &dcm("125007", "Measurement Group"),
        Some(template),
    )
    .with(children)
}

/// TID 1501: a finding without a region of its own (a whole-image classification, or a verdict).
fn qualitative_group(f: &ResultFinding, extra: Vec<Item>) -> Item {
    group(f, "1501", vec![], vec![], extra)
}

/// Where a finding's region is: segment `segment_number` of the SEG `sop_instance_uid`.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRef {
    pub sop_instance_uid: String,
    pub series_uid: String,
    pub segment_number: u16,
}

/// An object a report refers to as evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRef {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_uid: String,
}

impl From<&SegmentRef> for ObjectRef {
    fn from(s: &SegmentRef) -> ObjectRef {
        ObjectRef {
            sop_class_uid: SEGMENTATION_STORAGE.to_owned(),
            sop_instance_uid: s.sop_instance_uid.clone(),
            series_uid: s.series_uid.clone(),
        }
    }
}

/// The AI's TID 1500 report of `findings` (made by `algorithm`); `segments[i]` is where finding
/// `i` is segmented, if it is.
#[allow(clippy::too_many_arguments)]
pub fn write_measurement_report(
    study: &StudyContext,
    source: &SourceSeries,
    algorithm: &Algorithm,
    findings: &[ResultFinding],
    segments: &[Option<SegmentRef>],
    id: &ObjectIdentity,
    writer: &Writer,
) -> Result<FileDicomObject<InMemDicomObject>, ResultsError> {
    let mut groups = Vec::new();
    for (f, seg) in findings
        .iter()
        .zip(segments.iter().chain(std::iter::repeat(&None)))
    {
        match seg {
            Some(s) => {
                groups.push(volumetric_group(
                    f,
                    &s.sop_instance_uid,
                    s.segment_number,
                    source,
                    vec![],
                ));
                groups.extend(planar_group(f, source, vec![]));
            }
            None => groups.push(qualitative_group(f, vec![])),
        }
    }
    let evidence_segs: Vec<ObjectRef> = segments.iter().flatten().map(ObjectRef::from).collect();
    document(
        study,
        source,
        &Observer::Device(algorithm),
        groups,
        findings,
        &evidence_segs,
        &[],
        None,
        &[algorithm],
        id,
        writer,
    )
}

/// What a reader did with a finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accepted,
    /// With the coded reason (a value of [`codes::PRIVATE_CODES`], e.g. `REJ-ARTEFACT`) and the
    /// reader's words, if any.
    Rejected {
        reason: String,
        text: String,
    },
    /// Edited by the reader: the finding as edited, its segment in the reader's SEG.
    Modified {
        edited: Box<ResultFinding>,
        segment: SegmentRef,
    },
    /// Drawn by the reader (no AI finding): its segment in the reader's SEG.
    Added {
        segment: SegmentRef,
    },
}

/// One assessed finding: the AI finding (or, for [`Verdict::Added`], the reader's), and the
/// verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub finding: ResultFinding,
    /// Where the AI's SEG has the finding's region, if it has one: an accepted or rejected
    /// finding's group refers to it (TID 1411), else the group has no region (TID 1501).
    pub ai_segment: Option<SegmentRef>,
    pub verdict: Verdict,
}

/// The reader who signed off, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Verifier {
    /// DICOM PN, e.g. `Yamada^Hanako`.
    pub name: String,
    pub organization: String,
    /// DT, e.g. `20261201103000+0000`.
    pub date_time: String,
    /// The signed checkpoint of Dokuei's decision ledger made at this sign-off (one line,
    /// `dokuei-checkpoint/1 …`), written to a private element so that the PACS holding the SR
    /// witnesses the ledger (see [`LEDGER_CHECKPOINT`]).
    pub ledger_checkpoint: Option<String>,
}

/// The private creator of Dokuei's ledger elements.
pub const LEDGER_PRIVATE_CREATOR: &str = "DOKUEI LEDGER";
/// Where the assessment SR carries the ledger checkpoint: private block 0x10 of group 0x0071
/// (creator [`LEDGER_PRIVATE_CREATOR`] at (0071,0010)), element (0071,1001), UT.
pub const LEDGER_CHECKPOINT: dicom_core::Tag = dicom_core::Tag(0x0071, 0x1001);

/// The physician's TID 1500 at sign-off: VERIFIED by `verifier`, one group per assessment.
/// `assessed` lists the AI objects (SR and SEG) the verdicts are about, written to Pertinent
/// Other Evidence.
#[allow(clippy::too_many_arguments)]
pub fn write_assessment(
    study: &StudyContext,
    source: &SourceSeries,
    assessments: &[Assessment],
    assessed: &[ObjectRef],
    verifier: &Verifier,
    id: &ObjectIdentity,
    writer: &Writer,
) -> Result<FileDicomObject<InMemDicomObject>, ResultsError> {
    let verdict_name = private("AIRA-VERDICT");
    let mut groups = Vec::new();
    let mut segs = Vec::new();
    let mut algorithms = Vec::new();
    for a in assessments {
        if let Some(alg) = a.finding.origin.algorithm() {
            algorithms.push(alg);
        }
        // An accepted or rejected finding: a group about the AI's own region, when it has one.
        let about_ai_region = |extra: Vec<Item>| match &a.ai_segment {
            Some(s) => volumetric_group(
                &a.finding,
                &s.sop_instance_uid,
                s.segment_number,
                source,
                extra,
            ),
            None => qualitative_group(&a.finding, extra),
        };
        match &a.verdict {
            Verdict::Accepted => {
                groups.push(about_ai_region(vec![Item::code(
                    "CONTAINS",
                    &verdict_name,
                    &private("AIRA-ACCEPTED"),
                )]));
                segs.extend(a.ai_segment.as_ref().map(ObjectRef::from));
            }
            Verdict::Rejected { reason, text } => {
                let mut extra = vec![
                    Item::code("CONTAINS", &verdict_name, &private("AIRA-REJECTED")),
                    Item::code("CONTAINS", &private("AIRA-REASON"), &private(reason)),
                ];
                if !text.trim().is_empty() {
                    extra.push(Item::text("CONTAINS", &dcm("121106", "Comment"), text));
                }
                groups.push(about_ai_region(extra));
                segs.extend(a.ai_segment.as_ref().map(ObjectRef::from));
            }
            Verdict::Modified { edited, segment } => {
                segs.push(ObjectRef::from(segment));
                groups.push(volumetric_group(
                    edited,
                    &segment.sop_instance_uid,
                    segment.segment_number,
                    source,
                    vec![Item::code(
                        "CONTAINS",
                        &verdict_name,
                        &private("AIRA-MODIFIED"),
                    )],
                ));
            }
            Verdict::Added { segment } => {
                segs.push(ObjectRef::from(segment));
                groups.push(volumetric_group(
                    &a.finding,
                    &segment.sop_instance_uid,
                    segment.segment_number,
                    source,
                    vec![Item::code(
                        "CONTAINS",
                        &verdict_name,
                        &private("AIRA-ADDED"),
                    )],
                ));
            }
        }
    }
    segs.dedup_by(|a, b| a.sop_instance_uid == b.sop_instance_uid);
    let findings: Vec<ResultFinding> = assessments.iter().map(|a| a.finding.clone()).collect();
    let mut object = document(
        study,
        source,
        &Observer::Person(&verifier.name),
        groups,
        &findings,
        &segs,
        assessed,
        Some(verifier),
        &algorithms,
        id,
        writer,
    )?;
    if let Some(line) = &verifier.ledger_checkpoint {
        object.put(dicom_core::DataElement::new(
            dicom_core::Tag(0x0071, 0x0010),
            VR::LO,
            dicom_core::PrimitiveValue::from(LEDGER_PRIVATE_CREATOR),
        ));
        object.put(dicom_core::DataElement::new(
            LEDGER_CHECKPOINT,
            VR::UT,
            dicom_core::PrimitiveValue::from(line.as_str()),
        ));
    }
    Ok(object)
}

#[allow(clippy::too_many_arguments)]
fn document(
    study: &StudyContext,
    source: &SourceSeries,
    observer: &Observer<'_>,
    groups: Vec<Item>,
    findings: &[ResultFinding],
    seg_refs: &[ObjectRef],
    pertinent: &[ObjectRef],
    verifier: Option<&Verifier>,
    algorithms: &[&Algorithm],
    id: &ObjectIdentity,
    writer: &Writer,
) -> Result<FileDicomObject<InMemDicomObject>, ResultsError> {
    // Images the findings are on: the image library, and the evidence.
    let mut images: Vec<usize> = findings
        .iter()
        .flat_map(|f| {
            f.mask
                .iter()
                .map(|m| m.slice as usize)
                .chain([f.key_slice as usize])
        })
        .filter(|&i| i < source.images.len())
        .collect();
    images.sort_unstable();
    images.dedup();

    let mut root_children = vec![Item::code(
        "HAS CONCEPT MOD",
        &dcm("121049", "Language of Content Item and Descendants"),
        &Code::new("en-US", "RFC5646", "English (United States)"),
    )];
    root_children.extend(observer_context(observer));
    root_children.push(Item::code(
        "HAS CONCEPT MOD",
        &dcm("121058", "Procedure reported"),
        &procedure_reported(source),
    ));
    let library_entries: Vec<Item> = images
        .iter()
        .map(|&i| {
            let im = &source.images[i];
            Item::image(
                "CONTAINS",
                None,
                &im.sop_class_uid,
                &im.sop_instance_uid,
                None,
            )
        })
        .collect();
    let mut library = Item::container("CONTAINS", &dcm("111028", "Image Library"), None);
    if !library_entries.is_empty() {
        library.children.push(
            Item::container("CONTAINS", &dcm("126200", "Image Library Group"), None)
                .with(library_entries),
        );
    }
    root_children.push(library);
    if !groups.is_empty() {
        root_children.push(
            Item::container("CONTAINS", &dcm("126010", "Imaging Measurements"), None).with(groups),
        );
    }

    let mut ds = Ds::new();
    common::sop_common(&mut ds, COMPREHENSIVE_3D_SR, id);
    common::patient_study(&mut ds, study);
    common::series(&mut ds, "SR", id);
    ds.seq(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]);
    common::equipment(&mut ds, writer);
    common::contributing_equipment(&mut ds, algorithms, writer, id);

    // SR Document General Module.
    ds.s(tags::COMPLETION_FLAG, VR::CS, "COMPLETE")
        .seq(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]);
    match verifier {
        Some(v) => {
            let mut obs = Ds::new();
            obs.s(tags::VERIFYING_OBSERVER_NAME, VR::PN, &v.name)
                .seq(
                    tags::VERIFYING_OBSERVER_IDENTIFICATION_CODE_SEQUENCE,
                    vec![],
                )
                .s(tags::VERIFYING_ORGANIZATION, VR::LO, &v.organization)
                .s(tags::VERIFICATION_DATE_TIME, VR::DT, &v.date_time);
            ds.s(tags::VERIFICATION_FLAG, VR::CS, "VERIFIED")
                .seq(tags::VERIFYING_OBSERVER_SEQUENCE, vec![obs]);
        }
        None => {
            ds.s(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
        }
    }
    // Evidence: the source images and SEGs the content refers to; the assessed objects.
    let mut current: Vec<ObjectRef> = images
        .iter()
        .map(|&i| {
            let im = &source.images[i];
            ObjectRef {
                sop_class_uid: im.sop_class_uid.clone(),
                sop_instance_uid: im.sop_instance_uid.clone(),
                series_uid: source.series_uid.clone(),
            }
        })
        .collect();
    current.extend(seg_refs.iter().cloned());
    ds.seq(
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![evidence_study(&study.study_uid, &current)],
    );
    if !pertinent.is_empty() {
        ds.seq(
            tags::PERTINENT_OTHER_EVIDENCE_SEQUENCE,
            vec![evidence_study(&study.study_uid, pertinent)],
        );
    }
    // The private coding scheme, declared wherever it is used.
    let mut scheme = Ds::new();
    scheme
        .s(
            tags::CODING_SCHEME_DESIGNATOR,
            VR::SH,
            codes::PRIVATE_SCHEME,
        )
        .s(tags::CODING_SCHEME_UID, VR::UI, codes::PRIVATE_SCHEME_UID)
        .s(tags::CODING_SCHEME_NAME, VR::ST, codes::PRIVATE_SCHEME_NAME)
        .s(
            tags::CODING_SCHEME_VERSION,
            VR::SH,
            codes::PRIVATE_SCHEME_VERSION,
        )
        .s(
            tags::CODING_SCHEME_RESPONSIBLE_ORGANIZATION,
            VR::ST,
            "The Dokuei project",
        );
    ds.seq(tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE, vec![scheme]);

    // SR Document Content Module: the root container.
    ds.s(tags::VALUE_TYPE, VR::CS, "CONTAINER")
        .code(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            &dcm("126000", "Imaging Measurement Report"),
        )
        .s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE")
        .seq(tags::CONTENT_TEMPLATE_SEQUENCE, vec![template_item("1500")]);
    let children = root_children.into_iter().map(Item::into_ds).collect();
    ds.seq(tags::CONTENT_SEQUENCE, children);
    common::into_file(ds, COMPREHENSIVE_3D_SR, &id.sop_instance_uid)
}

/// Hierarchical SOP Instance Reference Macro for one study: its series, each with its
/// instances, in the order first named.
pub(crate) fn evidence_study(study_uid: &str, refs: &[ObjectRef]) -> Ds {
    let mut series: Vec<(&str, Vec<&ObjectRef>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in refs
        .iter()
        .filter(|r| seen.insert(r.sop_instance_uid.as_str()))
    {
        match series.iter_mut().find(|(s, _)| *s == r.series_uid) {
            Some((_, v)) => v.push(r),
            None => series.push((&r.series_uid, vec![r])),
        }
    }
    let series_items = series
        .iter()
        .map(|(uid, instances)| {
            let items = instances
                .iter()
                .map(|r| {
                    let mut d = Ds::new();
                    d.s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &r.sop_class_uid)
                        .s(
                            tags::REFERENCED_SOP_INSTANCE_UID,
                            VR::UI,
                            &r.sop_instance_uid,
                        );
                    d
                })
                .collect();
            let mut s = Ds::new();
            s.seq(tags::REFERENCED_SOP_SEQUENCE, items)
                .s(tags::SERIES_INSTANCE_UID, VR::UI, uid);
            s
        })
        .collect();
    let mut st = Ds::new();
    st.seq(tags::REFERENCED_SERIES_SEQUENCE, series_items).s(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        study_uid,
    );
    st
}
