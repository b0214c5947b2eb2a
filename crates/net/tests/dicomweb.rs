//! DICOMweb against a real Orthanc with its DICOMweb plug-in on loopback (Basic auth): QIDO-RS
//! queries, WADO-RS retrieves in the stored transfer syntax, STOW-RS sends (a partly invalid
//! one answered 400 with the valid part stored, confirmed by QIDO), and clear errors for a wrong
//! password and an unreachable server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod peers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dokuei_net::web::{self, Auth, WebNode};
use dokuei_net::{Level, Query, RetrieveRequest};
use peers::*;

const T: Duration = Duration::from_secs(20);

fn node(port: u16, password: &str) -> WebNode {
    WebNode {
        name: "Orthanc web".into(),
        base_url: format!("http://127.0.0.1:{port}/dicom-web/"),
        auth: Auth::Basic {
            user: "dokuei".into(),
            password: password.into(),
        },
    }
}

#[test]
fn qido_wado_stow_against_orthanc() {
    let dir = tempfile::tempdir().unwrap();
    let study = study(&dir.path().join("study"), 41, 6);
    let server = orthanc(&dir.path().join("orthanc"), &[]);
    dcmsend("ORTHANC", server.dicom_port, "LOADER", &study.files());
    let n = node(server.http_port, "secret");

    // Test connection.
    web::probe(&n, T).unwrap();
    let e = web::probe(&node(server.http_port, "wrong"), T).unwrap_err();
    assert!(e.to_string().contains("authentication failed"), "{e}");
    assert!(
        e.to_string().starts_with("Orthanc web (http://127.0.0.1:"),
        "{e}"
    );
    // Unreachable: tried three times with back-off (0.5 s, then 1 s) before saying so.
    let started = std::time::Instant::now();
    let e = web::probe(&node(free_port(), "secret"), Duration::from_secs(2)).unwrap_err();
    assert!(e.to_string().contains("unreachable"), "{e}");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );

    // QIDO-RS.
    let found = web::find(
        &n,
        &Query {
            patient_name: "Synth*".into(),
            date_from: "20251231".into(),
            date_to: "20260102".into(),
            ..Query::default()
        },
        T,
    )
    .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].study_uid, study.study_uid);
    assert_eq!(found[0].patient_name, "Synthetic^Phantom");
    assert_eq!(found[0].instance_count, Some(study.files().len() as u32));
    let none = web::find(
        &n,
        &Query {
            patient_id: "NO-SUCH".into(),
            ..Query::default()
        },
        T,
    )
    .unwrap();
    assert!(none.is_empty());
    let series = web::find(&n, &Query::study(&study.study_uid), T).unwrap();
    assert_eq!(series.len(), 2);
    let page = web::find(
        &n,
        &Query {
            level: Level::Image,
            study_uid: study.study_uid.clone(),
            series_uid: study.series[0].0.clone(),
            limit: 2,
            offset: 1,
            ..Query::default()
        },
        T,
    )
    .unwrap();
    assert_eq!(page.len(), 2);

    // WADO-RS of the whole study: the JPEG-LS series stays JPEG-LS, pixel bytes identical.
    let cache = tempfile::tempdir().unwrap();
    let mut progress = Vec::new();
    let report = web::retrieve(
        &n,
        &RetrieveRequest {
            study_uid: study.study_uid.clone(),
            series_uids: Vec::new(),
        },
        cache.path(),
        T,
        &mut |p| progress.push(p.clone()),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(report.complete(), "{:?}", report.series);
    let by_uid: BTreeMap<String, PathBuf> = report
        .instances
        .iter()
        .map(|i| (i.sop_instance_uid.clone(), i.path.clone()))
        .collect();
    assert_eq!(by_uid.len(), study.files().len());
    for f in study.files() {
        let got = &by_uid[&sop_instance(&f)];
        assert_eq!(transfer_syntax(got), transfer_syntax(&f), "{}", f.display());
        assert_eq!(pixel_bytes(got), pixel_bytes(&f));
    }
    assert!(
        progress
            .iter()
            .any(|p| p.series_complete && p.series_index == 0)
    );
    assert_eq!(
        progress.last().unwrap().instances_done as usize,
        study.files().len()
    );

    // Wrong password on a retrieve: a named failure, not a panic or an empty success.
    let e = web::retrieve(
        &node(server.http_port, "wrong"),
        &RetrieveRequest {
            study_uid: study.study_uid.clone(),
            series_uids: Vec::new(),
        },
        cache.path(),
        T,
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(e.to_string().contains("authentication failed"), "{e}");

    // STOW-RS: another study, sent twice (safe), then read back by QIDO and WADO.
    let other = peers::study(&dir.path().join("other"), 42, 3);
    let sent = web::store(&n, &other.files(), T).unwrap();
    assert!(sent.iter().all(|s| s.stored), "{sent:?}");
    let again = web::store(&n, &other.files(), T).unwrap();
    assert!(again.iter().all(|s| s.stored), "{again:?}");
    let back = web::find(&n, &Query::study(&other.study_uid), T).unwrap();
    assert_eq!(back.len(), 2);
    let back_dir = tempfile::tempdir().unwrap();
    let report = web::retrieve(
        &n,
        &RetrieveRequest {
            study_uid: other.study_uid.clone(),
            series_uids: vec![other.series[1].0.clone()],
        },
        back_dir.path(),
        T,
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.instances.len(), 3);
    assert!(report.complete());

    // One valid and one invalid part (no Series Instance UID): Orthanc answers 400 yet stores
    // the valid one; the outcome says which is on the server.
    let third = peers::study(&dir.path().join("third"), 43, 1);
    let bad = dir.path().join("bad.dcm");
    let mut obj = dicom_object::open_file(&third.series[1].1[0]).unwrap();
    obj.remove_element(dicom_dictionary_std::tags::SERIES_INSTANCE_UID);
    obj.write_to_file(&bad).unwrap();
    let good = third.series[0].1[0].clone();
    let mixed = web::store(&n, &[good.clone(), bad.clone()], T).unwrap();
    assert_eq!(mixed.len(), 2);
    let g = mixed.iter().find(|o| o.path == good).unwrap();
    let b = mixed.iter().find(|o| o.path == bad).unwrap();
    assert_eq!(g.status, b.status);
    assert!(g.stored, "{g:?}");
    assert!(!b.stored, "{b:?}");
    if g.status != Some(200) {
        assert!(g.detail.contains("checked by QIDO"), "{}", g.detail);
    }
}
