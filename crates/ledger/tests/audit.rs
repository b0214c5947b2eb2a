//! The access audit: events chained like decisions, and every kind of event written as a DICOM
//! PS3.15 audit message that jing validates against the standard's schema
//! (`crates/ledger/schema/dicom-audit-message.rnc`).

use crate::jing::jing_errors;
use dokuei_ledger::signing::{AuthEvent, KeyReason, new_sealed_key};
use dokuei_ledger::{
    AccessAction, AccessDetail, AccessEvent, AuditMessage, AuditSource, Ledger, Outcome,
    ProblemKind, Role,
};

fn event(action: AccessAction) -> AccessEvent {
    AccessEvent {
        action,
        outcome: Outcome::Success,
        reader_id: None,
        os_account: "sato".into(),
        host: "reading-1".into(),
        study_uid: String::new(),
        patient_key: String::new(),
        object: String::new(),
        peer: String::new(),
        detail: AccessDetail::default(),
    }
}

fn on_study(action: AccessAction, reader: i64) -> AccessEvent {
    AccessEvent {
        reader_id: Some(reader),
        study_uid: "1.2.826.0.1.3680043.10.1.1".into(),
        patient_key: "hmac:0f1e2d".into(),
        detail: AccessDetail::default().with_instances([
            ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.1"),
            ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.2"),
            ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.3.3"),
        ]),
        ..event(action)
    }
}

/// One of every event Dokuei records, as the workstation would write them.
fn every_event(ledger: &Ledger) -> i64 {
    let (key, _) = new_sealed_key("correct horse battery").unwrap();
    let reader = ledger
        .add_reader_with_key("Dr. Sato <Chest & Lung>", Role::Radiologist, "sato", &key)
        .unwrap();
    let admin = ledger
        .add_reader_with_key("Dr. Admin", Role::Radiologist, "admin", &key)
        .unwrap();
    ledger.grant_administrator(admin, None, "").unwrap();
    let started = AccessEvent {
        object: "DOKUEI".into(),
        ..event(AccessAction::AppStarted)
    };
    ledger.record_access(&started).unwrap();
    ledger
        .record_access(&on_study(AccessAction::StudyOpened, reader))
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            object: format!("ct-nodule-demo 1.0.0 {}", "ab".repeat(32)),
            ..on_study(AccessAction::ModelRun, reader)
        })
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            object: "DICOM results".into(),
            peer: "/home/sato/results folder/é".into(),
            ..on_study(AccessAction::Exported, reader)
        })
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            object: "decision log (CSV, pseudonymised)".into(),
            peer: "/home/sato/qa.csv".into(),
            detail: AccessDetail {
                note: "120 decisions".into(),
                ..AccessDetail::default()
            },
            ..event(AccessAction::Exported)
        })
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            peer: "Orthanc ORTHANC@127.0.0.1:4242".into(),
            ..on_study(AccessAction::Sent, reader)
        })
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            outcome: Outcome::MinorFailure,
            peer: "Orthanc web http://127.0.0.1:8042/dicom-web".into(),
            detail: AccessDetail {
                error: "STOW-RS refused: 409 <Conflict>".into(),
                ..AccessDetail::default()
            },
            ..on_study(AccessAction::Sent, reader)
        })
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            peer: "Orthanc ORTHANC@127.0.0.1:4242".into(),
            ..on_study(AccessAction::Received, reader)
        })
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            object: "1.2.840.10008.5.1.4.1.2.2.1".into(),
            peer: "Orthanc ORTHANC@[::1]:4242".into(),
            detail: AccessDetail {
                note: "StudyDate=20260101".into(),
                ..AccessDetail::default()
            },
            ..event(AccessAction::Queried)
        })
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            object: "pacs nodes".into(),
            peer: "/home/sato/.local/share/dokuei/pacs.json".into(),
            detail: AccessDetail {
                note: "node `Orthanc` added\u{1}".into(),
                ..AccessDetail::default()
            },
            ..event(AccessAction::SettingChanged)
        })
        .unwrap();
    ledger
        .record_auth_event(reader, AuthEvent::Failure, None)
        .unwrap();
    ledger
        .record_auth_event(reader, AuthEvent::Locked, None)
        .unwrap();
    ledger
        .record_auth_event(reader, AuthEvent::Unlocked, Some(admin))
        .unwrap();
    ledger
        .record_auth_event(reader, AuthEvent::Success, None)
        .unwrap();
    ledger
        .record_reader_key(reader, "sato", &key, KeyReason::Reset, Some(admin), "")
        .unwrap();
    ledger
        .record_access(&AccessEvent {
            object: ledger.path().display().to_string(),
            peer: "/home/sato/audit".into(),
            ..event(AccessAction::AuditExported)
        })
        .unwrap();
    ledger
        .record_access(&event(AccessAction::AppStopped))
        .unwrap();
    reader
}

fn source() -> AuditSource {
    AuditSource {
        source_id: String::new(),
        site_id: "Dokuei General Hospital".into(),
        ae_titles: vec!["DOKUEI".into()],
    }
}

#[test]
fn every_event_is_a_valid_ps3_15_audit_message_in_chain_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    every_event(&ledger);
    let messages = ledger
        .audit_messages_after(0, 1000, &source(), "reading-1")
        .unwrap();
    let names: Vec<&str> = messages.iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        [
            "security-alert-user", // the first reader's key, made with the profile
            "security-alert-user", // the second's
            "security-alert-user", // administrator granted
            "application-start",
            "dicom-instances-accessed",
            "model-run",
            "export",
            "export",
            "dicom-instances-transferred-sent",
            "dicom-instances-transferred-sent",
            "dicom-instances-transferred-received",
            "query",
            "security-alert-configuration",
            "user-authentication",
            "security-alert-user",
            "security-alert-user",
            "user-authentication",
            "security-alert-user",
            "audit-log-used",
            "application-stop",
        ]
    );
    assert!(messages.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        jing_errors(&dir.path().join("atna"), &messages),
        "",
        "every message must validate against PS3.15's schema"
    );
    // And the check can fail: the audit source moved before the participants is refused.
    let mut misplaced = messages[4].clone();
    let xml = &messages[4].xml;
    let start = xml.find("  <AuditSourceIdentification").unwrap();
    let end = xml.find("</AuditSourceIdentification>\n").unwrap()
        + "</AuditSourceIdentification>\n".len();
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    let first = without.find("  <ActiveParticipant").unwrap();
    misplaced.xml = format!(
        "{}{}{}",
        &without[..first],
        &xml[start..end],
        &without[first..]
    );
    assert!(
        jing_errors(&dir.path().join("misplaced"), &[misplaced]).contains("error"),
        "jing must refuse the audit source before the participants"
    );

    let find = |name: &str| messages.iter().find(|m| m.name == name).unwrap();
    let opened = &find("dicom-instances-accessed").xml;
    for expected in [
        r#"<EventID csd-code="110103" codeSystemName="DCM" originalText="DICOM Instances Accessed"/>"#,
        r#"EventActionCode="R""#,
        r#"UserID="sato@reading-1" UserName="Dr. Sato &lt;Chest &amp; Lung&gt;" UserIsRequestor="true""#,
        r#"ParticipantObjectID="1.2.826.0.1.3680043.10.1.1""#,
        r#"<SOPClass UID="1.2.840.10008.5.1.4.1.1.2" NumberOfInstances="2">"#,
        r#"<Instance UID="1.2.3.2"/>"#,
        r#"ParticipantObjectID="hmac:0f1e2d" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1""#,
        r#"AuditEnterpriseSiteID="Dokuei General Hospital" AuditSourceID="reading-1""#,
    ] {
        assert!(opened.contains(expected), "{expected} not in\n{opened}");
    }
    let failed_send = messages
        .iter()
        .filter(|m| m.name == "dicom-instances-transferred-sent")
        .nth(1)
        .unwrap();
    assert!(failed_send.failure);
    assert!(failed_send.xml.contains(r#"EventOutcomeIndicator="4""#));
    assert!(failed_send.xml.contains(
        "<EventOutcomeDescription>STOW-RS refused: 409 &lt;Conflict&gt;</EventOutcomeDescription>"
    ));
    assert!(
        failed_send
            .xml
            .contains(r#"NetworkAccessPointID="127.0.0.1" NetworkAccessPointTypeCode="2""#)
    );
    let received = &find("dicom-instances-transferred-received").xml;
    assert!(received.contains(r#"EventActionCode="C""#));
    // The node is the source, Dokuei the destination (each participant's role follows its
    // start tag).
    let source_at = received.find(r#"originalText="Source Role ID""#).unwrap();
    let node_at = received
        .find(r#"UserID="Orthanc ORTHANC@127.0.0.1:4242""#)
        .unwrap();
    let dest_at = received
        .find(r#"originalText="Destination Role ID""#)
        .unwrap();
    let app_at = received.find(r#"UserID="dokuei@reading-1""#).unwrap();
    assert!(node_at < source_at && source_at < app_at && app_at < dest_at);
    let export = &messages[6].xml;
    assert!(export.contains(r#"UserID="file:///home/sato/results%20folder/%C3%A9""#));
    assert!(
        export
            .contains(r#"<MediaType csd-code="110037" codeSystemName="DCM" originalText="URI"/>"#)
    );
    let model = &find("model-run").xml;
    assert!(model.contains(r#"EventActionCode="E""#));
    assert!(model.contains(&format!(
        r#"ParticipantObjectID="ct-nodule-demo 1.0.0 {}" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="26""#,
        "ab".repeat(32)
    )));
    let start = &find("application-start").xml;
    assert!(start.contains(r#"AlternativeUserID="AETITLES=DOKUEI""#));
    assert!(start.contains(r#"csd-code="110120""#));
    let auth: Vec<&AuditMessage> = messages
        .iter()
        .filter(|m| m.name == "user-authentication")
        .collect();
    assert!(auth[0].failure && auth[0].xml.contains(r#"EventOutcomeIndicator="4""#));
    assert!(!auth[1].failure && auth[1].xml.contains(r#"EventOutcomeIndicator="0""#));
    let unlocked = &messages[15].xml;
    assert!(
        unlocked.contains("profile unlocked by an administrator")
            || unlocked.contains(&b64("profile unlocked by an administrator"))
    );
    assert!(
        unlocked
            .contains(r#"UserID="admin@reading-1" UserName="Dr. Admin" UserIsRequestor="true""#)
    );
    let alert = &find("security-alert-configuration").xml;
    assert!(
        alert.contains(r#"csd-code="110128""#),
        "PACS settings are network configuration"
    );
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn messages_are_read_after_a_position_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    every_event(&ledger);
    let all = ledger
        .audit_messages_after(0, 1000, &source(), "h")
        .unwrap();
    let first = ledger.audit_messages_after(0, 5, &source(), "h").unwrap();
    assert_eq!(first, all[..5]);
    let rest = ledger
        .audit_messages_after(first[4].seq, 1000, &source(), "h")
        .unwrap();
    assert_eq!(rest, all[5..]);
    assert!(
        ledger
            .audit_messages_after(all.last().unwrap().seq, 10, &source(), "h")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_access_event_removed_behind_the_ledgers_back_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let ledger = Ledger::open(&path).unwrap();
    let reader = ledger.add_reader("Dr. Sato", Role::Radiologist).unwrap();
    ledger
        .record_access(&on_study(AccessAction::StudyOpened, reader))
        .unwrap();
    ledger
        .record_access(&on_study(AccessAction::Exported, reader))
        .unwrap();
    assert!(ledger.verify().unwrap().is_intact());
    drop(ledger);
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The triggers are dropped for the edit and put back, so only the chain can tell.
    let triggers = dokuei_ledger::drop_triggers_as_an_attacker(&conn).unwrap();
    conn.execute_batch(
        "UPDATE access_events SET action = 'study_opened' WHERE action = 'exported';",
    )
    .unwrap();
    for sql in triggers {
        conn.execute_batch(&sql).unwrap();
    }
    drop(conn);
    let report = Ledger::open(&path).unwrap().verify().unwrap();
    let problem = report.first_problem.expect("an edited event is found");
    assert_eq!(problem.kind, ProblemKind::Altered, "{problem:?}");
    assert!(problem.description.contains("access_events"), "{problem:?}");
}
