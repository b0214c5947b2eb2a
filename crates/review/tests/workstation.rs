//! The workstation's use cases without a window: open a study (and the recent list), its stack
//! view and pixels by the same paths the app's URI scheme serves, a stale generation refused,
//! the reader's settings saved and read back, and the PACS side off by default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dokuei_review::dicom::synth::SyntheticCt;
use dokuei_review::workstation::{Settings, Workstation};

#[test]
fn a_study_opens_serves_its_pixels_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    SyntheticCt {
        slices: 4,
        ..SyntheticCt::default()
    }
    .write(&study)
    .unwrap();
    let ws = Workstation::new(dir.path().join("data"), dir.path().join("cache"))
        .with_ledger_file(dir.path().join("ledger.sqlite"));
    assert!(ws.current().is_err(), "nothing is open yet");

    let opened = ws.open_study(vec![study.display().to_string()]).unwrap();
    let series = &opened.tree.studies[0].series[0];
    assert_eq!(series.stacks[0].slices, 4);
    let view = ws.stack_view(series.key, 0).unwrap();
    assert_eq!((view.rows, view.columns), (64, 64));
    let (status, kind, body) =
        ws.pixels(&format!("slice/{}/{}/0/2", opened.generation, series.key));
    assert_eq!((status, kind), (200, "application/octet-stream"));
    assert_eq!(body.len(), 64 * 64 * 2);
    // A URL of an earlier study is refused once another opens.
    let again = ws.open_study(vec![study.display().to_string()]).unwrap();
    assert_eq!(again.generation, opened.generation + 1);
    let (status, _, body) = ws.pixels(&format!("slice/{}/{}/0/2", opened.generation, series.key));
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("no longer open"));
    // The recent list has it once, without patient identifiers.
    let recent = ws.recent_studies();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].paths, vec![study.display().to_string()]);
    assert!(!recent[0].label.contains("Phantom"));

    let settings = Settings {
        reader_id: Some(3),
        commit_then_reveal: true,
        palette: "cvd".into(),
        model_folders: vec![],
    };
    ws.save_settings(settings.clone()).unwrap();
    assert_eq!(ws.settings(), settings);
    let pacs = ws.pacs.status().unwrap();
    assert!(pacs.listening.is_none(), "the receiver is off by default");
    assert!(pacs.cache.studies.is_empty());
}
