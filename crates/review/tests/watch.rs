//! The model-version watch on a real ledger: two versions of a model, the second scoring
//! higher and kept less often, plus a third version with few findings. The ledger's numbers
//! are checked by hand (counts, the effective decision after a correction) and against SciPy
//! and NumPy on the same scores and counts (`scripts/reference/watch_check.py`); the HTML
//! report carries the alert and the plots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use dokuei_ledger::watch::WatchThresholds;
use dokuei_ledger::{
    Action, AnalysisRecord, DecisionRecord, FindingRecord, Ledger, RejectReason, Role, StudyRecord,
};

/// A deterministic score in [0, 1) from `i` (a golden-ratio sequence), bent towards `centre`.
fn score(i: u64, centre: f64) -> f64 {
    let u = (i as f64 * 0.618_033_988_749_895).fract();
    (centre + (u - 0.5) * 0.4).clamp(0.0, 0.999)
}

/// Records `n` findings of `version` on one study, decided: `kept` of them confirmed or edited,
/// the rest rejected. Returns their scores.
fn version(
    ledger: &Ledger,
    reader: i64,
    version: &str,
    day: u32,
    n: u64,
    kept: u64,
    centre: f64,
) -> Vec<f64> {
    let study = ledger
        .record_study(&StudyRecord {
            study_uid: format!("2.25.{day}{n}"),
            accession: String::new(),
            modality: "CT".into(),
            study_date: "20261101".into(),
            patient_key: format!("psn-{day}"),
        })
        .unwrap();
    let analysis = ledger
        .record_analysis(&AnalysisRecord {
            study_id: study,
            series_uid: format!("2.25.{day}{n}.1"),
            model_id: "ct-nodule-demo".into(),
            model_version: version.into(),
            model_sha256: "ab".repeat(32),
            execution_provider: "CPU".into(),
            thresholds_json: "{}".into(),
            started_at: format!("2026-11-{day:02}T08:00:00.000Z"),
            finished_at: format!("2026-11-{day:02}T08:00:05.000Z"),
        })
        .unwrap();
    let mut scores = Vec::new();
    for i in 0..n {
        let s = score(i + u64::from(day) * 1000, centre);
        scores.push(s);
        let finding = ledger
            .record_finding(&FindingRecord {
                analysis_id: analysis,
                label: "nodule".into(),
                score: s,
                geometry_json: "{}".into(),
                mask_sha256: String::new(),
                shown_at: format!("2026-11-{day:02}T08:00:06.000Z"),
            })
            .unwrap();
        let action = if i < kept {
            if i % 4 == 0 {
                Action::Edit
            } else {
                Action::Confirm
            }
        } else {
            Action::Reject
        };
        ledger
            .record_decision(&DecisionRecord {
                study_id: study,
                finding_id: Some(finding),
                action,
                label: "nodule".into(),
                reject_reason: (action == Action::Reject).then_some(RejectReason::Artefact),
                reason_text: String::new(),
                geometry_json: String::new(),
                reader_id: reader,
                supersedes_id: None,
            })
            .unwrap();
    }
    scores
}

#[test]
fn a_version_that_shifts_its_scores_and_loses_agreement_alerts_and_scipy_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).unwrap();
    let reader = ledger.add_reader("QA^Tester", Role::Radiologist).unwrap();
    let v1 = version(&ledger, reader, "1.0.0", 2, 120, 96, 0.7);
    let v2 = version(&ledger, reader, "1.1.0", 9, 150, 90, 0.82);
    // An imported finding without a probability (stored with score −1): a finding, not a score.
    ledger
        .record_finding(&FindingRecord {
            analysis_id: 2,
            label: "nodule".into(),
            score: -1.0,
            geometry_json: "{}".into(),
            mask_sha256: String::new(),
            shown_at: "2026-11-09T08:00:06.000Z".into(),
        })
        .unwrap();
    // A third version, barely used: compared, never alerting.
    version(&ledger, reader, "1.2.0", 20, 6, 5, 0.8);
    // A correction: 1.1.0's last finding (id 270: findings and decisions were recorded one
    // for one, in order) was rejected by decision 270; it becomes a confirmation, and only the
    // effective decision counts.
    ledger
        .record_decision(&DecisionRecord {
            study_id: 2,
            finding_id: Some(120 + 150),
            action: Action::Confirm,
            label: "nodule".into(),
            reject_reason: None,
            reason_text: String::new(),
            geometry_json: String::new(),
            reader_id: reader,
            supersedes_id: Some(270),
        })
        .unwrap();

    let t = WatchThresholds::default();
    let watch = ledger.watch(None, &t).unwrap();
    let versions: Vec<&str> = watch
        .versions
        .iter()
        .map(|v| v.model_version.as_str())
        .collect();
    assert_eq!(versions, ["1.0.0", "1.1.0", "1.2.0"]);
    let (a, b) = (&watch.versions[0], &watch.versions[1]);
    assert_eq!(
        (a.findings, a.confirmed + a.edited, a.rejected),
        (120, 96, 24)
    );
    assert_eq!(
        (b.findings, b.confirmed + b.edited, b.rejected),
        (151, 91, 59)
    );
    assert_eq!((b.scores.len(), b.undecided), (150, 1));
    assert_eq!(a.edited, 24);
    assert_eq!(b.histogram.iter().sum::<u32>(), 150);
    assert_eq!(watch.comparisons.len(), 2);
    let c = &watch.comparisons[0];
    assert!(c.alert, "{c:?}");
    assert!(
        c.reasons.iter().any(|r| r.starts_with("score shift: PSI")),
        "{:?}",
        c.reasons
    );
    assert!(
        c.reasons
            .iter()
            .any(|r| r.starts_with("physicians keep fewer")),
        "{:?}",
        c.reasons
    );
    let late = &watch.comparisons[1];
    assert!(
        !late.alert && late.reasons[0].starts_with("too few"),
        "{late:?}"
    );
    let only = ledger.watch(Some("another-model"), &t).unwrap();
    assert!(only.versions.is_empty());

    // SciPy and NumPy on the same scores and counts.
    let input = dir.path().join("watch.json");
    std::fs::write(
        &input,
        serde_json::json!({
            "previous": v1, "current": v2,
            "kept": [[96, 120], [91, 150]],
        })
        .to_string(),
    )
    .unwrap();
    let run = Command::new(dokuei_review::dicom::testdata::reference_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/watch_check.py"))
        .arg(&input)
        .output()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{stdout}");
    let scipy: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let close = |x: f64, key: &serde_json::Value, tol: f64| {
        let y = key.as_f64().unwrap();
        assert!((x - y).abs() <= tol * y.abs().max(1e-300), "{x} vs {y}");
    };
    close(c.ks_d.unwrap(), &scipy["ks_d"], 1e-12);
    close(c.ks_p.unwrap(), &scipy["ks_p"], 1e-6);
    // ks_2samp's finite-n p-value reaches the same verdict.
    assert!(scipy["ks_2samp_p"].as_f64().unwrap() < t.ks_p);
    close(c.psi.unwrap(), &scipy["psi"], 1e-9);
    close(a.kept_rate.low, &scipy["wilson"][0][0], 1e-9);
    close(a.kept_rate.high, &scipy["wilson"][0][1], 1e-9);
    close(b.kept_rate.low, &scipy["wilson"][1][0], 1e-9);
    close(b.kept_rate.high, &scipy["wilson"][1][1], 1e-9);

    // The report: both versions' plots, the alert and its reasons.
    let report = dir.path().join("watch.html");
    dokuei_review::watch::write_report(&watch, &t, &report).unwrap();
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<h2>ct-nodule-demo</h2>"));
    assert!(html.contains("not for clinical use"));
    assert_eq!(html.matches("<svg").count(), 2);
    assert_eq!(html.matches("class=\"alert\">ALERT").count(), 1);
    assert!(html.contains("1.0.0 → 1.1.0"));
}

fn models_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

#[test]
fn a_shadow_candidate_runs_beside_the_model_readers_see_and_is_compared_never_shown() {
    use dokuei_review::dicom::synth::{Sphere, SyntheticCt};
    use dokuei_review::reading::{DecisionInput, add_reader};
    use dokuei_review::workstation::Workstation;

    const PASSPHRASE: &str = "correct horse battery";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let study = d.join("study");
    SyntheticCt {
        slices: 16,
        spheres: vec![
            Sphere {
                center: [5.0, -5.0, 15.0],
                radius: 6.0,
                hu: 40.0,
            },
            Sphere {
                center: [-10.0, 8.0, 28.0],
                radius: 5.0,
                hu: 40.0,
            },
        ],
        ..SyntheticCt::default()
    }
    .write(&study)
    .unwrap();
    // The candidate: the same network under a new version with a lower threshold.
    let candidate = d.join("candidate");
    std::fs::create_dir_all(&candidate).unwrap();
    let demo = models_dir().join("ct-nodule-demo");
    for f in ["model.onnx", "MODEL_CARD.md"] {
        std::fs::copy(demo.join(f), candidate.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(demo.join("manifest.toml"))
        .unwrap()
        .replace("version = \"1.0.0\"", "version = \"1.1.0-rc1\"")
        .replace("threshold = 0.5", "threshold = 0.35");
    assert!(manifest.contains("1.1.0-rc1") && manifest.contains("0.35"));
    std::fs::write(candidate.join("manifest.toml"), manifest).unwrap();

    let ws =
        Workstation::new(d.join("data"), d.join("cache")).with_ledger_file(d.join("ledger.sqlite"));
    ws.save_shadow_settings(dokuei_review::workstation::ShadowSettings {
        model_folders: vec![candidate.display().to_string()],
    })
    .unwrap();
    // The reader's own settings do not touch them.
    ws.save_settings(ws.settings()).unwrap();
    assert_eq!(ws.shadow_settings().model_folders.len(), 1);
    let opened = ws.open_study(vec![study.display().to_string()]).unwrap();
    let series = opened.tree.studies[0].series[0].key;
    let analysed = ws.analyse(series, 0, &demo, &mut |_| {}).unwrap();
    // The screen shows the version readers use, and only its findings.
    assert_eq!(analysed.review.analyses.len(), 1);
    assert_eq!(analysed.review.analyses[0].model_version, "1.0.0");
    let ai: Vec<i64> = analysed
        .review
        .findings
        .iter()
        .filter_map(|f| f.finding_id)
        .collect();
    assert!(!ai.is_empty(), "the model finds the spheres");

    let reader = ws
        .with_ledger(|l| add_reader(l, "Sato^Ken", Role::Radiologist, PASSPHRASE))
        .unwrap();
    for id in &ai {
        ws.decide(
            series,
            0,
            reader.id as i32,
            &DecisionInput {
                finding_id: Some(*id),
                replaces_added: None,
                action: Action::Confirm,
                label: String::new(),
                reject_reason: None,
                reason_text: String::new(),
                mask: Vec::new(),
            },
            None,
        )
        .unwrap();
    }
    // Sign-off needs no decision on the shadow's findings: they were never shown.
    ws.sign_off(series, reader.id as i32, "two nodules", PASSPHRASE)
        .unwrap();
    let review = ws.study_review(series).unwrap();
    assert_eq!(review.analyses.len(), 1);
    assert_eq!(review.undecided, 0);

    let watch = ws.model_watch(&WatchThresholds::default()).unwrap();
    let shadow = watch.versions.iter().find(|v| v.shadow).unwrap();
    assert_eq!(shadow.model_version, "1.1.0-rc1");
    assert_eq!(shadow.shadowed_version.as_deref(), Some("1.0.0"));
    assert_eq!(shadow.confirmed + shadow.edited + shadow.rejected, 0);
    let c = watch
        .comparisons
        .iter()
        .find(|c| c.current == "1.1.0-rc1")
        .unwrap();
    assert_eq!(c.previous, "1.0.0");
    let m = c.shadow.as_ref().unwrap();
    assert_eq!(m.runs, 1);
    assert_eq!(m.kept_findings as usize, ai.len());
    assert_eq!(m.current_precision.value, 1.0);
    // The candidate finds the same nodules (a lower threshold only grows them).
    assert_eq!(m.shadow_sensitivity.value, 1.0, "{m:?}");
    assert!(m.shadow_findings >= m.kept_findings, "{m:?}");

    // The ledger is intact, and the shadow run is in the access audit.
    let ledger = Ledger::open(&d.join("ledger.sqlite")).unwrap();
    assert!(ledger.verify().unwrap().is_intact());
    let runs: Vec<String> = ledger
        .access_events_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == dokuei_ledger::AccessAction::ModelRun)
        .map(|r| r.event.object)
        .collect();
    assert!(
        runs.iter()
            .any(|o| o.contains("1.1.0-rc1") && o.contains("shadow of analysis")),
        "{runs:?}"
    );
}
