//! Readers' passphrases and signing keys: opening the key to sign (wrong passphrases counted,
//! the profile locked after five in a row), changing a passphrase, and what administrators do
//! (reset a passphrase, unlock a profile, name another administrator). Every step is recorded.

use dokuei_ledger::Ledger;
use dokuei_ledger::signing::{
    AuthEvent, KeyReason, LOCK_AFTER_FAILURES, ReaderKeyRow, SealedKey, endorsement_message,
    new_sealed_key, open_sealed, seal,
};
use ed25519_dalek::{Signer, SigningKey};

use super::readers::{invalid, reader};
use crate::{AppError, ErrorCode};

/// The operating-system account running Dokuei (`USER`, else `LOGNAME`, else `USERNAME`).
pub fn os_account() -> String {
    ["USER", "LOGNAME", "USERNAME"]
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
        Ok(key) => {
            if failures > 0 {
                ledger.record_auth_event(reader_id, AuthEvent::Success, None)?;
            }
            Ok((row, key))
        }
        Err(_) => {
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

/// Sets the reader's passphrase: the first one for a profile made before passphrases (by its
/// own operating-system account), or a change, which needs the current passphrase. The key
/// pair stays; it is sealed again, and the change is endorsed by the key itself.
pub fn set_passphrase(
    ledger: &Ledger,
    reader_id: i64,
    current: Option<&str>,
    new: &str,
) -> Result<(), AppError> {
    reader(ledger, reader_id)?;
    match ledger.reader_key(reader_id)? {
        None => {
            let (sealed, _) = new_sealed_key(new).map_err(invalid)?;
            ledger.record_reader_key(
                reader_id,
                &os_account(),
                &sealed,
                KeyReason::Created,
                None,
                "",
            )?;
        }
        Some(_) => {
            let current =
                current.ok_or_else(|| invalid("give the current passphrase to change it"))?;
            let (row, key) = unlock_signing_key(ledger, reader_id, current)?;
            let sealed = seal(&key, new).map_err(invalid)?;
            let endorsement = endorse(&key, reader_id, &sealed, KeyReason::Changed);
            ledger.record_reader_key(
                reader_id,
                &row.os_account,
                &sealed,
                KeyReason::Changed,
                None,
                &endorsement,
            )?;
        }
    }
    Ok(())
}

fn endorse(key: &SigningKey, reader_id: i64, sealed: &SealedKey, reason: KeyReason) -> String {
    hex::encode(
        key.sign(&endorsement_message(
            reader_id,
            &sealed.public_key,
            reason.as_str(),
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

/// An administrator gives the reader a new key under `new` (the old passphrase is lost): the
/// reset is endorsed by the administrator's key and unlocks the profile.
pub fn reset_passphrase(
    ledger: &Ledger,
    reader_id: i64,
    admin_id: i64,
    admin_passphrase: &str,
    new: &str,
) -> Result<(), AppError> {
    reader(ledger, reader_id)?;
    let admin = administrator_key(ledger, admin_id, admin_passphrase)?;
    let (sealed, _) = new_sealed_key(new).map_err(invalid)?;
    let account = ledger
        .reader_key(reader_id)?
        .map_or_else(os_account, |r| r.os_account);
    let endorsement = endorse(&admin, reader_id, &sealed, KeyReason::Reset);
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

/// Makes a reader an administrator: the first one needs nobody (and a key of their own); later
/// ones are granted by an administrator with their passphrase.
pub fn grant_administrator(
    ledger: &Ledger,
    reader_id: i64,
    by: Option<(i64, &str)>,
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
    let message = endorsement_message(reader_id, "administrator", "admin");
    match by {
        None if ledger.administrator_count()? == 0 => {
            ledger.grant_administrator(reader_id, None, "")?;
        }
        None => {
            return Err(not_allowed(
                "there is an administrator already: an administrator grants the role",
            ));
        }
        Some((admin_id, passphrase)) => {
            let admin = administrator_key(ledger, admin_id, passphrase)?;
            let endorsement = hex::encode(admin.sign(&message).to_bytes());
            ledger.grant_administrator(reader_id, Some(admin_id), &endorsement)?;
        }
    }
    Ok(())
}
