//! A small ledger with one of everything, as the review workflow would write it.

use dokuei_ledger::{
    Action, AnalysisRecord, DecisionRecord, FindingRecord, Ledger, ReadingEventKind, RejectReason,
    Role, SignOffRecord, StudyRecord,
};

pub struct Ids {
    pub reader: i64,
    pub study: i64,
    pub findings: Vec<i64>,
    pub decisions: Vec<i64>,
}

pub fn study(uid: &str) -> StudyRecord {
    StudyRecord {
        study_uid: uid.to_owned(),
        accession: "ACC1".into(),
        modality: "CT".into(),
        study_date: "20260101".into(),
        patient_key: "hmac:0f1e2d".into(),
    }
}

pub fn decision(study: i64, finding: Option<i64>, action: Action, reader: i64) -> DecisionRecord {
    DecisionRecord {
        study_id: study,
        finding_id: finding,
        action,
        label: "nodule".into(),
        reject_reason: (action == Action::Reject).then_some(RejectReason::AnatomicalStructure),
        reason_text: String::new(),
        geometry_json: if action == Action::Add {
            r#"{"box":[1,2,3,4]}"#.into()
        } else {
            String::new()
        },
        reader_id: reader,
        supersedes_id: None,
    }
}

/// [`populate_before_sign_off`], then the sign-off.
pub fn populate(ledger: &Ledger) -> Ids {
    let ids = populate_before_sign_off(ledger);
    ledger
        .record_sign_off(&SignOffRecord {
            study_id: ids.study,
            reader_id: ids.reader,
            confirmed: 2,
            edited: 0,
            rejected: 1,
            added: 1,
            impression: "two nodules".into(),
        })
        .unwrap();
    ids
}

/// A reader, a study, an impression, an analysis with three findings and four decisions.
pub fn populate_before_sign_off(ledger: &Ledger) -> Ids {
    let reader = ledger.add_reader("Dr. Sato", Role::Radiologist).unwrap();
    let study = ledger.record_study(&study("1.2.3.4")).unwrap();
    ledger
        .record_reading_event(
            study,
            reader,
            ReadingEventKind::ImpressionBeforeAi,
            "nodule present: yes",
        )
        .unwrap();
    let analysis = ledger
        .record_analysis(&AnalysisRecord {
            study_id: study,
            series_uid: "1.2.3.4.5".into(),
            model_id: "ct-nodule-demo".into(),
            model_version: "1.0.0".into(),
            model_sha256: "ab".repeat(32),
            execution_provider: "CPU".into(),
            thresholds_json: r#"{"nodule":0.5}"#.into(),
            started_at: "2026-01-01T09:00:00.000Z".into(),
            finished_at: "2026-01-01T09:00:04.000Z".into(),
        })
        .unwrap();
    let findings: Vec<i64> = (0..3)
        .map(|i| {
            ledger
                .record_finding(&FindingRecord {
                    analysis_id: analysis,
                    label: "nodule".into(),
                    score: 0.9 - f64::from(i) * 0.1,
                    geometry_json: format!(r#"{{"centroid_mm":[{i},0,0]}}"#),
                    mask_sha256: "cd".repeat(32),
                    shown_at: "2026-01-01T09:00:05.000Z".into(),
                })
                .unwrap()
        })
        .collect();
    let decisions = vec![
        ledger
            .record_decision(&decision(study, Some(findings[0]), Action::Confirm, reader))
            .unwrap(),
        ledger
            .record_decision(&decision(study, Some(findings[1]), Action::Confirm, reader))
            .unwrap(),
        ledger
            .record_decision(&decision(study, Some(findings[2]), Action::Reject, reader))
            .unwrap(),
        ledger
            .record_decision(&decision(study, None, Action::Add, reader))
            .unwrap(),
    ];
    Ids {
        reader,
        study,
        findings,
        decisions,
    }
}
