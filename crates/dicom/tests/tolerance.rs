//! What pydicom and DCMTK read through, Dokuei reads too, with a warning. Each case is a
//! synthetic slice with one deviation made at the byte level. The rule enforced: a file that both
//! pydicom and DCMTK (`dcmj2pnm`) decode must decode here to the same stored values, and the
//! deviation must be named in the study's problem list as a warning.

use std::path::{Path, PathBuf};
use std::process::Command;

use dokuei_dicom::decode::decode_frame;
use dokuei_dicom::synth::{SyntheticCt, explicit_le_element};
use dokuei_dicom::{Severity, index};

/// A well-formed slice: explicit VR little endian, preamble, `DICM`, meta group with its length.
fn slice(dir: &Path) -> Vec<u8> {
    let files = SyntheticCt {
        slices: 1,
        seed: 41,
        rows: 32,
        columns: 32,
        ..Default::default()
    }
    .write(&dir.join("src"))
    .unwrap();
    std::fs::read(&files[0]).unwrap()
}

/// Byte offset of the data set: after the meta group, whose length is at bytes 140..144.
fn data_start(bytes: &[u8]) -> usize {
    assert_eq!(&bytes[128..132], b"DICM");
    assert_eq!(&bytes[132..136], &[2, 0, 0, 0]);
    144 + u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize
}

/// The cases: name, bytes, and the words the warning must contain (`None`: legal, no warning).
fn cases(good: &[u8]) -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    let start = data_start(good);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.to_vec();
        f(&mut b);
        b
    };
    vec![
        (
            "zero padding after the data set",
            with(&|b| b.extend(vec![0u8; 2_500_000])),
            Some("2500000 byte(s) of zero padding"),
        ),
        (
            "stray bytes after the data set",
            with(&|b| b.extend(b"\x01\x02\x03 trailing bytes from a broken export \x04\x05")),
            Some("not DICOM elements"),
        ),
        (
            "Data Set Trailing Padding",
            with(&|b| {
                b.extend([0xFC, 0xFF, 0xFC, 0xFF, b'O', b'B', 0, 0, 16, 0, 0, 0]);
                b.extend([0u8; 16]);
            }),
            None,
        ),
        (
            "an element after Pixel Data",
            with(&|b| b.extend(explicit_le_element(0x0009, 0x0010, b"LO", b"DOKUEI"))),
            None,
        ),
        (
            "an odd value length",
            with(&|b| {
                let odd = explicit_le_element(0x0008, 0x1010, b"SH", b"CT1");
                b.splice(start..start, odd);
            }),
            None,
        ),
        (
            "a wrong group length",
            with(&|b| {
                let wrong = explicit_le_element(0x0008, 0x0000, b"UL", &7u32.to_le_bytes());
                b.splice(start..start, wrong);
            }),
            None,
        ),
        (
            "a meta group length that is off",
            with(&|b| {
                let n = u32::from_le_bytes(b[140..144].try_into().unwrap()) + 10;
                b[140..144].copy_from_slice(&n.to_le_bytes());
            }),
            Some("Group Length says"),
        ),
        (
            "no meta group length",
            with(&|b| {
                b.drain(132..144);
            }),
            Some("no group length"),
        ),
        (
            "no preamble",
            with(&|b| {
                b.drain(..128);
            }),
            Some("no 128-byte preamble"),
        ),
        (
            "neither preamble nor DICM",
            with(&|b| {
                b.drain(..132);
            }),
            Some("neither the 128-byte preamble nor `DICM`"),
        ),
    ]
}

/// Stored values according to pydicom, or `None` when it cannot decode the file.
fn pydicom_values(file: &Path, out: &Path) -> Option<Vec<i64>> {
    let index: std::collections::BTreeMap<String, serde_json::Value> =
        crate::pydicom_reference::pydicom_reference(&[file.to_path_buf()], out);
    let entry = &index[&file.display().to_string()];
    if entry["ok"] != true {
        return None;
    }
    let bytes = std::fs::read(out.join(entry["data"].as_str().unwrap())).unwrap();
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
    )
}

/// Whether DCMTK decodes the file to an image.
fn dcmtk_decodes(file: &Path, out: &Path) -> bool {
    Command::new("dcmj2pnm")
        .arg("--quiet")
        .arg(file)
        .arg(out.join("dcmtk.pgm"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("dcmj2pnm is missing: run `bash scripts/setup.sh --test`")
        .success()
}

#[test]
fn what_pydicom_and_dcmtk_read_opens_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let good = slice(dir.path());
    let mut report = Vec::new();
    let mut tally = (0, 0);
    for (k, (name, bytes, note)) in cases(&good).into_iter().enumerate() {
        let file: PathBuf = dir.path().join(format!("case{k}.dcm"));
        std::fs::write(&file, &bytes).unwrap();
        let out = dir.path().join(format!("ref{k}"));
        let pydicom = pydicom_values(&file, &out);
        let dcmtk = dcmtk_decodes(&file, &out);
        let idx = index(std::slice::from_ref(&file));
        let instance = idx.instances().next();
        let ours = instance.map(|i| decode_frame(i, 0));
        let (Some(theirs), true) = (&pydicom, dcmtk) else {
            println!(
                "{name}: pydicom {}, DCMTK {}: not both, so not required",
                if pydicom.is_some() {
                    "decodes"
                } else {
                    "fails"
                },
                if dcmtk { "decodes" } else { "fails" }
            );
            continue;
        };
        tally.0 += 1;
        match ours {
            Some(Ok(frame)) => {
                let values: Vec<i64> = (0..frame.pixels.len())
                    .map(|i| frame.pixels.get(i).unwrap())
                    .collect();
                if &values != theirs {
                    report.push(format!("{name}: stored values differ from pydicom's"));
                }
            }
            other => {
                report.push(format!(
                    "{name}: both peers decode it, Dokuei: {other:?}, problems {:?}",
                    idx.problems
                ));
                continue;
            }
        }
        let warnings: Vec<&str> = idx
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Warning && p.kind == "tolerated")
            .map(|p| p.reason.as_str())
            .collect();
        match note {
            Some(words) if !warnings.iter().any(|w| w.contains(words)) => report.push(format!(
                "{name}: no warning saying `{words}`: {:?}",
                idx.problems
            )),
            None if !idx.problems.is_empty() => {
                report.push(format!("{name}: legal, yet reported: {:?}", idx.problems))
            }
            _ => tally.1 += 1,
        }
    }
    println!(
        "{} case(s) both peers decode; {} decoded here equal, with the warning",
        tally.0, tally.1
    );
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert!(
        tally.0 >= 6,
        "too few cases decoded by both peers: {}",
        tally.0
    );
}
