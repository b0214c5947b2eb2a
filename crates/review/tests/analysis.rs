//! Running the shipped CT demonstration model on series whose files change under it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use dokuei_dicom::synth::SyntheticCt;
use dokuei_review::analysis::analyse_series;
use dokuei_review::study::{open_study, series_list};
use dokuei_review::{ErrorCode, OnnxRuntime};

fn demo_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/ct-nodule-demo")
}

#[test]
fn a_slice_that_breaks_after_opening_fails_the_analysis_naming_its_file() {
    // Slices are decoded as the pipeline reaches them, so a file that went bad after the study
    // was opened (a drive removed, a file rewritten) must stop the analysis with its name, and
    // nothing partial must come back.
    let dir = tempfile::tempdir().unwrap();
    SyntheticCt {
        slices: 12,
        rows: 64,
        columns: 64,
        ..Default::default()
    }
    .write(dir.path())
    .unwrap();
    let index = open_study(&[dir.path().to_path_buf()]).unwrap();
    let series = series_list(&index)[0];
    let stack = &dokuei_dicom::stack::stacks(series)[0];
    let broken = &series.instances[stack.frames[9].instance];
    let name = broken.source.file_name();
    let dokuei_dicom::source::Source::File { path } = &broken.source else {
        panic!("a synthetic series is files")
    };
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();

    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    let cancel = AtomicBool::new(false);
    let mut progressed = 0;
    let err = analyse_series(
        &runtime,
        &Default::default(),
        &demo_model(),
        series,
        0,
        Some(1),
        &mut |p| progressed = p.done,
        &cancel,
    )
    .expect_err("a truncated slice cannot be analysed");
    assert_eq!(err.code, ErrorCode::DecodeFailed, "{err}");
    assert!(
        err.message.contains("slice 10") && err.message.contains(&name),
        "{err}"
    );
    // The pipeline stopped at the bad slice's batch: the slices after it were never reported.
    assert!(progressed < 12, "{progressed}");
}
