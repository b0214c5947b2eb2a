//! How files group into stacks, against the reference tools: dcm2niix (Debian) and SimpleITK's
//! `GetGDCMSeriesFileNames` (PyPI), run by `scripts/reference/grouping.py`, on synthetic series
//! made for each grouping rule and on every multi-file series of the real test corpora. For each
//! series: the same number of volumes, with the same slices in the same order (either
//! direction). Where Dokuei deliberately differs, `DIFFERENCES` names the series, the peer and
//! the reason; a difference not listed there, or a listed one that no longer happens, fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dokuei_dicom::stack::stacks;
use dokuei_dicom::synth::SyntheticCt;
use dokuei_dicom::testdata::{self, Collection};
use dokuei_dicom::{Severity, Source, index};

/// (case, peer, why Dokuei differs). A case is a synthetic series' name or a corpus series'
/// folder; the peer is `dcm2niix` or `gdcm`.
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "two acquisitions",
        "gdcm",
        "GDCM gives one file list per Series Instance UID and does not split acquisitions over \
         the same positions: a stack with every position twice cannot be shown",
    ),
    (
        "dynamic, three time points",
        "gdcm",
        "GDCM does not split time points: one list holds each position three times",
    ),
    (
        "mixed orientations",
        "gdcm",
        "GDCM does not split a series by orientation; a stack must have one plane",
    ),
    (
        "per-slice acquisition numbers, one instance twice",
        "gdcm",
        "GDCM lists both copies of the duplicated instance (21 files); Dokuei and dcm2niix use \
         one and report the other",
    ),
    (
        "pydicom/dicomdirtests/77654033/CT2",
        "dcm2niix",
        "four slices with a 200 mm gap: NIfTI holds one slice spacing, so dcm2niix's volume \
         (four slices, as Dokuei's stack) cannot place them where they are",
    ),
    (
        "pydicom/dicomdirtests/98892001/CT2N",
        "dcm2niix",
        "two images in perpendicular planes: dcm2niix stacks them as one volume with a 45° \
         gantry tilt; Dokuei shows two single-image stacks",
    ),
    (
        "pydicom/dicomdirtests/98892001/CT2N",
        "gdcm",
        "two images in perpendicular planes: GDCM lists one volume, Dokuei two stacks",
    ),
    (
        "pydicom/dicomdirtests/98892003/MR700",
        "gdcm",
        "seven images of seven orientations (projections of an angiogram): GDCM lists them as \
         one volume, Dokuei and dcm2niix show seven",
    ),
    (
        "pydicom/dicomdirtests/98892003/MR2",
        "gdcm",
        "two localisers of three planes each: GDCM lists each series as one volume, Dokuei and \
         dcm2niix split them by orientation",
    ),
];

#[derive(Debug, serde::Deserialize)]
struct Reference {
    dcm2niix: BTreeMap<String, Vec<Vec<[f64; 3]>>>,
    gdcm: BTreeMap<String, Vec<Vec<PathBuf>>>,
    gdcm_errors: BTreeMap<String, String>,
    dcm2niix_log: String,
}

/// Rewrites one file in place.
fn edit(path: &Path, f: impl FnOnce(&mut dicom_object::DefaultDicomObject)) {
    let mut obj = dicom_object::open_file(path).unwrap();
    f(&mut obj);
    obj.write_to_file(path).unwrap();
}

fn put_int(obj: &mut dicom_object::DefaultDicomObject, tag: dicom_core::Tag, v: i32) {
    obj.put(DataElement::new(
        tag,
        VR::IS,
        PrimitiveValue::from(v.to_string()),
    ));
}

/// A folder to compare: its name in reports, and the series to compare (all when `None`).
struct Case {
    name: String,
    dir: PathBuf,
    series: Option<Vec<String>>,
}

/// The synthetic cases: one folder each, named.
fn synthetic_cases(root: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut case = |name: &str| {
        let dir = root.join(name.replace([' ', ','], "_"));
        cases.push(Case {
            name: name.to_owned(),
            dir: dir.clone(),
            series: None,
        });
        dir
    };

    // The class from the field: every slice its own Acquisition Number, and one instance
    // exported a second time, in another transfer syntax, into a subfolder.
    let dir = case("per-slice acquisition numbers, one instance twice");
    let files = SyntheticCt {
        slices: 20,
        seed: 31,
        ..Default::default()
    }
    .write(&dir)
    .unwrap();
    for (k, f) in files.iter().enumerate() {
        edit(f, |o| put_int(o, tags::ACQUISITION_NUMBER, k as i32 + 1));
    }
    std::fs::create_dir(dir.join("again")).unwrap();
    let copy = dir.join("again/CT0007.dcm");
    std::fs::copy(&files[6], &copy).unwrap();
    edit(&copy, |o| {
        o.meta_mut().set_transfer_syntax(
            &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN,
        )
    });

    let dir = case("two acquisitions");
    for acquisition in [1, 2] {
        SyntheticCt {
            slices: 6,
            seed: 32,
            acquisition_number: acquisition,
            shuffle_file_names: true,
            ..Default::default()
        }
        .write(&dir)
        .unwrap();
    }

    // Three time points over the same positions; one Acquisition Number for all.
    let dir = case("dynamic, three time points");
    for t in 1..=3 {
        let files = SyntheticCt {
            slices: 5,
            seed: 33,
            acquisition_number: t,
            shuffle_file_names: true,
            ..Default::default()
        }
        .write(&dir)
        .unwrap();
        for f in &files {
            edit(f, |o| {
                put_int(o, tags::ACQUISITION_NUMBER, 1);
                put_int(o, tags::TEMPORAL_POSITION_IDENTIFIER, t);
            });
        }
    }

    let dir = case("mixed orientations");
    SyntheticCt {
        slices: 8,
        seed: 34,
        ..Default::default()
    }
    .write(&dir.join("ax"))
    .unwrap();
    SyntheticCt {
        slices: 5,
        seed: 34,
        orientation: [1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
        ..Default::default()
    }
    .write(&dir.join("cor"))
    .unwrap();
    cases
}

/// The series of several single-frame files in the corpora, by folder, each folder named by its
/// path under `.dokuei/testdata`.
fn corpus_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for collection in [Collection::Pydicom, Collection::PydicomData] {
        let idx = index(&[collection.dir()]);
        for series in idx.series() {
            let single_frames = series
                .instances
                .iter()
                .all(|i| i.image.as_ref().is_some_and(|im| im.frames == 1));
            if series.instances.len() < 2 || !single_frames {
                continue;
            }
            let Source::File { path } = &series.instances[0].source else {
                continue;
            };
            let folder = path.parent().unwrap().to_path_buf();
            // The collections' top folders hold single test files, many of them one instance
            // re-encoded in several transfer syntaxes: not series.
            if folder == collection.dir() {
                continue;
            }
            let name = folder
                .strip_prefix(testdata::root())
                .unwrap()
                .display()
                .to_string();
            match cases.iter_mut().find(|c| c.name == name) {
                Some(c) => c
                    .series
                    .get_or_insert_with(Vec::new)
                    .push(series.uid.clone()),
                None => cases.push(Case {
                    name,
                    dir: folder,
                    series: Some(vec![series.uid.clone()]),
                }),
            }
        }
    }
    cases
}

/// One of Dokuei's stacks: its slices' files and positions, in display order.
struct OurStack {
    files: Vec<PathBuf>,
    positions: Vec<[f64; 3]>,
    normal: [f64; 3],
}

fn our_stacks(folder: &Path) -> (BTreeMap<String, Vec<OurStack>>, usize) {
    let idx = index(&[folder.to_path_buf()]);
    let duplicates = idx
        .problems
        .iter()
        .filter(|p| p.kind == "duplicate_instance" && p.severity == Severity::Warning)
        .count();
    let mut out = BTreeMap::new();
    for series in idx.series() {
        let list = stacks(series)
            .into_iter()
            .map(|st| OurStack {
                files: st
                    .frames
                    .iter()
                    .map(|f| match &series.instances[f.instance].source {
                        Source::File { path } => std::fs::canonicalize(path).unwrap(),
                        other => panic!("{other} is not a file"),
                    })
                    .collect(),
                positions: st
                    .frames
                    .iter()
                    .map(|f| f.geometry.map_or([f64::NAN; 3], |g| g.position))
                    .collect(),
                normal: st.orientation.map_or([0.0, 0.0, 1.0], |o| o.normal()),
            })
            .collect();
        out.insert(series.uid.clone(), list);
    }
    (out, duplicates)
}

fn along(n: [f64; 3], p: [f64; 3]) -> f64 {
    n[0] * p[0] + n[1] * p[1] + n[2] * p[2]
}

/// Whether two location sequences are the same slices in the same order (or reversed).
fn same_order(ours: &[f64], theirs: &[f64]) -> bool {
    let close = |a: &[f64], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 0.01)
    };
    let reversed: Vec<f64> = theirs.iter().rev().copied().collect();
    close(ours, theirs) || close(ours, &reversed)
}

/// Differences between Dokuei's stacks and a peer's volumes for one series, in words.
fn differences(
    ours: &[OurStack],
    dcm2niix: &[Vec<[f64; 3]>],
    gdcm: &[Vec<PathBuf>],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if dcm2niix.len() != ours.len() {
        out.push((
            "dcm2niix",
            format!(
                "{} volume(s), Dokuei {} stack(s)",
                dcm2niix.len(),
                ours.len()
            ),
        ));
    } else {
        // Each of dcm2niix's volumes must be one of Dokuei's stacks, slice for slice.
        let mut unmatched: Vec<&OurStack> = ours.iter().collect();
        for volume in dcm2niix {
            let found = unmatched.iter().position(|s| {
                let mine: Vec<f64> = s.positions.iter().map(|p| along(s.normal, *p)).collect();
                let theirs: Vec<f64> = volume.iter().map(|p| along(s.normal, *p)).collect();
                same_order(&mine, &theirs)
            });
            match found {
                Some(i) => {
                    unmatched.remove(i);
                }
                None => out.push((
                    "dcm2niix",
                    format!(
                        "a volume of {} slice(s) matches no stack in slices and order",
                        volume.len()
                    ),
                )),
            }
        }
    }
    if gdcm.len() != ours.len() {
        out.push((
            "gdcm",
            format!(
                "{} file list(s), Dokuei {} stack(s)",
                gdcm.len(),
                ours.len()
            ),
        ));
    } else {
        for (list, stack) in gdcm.iter().zip(ours) {
            let list: Vec<PathBuf> = list
                .iter()
                .map(|f| std::fs::canonicalize(f).unwrap())
                .collect();
            let reversed: Vec<PathBuf> = list.iter().rev().cloned().collect();
            if stack.files != list && stack.files != reversed {
                out.push((
                    "gdcm",
                    format!(
                        "GDCM's {} file(s) are not Dokuei's stack of {} in order",
                        list.len(),
                        stack.files.len()
                    ),
                ));
            }
        }
    }
    out
}

#[test]
fn stacks_group_as_dcm2niix_and_gdcm_group_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = synthetic_cases(tmp.path());
    let corpus = corpus_cases();
    assert!(
        corpus.len() >= 3,
        "the test corpora are missing: run `bash scripts/setup.sh --test`"
    );
    cases.extend(corpus);
    let out = tmp.path().join("reference.json");
    let status = Command::new(testdata::reference_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/grouping.py"))
        .arg(&out)
        .args(cases.iter().map(|c| &c.dir))
        .status()
        .expect("the reference venv is missing: run `bash scripts/setup.sh --test`");
    assert!(status.success(), "grouping.py failed");
    let refs: BTreeMap<String, Reference> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut report = Vec::new();
    let mut series_compared = 0;
    for Case { name, dir, series } in &cases {
        let reference = &refs[&dir.display().to_string()];
        let (ours, duplicates) = our_stacks(dir);
        if name.contains("one instance twice") {
            assert_eq!(duplicates, 1, "{name}: the second copy is reported once");
            assert!(
                reference.dcm2niix_log.contains("DUPLICATES REMOVED"),
                "{name}: dcm2niix did not report the duplicate:\n{}",
                reference.dcm2niix_log
            );
        }
        for (uid, stacks) in &ours {
            if series.as_ref().is_some_and(|only| !only.contains(uid)) {
                continue;
            }
            series_compared += 1;
            if let Some(e) = reference.gdcm_errors.get(uid) {
                println!("{name} (series {uid}): GDCM failed ({e}); compared with dcm2niix only");
            }
            let dcm2niix = reference.dcm2niix.get(uid).map_or(&[][..], |v| v);
            let gdcm = reference.gdcm.get(uid).map_or(&[][..], |v| v);
            for (peer, what) in differences(stacks, dcm2niix, gdcm)
                .into_iter()
                .filter(|(peer, _)| *peer != "gdcm" || !reference.gdcm_errors.contains_key(uid))
            {
                match DIFFERENCES.iter().find(|(c, p, _)| c == name && *p == peer) {
                    Some((c, p, _)) => seen.push((c, p)),
                    None => report.push(format!("{name} (series {uid}): {peer}: {what}")),
                }
            }
        }
    }
    for (case, peer, _) in DIFFERENCES {
        if !seen.contains(&(case, peer)) {
            report.push(format!(
                "{case}: the listed difference from {peer} no longer happens"
            ));
        }
    }
    println!(
        "grouping compared with dcm2niix and GDCM: {series_compared} series in {} folders",
        cases.len()
    );
    assert!(report.is_empty(), "{}", report.join("\n"));
}
