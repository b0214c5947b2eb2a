//! The access audit through the workstation's own use cases, against real peers on loopback:
//! open a study, run the demo model, export results, send them to Orthanc, query and retrieve
//! them back, change settings, export the decision log. Each is recorded in the ledger; the
//! audit trail exported as DICOM PS3.15 audit messages passes jing against the standard's schema;
//! and rsyslog (syslog over TLS, with Dokuei's client certificate) receives every message, the
//! ones recorded while it was down included, in order and byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../net/tests/peers/mod.rs"]
mod peers;

#[path = "../../ledger/tests/jing.rs"]
mod jing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dokuei_net::ReceiverConfig;
use dokuei_review::audit::AuditSettings;
use dokuei_review::dicom::synth::{Sphere, SyntheticCt};
use dokuei_review::ledger::{DecisionFilter, Ledger};
use dokuei_review::pacs::{DimseNode, Level, Node, PacsSettings, Query, RetrieveRequest};
use dokuei_review::workstation::{Settings, Workstation};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// The XML files of an audit export, in chain order.
fn exported(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            stem.split_once('-').unwrap().1.to_owned()
        })
        .collect()
}

#[test]
fn every_access_is_recorded_exported_as_valid_ps3_15_messages_and_sent_over_syslog_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    peers::ca(d, "ca");
    peers::signed(d, "server", "ca");
    peers::signed(d, "client", "ca");
    let mut repository = peers::rsyslog(d, true);
    let receiver_port = peers::free_port();
    let orthanc = peers::orthanc(&d.join("orthanc"), &[("DOKUEI", receiver_port)]);
    let study = d.join("study");
    SyntheticCt {
        slices: 12,
        spheres: vec![Sphere {
            center: [5.0, -5.0, 15.0],
            radius: 6.0,
            hu: 40.0,
        }],
        ..SyntheticCt::default()
    }
    .write(&study)
    .unwrap();
    let ledger_file = d.join("ledger.sqlite");
    let ws =
        Workstation::new(d.join("data"), d.join("cache")).with_ledger_file(ledger_file.clone());

    ws.record_application(true);
    ws.save_audit_settings(AuditSettings {
        send: true,
        repository: dokuei_net::syslog::SyslogTarget {
            host: "127.0.0.1".into(),
            port: repository.port,
            tls: peers::tls_files(d, "ca.crt", true),
        },
        source_id: String::new(),
        site_id: "Dokuei Test Hospital".into(),
    })
    .unwrap();
    ws.save_pacs_settings(PacsSettings {
        nodes: vec![Node::Dimse(DimseNode {
            name: "Orthanc".into(),
            called_ae_title: "ORTHANC".into(),
            calling_ae_title: "DOKUEI".into(),
            host: "127.0.0.1".into(),
            port: orthanc.dicom_port,
            tls: None,
        })],
        receiver: ReceiverConfig {
            enabled: true,
            address: "127.0.0.1".into(),
            port: receiver_port,
            ae_title: "DOKUEI".into(),
            allowed_calling_ae_titles: vec!["PUSHER".into(), "ORTHANC".into()],
        },
        ..PacsSettings::default()
    })
    .unwrap();

    let opened = ws.open_study(vec![study.display().to_string()]).unwrap();
    let series = opened.tree.studies[0].series[0].key;
    let study_uid = ws.current().unwrap().1.index.patients[0].studies[0]
        .uid
        .clone();
    let analysed = ws
        .analyse(series, 0, &models_dir().join("ct-nodule-demo"), &mut |_| {})
        .unwrap();
    assert!(
        !analysed.review.findings.is_empty(),
        "the model finds the sphere"
    );
    // A model folder that is not there: a failed run, recorded as such.
    assert!(
        ws.analyse(series, 0, &d.join("no-model"), &mut |_| {})
            .is_err()
    );
    let results = ws.export_results(series, &d.join("results")).unwrap();
    let sent = ws
        .send_folder("Orthanc", Path::new(&results.folder))
        .unwrap();
    assert!(
        !sent.is_empty() && sent.iter().all(|s| s.stored),
        "{sent:?}"
    );
    let rows = ws
        .pacs_find(
            "Orthanc",
            &Query {
                level: Level::Study,
                study_uid: study_uid.clone(),
                ..Query::default()
            },
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    let retrieved = ws
        .retrieve(
            "Orthanc",
            &RetrieveRequest {
                study_uid: study_uid.clone(),
                series_uids: Vec::new(),
            },
            false,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(retrieved.report.instances.len(), sent.len());
    // By C-MOVE, with the app's receiver poller running all along: the instances are the
    // retrieve's, recorded once, not taken for a push by the PACS.
    let done = std::sync::atomic::AtomicBool::new(false);
    let moved = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                ws.audit_received();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let moved = ws.retrieve(
            "Orthanc",
            &RetrieveRequest {
                study_uid: study_uid.clone(),
                series_uids: Vec::new(),
            },
            true,
            &mut |_| std::thread::sleep(Duration::from_millis(20)),
        );
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        moved
    })
    .unwrap();
    assert_eq!(moved.report.instances.len(), sent.len());
    // Another system pushes the images to Dokuei's receiver.
    let images: Vec<PathBuf> = std::fs::read_dir(&study)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    peers::dcmsend("DOKUEI", receiver_port, "PUSHER", &images);
    ws.audit_received();
    ws.save_settings(Settings {
        palette: "cvd".into(),
        ..Settings::default()
    })
    .unwrap();

    // The repository goes down: what is recorded meanwhile waits in the ledger.
    let port = repository.port;
    repository.peer.kill();
    let qa = d.join("qa.csv");
    ws.qa_export(&DecisionFilter::default(), "csv", false, &qa)
        .unwrap();
    ws.record_application(false);

    let export = ws.export_audit(&d.join("atna")).unwrap();
    let files = exported(&d.join("atna"));
    assert_eq!(files.len() as u32, export.messages);
    assert_eq!(
        jing::jing_files(&files),
        "",
        "every message is valid PS3.15"
    );
    for f in &files {
        // Within a syslog receiver's default 8 KiB with the RFC 5424 header.
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size < 7900, "{} is {size} bytes", f.display());
    }
    let names = names(&files);
    let sequence: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        sequence,
        [
            "application-start",
            "security-alert-configuration", // the audit repository configured
            "security-alert-configuration", // the PACS node added
            "dicom-instances-accessed",
            "model-run",
            "model-run", // the one that failed
            "export",
            "dicom-instances-transferred-sent",
            "query",
            "dicom-instances-transferred-received", // retrieved by C-GET
            "dicom-instances-transferred-received", // by C-MOVE
            "dicom-instances-transferred-received", // pushed
            "security-alert-configuration",         // the palette
            "export",                               // the decision log
            "application-stop",
            "audit-log-used",
        ]
    );
    let read = |i: usize| std::fs::read_to_string(&files[i]).unwrap();
    assert!(
        read(5).contains(r#"EventOutcomeIndicator="4""#),
        "the failed run"
    );
    assert!(read(5).contains("no-model"));
    assert!(read(4).contains("ct-nodule-demo 1.0.0 sha256:"));
    let sent_xml = read(7);
    assert!(sent_xml.contains(&format!(r#"ParticipantObjectID="{study_uid}""#)));
    for s in &sent {
        assert!(sent_xml.contains(&format!(r#"<Instance UID="{}"/>"#, s.sop_instance_uid)));
    }
    assert!(sent_xml.contains(&format!(
        r#"UserID="Orthanc ORTHANC@127.0.0.1:{}""#,
        orthanc.dicom_port
    )));
    assert!(sent_xml.contains(r#"AlternativeUserID="AETITLES=DOKUEI""#));
    assert!(read(8).contains("<ParticipantObjectQuery>"));
    assert!(read(9).contains(r#"EventActionCode="C""#));
    let by_move = read(10);
    assert!(
        by_move.contains(r#"UserID="Orthanc ORTHANC@127.0.0.1"#),
        "{by_move}"
    );
    assert!(!by_move.contains("AE ORTHANC"), "{by_move}");
    let pushed = read(11);
    assert!(
        pushed.contains(r#"<ActiveParticipant UserID="AE PUSHER" UserIsRequestor="true">"#),
        "{pushed}"
    );
    assert_eq!(
        pushed.matches(r#"UserIsRequestor="true""#).count(),
        1,
        "{pushed}"
    );
    for i in 0..files.len() {
        assert!(
            read(i).matches(r#"UserIsRequestor="true""#).count() <= 1,
            "one requestor at most: {}",
            read(i)
        );
    }
    assert!(pushed.contains(&format!(
        r#"<SOPClass UID="1.2.840.10008.5.1.4.1.1.2" NumberOfInstances="{}">"#,
        images.len()
    )));
    assert!(read(12).contains("<ParticipantObjectName>reader settings</ParticipantObjectName>"));
    // The patient is named by pseudonym, never by the phantom's ID.
    let all: String = (0..files.len()).map(read).collect();
    assert!(
        !all.contains("SYN-1") && !all.contains("Phantom"),
        "no patient ID or name in the audit messages"
    );
    assert!(all.contains(r#"AuditEnterpriseSiteID="Dokuei Test Hospital""#));

    let ledger = Ledger::open(&ledger_file).unwrap();
    assert!(ledger.verify().unwrap().is_intact());

    // The repository is back on its port: the next nudge sends everything it does not have, in
    // order, byte for byte.
    let repository = peers::rsyslog_on(d, port, true);
    ws.nudge_audit();
    let got = repository.wait_for(files.len(), Duration::from_secs(30));
    let bodies: Vec<&str> = got.iter().map(|g| g["msg"].as_str().unwrap()).collect();
    // At least once: a batch may go twice when a send fails part-way; never out of order.
    let mut seen = std::collections::HashSet::new();
    let deduped: Vec<&str> = bodies.into_iter().filter(|b| seen.insert(*b)).collect();
    let expected: Vec<String> = (0..files.len())
        .map(|i| read(i).trim_end().to_owned())
        .collect();
    assert_eq!(deduped, expected);
    assert!(got.iter().all(|g| g["msgid"] == "IHE+RFC-3881"));
}
