//! jing, validating DICOM PS3.15 audit messages against the standard's RELAX NG schema
//! (`crates/ledger/schema/dicom-audit-message.rnc`). Shared with dokuei-review's tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use dokuei_ledger::AuditMessage;

pub const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ledger/schema/dicom-audit-message.rnc"
);

/// Writes each message to `dir` and validates them all with jing; returns jing's complaints.
pub fn jing_errors(dir: &Path, messages: &[AuditMessage]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let files: Vec<PathBuf> = messages
        .iter()
        .map(|m| {
            let path = dir.join(format!("{:06}-{}.xml", m.seq, m.name));
            std::fs::write(&path, &m.xml).unwrap();
            path
        })
        .collect();
    jing_files(&files)
}

/// Validates the XML files with jing; returns its complaints (empty: all valid).
pub fn jing_files(files: &[PathBuf]) -> String {
    assert!(!files.is_empty(), "nothing to validate");
    let out = std::process::Command::new("jing")
        .arg("-c")
        .arg(SCHEMA)
        .args(files)
        .output()
        .expect("jing (Debian's jing package: run `bash scripts/setup.sh --test`)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.success(),
        stdout.trim().is_empty(),
        "jing's status and output disagree: {stdout}"
    );
    stdout
}
