//! The workstation's de-identified export picks up the site's region table beside the ledger:
//! without it an ultrasound is refused, with it the ultrasound's text is blanked, and a table
//! with a mistake stops the export before anything is written, naming the file and line.

use std::sync::atomic::AtomicBool;

use dokuei_deid::run::Status;
use dokuei_dicom::testdata::{Collection, file};
use dokuei_review::deid::{DeidRequest, REGION_TABLE, deid_dir, export};

#[test]
fn the_sites_region_table_cleans_what_it_matches_and_a_wrong_table_stops_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        dokuei_review::ledger::open_ledger(Some(&dir.path().join("ledger.sqlite"))).unwrap();
    let us = file(Collection::DeidData, "ultrasounds/RGB_IMAGE.dcm").unwrap();
    let request = DeidRequest::default();
    let run = |out: &str| {
        export(
            &ledger,
            std::slice::from_ref(&us),
            &dir.path().join(out),
            &request,
            None,
            &AtomicBool::new(false),
            |_, _| {},
        )
    };

    let before = run("before").unwrap();
    assert_eq!((before.written, before.refused), (0, 1));
    let Status::Refused { reason } = &before.files[0].status else {
        panic!("{:?}", before.files[0].status)
    };
    assert!(reason.contains("no region table is set"), "{reason}");

    let site = deid_dir(ledger.path()).join(REGION_TABLE);
    std::fs::create_dir_all(site.parent().unwrap()).unwrap();
    std::fs::write(
        &site,
        "{ Modality.equals(\"US\") * Manufacturer.equals(\"SIEMENS\") * ManufacturerModelName.equals(\"S2000\") }\n(0, 0, 1024, 60)\n",
    )
    .unwrap();
    let after = run("after").unwrap();
    assert_eq!(
        (after.written, after.pixels_cleaned),
        (1, 1),
        "{:?}",
        after.files
    );
    assert!(
        after
            .region_table
            .as_deref()
            .is_some_and(|t| t.starts_with("pixel-regions.script (1 signatures")),
        "{:?}",
        after.region_table
    );
    // The report that leaves with the data says which table cleaned it.
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("after").join(dokuei_deid::run::REPORT)).unwrap(),
    )
    .unwrap();
    assert_eq!(report["pixels_cleaned"], 1);

    std::fs::write(&site, "{ Modality.equals(\"US\") }\n(0, 0, 1024)\n").unwrap();
    let err = run("broken").unwrap_err().to_string();
    assert!(
        err.contains("pixel-regions.script") && err.contains("line 2"),
        "{err}"
    );
    assert!(!dir.path().join("broken").exists(), "an export began");
}

/// Clean Recognizable Visual Features in the de-identified export: a head CT and a head MR
/// leave as their defaced DERIVED series, a chest CT as it is (no face in a trunk), a CT of the face below
/// the brain (nothing to anchor a plane to) is refused, and every file written says the option
/// was applied.
#[test]
fn defacing_in_the_export_replaces_head_cts_keeps_trunks_and_refuses_what_it_cannot_deface() {
    use dicom_dictionary_std::tags;
    use dokuei_dicom::synth::{Phantom, SyntheticCt};

    let dir = tempfile::tempdir().unwrap();
    let ledger =
        dokuei_review::ledger::open_ledger(Some(&dir.path().join("ledger.sqlite"))).unwrap();
    let head = SyntheticCt {
        phantom: Phantom::Head,
        rows: 96,
        columns: 96,
        pixel_spacing: [2.7, 2.7],
        slices: 52,
        slice_spacing: 5.0,
        origin: [-129.6, -129.6, -127.5],
        seed: 31,
        series_number: 1,
        series_description: "Head".into(),
        ..SyntheticCt::default()
    };
    // The same head, only its lowest 12 slices: jaw, mouth, nose; no brain.
    let face = SyntheticCt {
        series_number: 3,
        series_description: "Face".into(),
        skip: (12..52).collect(),
        ..head.clone()
    };
    let chest = SyntheticCt {
        rows: 96,
        columns: 96,
        pixel_spacing: [4.0, 4.0],
        origin: [-192.0, -192.0, 0.0],
        slices: 10,
        seed: 31,
        series_number: 2,
        ..SyntheticCt::default()
    };
    // The same head as a T1-weighted MR.
    let mr = SyntheticCt {
        phantom: Phantom::HeadMr,
        series_number: 4,
        series_description: "Head MR".into(),
        noise_hu: 20.0,
        ..head.clone()
    };
    let input = dir.path().join("in");
    head.write(&input.join("head")).unwrap();
    mr.write(&input.join("mr")).unwrap();
    // A second copy of a head slice: the index keeps one; the other cannot be checked for a
    // face (its defaced twin has new UIDs, so the run's own duplicate check would miss it).
    let first_slice = std::fs::read_dir(input.join("head"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .min()
        .unwrap();
    std::fs::create_dir_all(input.join("zcopy")).unwrap();
    std::fs::copy(&first_slice, input.join("zcopy/copy.dcm")).unwrap();
    chest.write(&input.join("chest")).unwrap();
    face.write(&input.join("face")).unwrap();

    // The body's size, which keeps a trunk that does not say what it is: the chest phantom's
    // (on a 38 cm field of view) is a trunk's, the face's a head's.
    let area = |dir: &str| {
        let study = dokuei_review::viewer::OpenStudy::open(&[input.join(dir)]).unwrap();
        let series = study.series(0).unwrap();
        let stack = study.stack(0, 0).unwrap();
        dokuei_review::deface::body_cross_section_cm2(series, stack).unwrap()
    };
    let (chest_cm2, face_cm2) = (area("chest"), area("face"));
    println!("chest {chest_cm2:.0} cm², face {face_cm2:.0} cm²");
    assert!(chest_cm2 >= dokuei_review::deid::TRUNK_CM2, "{chest_cm2}");
    assert!((50.0..250.0).contains(&face_cm2), "{face_cm2}");

    let request = DeidRequest {
        deface: true,
        ..DeidRequest::default()
    };
    let out = dir.path().join("out");
    let report = export(
        &ledger,
        std::slice::from_ref(&input),
        &out,
        &request,
        None,
        &AtomicBool::new(false),
        |_, _| {},
    )
    .unwrap();
    for n in &report.notes {
        println!("{n}");
    }
    assert_eq!(
        (report.written, report.refused, report.failed),
        (52 + 10 + 52, 12 + 1, 0),
        "{:#?}",
        report.notes
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("series 1 (CT)") && n.contains("defaced (brain"))
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("series 2 (CT)") && n.contains("kept, no face"))
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("series 3 (CT)") && n.contains("left out"))
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("series 4 (MR)") && n.contains("defaced (brain"))
    );
    let mut unplaced = 0;
    for f in &report.files {
        if let Status::Refused { reason } = &f.status {
            assert!(
                reason.contains("Clean Recognizable Visual Features")
                    && (reason.contains("cm²") || reason.contains("not read as part of a series")),
                "{reason}"
            );
            unplaced += usize::from(reason.contains("not read as part of a series"));
        }
    }
    assert_eq!(unplaced, 1);
    // What left: the head as DERIVED (defaced), the chest as ORIGINAL; all marked 113102.
    let mut derived = 0;
    for f in &report.files {
        let Some(rel) = &f.output else { continue };
        let obj = dicom_object::open_file(out.join(rel)).unwrap();
        let text = |tag| {
            obj.get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                .unwrap_or_default()
        };
        let codes: Vec<String> = obj
            .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
            .and_then(|e| e.items())
            .unwrap()
            .iter()
            .map(|i| {
                i.get(tags::CODE_VALUE)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .trim()
                    .to_owned()
            })
            .collect();
        assert!(codes.contains(&"113102".to_owned()), "{codes:?}");
        if text(tags::IMAGE_TYPE).starts_with("DERIVED") {
            derived += 1;
            assert_eq!(text(tags::RECOGNIZABLE_VISUAL_FEATURES), "NO");
            // Derivation Description goes with the Basic Profile (free text); the pseudonym is
            // the patient's, as for the originals.
            assert!(text(tags::PATIENT_NAME).starts_with("DOKUEI-"));
        }
    }
    assert_eq!(derived, 2 * 52);
    // The defaced copies waited in a private folder that is gone.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("dokuei-deface-{}-", std::process::id()))
        })
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}
