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
