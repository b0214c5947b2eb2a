//! QA export: CSV and JSON Lines parse back to the same decisions, filters select the right
//! rows, identifiers are pseudonymised by default, and a fixed ledger gives a golden file.

use dokuei_ledger::export::read_export;
use dokuei_ledger::{Action, DecisionFilter, Format, Identifiers, Ledger};

use crate::support::{decision, populate};

fn export(ledger: &Ledger, filter: &DecisionFilter, format: Format, ids: &Identifiers) -> Vec<u8> {
    let mut out = Vec::new();
    ledger
        .export_decisions(filter, format, ids, &mut out)
        .unwrap();
    out
}

#[test]
fn csv_and_jsonl_round_trip_to_the_same_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let ids = populate(&ledger);
    // Text that CSV must quote: commas, quotes, a newline, non-ASCII.
    let mut tricky = decision(ids.study, Some(ids.findings[0]), Action::Reject, ids.reader);
    tricky.reject_reason = Some(dokuei_ledger::RejectReason::Other);
    tricky.reason_text = "calcified, \"benign\"\n見落としではない".into();
    tricky.supersedes_id = Some(ids.decisions[0]);
    ledger.record_decision(&tricky).unwrap();

    let all = DecisionFilter::default();
    let csv = export(&ledger, &all, Format::Csv, &Identifiers::AsRecorded);
    let jsonl = export(&ledger, &all, Format::JsonLines, &Identifiers::AsRecorded);
    let from_csv = read_export(Format::Csv, &mut csv.as_slice()).unwrap();
    let from_jsonl = read_export(Format::JsonLines, &mut jsonl.as_slice()).unwrap();
    assert_eq!(from_csv.len(), 5);
    assert_eq!(from_csv, from_jsonl);
    let last = from_csv.last().unwrap();
    assert_eq!(last.reason_text, "calcified, \"benign\"\n見落としではない");
    assert_eq!(last.reject_reason, "other");
    assert_eq!(last.supersedes_id, Some(ids.decisions[0]));
    assert_eq!(last.model_sha256, "ab".repeat(32));
    assert_eq!(last.study, "1.2.3.4");
    // The header row names every column, and timestamps are ISO 8601 UTC.
    let header = String::from_utf8_lossy(&csv)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        header.starts_with("schema_version,decision_id,recorded_at,"),
        "{header}"
    );
    assert!(last.recorded_at.ends_with('Z') && last.recorded_at.contains('T'));
}

#[test]
fn filters_select_by_action_label_reader_model_and_study() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    populate(&ledger);
    let count = |filter: DecisionFilter| {
        read_export(
            Format::JsonLines,
            &mut export(
                &ledger,
                &filter,
                Format::JsonLines,
                &Identifiers::AsRecorded,
            )
            .as_slice(),
        )
        .unwrap()
        .len()
    };
    assert_eq!(
        count(DecisionFilter {
            action: Some("confirm".into()),
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        count(DecisionFilter {
            action: Some("add".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        count(DecisionFilter {
            reader: Some("Dr. Sato".into()),
            ..Default::default()
        }),
        4
    );
    assert_eq!(
        count(DecisionFilter {
            reader: Some("Dr. Nobody".into()),
            ..Default::default()
        }),
        0
    );
    // The added finding is attributed to the study's analysis, so all four match the model.
    assert_eq!(
        count(DecisionFilter {
            model_id: Some("ct-nodule-demo".into()),
            model_version: Some("1.0.0".into()),
            ..Default::default()
        }),
        4
    );
    assert_eq!(
        count(DecisionFilter {
            model_version: Some("9.9".into()),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        count(DecisionFilter {
            study_uid: Some("1.2.3.4".into()),
            label: Some("nodule".into()),
            ..Default::default()
        }),
        4
    );
    assert_eq!(
        count(DecisionFilter {
            from: Some("2000-01-01".into()),
            to: Some("2000-01-02".into()),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        count(DecisionFilter {
            from: Some("2000-01-01".into()),
            ..Default::default()
        }),
        4
    );
}

#[test]
fn exports_are_pseudonymised_with_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    populate(&ledger);
    let key = Identifiers::Pseudonymised {
        key: b"site secret".to_vec(),
    };
    let rows = read_export(
        Format::Csv,
        &mut export(&ledger, &DecisionFilter::default(), Format::Csv, &key).as_slice(),
    )
    .unwrap();
    assert!(
        rows.iter()
            .all(|r| r.study.starts_with("psn-") && r.study == rows[0].study),
        "one study, one pseudonym"
    );
    assert!(rows.iter().all(|r| !r.accession.contains("ACC1")));
    let text = String::from_utf8(export(
        &ledger,
        &DecisionFilter::default(),
        Format::Csv,
        &key,
    ))
    .unwrap();
    assert!(
        !text.contains("1.2.3.4") && !text.contains("ACC1"),
        "an identifier leaked:\n{text}"
    );
}

#[test]
fn agreement_statistics_count_effective_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let ids = populate(&ledger);
    // The reader changes their mind about the rejected finding: it becomes an edit.
    let mut edit = decision(ids.study, Some(ids.findings[2]), Action::Edit, ids.reader);
    edit.supersedes_id = Some(ids.decisions[2]);
    edit.geometry_json = r#"{"box":[0,0,2,2]}"#.into();
    ledger.record_decision(&edit).unwrap();
    let stats = ledger.stats(Some("ct-nodule-demo")).unwrap();
    assert_eq!(stats.agreement.len(), 1);
    let a = &stats.agreement[0];
    assert_eq!((a.confirmed, a.edited, a.rejected, a.added), (2, 1, 0, 1));
    assert!((a.rate(a.confirmed) - 2.0 / 3.0).abs() < 1e-12);
    assert!(
        a.reject_reasons.is_empty(),
        "the superseded reject no longer counts"
    );
    assert!(a.median_seconds_to_decision.is_some());
    assert_eq!(stats.sign_offs_per_day.len(), 1);
    assert_eq!(stats.sign_offs_per_day[0].1, 1);
    assert!(
        ledger
            .stats(Some("other-model"))
            .unwrap()
            .agreement
            .is_empty()
    );
}

/// A fixed ledger's export, byte for byte. Regenerate after an intended change with
/// `DOKUEI_UPDATE_GOLDEN=1 cargo test -p dokuei-ledger` and review the diff.
#[test]
fn a_fixed_ledger_exports_to_the_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_as(&dir.path().join("l.db"), "0.1.0").unwrap();
    ledger.set_fixed_clock("2026-01-01T09:00:10.000Z", 540);
    populate(&ledger);
    let key = Identifiers::Pseudonymised {
        key: b"golden-key".to_vec(),
    };
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    // The golden files are compiled in (a regenerated file takes effect on the next build).
    for (format, name, want) in [
        (
            Format::Csv,
            "export.csv",
            &include_bytes!("golden/export.csv")[..],
        ),
        (
            Format::JsonLines,
            "export.jsonl",
            &include_bytes!("golden/export.jsonl")[..],
        ),
    ] {
        let got = export(&ledger, &DecisionFilter::default(), format, &key);
        if std::env::var_os("DOKUEI_UPDATE_GOLDEN").is_some() {
            std::fs::write(golden.join(name), &got).unwrap();
            continue;
        }
        assert!(
            got == want,
            "{name} differs from the golden file:\n{}",
            String::from_utf8_lossy(&got)
        );
    }
}
