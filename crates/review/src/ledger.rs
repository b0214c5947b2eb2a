//! The QA use cases over the decision ledger: verify it, export it, follow agreement.

use std::io::Write;
use std::path::{Path, PathBuf};

pub use dokuei_ledger::records::now_utc;
pub use dokuei_ledger::signing;
pub use dokuei_ledger::watch::{Interval, VersionComparison, VersionWatch, Watch, WatchThresholds};
pub use dokuei_ledger::{
    Action, AnalysisRecord, Anchoring, CHECKPOINT_LOG_ENV, Checkpoint, CheckpointReason,
    DecisionFilter, DecisionRecord, ExportedDecision, FindingRecord, Format, Identifiers,
    InstallationKey, Ledger, RejectReason, Role, SignOffRecord, Stats, StudyRecord, VerifyReport,
    Witness, plain_insert_reference,
};

use crate::{AppError, ErrorCode};

/// The ledger file to use: `explicit`, else `DOKUEI_LEDGER`, else the OS data directory.
pub fn ledger_path(explicit: Option<&Path>) -> Result<PathBuf, AppError> {
    dokuei_ledger::LedgerLocation::resolve(explicit)
        .map(|l| l.path)
        .map_err(|e| AppError::new(ErrorCode::LedgerUnavailable, e.to_string()))
}

/// Opens the ledger and anchors it: checkpoints are signed with the installation key
/// (`<ledger>.checkpoint-key`, created on first use, 0600) and appended to the checkpoint log
/// ([`checkpoint_log_path`]). A missing key is created only for a ledger that holds no
/// checkpoint yet: otherwise the key was lost or the ledger moved without it, and a new key
/// would make every earlier checkpoint look forged.
pub fn open_ledger(explicit: Option<&Path>) -> Result<Ledger, AppError> {
    let mut ledger = Ledger::open(&ledger_path(explicit)?)?;
    let key_path = InstallationKey::path_for(ledger.path());
    let unavailable = |e: String| AppError::new(ErrorCode::LedgerUnavailable, e);
    let key = match InstallationKey::load(&key_path) {
        Ok(key) => key,
        Err(e) if e.kind == std::io::ErrorKind::NotFound => {
            if let Some(c) = ledger.latest_checkpoint()? {
                return Err(unavailable(format!(
                    "the checkpoint key `{}` is missing, but the ledger holds checkpoints signed by key {}: restore the key file from its backup (a ledger moved without its key cannot be checkpointed); `dokuei ledger verify` still works without it",
                    key_path.display(),
                    c.key
                )));
            }
            InstallationKey::load_or_create(&key_path).map_err(unavailable)?
        }
        Err(e) => return Err(unavailable(e.message)),
    };
    let log = checkpoint_log_path(ledger.path());
    ledger.anchor(Anchoring {
        key,
        log: Some(log),
    });
    Ok(ledger)
}

/// Opens the ledger to check it: anchored with the installation key when it is there, never
/// creating one (an auditor may run this on a copy).
pub fn open_ledger_for_audit(explicit: Option<&Path>) -> Result<Ledger, AppError> {
    let mut ledger = Ledger::open(&ledger_path(explicit)?)?;
    if let Ok(key) = InstallationKey::load(&InstallationKey::path_for(ledger.path())) {
        ledger.anchor(Anchoring { key, log: None });
    }
    Ok(ledger)
}

/// The checkpoint log: `DOKUEI_CHECKPOINT_LOG` when set (point it at another volume or host
/// the workstation's users cannot rewrite), else `<ledger>.checkpoints.log` beside the ledger.
pub fn checkpoint_log_path(ledger: &Path) -> PathBuf {
    configured_checkpoint_log().unwrap_or_else(|| {
        let mut name = ledger.file_name().unwrap_or_default().to_os_string();
        name.push(".checkpoints.log");
        ledger.with_file_name(name)
    })
}

fn configured_checkpoint_log() -> Option<PathBuf> {
    std::env::var_os(CHECKPOINT_LOG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Reads a witness: a DICOM file's checkpoint from its tag (0071,1001) (an assessment SR),
/// any other file as text (a checkpoint log, a QA export).
pub fn read_witness(path: &Path) -> Result<Witness, AppError> {
    let fail = |e: &dyn std::fmt::Display| {
        AppError::new(
            ErrorCode::InvalidArgument,
            format!("cannot read the witness `{}`: {e}", path.display()),
        )
    };
    let mut head = [0u8; 132];
    let is_dicom = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head[128..] == b"DICM";
    if !is_dicom {
        return Witness::read(path).map_err(|e| AppError::new(ErrorCode::InvalidArgument, e));
    }
    let object = dicom_object::open_file(path).map_err(|e| fail(&e))?;
    let value = match object.element(dokuei_results::sr::LEDGER_CHECKPOINT) {
        Ok(e) => e.to_str().map_err(|e| fail(&e))?.into_owned(),
        Err(_) => String::new(),
    };
    Ok(Witness::scan(
        &path.display().to_string(),
        value.trim().as_bytes(),
    ))
}

/// The checkpoint log as a witness, when it exists: external when configured to live elsewhere
/// (`DOKUEI_CHECKPOINT_LOG`), not when it is the default file beside the ledger.
pub fn checkpoint_log_witness(ledger: &Path) -> Result<Option<Witness>, AppError> {
    let log = checkpoint_log_path(ledger);
    if !log.exists() {
        return Ok(None);
    }
    let mut witness =
        Witness::read(&log).map_err(|e| AppError::new(ErrorCode::LedgerUnavailable, e))?;
    witness.external = configured_checkpoint_log().is_some();
    if !witness.external {
        witness.name = format!("{} (beside the ledger)", witness.name);
    }
    Ok(Some(witness))
}

/// Verifies the chain, the schema and the ledger's own checkpoints, and the checkpoint log
/// when there is one; a problem is an error naming the first thing that does not match.
pub fn verify(ledger: &Ledger) -> Result<VerifyReport, AppError> {
    verify_with(ledger, &[], None)
}

/// [`verify`] against the checkpoint log and `witnesses` (checkpoint logs, QA exports,
/// assessment SRs), with `trusted_key` (hex Ed25519 public key) in place of the key beside the
/// ledger.
pub fn verify_with(
    ledger: &Ledger,
    witnesses: &[PathBuf],
    trusted_key: Option<&str>,
) -> Result<VerifyReport, AppError> {
    let log = checkpoint_log_path(ledger.path());
    let mut read = Vec::new();
    if !witnesses.contains(&log) {
        read.extend(checkpoint_log_witness(ledger.path())?);
    }
    for w in witnesses {
        read.push(read_witness(w)?);
    }
    let report = ledger.verify_with(&read, trusted_key)?;
    match &report.first_problem {
        None => Ok(report),
        Some(_) => Err(AppError::new(
            ErrorCode::LedgerTampered,
            format!(
                "the ledger `{}` has been {}",
                ledger.path().display(),
                report.summary()
            ),
        )),
    }
}

/// The per-installation key that pseudonymises exports (`<ledger>.export-key`, created on
/// first use, readable by the owner only). The same key gives the same pseudonyms, so QA can
/// join exports over time without seeing identities.
pub fn export_key(ledger_path: &Path) -> Result<Vec<u8>, AppError> {
    let mut name = ledger_path.file_name().unwrap_or_default().to_os_string();
    name.push(".export-key");
    let key_path = ledger_path.with_file_name(name);
    let fail = |e: &dyn std::fmt::Display| {
        AppError::new(
            ErrorCode::LedgerUnavailable,
            format!("cannot use the export key `{}`: {e}", key_path.display()),
        )
    };
    match std::fs::read(&key_path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => return Err(fail(&"it is shorter than 32 bytes")),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(&e)),
        Err(_) => {}
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| fail(&e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&key_path).map_err(|e| fail(&e))?;
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(&e))?;
    Ok(key)
}

/// Exports decisions to `out`, de-identified unless `identified`, and records the export in the
/// access audit. Written to a temporary file beside `out` and renamed, so a failed export leaves
/// no partial file.
pub fn export(
    ledger: &Ledger,
    filter: &DecisionFilter,
    format: Format,
    identified: bool,
    out: &Path,
    reader_id: Option<i64>,
) -> Result<u64, AppError> {
    let result = export_unaudited(ledger, filter, format, identified, out);
    // The access audit: what left the ledger, where to, and whether it worked.
    let mut e = crate::audit::event(dokuei_ledger::AccessAction::Exported, reader_id);
    e.object = format!(
        "decision log ({}, {})",
        if format == Format::Csv {
            "CSV"
        } else {
            "JSON Lines"
        },
        if identified {
            "identified"
        } else {
            "pseudonymised"
        }
    );
    e.peer = crate::audit::absolute(out).display().to_string();
    match &result {
        Ok(n) => e.detail.note = format!("{n} decision(s)"),
        Err(err) => {
            e.outcome = dokuei_ledger::Outcome::MinorFailure;
            e.detail.error = err.message.clone();
        }
    }
    if let Err(err) = ledger.record_access(&e) {
        tracing::error!("the access audit could not record an export: {err}");
    }
    result
}

fn export_unaudited(
    ledger: &Ledger,
    filter: &DecisionFilter,
    format: Format,
    identified: bool,
    out: &Path,
) -> Result<u64, AppError> {
    let identifiers = if identified {
        Identifiers::AsRecorded
    } else {
        Identifiers::Pseudonymised {
            key: export_key(ledger.path())?,
        }
    };
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".partial");
    let tmp = out.with_file_name(tmp_name);
    let write_fail = |e: &dyn std::fmt::Display| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!("cannot write `{}`: {e}", out.display()),
        )
    };
    let file = std::fs::File::create(&tmp).map_err(|e| write_fail(&e))?;
    let mut writer = std::io::BufWriter::new(file);
    let result = ledger.export_decisions(filter, format, &identifiers, &mut writer);
    let finished = result.and_then(|n| {
        writer
            .into_inner()
            .map_err(|e| dokuei_ledger::LedgerError::Write {
                path: out.to_path_buf(),
                reason: e.to_string(),
            })
            .and_then(|f| {
                f.sync_all().map_err(|e| dokuei_ledger::LedgerError::Write {
                    path: out.to_path_buf(),
                    reason: e.to_string(),
                })
            })
            .map(|()| n)
    });
    match finished {
        Ok(n) => {
            std::fs::rename(&tmp, out).map_err(|e| write_fail(&e))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e.into())
        }
    }
}
