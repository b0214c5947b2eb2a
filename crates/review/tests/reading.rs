//! The reading workflow's rules on a real ledger and a real (synthetic) DICOM series: findings
//! recorded from an analysis, a decision on each, sign-off gating, read-only after sign-off,
//! commit-then-reveal ordering, and the models panel's integrity check.

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

/// The test readers' passphrase.
const PASSPHRASE: &str = "correct horse battery";

use dokuei_review::ErrorCode;
use dokuei_review::dicom::synth::SyntheticCt;
use dokuei_review::infer::findings::{Finding, ModelRef, SliceGeometry, describe};
use dokuei_review::ledger::{Action, Ledger, RejectReason, Role};
use dokuei_review::reading::{
    DECISION_PASSPHRASE_POLICY, DecisionContext, DecisionInput, MaskSlice, StackIdentity,
    StudyIdentity, add_reader, decide, decide_with_passphrase, decision_passphrase_required,
    grant_administrator, list_models, record_analysis, record_impression, reveal, review,
    set_decision_passphrase_policy, sign_off, slice_geometry, study_identity,
};
use dokuei_review::viewer::OpenStudy;

struct Fixture {
    _dir: tempfile::TempDir,
    study: OpenStudy,
    identity: StudyIdentity,
    ledger: Ledger,
}

const ROWS: u16 = 40;
const COLUMNS: u16 = 48;

fn fixture(seed: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 6,
        rows: ROWS,
        columns: COLUMNS,
        pixel_spacing: [0.8, 0.6],
        seed,
        ..SyntheticCt::default()
    }
    .write(&dir.path().join("ct"))
    .unwrap();
    let study = OpenStudy::open(&[dir.path().join("ct")]).unwrap();
    let series_uid = study.series(0).unwrap().uid.clone();
    let identity = study_identity(&study.index, &series_uid).unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    Fixture {
        _dir: dir,
        study,
        identity,
        ledger,
    }
}

fn model() -> ModelRef {
    ModelRef {
        id: "test-nodule".into(),
        version: "1.2.0".into(),
        sha256: "ab".repeat(32),
        execution_provider: "CPU".into(),
        thresholds: BTreeMap::from([("nodule".to_owned(), 0.5)]),
    }
}

/// A square finding of `side` pixels at (row, column) on `slice`.
fn finding(
    f: &Fixture,
    slice: usize,
    row: usize,
    column: usize,
    side: usize,
    score: f64,
) -> Finding {
    let series = f.study.series(0).unwrap();
    let stack = f.study.stack(0, 0).unwrap();
    let plane = usize::from(ROWS) * usize::from(COLUMNS);
    let mut voxels = Vec::new();
    for r in row..row + side {
        for c in column..column + side {
            voxels.push(slice * plane + r * usize::from(COLUMNS) + c);
        }
    }
    let geometry: Vec<SliceGeometry> = (0..stack.frames.len())
        .map(|i| slice_geometry(series, stack, i))
        .collect();
    Finding {
        label: "nodule".into(),
        score,
        geometry: describe(&voxels, ROWS.into(), COLUMNS.into(), &geometry, 2.5),
        model: model(),
        series_uid: series.uid.clone(),
        instance_uids: Vec::new(),
        image_score: None,
    }
}

fn ctx(f: &Fixture) -> DecisionContext<'_> {
    DecisionContext {
        study: &f.identity,
        series: f.study.series(0).unwrap(),
        stack: f.study.stack(0, 0).unwrap(),
    }
}

fn input(finding_id: Option<i64>, action: Action) -> DecisionInput {
    DecisionInput {
        finding_id,
        replaces_added: None,
        action,
        label: String::new(),
        reject_reason: None,
        reason_text: String::new(),
        mask: Vec::new(),
    }
}

/// A filled rectangle as a mask on one slice.
fn rect(slice: u32, row: u32, column: u32, height: u32, width: u32) -> Vec<MaskSlice> {
    vec![MaskSlice {
        slice,
        runs: (row..row + height)
            .map(|r| [r * u32::from(COLUMNS) + column, width])
            .collect(),
    }]
}

fn record(f: &Fixture, findings: &[Finding]) -> dokuei_review::reading::StudyReview {
    let series_uid = f.study.series(0).unwrap().uid.clone();
    record_analysis(
        &f.ledger,
        &f.identity,
        &series_uid,
        &StackIdentity::of(f.study.series(0).unwrap(), f.study.stack(0, 0).unwrap(), 0),
        &model(),
        findings,
        "2026-11-22T08:00:00.000Z",
        "2026-11-22T08:00:01.000Z",
    )
    .unwrap()
}

#[test]
fn every_finding_needs_a_decision_before_sign_off_and_a_signed_study_is_read_only() {
    let f = fixture(1);
    let reader = add_reader(&f.ledger, "  Dr. Sato  ", Role::Radiologist, PASSPHRASE).unwrap();
    assert_eq!(reader.display_name, "Dr. Sato");
    let qa = add_reader(&f.ledger, "QA Tanaka", Role::Qa, PASSPHRASE).unwrap();

    let low = finding(&f, 2, 5, 5, 3, 0.61);
    let high = finding(&f, 3, 20, 30, 4, 0.93);
    let r = record(&f, &[low, high]);
    assert_eq!(r.findings.len(), 2);
    assert_eq!(r.undecided, 2);
    // Highest score first, geometry in the stack's pixel grid.
    assert_eq!(r.findings[0].score, Some(0.93));
    assert_eq!(r.findings[0].geometry.bbox, [30, 20, 33, 23]);
    assert_eq!(r.findings[0].geometry.slices, [3, 3]);
    let (f_high, f_low) = (
        r.findings[0].finding_id.unwrap(),
        r.findings[1].finding_id.unwrap(),
    );

    // Too early.
    let e = sign_off(&f.ledger, &f.identity.study_uid, reader.id, "", PASSPHRASE).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotAllowed);
    assert!(
        e.message.contains("2 AI findings still need a decision"),
        "{}",
        e.message
    );
    // QA does not decide.
    let e = decide(
        &f.ledger,
        &ctx(&f),
        qa.id,
        &input(Some(f_high), Action::Confirm),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotAllowed);
    // A rejection needs a reason, and "other" needs words.
    let e = decide(
        &f.ledger,
        &ctx(&f),
        reader.id,
        &input(Some(f_low), Action::Reject),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    let mut other = input(Some(f_low), Action::Reject);
    other.reject_reason = Some(RejectReason::Other);
    assert!(decide(&f.ledger, &ctx(&f), reader.id, &other).is_err());
    // An unknown finding is refused.
    assert!(
        decide(
            &f.ledger,
            &ctx(&f),
            reader.id,
            &input(Some(9999), Action::Confirm)
        )
        .is_err()
    );
    assert_eq!(
        f.ledger.decision_count().unwrap(),
        0,
        "refused decisions leave no row"
    );

    let (confirm_id, r) = decide(
        &f.ledger,
        &ctx(&f),
        reader.id,
        &input(Some(f_high), Action::Confirm),
    )
    .unwrap();
    assert_eq!(r.undecided, 1);
    let mut reject = input(Some(f_low), Action::Reject);
    reject.reject_reason = Some(RejectReason::Artefact);
    decide(&f.ledger, &ctx(&f), reader.id, &reject).unwrap();

    // Changing one's mind: an edit supersedes the confirmation, with the geometry computed
    // from the drawn mask (0.8 mm rows × 0.6 mm columns).
    let mut edit = input(Some(f_high), Action::Edit);
    edit.mask = rect(3, 19, 29, 6, 5);
    let (edit_id, r) = decide(&f.ledger, &ctx(&f), reader.id, &edit).unwrap();
    let high_view = r
        .findings
        .iter()
        .find(|x| x.finding_id == Some(f_high))
        .unwrap();
    let d = high_view.decision.as_ref().unwrap();
    assert_eq!((d.id, d.action), (edit_id, Action::Edit));
    let g = d.geometry.as_ref().unwrap();
    assert_eq!(g.bbox, [29, 19, 33, 24]);
    assert!(
        (g.area_mm2 - 30.0 * 0.8 * 0.6).abs() < 1e-9,
        "{}",
        g.area_mm2
    );
    assert_eq!(high_view.effective_geometry(), g);

    // A finding the model missed, drawn by the reader; a drawing off the image is refused.
    let mut add = input(None, Action::Add);
    add.label = "nodule".into();
    add.mask = rect(5, 0, 0, 2, 2);
    let (add_id, r) = decide(&f.ledger, &ctx(&f), reader.id, &add).unwrap();
    assert_eq!(r.findings.len(), 3);
    assert_eq!(r.undecided, 0);
    let mut off = add.clone();
    off.mask = rect(5, 39, 40, 2, 2);
    assert_eq!(
        decide(&f.ledger, &ctx(&f), reader.id, &off)
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    // Redrawing the added finding supersedes it; it is still one finding.
    let mut redraw = add.clone();
    redraw.replaces_added = Some(add_id);
    redraw.mask = rect(5, 0, 0, 3, 3);
    let (_, r) = decide(&f.ledger, &ctx(&f), reader.id, &redraw).unwrap();
    assert_eq!(r.findings.len(), 3);

    let r = sign_off(
        &f.ledger,
        &f.identity.study_uid,
        reader.id,
        " No further nodules. ",
        PASSPHRASE,
    )
    .unwrap();
    let s = r.sign_off.unwrap();
    assert_eq!(
        (
            s.confirmed,
            s.edited,
            s.rejected,
            s.added,
            s.impression.as_str()
        ),
        (0, 1, 1, 1, "No further nodules.")
    );
    // Read-only from now on.
    assert_eq!(
        sign_off(&f.ledger, &f.identity.study_uid, reader.id, "", PASSPHRASE)
            .unwrap_err()
            .code,
        ErrorCode::ReadOnly
    );
    assert_eq!(
        decide(
            &f.ledger,
            &ctx(&f),
            reader.id,
            &input(Some(f_low), Action::Confirm)
        )
        .unwrap_err()
        .code,
        ErrorCode::ReadOnly
    );

    // Reopened later: the same findings with their decisions, and the record is intact.
    let again = review(&f.ledger, &f.identity.study_uid).unwrap();
    assert!(again.sign_off.is_some());
    assert_eq!(again.findings.len(), 3);
    assert!(again.findings.iter().all(|x| x.decision.is_some()));
    assert_eq!(f.ledger.decision_count().unwrap(), 5);
    assert!(f.ledger.verify().unwrap().is_intact());
    // The superseded confirmation is still there, named by the edit.
    assert!(f.ledger.has_decision(confirm_id).unwrap());
    let rows = f
        .ledger
        .study_rows(f.ledger.study_id(&f.identity.study_uid).unwrap().unwrap())
        .unwrap();
    let edit_row = rows.decisions.iter().find(|d| d.id == edit_id).unwrap();
    assert_eq!(edit_row.supersedes_id, Some(confirm_id));
    // The analysis row names the model exactly; the study row has no patient identifier.
    assert_eq!(rows.analyses[0].model_sha256, "ab".repeat(32));
    assert_eq!(rows.analyses[0].execution_provider, "CPU");
}

#[test]
fn a_rerun_replaces_the_findings_that_need_decisions() {
    let f = fixture(2);
    let reader = add_reader(&f.ledger, "Dr. Ito", Role::Clinician, PASSPHRASE).unwrap();
    record(
        &f,
        &[finding(&f, 1, 1, 1, 2, 0.7), finding(&f, 2, 9, 9, 2, 0.8)],
    );
    let r = record(&f, &[finding(&f, 4, 9, 9, 2, 0.9)]);
    assert_eq!(r.analyses.len(), 1);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.undecided, 1);
    let id = r.findings[0].finding_id;
    decide(&f.ledger, &ctx(&f), reader.id, &input(id, Action::Confirm)).unwrap();
    sign_off(&f.ledger, &f.identity.study_uid, reader.id, "", PASSPHRASE).unwrap();
}

#[test]
fn commit_then_reveal_records_the_impression_before_any_ai_result() {
    let f = fixture(3);
    let reader = add_reader(&f.ledger, "Dr. Mori", Role::Radiologist, PASSPHRASE).unwrap();
    assert!(reveal(&f.ledger, &f.identity.study_uid, reader.id).is_err());
    assert!(record_impression(&f.ledger, &f.identity, reader.id, "  ").is_err());
    let r = record_impression(&f.ledger, &f.identity, reader.id, "nodule present: yes").unwrap();
    assert_eq!(
        r.impression_before_ai.as_deref(),
        Some("nodule present: yes")
    );
    let r = record(&f, &[finding(&f, 2, 5, 5, 3, 0.8)]);
    assert!(!r.ai_revealed);
    let id = r.findings[0].finding_id;
    // Decisions wait for the reveal.
    assert_eq!(
        decide(&f.ledger, &ctx(&f), reader.id, &input(id, Action::Confirm))
            .unwrap_err()
            .code,
        ErrorCode::NotAllowed
    );
    let r = reveal(&f.ledger, &f.identity.study_uid, reader.id).unwrap();
    assert!(r.ai_revealed);
    // An impression after the AI was shown would not be independent of it.
    assert_eq!(
        record_impression(&f.ledger, &f.identity, reader.id, "changed my mind")
            .unwrap_err()
            .code,
        ErrorCode::NotAllowed
    );
    decide(&f.ledger, &ctx(&f), reader.id, &input(id, Action::Confirm)).unwrap();
    let rows = f
        .ledger
        .study_rows(f.ledger.study_id(&f.identity.study_uid).unwrap().unwrap())
        .unwrap();
    let kinds: Vec<&str> = rows.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["impression_before_ai", "ai_revealed"]);
    assert!(rows.events[0].recorded_at <= rows.findings[0].shown_at);
    assert!(rows.findings[0].shown_at <= rows.events[1].recorded_at);
}

#[test]
fn the_models_panel_lists_the_demo_models_and_names_a_changed_file() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let list = list_models(std::slice::from_ref(&models));
    let ids: Vec<&str> = list.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["ct-nodule-demo", "cxr-opacity-demo"]);
    for m in &list {
        assert!(m.integrity_ok, "{:?}", m.problem);
        assert!(m.demonstration);
        assert!(
            m.model_card.contains("not for clinical use") || m.model_card.contains("demonstration")
        );
        assert!(!m.labels.is_empty());
    }
    assert_eq!(list[0].kind, "segmentation");
    assert_eq!(list[1].kind, "heatmap");

    // A copy whose ONNX file changed, and a folder whose manifest is broken.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("changed");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(models.join("ct-nodule-demo")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let onnx = std::fs::read_dir(&copy)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "onnx"))
        .unwrap();
    let mut bytes = std::fs::read(&onnx).unwrap();
    bytes.push(0);
    std::fs::write(&onnx, bytes).unwrap();
    std::fs::create_dir_all(dir.path().join("broken")).unwrap();
    std::fs::write(dir.path().join("broken/manifest.toml"), "[model]\nid = 3\n").unwrap();
    let list = list_models(&[dir.path().to_path_buf()]);
    assert_eq!(list.len(), 2);
    let broken = list.iter().find(|m| m.dir.ends_with("broken")).unwrap();
    assert!(broken.problem.as_ref().unwrap().contains("manifest.toml"));
    let changed = list.iter().find(|m| m.dir.ends_with("changed")).unwrap();
    assert!(!changed.integrity_ok);
    let problem = changed.problem.as_ref().unwrap();
    assert!(
        problem.contains(&onnx.display().to_string()) && problem.contains("does not match"),
        "{problem}"
    );
}

#[test]
fn an_administrator_can_ask_for_the_passphrase_with_every_decision() {
    const ADMIN: &str = "staple and more staples";
    let f = fixture(5);
    let reader = add_reader(&f.ledger, "Dr. Abe", Role::Radiologist, PASSPHRASE).unwrap();
    let admin = add_reader(&f.ledger, "Dr. Admin", Role::Radiologist, ADMIN).unwrap();
    grant_administrator(&f.ledger, admin.id, None, ADMIN).unwrap();
    let r = record(
        &f,
        &[
            finding(&f, 1, 1, 1, 2, 0.7),
            finding(&f, 2, 9, 9, 2, 0.8),
            finding(&f, 4, 20, 20, 2, 0.9),
        ],
    );
    let ids: Vec<Option<i64>> = r.findings.iter().map(|x| x.finding_id).collect();
    // Off by default: sign-off only.
    assert!(!decision_passphrase_required(&f.ledger).unwrap());
    decide(
        &f.ledger,
        &ctx(&f),
        reader.id,
        &input(ids[0], Action::Confirm),
    )
    .unwrap();

    // Only an administrator switches it on, with their own passphrase.
    let e = set_decision_passphrase_policy(&f.ledger, reader.id, PASSPHRASE, true).unwrap_err();
    assert!(e.message.contains("not an administrator"), "{}", e.message);
    let e = set_decision_passphrase_policy(&f.ledger, admin.id, "not the one", true).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(!decision_passphrase_required(&f.ledger).unwrap());
    set_decision_passphrase_policy(&f.ledger, admin.id, ADMIN, true).unwrap();
    assert!(decision_passphrase_required(&f.ledger).unwrap());

    // A decision refused for what it is never costs the reader a passphrase attempt.
    let mut no_reason = input(ids[1], Action::Reject);
    no_reason.reject_reason = None;
    let e = decide_with_passphrase(
        &f.ledger,
        &ctx(&f),
        reader.id,
        &no_reason,
        Some("wrong passphrase"),
    )
    .unwrap_err();
    assert!(!e.message.contains("passphrase"), "{}", e.message);
    assert_eq!(f.ledger.failures_in_a_row(reader.id).unwrap(), 0);

    // Now a decision without the passphrase is refused, a wrong one counted, the right one
    // records it.
    let e = decide(
        &f.ledger,
        &ctx(&f),
        reader.id,
        &input(ids[1], Action::Confirm),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotAllowed);
    assert!(e.message.contains("every decision"), "{}", e.message);
    let e = decide_with_passphrase(
        &f.ledger,
        &ctx(&f),
        reader.id,
        &input(ids[1], Action::Confirm),
        Some("wrong passphrase"),
    )
    .unwrap_err();
    assert!(e.message.contains("1 of 5"), "{}", e.message);
    let (id, review) = decide_with_passphrase(
        &f.ledger,
        &ctx(&f),
        reader.id,
        &input(ids[1], Action::Confirm),
        Some(PASSPHRASE),
    )
    .unwrap();
    assert!(id > 0);
    assert_eq!(review.undecided, 1);

    // Off again; both changes are in the ledger and in the audit, as security configuration.
    set_decision_passphrase_policy(&f.ledger, admin.id, ADMIN, false).unwrap();
    decide(
        &f.ledger,
        &ctx(&f),
        reader.id,
        &input(ids[2], Action::Confirm),
    )
    .unwrap();
    assert_eq!(
        f.ledger
            .latest_setting_note(DECISION_PASSPHRASE_POLICY)
            .unwrap()
            .as_deref(),
        Some("off")
    );
    let messages = f
        .ledger
        .audit_messages_after(0, 1000, &dokuei_ledger::AuditSource::default(), "h")
        .unwrap();
    let policy: Vec<_> = messages
        .iter()
        .filter(|m| m.xml.contains(r#"csd-code="110129""#))
        .collect();
    assert_eq!(policy.len(), 2);
    assert!(policy[0].xml.contains("Dr. Admin"));
    assert!(f.ledger.verify().unwrap().is_intact());
}
