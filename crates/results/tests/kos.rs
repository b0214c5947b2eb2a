//! Key images as a Key Object Selection document: written for three images of a synthetic CT
//! (one with a note, one a frame reference), then read back by pydicom and highdicom
//! (`scripts/reference/kos_check.py`) and checked by dciodvfy.

use std::process::Command;

use dokuei_dicom::index::index;
use dokuei_dicom::stack::stacks;
use dokuei_dicom::synth::SyntheticCt;
use dokuei_dicom::testdata;
use dokuei_results::kos::{KEY_OBJECT_SELECTION, KeyImage, write_key_objects};
use dokuei_results::{ObjectIdentity, SourceSeries, StudyContext, Writer};

#[test]
fn key_images_round_trip_through_pydicom_and_highdicom_and_pass_dciodvfy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let series_dir = dir.path().join("ct");
    SyntheticCt {
        slices: 12,
        ..SyntheticCt::default()
    }
    .write(&series_dir)
    .expect("synthetic CT");
    let idx = index(std::slice::from_ref(&series_dir));
    let patient = &idx.patients[0];
    let study = &patient.studies[0];
    let series = &study.series[0];
    let source = SourceSeries::from_stack(series, &stacks(series)[0]).expect("source");
    let context = StudyContext::from_index(patient, study);
    let image = |k: usize, note: &str, frame: Option<u32>| KeyImage {
        sop_class_uid: source.images[k].sop_class_uid.clone(),
        sop_instance_uid: source.images[k].sop_instance_uid.clone(),
        series_uid: source.series_uid.clone(),
        frame,
        note: note.into(),
    };
    // Frame 5 of a multi-frame (enhanced) CT of the same series, beside three slices.
    let enhanced = KeyImage {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2.1".into(),
        sop_instance_uid: "2.25.7700".into(),
        series_uid: source.series_uid.clone(),
        frame: Some(5),
        note: "compare with prior".into(),
    };
    let images = vec![
        image(3, "nodule, right upper lobe, 6 mm", None),
        image(7, "", None),
        image(9, "", None),
        enhanced,
    ];
    let labels: Vec<String> = ["image 4", "image 8", "image 10", "enhanced CT, frame 5"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let id = ObjectIdentity {
        sop_instance_uid: "2.25.9001".into(),
        series_uid: "2.25.9002".into(),
        series_number: 9700,
        series_description: "Key images".into(),
        instance_number: 1,
        content_date: "20261203".into(),
        content_time: "101500".into(),
    };
    let writer = Writer {
        software_version: "test".into(),
        device_serial: "test".into(),
    };
    let kos =
        write_key_objects(&context, &images, &labels, "Yamada^Hanako", &id, &writer).expect("KOS");
    let file = dir.path().join("kos.dcm");
    kos.write_to_file(&file).expect("write");
    assert!(write_key_objects(&context, &[], &[], "x", &id, &writer).is_err());

    let run = Command::new(testdata::reference_python())
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/reference/kos_check.py"),
        )
        .arg(&file)
        .output()
        .expect("reference python (run `bash scripts/setup.sh --test`)");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    println!("{r}");
    assert_eq!(r["sop_class"], KEY_OBJECT_SELECTION);
    assert_eq!(r["modality"], "KO");
    assert_eq!(r["title"], serde_json::json!(["113000", "DCM"]));
    assert_eq!(r["template"], "2010");
    assert_eq!(r["observer"], "Yamada^Hanako");
    assert_eq!(
        r["description"],
        "image 4: nodule, right upper lobe, 6 mm\nenhanced CT, frame 5: compare with prior"
    );
    let uid = |k: usize| source.images[k].sop_instance_uid.clone();
    assert_eq!(
        r["images"],
        serde_json::json!([
            [uid(3), null],
            [uid(7), null],
            [uid(9), null],
            ["2.25.7700", 5]
        ])
    );
    assert_eq!(
        r["highdicom_images"],
        serde_json::json!([uid(3), uid(7), uid(9), "2.25.7700"])
    );
    assert_eq!(r["highdicom_title"], "Of Interest");
    for (k, resolved) in [3, 7, 9]
        .iter()
        .zip(r["highdicom_resolved"].as_array().unwrap())
    {
        assert_eq!(
            resolved,
            &serde_json::json!([study.uid, source.series_uid, uid(*k)])
        );
    }
    assert_eq!(r["evidence"].as_array().map(Vec::len), Some(4));

    let out = Command::new(testdata::reference_python().with_file_name("dciodvfy"))
        .arg(&file)
        .output()
        .expect("dciodvfy");
    let report =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("Error")).collect();
    assert!(errors.is_empty(), "{report}");
}
