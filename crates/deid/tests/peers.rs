//! Dokuei's de-identification beside two others on the same real files: Orthanc's anonymiser
//! (Debian orthanc, REST /anonymize, started on loopback) and dicognito (PyPI). Every attribute
//! one of them handles differently from Dokuei must be listed, with what each did and why, in
//! docs/deidentification.md (`scripts/reference/deid_peers.py compare` checks the table;
//! `DOKUEI_UPDATE_DEID_DOCS=1` rewrites its class columns, keeping the reasons).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use dokuei_deid::run::{Status, run};
use dokuei_deid::{Deidentifier, Policy, Pseudonyms, SiteKey};
use dokuei_dicom::testdata::{Collection, reference_python};

/// Real files of several kinds (CT, MR, enhanced CT and MR, RT plan, structure set and dose,
/// SR, waveform, SEG, a veterinary image), none refused for burned-in text.
const FILES: [(Collection, &str); 15] = [
    (Collection::Pydicom, "CT_small.dcm"),
    (Collection::Pydicom, "MR_small.dcm"),
    (Collection::Pydicom, "rtplan.dcm"),
    (Collection::Pydicom, "rtstruct.dcm"),
    (Collection::Pydicom, "rtdose.dcm"),
    (Collection::Pydicom, "test-SR.dcm"),
    (Collection::Pydicom, "reportsi.dcm"),
    (Collection::Pydicom, "waveform_ecg.dcm"),
    (Collection::Pydicom, "liver_1frame.dcm"),
    (Collection::PydicomData, "emri_small.dcm"),
    (Collection::PydicomData, "eCT_Supplemental.dcm"),
    (Collection::DeidData, "animals/cat.dcm"),
    (Collection::Dicompyler, "example_data/ct.0.dcm"),
    (Collection::Dcmqi, "seg_binary.dcm"),
    (Collection::Dcmqi, "sr_tid1500.dcm"),
];

#[test]
fn every_difference_from_orthanc_and_dicognito_is_documented() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut map = Vec::new();
    let d = Deidentifier::new(
        Policy::basic(),
        SiteKey::from_bytes([9; 32]),
        Pseudonyms::in_memory("SITE"),
    );
    for (collection, name) in FILES {
        let input = dokuei_deid_file(collection, name);
        let out = dir.path().join(format!("out-{}", map.len()));
        let report = run(
            &d,
            std::slice::from_ref(&input),
            &out,
            &AtomicBool::new(false),
            |_, _| {},
        )
        .expect("export");
        let f = &report.files[0];
        assert!(
            matches!(f.status, Status::Written { .. }),
            "{name}: {:?}",
            f.status
        );
        let output = out.join(f.output.as_deref().expect("written"));
        map.push(serde_json::json!({"input": input, "output": output}));
    }
    let map_file = dir.path().join("map.json");
    std::fs::write(&map_file, serde_json::to_vec(&map).expect("json")).expect("map");
    let mut cmd = Command::new(reference_python());
    cmd.arg(root.join("scripts/reference/deid_peers.py"))
        .arg("compare")
        .arg("--map")
        .arg(&map_file)
        .arg("--docs")
        .arg(root.join("docs/deidentification.md"));
    if std::env::var_os("DOKUEI_UPDATE_DEID_DOCS").is_some() {
        cmd.arg("--update");
    }
    let out = cmd
        .output()
        .expect("python (run `bash scripts/setup.sh --test`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("15 files"), "{stdout}");
}

fn dokuei_deid_file(collection: Collection, name: &str) -> PathBuf {
    dokuei_dicom::testdata::file(collection, name).expect("test file")
}
