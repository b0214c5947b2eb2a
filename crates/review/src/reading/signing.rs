//! Readers' passphrases and signing keys: opening the key to sign (wrong passphrases counted,
//! the profile locked after five in a row), changing a passphrase, and what administrators do
//! (reset a passphrase, unlock a profile, name another administrator). Every step is recorded.

use dokuei_ledger::Ledger;
use dokuei_ledger::signing::{
    AuthEvent, KeyReason, LOCK_AFTER_FAILURES, OpenError, ReaderKeyRow, SealedKey,
    endorsement_message, new_sealed_key, open_sealed,
};
use ed25519_dalek::{Signer, SigningKey};

use super::readers::{invalid, reader};
use crate::{AppError, ErrorCode};

/// The operating-system account running Dokuei: on Linux the process's real user, by its id
/// (`/proc/self`) and name (`/etc/passwd`), not what `USER` says; elsewhere `USER`/`USERNAME`.
pub fn os_account() -> String {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            let uid = meta.uid();
            let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
                p.lines().find_map(|l| {
                    let mut f = l.split(':');
                    let (name, _, id) = (f.next()?, f.next()?, f.next()?);
                    (id.parse::<u32>().ok()? == uid).then(|| name.to_owned())
                })
            });
            return name.unwrap_or_else(|| format!("uid {uid}"));
        }
    }
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn not_allowed(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::NotAllowed, message)
}

/// Opens the reader's signing key with `passphrase`. Refused for a profile of another
/// operating-system account, a profile without a key, and a locked profile; a wrong
/// passphrase is recorded, and the fifth in a row locks the profile.
pub fn unlock_signing_key(
    ledger: &Ledger,
    reader_id: i64,
    passphrase: &str,
) -> Result<(ReaderKeyRow, SigningKey), AppError> {
    let who = reader(ledger, reader_id)?;
    let Some(row) = ledger.reader_key(reader_id)? else {
        return Err(not_allowed(format!(
            "{} has no passphrase yet: set one for this profile first (Dokuei signs sign-offs with it)",
            who.display_name
        )));
    };
    let me = os_account();
    if row.os_account != me {
        return Err(not_allowed(format!(
            "the profile {} belongs to the operating-system account `{}`; Dokuei runs as `{me}`",
            who.display_name, row.os_account
        )));
    }
    let failures = ledger.failures_in_a_row(reader_id)?;
    if failures >= LOCK_AFTER_FAILURES {
        return Err(not_allowed(format!(
            "the profile {} is locked after {LOCK_AFTER_FAILURES} wrong passphrases; an administrator can unlock it",
            who.display_name
        )));
    }
    match open_sealed(&row.key, passphrase) {
        Err(OpenError::Damaged(why)) => Err(AppError::new(
            ErrorCode::LedgerTampered,
            format!(
                "the stored key of {} cannot be used ({why}); an administrator can reset it",
                who.display_name
            ),
        )),
        Ok(key) => {
            if failures > 0 {
                ledger.record_auth_event(reader_id, AuthEvent::Success, None)?;
            }
            Ok((row, key))
        }
        Err(OpenError::WrongPassphrase) => {
            ledger.record_auth_event(reader_id, AuthEvent::Failure, None)?;
            let now = failures + 1;
            if now >= LOCK_AFTER_FAILURES {
                ledger.record_auth_event(reader_id, AuthEvent::Locked, None)?;
                return Err(not_allowed(format!(
                    "wrong passphrase for {}: the profile is now locked after {LOCK_AFTER_FAILURES} in a row; an administrator can unlock it",
                    who.display_name
                )));
            }
            Err(AppError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "wrong passphrase for {} ({now} of {LOCK_AFTER_FAILURES} before the profile locks)",
                    who.display_name
                ),
            ))
        }
    }
}

/// Changes the reader's passphrase (the current one needed): a new key pair under the new
/// passphrase, endorsed by the old key, so the old passphrase signs nothing any more. A
/// profile without a key gets its first one from an administrator ([`reset_passphrase`]).
pub fn set_passphrase(
    ledger: &Ledger,
    reader_id: i64,
    current: Option<&str>,
    new: &str,
) -> Result<(), AppError> {
    let who = reader(ledger, reader_id)?;
    if ledger.reader_key(reader_id)?.is_none() {
        return Err(not_allowed(format!(
            "{} has no passphrase yet: an administrator sets the first one (`dokuei readers reset --reader {reader_id} --by ADMIN --os-account ACCOUNT`)",
            who.display_name
        )));
    }
    let current = current.ok_or_else(|| invalid("give the current passphrase to change it"))?;
    let (row, old) = unlock_signing_key(ledger, reader_id, current)?;
    let (sealed, _) = new_sealed_key(new).map_err(invalid)?;
    let endorsement = endorse(&old, reader_id, &sealed, KeyReason::Changed, Some(&row));
    ledger.record_reader_key(
        reader_id,
        &row.os_account,
        &sealed,
        KeyReason::Changed,
        None,
        &endorsement,
    )?;
    Ok(())
}

fn endorse(
    key: &SigningKey,
    reader_id: i64,
    sealed: &SealedKey,
    reason: KeyReason,
    previous: Option<&ReaderKeyRow>,
) -> String {
    hex::encode(
        key.sign(&endorsement_message(
            reader_id,
            &sealed.public_key,
            reason.as_str(),
            previous.map(|p| p.key.public_key.as_str()),
        ))
        .to_bytes(),
    )
}

/// Opens an administrator's key (their passphrase checked and counted as for signing).
fn administrator_key(
    ledger: &Ledger,
    admin_id: i64,
    admin_passphrase: &str,
) -> Result<SigningKey, AppError> {
    if !ledger.is_administrator(admin_id)? {
        return Err(not_allowed(format!(
            "reader {admin_id} is not an administrator"
        )));
    }
    Ok(unlock_signing_key(ledger, admin_id, admin_passphrase)?.1)
}

/// An administrator gives the reader a new key under `new` (the old passphrase is lost, or the
/// profile never had one: then `os_account` names the account it belongs to). The reset is
/// endorsed by the administrator's key and unlocks the profile.
pub fn reset_passphrase(
    ledger: &Ledger,
    reader_id: i64,
    admin_id: i64,
    admin_passphrase: &str,
    new: &str,
    os_account: Option<&str>,
) -> Result<(), AppError> {
    reader(ledger, reader_id)?;
    let previous = ledger.reader_key(reader_id)?;
    let account = match (&previous, os_account) {
        (_, Some(a)) if !a.trim().is_empty() => a.trim().to_owned(),
        (Some(p), _) => p.os_account.clone(),
        (None, _) => {
            return Err(invalid(
                "this profile has no key yet: name the operating-system account it belongs to",
            ));
        }
    };
    let admin = administrator_key(ledger, admin_id, admin_passphrase)?;
    let (sealed, _) = new_sealed_key(new).map_err(invalid)?;
    let endorsement = endorse(
        &admin,
        reader_id,
        &sealed,
        KeyReason::Reset,
        previous.as_ref(),
    );
    ledger.record_reader_key(
        reader_id,
        &account,
        &sealed,
        KeyReason::Reset,
        Some(admin_id),
        &endorsement,
    )?;
    Ok(())
}

/// An administrator unlocks a profile locked by wrong passphrases.
pub fn unlock_reader(
    ledger: &Ledger,
    reader_id: i64,
    admin_id: i64,
    admin_passphrase: &str,
) -> Result<(), AppError> {
    reader(ledger, reader_id)?;
    administrator_key(ledger, admin_id, admin_passphrase)?;
    ledger.record_auth_event(reader_id, AuthEvent::Unlocked, Some(admin_id))?;
    Ok(())
}

/// Makes a reader an administrator. The first one proves they hold their own key
/// (`passphrase` is theirs); later ones are granted by administrator `by` (`passphrase` is
/// the administrator's).
pub fn grant_administrator(
    ledger: &Ledger,
    reader_id: i64,
    by: Option<i64>,
    passphrase: &str,
) -> Result<(), AppError> {
    reader(ledger, reader_id)?;
    if ledger.reader_key(reader_id)?.is_none() {
        return Err(not_allowed(
            "an administrator needs a passphrase of their own first",
        ));
    }
    if ledger.is_administrator(reader_id)? {
        return Ok(());
    }
    let message = endorsement_message(reader_id, "administrator", "admin", None);
    match by {
        None if ledger.administrator_count()? == 0 => {
            unlock_signing_key(ledger, reader_id, passphrase)?;
            ledger.grant_administrator(reader_id, None, "")?;
        }
        None => {
            return Err(not_allowed(
                "there is an administrator already: an administrator grants the role",
            ));
        }
        Some(admin_id) => {
            let admin = administrator_key(ledger, admin_id, passphrase)?;
            let endorsement = hex::encode(admin.sign(&message).to_bytes());
            ledger.grant_administrator(reader_id, Some(admin_id), &endorsement)?;
        }
    }
    Ok(())
}

/// The installation's policy asking for the reader's passphrase with every decision, not only
/// at sign-off: kept in the ledger as the latest change of this setting (made by an
/// administrator), so it is chained and audited like everything else.
pub const DECISION_PASSPHRASE_POLICY: &str = "policy: passphrase for every decision";

/// Whether every decision needs the reader's passphrase.
pub fn decision_passphrase_required(ledger: &Ledger) -> Result<bool, AppError> {
    Ok(ledger
        .latest_setting_note(DECISION_PASSPHRASE_POLICY)?
        .as_deref()
        == Some("on"))
}

/// An administrator (their passphrase needed) switches the policy on or off.
pub fn set_decision_passphrase_policy(
    ledger: &Ledger,
    admin_id: i64,
    admin_passphrase: &str,
    on: bool,
) -> Result<(), AppError> {
    administrator_key(ledger, admin_id, admin_passphrase)?;
    if decision_passphrase_required(ledger)? == on {
        return Ok(());
    }
    let mut e = crate::audit::event(dokuei_ledger::AccessAction::SettingChanged, Some(admin_id));
    e.object = DECISION_PASSPHRASE_POLICY.to_owned();
    e.peer = ledger.path().display().to_string();
    e.detail.note = if on { "on" } else { "off" }.to_owned();
    ledger.record_access(&e)?;
    Ok(())
}

/// When the policy asks for it, the reader's passphrase must open their key before a decision
/// is recorded (wrong ones counted toward the lock, as at sign-off).
pub fn authorise_decision(
    ledger: &Ledger,
    reader_id: i64,
    passphrase: Option<&str>,
) -> Result<(), AppError> {
    if !decision_passphrase_required(ledger)? {
        return Ok(());
    }
    match passphrase.filter(|p| !p.is_empty()) {
        None => Err(not_allowed(
            "this installation asks for your passphrase with every decision: enter it and decide again",
        )),
        Some(p) => unlock_signing_key(ledger, reader_id, p).map(|_| ()),
    }
}
