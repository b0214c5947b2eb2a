//! De-identified export (DICOM PS3.15 Annex E) as the app and the command line offer it: the
//! site key and the pseudonym store beside the ledger, and one access-audit event per study
//! exported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use dokuei_deid::run::{Report, Status};
use dokuei_deid::{
    Deidentifier, Policy, ProfileOption, Pseudonyms, RegionTable, SafePrivate, SiteKey,
};
use dokuei_ledger::{AccessAction, Ledger, Outcome};

use crate::{AppError, ErrorCode};

pub use dokuei_deid::ProfileOption as DeidOption;
pub use dokuei_deid::run::{REPORT, Report as DeidReport, Status as DeidStatus};

/// What the user chose.
#[derive(Debug, Clone, Default)]
pub struct DeidRequest {
    pub options: Vec<ProfileOption>,
    /// Private attributes to keep (turns Retain Safe Private on).
    pub safe_private: Vec<SafePrivate>,
    /// Pseudonyms are `<prefix>-000001`…; default `DOKUEI`.
    pub prefix: Option<String>,
    /// The region table that cleans burned-in text; default: the site's
    /// [`REGION_TABLE`] beside the site key, when there is one.
    pub pixel_regions: Option<PathBuf>,
    /// Clean Recognizable Visual Features: head CTs defaced, and images that could show a face
    /// and cannot be defaced left out (see [`clean_visual_features`]).
    pub deface: bool,
}

/// The site's region table for burned-in text (CTP DicomPixelAnonymizer syntax), in the
/// de-identification folder beside the site key. Every export of this workstation (the app's,
/// `dokuei deid`, training data) uses it when it is there.
pub const REGION_TABLE: &str = "pixel-regions.script";

/// How dates leave, as the app offers it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum DeidDates {
    /// Emptied or removed (the Basic Profile).
    #[default]
    Removed,
    /// Moved back per patient by a keyed number of days.
    Modified,
    /// Kept.
    Full,
}

/// The options the app's "Export de-identified…" offers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, specta::Type)]
pub struct DeidSettings {
    pub dates: DeidDates,
    pub retain_uids: bool,
    pub retain_device: bool,
    pub retain_institution: bool,
    pub retain_patient_characteristics: bool,
    pub clean_descriptors: bool,
    pub clean_structured_content: bool,
    /// Clean Recognizable Visual Features Option: head CTs defaced before they leave.
    pub clean_recognizable_visual_features: bool,
}

impl DeidSettings {
    pub fn request(&self) -> DeidRequest {
        let mut options = Vec::new();
        match self.dates {
            DeidDates::Removed => {}
            DeidDates::Modified => options.push(ProfileOption::RetainLongitudinalModifiedDates),
            DeidDates::Full => options.push(ProfileOption::RetainLongitudinalFullDates),
        }
        for (on, o) in [
            (self.retain_uids, ProfileOption::RetainUids),
            (self.retain_device, ProfileOption::RetainDeviceIdentity),
            (
                self.retain_institution,
                ProfileOption::RetainInstitutionIdentity,
            ),
            (
                self.retain_patient_characteristics,
                ProfileOption::RetainPatientCharacteristics,
            ),
            (self.clean_descriptors, ProfileOption::CleanDescriptors),
            (
                self.clean_structured_content,
                ProfileOption::CleanStructuredContent,
            ),
        ] {
            if on {
                options.push(o);
            }
        }
        DeidRequest {
            deface: self.clean_recognizable_visual_features,
            options,
            ..DeidRequest::default()
        }
    }
}

/// What the app's export did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, specta::Type)]
pub struct DeidExport {
    pub folder: String,
    pub written: u32,
    pub refused: u32,
    pub failed: u32,
    pub skipped: u32,
    pub cancelled: bool,
    /// The profile, edition and options, as written into the files.
    pub method: Vec<String>,
    /// Each file refused, failed or skipped, with the reason (its name only).
    pub notes: Vec<String>,
    /// The site's region table, when one cleaned burned-in text (name, signatures, digest).
    pub region_table: Option<String>,
    /// Images whose burned-in text the region table blanked.
    pub pixels_cleaned: u32,
}

/// Progress of the app's export: files done of the study's total.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, specta::Type)]
pub struct DeidProgress {
    pub done: u32,
    pub total: u32,
}

impl DeidExport {
    pub fn of(report: &Report, folder: &Path) -> Self {
        let notes = report
            .notes
            .iter()
            .cloned()
            .chain(report.files.iter().filter_map(|f| {
                let name = Path::new(&f.input)
                    .file_name()
                    .map_or_else(|| f.input.clone(), |n| n.to_string_lossy().into_owned());
                match &f.status {
                    Status::Written { .. } => None,
                    Status::Refused { reason } => Some(format!("{name}: refused: {reason}")),
                    Status::Failed { reason } => Some(format!("{name}: failed: {reason}")),
                    Status::Skipped { reason } => Some(format!("{name}: skipped: {reason}")),
                }
            }))
            .collect();
        DeidExport {
            folder: folder.display().to_string(),
            written: report.written as u32,
            refused: report.refused as u32,
            failed: report.failed as u32,
            skipped: report.skipped as u32,
            cancelled: report.cancelled,
            method: report.options.clone(),
            notes,
            region_table: report.region_table.clone(),
            pixels_cleaned: report.pixels_cleaned as u32,
        }
    }
}

/// The folder beside the ledger that holds the site key (`site.key`, 0600) and the pseudonym
/// store (`pseudonyms`).
pub fn deid_dir(ledger_path: &Path) -> PathBuf {
    ledger_path
        .parent()
        .map_or_else(|| PathBuf::from("deid"), |d| d.join("deid"))
}

fn deid_error(e: dokuei_deid::DeidError) -> AppError {
    let code = match e {
        dokuei_deid::DeidError::Policy(_) => ErrorCode::InvalidArgument,
        _ => ErrorCode::WriteFailed,
    };
    AppError::new(code, e.to_string())
}

/// Reads a safe-private list: one `creator,group,element` per line (`group` as 4 hex digits,
/// `element` as the 2 hex digits of the element's low byte); `#` starts a comment.
pub fn read_safe_private(path: &Path) -> Result<Vec<SafePrivate>, AppError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidArgument,
            format!("{}: {e}", path.display()),
        )
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            AppError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "{} line {}: expected `creator,gggg,ee` (an odd group in hex, the element's low byte in hex)",
                    path.display(),
                    n + 1
                ),
            )
        };
        let parts: Vec<&str> = line.rsplitn(3, ',').collect();
        let [element, group, creator] = parts[..] else {
            return Err(bad());
        };
        let group = u16::from_str_radix(group.trim(), 16).map_err(|_| bad())?;
        let element = u8::from_str_radix(element.trim(), 16).map_err(|_| bad())?;
        if group % 2 == 0 {
            return Err(bad());
        }
        out.push(SafePrivate {
            creator: creator.trim().to_owned(),
            group,
            element,
        });
    }
    Ok(out)
}

/// De-identifies `paths` into `out` with the ledger's site key and pseudonyms, and records in
/// the ledger's access audit what left, per study.
pub fn export(
    ledger: &Ledger,
    paths: &[PathBuf],
    out: &Path,
    request: &DeidRequest,
    reader_id: Option<i64>,
    cancel: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> Result<Report, AppError> {
    let (sources, problems) = dokuei_dicom::source::discover(paths);
    let report = run_export(
        ledger.path(),
        &sources,
        problems,
        out,
        request,
        cancel,
        progress,
    )?;
    audit_export(ledger, &report, out, reader_id);
    report.map_err(deid_error)
}

/// The export itself, without the ledger (which only gives its folder): the outer error is a
/// request that cannot start (options, key, store); the inner result is the run's, to be
/// recorded with [`audit_export`].
pub fn run_export(
    ledger_path: &Path,
    sources: &[dokuei_dicom::Source],
    problems: Vec<dokuei_dicom::index::FileProblem>,
    out: &Path,
    request: &DeidRequest,
    cancel: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> Result<Result<Report, dokuei_deid::DeidError>, AppError> {
    let deid = deidentifier(ledger_path, request)?;
    if !request.deface {
        return Ok(dokuei_deid::run::run_sources(
            &deid,
            sources,
            problems,
            Vec::new(),
            out,
            cancel,
            progress,
        ));
    }
    // The defaced copies are identified until the run has de-identified them: they wait in a
    // private folder removed whatever happens.
    let defaced = clean_visual_features(sources, cancel)?;
    let mut problems = problems;
    problems.extend(defaced.refused);
    Ok(dokuei_deid::run::run_sources(
        &deid,
        &defaced.sources,
        problems,
        defaced.notes,
        out,
        cancel,
        progress,
    ))
}

/// Inputs after Clean Recognizable Visual Features, ready for the de-identifier.
#[derive(Debug)]
pub struct Defaced {
    /// The originals, with each defaced stack's images in place of its own.
    pub sources: Vec<dokuei_dicom::Source>,
    /// Inputs left out, each with the reason (kind [`dokuei_deid::run::REFUSED`]).
    pub refused: Vec<dokuei_dicom::index::FileProblem>,
    /// One line per series looked at: defaced (brain, plane) or why there is no face in it.
    pub notes: Vec<String>,
    /// Holds the defaced copies until dropped.
    _staging: Staging,
}

/// A body this wide at its widest (cm²) is a trunk, not a head or neck: no face to remove.
pub const TRUNK_CM2: f64 = 350.0;

/// Body Part Examined values (PS3.16 Annex L) of the trunk below the neck: with no brain found,
/// a series that says one of these is kept whatever its size (a child's chest is small).
const TRUNK_PARTS: [&str; 14] = [
    "CHEST",
    "THORAX",
    "LUNG",
    "HEART",
    "BREAST",
    "ABDOMEN",
    "LIVER",
    "PANCREAS",
    "KIDNEY",
    "PELVIS",
    "ABDOMENPELVIS",
    "CHESTABDOMEN",
    "CHESTABDPELVIS",
    "LSPINE",
];

/// Clean Recognizable Visual Features (PS3.15 E.3.2) before de-identification:
/// - every CT stack is defaced when a brain is found in it (`crate::deface`), and its defaced
///   copy is exported instead of it;
/// - a CT or MR stack with no brain found is kept only when its Body Part Examined is of the
///   trunk below the neck, or its body's cross-section reaches [`TRUNK_CM2`] (a chest or
///   abdomen: no face in it); otherwise it is left out, with the reason (a face-only CT, a head
///   MR, a neck, a limb Dokuei cannot tell from a head);
/// - photographs (visible-light, external camera, endoscopy) are left out: they may show the
///   face;
/// - everything else (radiographs, ultrasound, nuclear medicine, results) is kept.
pub fn clean_visual_features(
    sources: &[dokuei_dicom::Source],
    cancel: &AtomicBool,
) -> Result<Defaced, AppError> {
    use std::collections::HashSet;
    let staging = Staging::new("deface")?;
    let index = dokuei_dicom::index::index_sources(sources, Vec::new(), &[]);
    let mut removed: HashSet<&dokuei_dicom::Source> = HashSet::new();
    let mut added: Vec<dokuei_dicom::Source> = Vec::new();
    let mut refused = Vec::new();
    let mut notes = Vec::new();
    let refuse = |source: &dokuei_dicom::Source, reason: &str| {
        dokuei_dicom::index::FileProblem::refused(
            source.to_string(),
            dokuei_deid::run::REFUSED,
            format!("Clean Recognizable Visual Features: {reason}"),
        )
    };
    for series in index.series() {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(AppError::new(ErrorCode::Cancelled, "cancelled"));
        }
        let name = format!(
            "series {} ({})",
            series.number.map_or_else(|| "-".into(), |n| n.to_string()),
            series.modality
        );
        // Photographs, and screen captures (a 3D rendering of a head is one).
        let photograph = matches!(series.modality.as_str(), "XC" | "ES" | "GM" | "OP")
            || series.instances.iter().any(|i| {
                let c = i.sop_class_uid.as_str();
                c.starts_with("1.2.840.10008.5.1.4.1.1.77.1.")
                    || c == "1.2.840.10008.5.1.4.1.1.7"
                    || c.starts_with("1.2.840.10008.5.1.4.1.1.7.")
            });
        if photograph {
            for i in &series.instances {
                refused.push(refuse(
                    &i.source,
                    "a photograph or screen capture (a 3D rendering, say) may show the face",
                ));
                removed.insert(&i.source);
            }
            notes.push(format!(
                "{name}: left out, photographs and screen captures may show the face"
            ));
            continue;
        }
        if !matches!(series.modality.as_str(), "CT" | "MR") {
            continue;
        }
        let stacks = dokuei_dicom::stack::stacks(series);
        // An image in no stack can be neither defaced nor measured.
        let stacked: HashSet<usize> = stacks
            .iter()
            .flat_map(|s| s.frames.iter().map(|f| f.instance))
            .collect();
        let loose: Vec<&dokuei_dicom::index::Instance> = series
            .instances
            .iter()
            .enumerate()
            .filter(|(i, inst)| inst.image.is_some() && !stacked.contains(i))
            .map(|(_, inst)| inst)
            .collect();
        for inst in &loose {
            refused.push(refuse(
                &inst.source,
                "an image outside every stack of its series could show a face and can be neither defaced nor measured",
            ));
            removed.insert(&inst.source);
        }
        if !loose.is_empty() {
            notes.push(format!(
                "{name}: {} image(s) outside every stack left out",
                loose.len()
            ));
        }
        for stack in stacks {
            let members: Vec<&dokuei_dicom::Source> = stack
                .frames
                .iter()
                .map(|f| &series.instances[f.instance].source)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            match face_of_stack(series, &stack, &staging.0, cancel)? {
                Face::Defaced(r) => {
                    removed.extend(members.iter().copied());
                    added.extend(
                        r.files
                            .iter()
                            .map(|p| dokuei_dicom::Source::File { path: p.clone() }),
                    );
                    notes.push(format!("{name}, {}: {}", stack.label, defaced_note(&r)));
                }
                Face::None(why) => notes.push(format!("{name}, {}: kept, {why}", stack.label)),
                Face::Refused(reason) => {
                    for s in &members {
                        refused.push(refuse(s, &reason));
                    }
                    removed.extend(members.iter().copied());
                    notes.push(format!("{name}, {}: left out: {reason}", stack.label));
                }
            }
        }
    }
    // Result objects with pixels (a segmentation of the skin, a parametric map of a head MR)
    // can show the face's outline; reports and key objects cannot.
    for r in &index.results {
        let c = r.instance.sop_class_uid.as_str();
        if c == "1.2.840.10008.5.1.4.1.1.66.4" || c == "1.2.840.10008.5.1.4.1.1.30" {
            refused.push(refuse(
                &r.instance.source,
                "a segmentation or parametric map may show the face's outline",
            ));
            removed.insert(&r.instance.source);
        }
    }
    // A DICOM file the index did not place (a second copy of an image, a file it could not
    // read: it names them all in its problems) cannot be checked for a face. Files that are not
    // DICOM, and DICOMDIRs, are left to the run, which skips them.
    let placed: HashSet<&dokuei_dicom::Source> = index
        .series()
        .flat_map(|s| s.instances.iter().map(|i| &i.source))
        .chain(index.results.iter().map(|r| &r.instance.source))
        .collect();
    let named: HashSet<&str> = index.problems.iter().map(|p| p.file.as_str()).collect();
    for s in sources {
        if !placed.contains(s) && !removed.contains(s) && named.contains(s.to_string().as_str()) {
            refused.push(refuse(
                s,
                "not read as part of a series (a second copy of an image, or a file that could not be indexed): it cannot be checked for a face",
            ));
            removed.insert(s);
        }
    }
    let mut out: Vec<dokuei_dicom::Source> = sources
        .iter()
        .filter(|s| !removed.contains(s))
        .cloned()
        .collect();
    out.extend(added);
    Ok(Defaced {
        sources: out,
        refused,
        notes,
        _staging: staging,
    })
}

/// The de-identifier a request asks for, with the site key and pseudonym store beside the
/// ledger at `ledger_path`.
pub fn deidentifier(ledger_path: &Path, request: &DeidRequest) -> Result<Deidentifier, AppError> {
    let mut policy = Policy::basic();
    for o in &request.options {
        policy = policy.with(*o).map_err(deid_error)?;
    }
    if !request.safe_private.is_empty() {
        policy = policy
            .with(ProfileOption::RetainSafePrivate)
            .map_err(deid_error)?
            .with_safe_private(request.safe_private.clone());
    }
    let dir = deid_dir(ledger_path);
    let table = request.pixel_regions.clone().or_else(|| {
        let site = dir.join(REGION_TABLE);
        site.exists().then_some(site)
    });
    if let Some(path) = table {
        policy = policy.with_region_table(RegionTable::load(&path).map_err(deid_error)?);
    }
    if request.deface {
        policy = policy.with_visual_features_cleaned();
    }
    let key = SiteKey::load_or_create(&dir.join("site.key")).map_err(deid_error)?;
    let prefix = request.prefix.as_deref().unwrap_or("DOKUEI");
    if prefix.is_empty()
        || prefix.len() > 16
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            format!("the pseudonym prefix `{prefix}` must be 1 to 16 letters, digits or _"),
        ));
    }
    let sealer = dokuei_deid::reid::Sealer::of(&dir).map_err(deid_error)?;
    let pseudonyms = Pseudonyms::open(&dir.join("pseudonyms"), prefix)
        .map_err(deid_error)?
        .with_sealer(sealer);
    Ok(Deidentifier::new(policy, key, pseudonyms))
}

/// Whether exports seal each new patient's identity for re-identification (the site has a
/// re-identification key).
pub fn reidentification_set_up(ledger: &Ledger) -> bool {
    deid_dir(ledger.path())
        .join(dokuei_deid::reid::KEY_FILE)
        .exists()
}

/// Makes the site's re-identification key under `passphrase`; from then on each new patient's
/// identity is sealed to it as exports run. Recorded in the access audit.
pub fn set_up_reidentification(
    ledger: &Ledger,
    passphrase: &str,
    reader_id: Option<i64>,
) -> Result<(), AppError> {
    let result = dokuei_deid::reid::init(&deid_dir(ledger.path()), passphrase).map_err(deid_error);
    let mut e = crate::audit::event(AccessAction::SettingChanged, reader_id);
    e.object = "de-identification: re-identification key".into();
    if result.is_ok() {
        e.detail.note = "created".into();
    }
    record(ledger, e, &result, "a setting change");
    result
}

/// Records `e` with `result`'s outcome (a failure as a minor failure with its message); a
/// failure to record is logged, never hides the result.
fn record<T>(
    ledger: &Ledger,
    mut e: dokuei_ledger::AccessEvent,
    result: &Result<T, AppError>,
    what: &str,
) {
    if let Err(err) = result {
        e.outcome = Outcome::MinorFailure;
        e.detail.error = err.message.clone();
    }
    if let Err(err) = ledger.record_access(&e) {
        tracing::error!("the access audit could not record {what}: {err}");
    }
}

/// The identities behind `pseudonym`, opened with the re-identification passphrase. Every
/// attempt, answered or not, is recorded in the access audit (as an export of the identity to
/// the user; PS3.15's Patient Record event would need a ledger schema change).
pub fn reidentify(
    ledger: &Ledger,
    pseudonym: &str,
    passphrase: &str,
    reader_id: Option<i64>,
) -> Result<Vec<dokuei_deid::reid::Identity>, AppError> {
    use dokuei_deid::reid::ReidError;
    let result = dokuei_deid::reid::reidentify(&deid_dir(ledger.path()), pseudonym, passphrase)
        .map_err(|e| {
            let code = match e {
                ReidError::NotSetUp | ReidError::Unknown => ErrorCode::NotFound,
                ReidError::WrongPassphrase => ErrorCode::NotAllowed,
                ReidError::Damaged(_) => ErrorCode::LedgerUnavailable,
            };
            AppError::new(code, e.to_string())
        });
    let mut e = crate::audit::event(AccessAction::Exported, reader_id);
    e.object = format!("re-identification of pseudonym {pseudonym}");
    e.peer = "shown to the user".into();
    if let Ok(found) = &result {
        e.patient_key = found
            .first()
            .and_then(|i| crate::audit::patient_key(ledger, &i.patient_id).ok())
            .unwrap_or_default();
        e.detail.note = format!("{} identity record(s)", found.len());
    }
    record(ledger, e, &result, "a re-identification");
    result
}

/// One Exported event per study: what was written (the de-identified instances), refused or
/// failed. A failure to record is logged, never hides the export's outcome.
pub fn audit_export(
    ledger: &Ledger,
    report: &Result<Report, dokuei_deid::DeidError>,
    out: &Path,
    reader_id: Option<i64>,
) {
    let mut events = Vec::new();
    match report {
        Ok(r) => {
            let mut by_study: BTreeMap<&str, Vec<&dokuei_deid::run::FileOutcome>> = BTreeMap::new();
            for f in &r.files {
                if !f.study_uid.is_empty() {
                    by_study.entry(f.study_uid.as_str()).or_default().push(f);
                }
            }
            for (study, files) in by_study {
                let mut e = crate::audit::event(AccessAction::Exported, reader_id);
                e.study_uid = study.to_owned();
                e.patient_key =
                    crate::audit::patient_key(ledger, &files[0].patient_id).unwrap_or_default();
                e.object = format!("de-identified DICOM ({})", r.options.join("; "));
                e.peer = crate::audit::absolute(out).display().to_string();
                let count = |f: fn(&Status) -> bool| files.iter().filter(|o| f(&o.status)).count();
                let (written, refused, failed) = (
                    count(|s| matches!(s, Status::Written { .. })),
                    count(|s| matches!(s, Status::Refused { .. })),
                    count(|s| matches!(s, Status::Failed { .. })),
                );
                e.detail.note = format!(
                    "{written} written, {refused} refused, {failed} failed; site key {}",
                    r.key_id
                );
                if written == 0 {
                    e.outcome = Outcome::MinorFailure;
                }
                events.push(e);
            }
        }
        Err(err) => {
            let mut e = crate::audit::event(AccessAction::Exported, reader_id);
            e.object = "de-identified DICOM".into();
            e.peer = crate::audit::absolute(out).display().to_string();
            e.outcome = Outcome::MinorFailure;
            e.detail.error = err.to_string();
            events.push(e);
        }
    }
    for e in events {
        if let Err(err) = ledger.record_access(&e) {
            tracing::error!("the access audit could not record a de-identified export: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_private_lists_are_read_and_bad_lines_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("safe.csv");
        std::fs::write(
            &path,
            "# creator,group,element\nGEMS_PARM_01,0043,27\nSIEMENS, CSA,0029, 08 # a comma in the creator\n",
        )
        .expect("write");
        let list = read_safe_private(&path).expect("read");
        assert_eq!(
            list,
            vec![
                SafePrivate {
                    creator: "GEMS_PARM_01".into(),
                    group: 0x0043,
                    element: 0x27
                },
                SafePrivate {
                    creator: "SIEMENS, CSA".into(),
                    group: 0x0029,
                    element: 0x08
                },
            ]
        );
        std::fs::write(&path, "X,0042,10\n").expect("write");
        let e = read_safe_private(&path).expect_err("even group");
        assert!(e.message.contains("line 1"), "{}", e.message);
    }
}

/// A private temporary folder (0700) for identified files on their way to an export, removed
/// when dropped.
#[derive(Debug)]
pub(crate) struct Staging(pub PathBuf);

impl Staging {
    pub(crate) fn new(kind: &str) -> Result<Staging, AppError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // A counter as well as the time: two exports in one process never share a folder, and
        // a folder already there is an error, not a folder to share.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("dokuei-{kind}-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| {
            AppError::new(
                ErrorCode::WriteFailed,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(Staging(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What Clean Recognizable Visual Features makes of one stack of a CT or MR series.
#[derive(Debug)]
pub enum Face {
    /// A brain was found: the stack defaced into a DERIVED series (its files, the plane).
    Defaced(crate::deface::DefaceReport),
    /// No face can be in it, and why (kept as it is).
    None(String),
    /// It could show a face and could not be defaced: left out, with the reason (which names
    /// no input).
    Refused(String),
}

/// Defaces `stack` into `staging` when a brain is found in it; else tells whether it can hold
/// no face (Body Part Examined of the trunk, or a trunk's cross-section) or must be left out.
pub fn face_of_stack(
    series: &dokuei_dicom::Series,
    stack: &dokuei_dicom::stack::Stack,
    staging: &Path,
    cancel: &AtomicBool,
) -> Result<Face, AppError> {
    let why = match crate::deface::deface_series(series, stack, staging, 5.0, cancel) {
        Ok(r) => return Ok(Face::Defaced(r)),
        Err(why) => why,
    };
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(AppError::new(ErrorCode::Cancelled, "cancelled"));
    }
    let part = series.body_part.trim().to_uppercase();
    if TRUNK_PARTS.contains(&part.as_str()) {
        return Ok(Face::None(format!(
            "no face (Body Part Examined {part}, and no brain found)"
        )));
    }
    // Only an axial slice's cross-section tells a trunk from a head: a sagittal or coronal
    // slice of a head and neck can be as large as a chest's.
    let size = if stack.plane != Some(dokuei_dicom::geometry::Plane::Axial) {
        "not an axial stack, whose cross-section would tell a trunk from a head".to_owned()
    } else {
        match crate::deface::body_cross_section_cm2(series, stack) {
            Ok(area) if area >= TRUNK_CM2 => {
                return Ok(Face::None(format!(
                    "no face (the body's cross-section at the stack's superior end is {area:.0} cm², a trunk's)"
                )));
            }
            Ok(area) if area < 1.0 => "no body was found at the stack's superior end".to_owned(),
            Ok(area) => format!(
                "the body's cross-section at the stack's superior end is {area:.0} cm², which a head or neck can be"
            ),
            Err(e) => e.message,
        }
    };
    // The reason leaves with the export: errors that name an input (a path can hold a
    // patient's name) name it as `<input>`.
    Ok(Face::Refused(series.instances.iter().fold(
        format!(
            "it could show a face and was not defaced ({}; {size})",
            why.message
        ),
        |r, i| r.replace(&i.source.to_string(), "<input>"),
    )))
}

/// How a defaced stack is described in notes and provenance.
pub fn defaced_note(r: &crate::deface::DefaceReport) -> String {
    format!(
        "defaced (brain {:.0} ml; plane {:.0}° from anterior, {:.0} mm in front of the brain; {} voxels set to air)",
        r.plane.brain_ml, r.plane.degrees_from_anterior, r.plane.margin_mm, r.removed_voxels
    )
}
