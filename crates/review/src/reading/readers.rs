//! Readers: who reads studies or audits decisions, and their roles.

use dokuei_ledger::{Ledger, Role};
use serde::{Deserialize, Serialize};

use crate::{AppError, ErrorCode};

/// Someone who reads studies or audits decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Reader {
    #[specta(type = i32)]
    pub id: i64,
    pub display_name: String,
    pub role: Role,
}

pub fn readers(ledger: &Ledger) -> Result<Vec<Reader>, AppError> {
    ledger
        .readers()?
        .into_iter()
        .map(|r| {
            Ok(Reader {
                id: r.id,
                display_name: r.display_name,
                role: role_from_str(&r.role)?,
            })
        })
        .collect()
}

pub(super) fn role_from_str(s: &str) -> Result<Role, AppError> {
    match s {
        "radiologist" => Ok(Role::Radiologist),
        "clinician" => Ok(Role::Clinician),
        "qa" => Ok(Role::Qa),
        other => Err(AppError::new(
            ErrorCode::LedgerUnavailable,
            format!("the ledger names an unknown reader role `{other}`"),
        )),
    }
}

/// Creates a reader profile, bound to the operating-system account that makes it, with its
/// signing key sealed under `passphrase` (needed to sign off). Names are trimmed and must not
/// be empty.
pub fn add_reader(
    ledger: &Ledger,
    display_name: &str,
    role: Role,
    passphrase: &str,
) -> Result<Reader, AppError> {
    let name = display_name.trim();
    if name.is_empty() {
        return Err(invalid("a reader needs a display name"));
    }
    if name.chars().count() > 120 {
        return Err(invalid("a display name has at most 120 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("a display name is one line of text"));
    }
    // The profile and its key in one transaction: never a profile without a key.
    let (sealed, _) = dokuei_ledger::signing::new_sealed_key(passphrase).map_err(invalid)?;
    let id = ledger.add_reader_with_key(name, role, &super::os_account(), &sealed)?;
    Ok(Reader {
        id,
        display_name: name.to_owned(),
        role,
    })
}

pub(super) fn invalid(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidArgument, message)
}

pub(super) fn reader(ledger: &Ledger, id: i64) -> Result<Reader, AppError> {
    readers(ledger)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| invalid(format!("there is no reader with id {id}")))
}
