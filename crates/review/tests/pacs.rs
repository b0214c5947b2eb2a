//! Sending to a real Orthanc on loopback by both protocols (C-STORE and STOW-RS), with each sent
//! instance and its outcome recorded in the ledger; the same instances sent twice are safe and
//! recorded twice; the node is then queried and the instances are there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../net/tests/peers/mod.rs"]
mod peers;

use dokuei_ledger::Ledger;
use dokuei_review::pacs::{
    Auth, DimseNode, Level, Node, PacsSettings, Query, WebNode, find, send, test_connection,
};

#[test]
fn sends_by_c_store_and_stow_are_recorded_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let study = peers::study(&dir.path().join("study"), 51, 2);
    let server = peers::orthanc(&dir.path().join("orthanc"), &[]);
    let settings = PacsSettings {
        nodes: vec![
            Node::Dimse(DimseNode {
                name: "Orthanc DIMSE".into(),
                called_ae_title: "ORTHANC".into(),
                calling_ae_title: "DOKUEI".into(),
                host: "127.0.0.1".into(),
                port: server.dicom_port,
                tls: None,
            }),
            Node::Dicomweb(WebNode {
                name: "Orthanc web".into(),
                base_url: format!("http://127.0.0.1:{}/dicom-web", server.http_port),
                auth: Auth::Basic {
                    user: "dokuei".into(),
                    password: "secret".into(),
                },
            }),
        ],
        ..PacsSettings::default()
    };
    // The settings file round-trips; the receiver is off by default.
    let file = dir.path().join("pacs.json");
    settings.save(&file).unwrap();
    let loaded = PacsSettings::load(&file).unwrap();
    assert_eq!(loaded, settings);
    assert!(!loaded.receiver.enabled);
    let t = loaded.timing();
    for n in &loaded.nodes {
        test_connection(n, &t).unwrap();
    }

    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    let (first, second) = study.series.split_at(1);
    let dimse = loaded.node("Orthanc DIMSE").unwrap();
    let web = loaded.node("Orthanc web").unwrap();
    let by_dimse = send(&ledger, dimse, &first[0].1, &t).unwrap();
    let by_web = send(&ledger, web, &second[0].1, &t).unwrap();
    assert!(by_dimse.iter().chain(&by_web).all(|o| o.stored));
    // Twice: safe, and recorded again.
    let again = send(&ledger, web, &first[0].1, &t).unwrap();
    assert!(again.iter().all(|o| o.stored));

    let uid = peers::sop_instance(&first[0].1[0]);
    let sends = ledger.sends_of(&uid).unwrap();
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert_eq!(sends[0].0, "Orthanc DIMSE");
    assert_eq!(sends[0].2, Some(0));
    assert_eq!(sends[1].0, "Orthanc web");
    assert_eq!(sends[1].2, Some(200));
    assert!(sends.iter().all(|s| s.1));
    let verified = ledger.verify().unwrap();
    assert!(verified.first_problem.is_none(), "{verified:?}");
    assert!(verified.rows_checked >= 6);

    // A file that is not DICOM: named, nothing sent, nothing recorded as sent.
    let junk = dir.path().join("junk.dcm");
    std::fs::write(&junk, b"not dicom").unwrap();
    let out = send(&ledger, dimse, std::slice::from_ref(&junk), &t).unwrap();
    assert!(
        !out[0].stored && out[0].detail.contains("junk.dcm"),
        "{out:?}"
    );

    // Each send is in the access audit: taken instances as a success per study, the file that
    // is not DICOM as a failure.
    let audit = ledger.access_events_after(0, 100).unwrap();
    let peers: Vec<(&str, dokuei_ledger::Outcome)> = audit
        .iter()
        .map(|r| (r.event.peer.split(' ').next().unwrap(), r.event.outcome))
        .collect();
    use dokuei_ledger::Outcome::{MinorFailure, Success};
    assert_eq!(
        peers,
        [
            ("Orthanc", Success),
            ("Orthanc", Success),
            ("Orthanc", Success),
            ("Orthanc", MinorFailure),
        ]
    );
    assert_eq!(audit[0].event.study_uid, study.study_uid);
    assert_eq!(audit[0].event.detail.sop_classes[0].count, 2);
    assert!(audit[3].event.detail.error.contains("junk.dcm"));

    // Both series are on the node.
    let series = find(web, &Query::study(&study.study_uid), &t).unwrap();
    assert_eq!(series.len(), 2);
    let instances = find(
        dimse,
        &Query {
            level: Level::Image,
            study_uid: study.study_uid.clone(),
            series_uid: study.series[1].0.clone(),
            ..Query::default()
        },
        &t,
    )
    .unwrap();
    assert_eq!(instances.len(), 2);
}
