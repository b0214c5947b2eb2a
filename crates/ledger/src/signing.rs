//! Who signed: each reader's Ed25519 key pair, its secret half sealed under the reader's
//! passphrase (Argon2id, then XChaCha20-Poly1305), and sign-offs signed with it, so a sign-off
//! proves which person made it, not which profile was selected.
//!
//! A signed sign-off stores the statement signed: the printed name, the date and time, the
//! meaning ("final read", as 21 CFR Part 11 §11.50 asks), the study and counts, and the chain
//! entry of the sign-off with its hash. That hash covers the sign-off row and everything
//! recorded before it, so changing any of it, even with the chain recomputed, breaks the
//! signature, which nobody can make again without the reader's passphrase.
//!
//! A key changed by its reader is endorsed by the old key; one reset by an administrator, by
//! the administrator's key. Wrong passphrases are recorded; after [`LOCK_AFTER_FAILURES`] in a
//! row the profile is locked until an administrator unlocks it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rusqlite::OptionalExtension;
use rusqlite::types::Value;
use sha2::{Digest, Sha256};

use crate::records::SignOffRecord;
use crate::store::{Ledger, LedgerError};

/// Wrong passphrases in a row that lock a profile.
pub const LOCK_AFTER_FAILURES: i64 = 5;
/// The shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 8;
/// What a sign-off means, in the statement signed.
pub const SIGN_OFF_MEANING: &str = "final read";
/// Argon2id cost: 19 MiB, 2 passes, 1 lane (OWASP's minimum for Argon2id).
const KDF_M_KIB: u32 = 19 * 1024;
const KDF_T: u32 = 2;
const KDF_P: u32 = 1;

/// A key pair's public half and its secret half sealed under a passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    /// Hex Ed25519 public key.
    pub public_key: String,
    /// Hex: 24-byte nonce, then the sealed 32-byte seed and its 16-byte tag.
    pub sealed: String,
    /// How the sealing key was derived: `argon2id;m=…;t=…;p=…;salt=<hex>`.
    pub kdf: String,
}

/// Why a sealed key did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The passphrase is not the one it was sealed under.
    WrongPassphrase,
    /// The stored key is malformed or names other derivation parameters than Dokuei uses
    /// (damaged, or written outside Dokuei): not the reader's fault, and not counted.
    Damaged(String),
}

fn derive(passphrase: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<[u8; 32], String> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| e.to_string())?;
    Ok(key)
}

/// A new key pair, its secret sealed under `passphrase`.
pub fn new_sealed_key(passphrase: &str) -> Result<(SealedKey, SigningKey), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
    let signing = SigningKey::from_bytes(&seed);
    Ok((seal(&signing, passphrase)?, signing))
}

/// `signing`'s secret sealed under `passphrase` (a fresh salt and nonce).
pub fn seal(signing: &SigningKey, passphrase: &str) -> Result<SealedKey, String> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(format!(
            "a passphrase has at least {MIN_PASSPHRASE_CHARS} characters"
        ));
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
    let key = derive(passphrase, &salt, KDF_M_KIB, KDF_T, KDF_P)?;
    let public_key = hex::encode(signing.verifying_key().as_bytes());
    let cipher = XChaCha20Poly1305::new((&key).into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: signing.as_bytes(),
                aad: public_key.as_bytes(),
            },
        )
        .map_err(|e| e.to_string())?;
    Ok(SealedKey {
        public_key,
        sealed: hex::encode([nonce.as_slice(), &sealed].concat()),
        kdf: format!(
            "argon2id;m={KDF_M_KIB};t={KDF_T};p={KDF_P};salt={}",
            hex::encode(salt)
        ),
    })
}

/// Opens a sealed key with `passphrase`; the key must match its public half. Only Dokuei's own
/// derivation parameters are accepted (a stored key asking for terabytes or hours of Argon2 is
/// damaged, not run).
pub fn open_sealed(key: &SealedKey, passphrase: &str) -> Result<SigningKey, OpenError> {
    let damaged = |why: &str| OpenError::Damaged(why.to_owned());
    let prefix = format!("argon2id;m={KDF_M_KIB};t={KDF_T};p={KDF_P};salt=");
    let salt = key
        .kdf
        .strip_prefix(&prefix)
        .and_then(|s| hex::decode(s).ok())
        .filter(|s| s.len() == 16)
        .ok_or_else(|| damaged("its key derivation parameters are not Dokuei's"))?;
    let blob = hex::decode(&key.sealed).map_err(|_| damaged("its sealed key is not hex"))?;
    if blob.len() != 24 + 32 + 16 {
        return Err(damaged("its sealed key has the wrong length"));
    }
    let derived = derive(passphrase, &salt, KDF_M_KIB, KDF_T, KDF_P)
        .map_err(|e| OpenError::Damaged(e.to_string()))?;
    let cipher = XChaCha20Poly1305::new((&derived).into());
    let seed = cipher
        .decrypt(
            XNonce::from_slice(&blob[..24]),
            Payload {
                msg: &blob[24..],
                aad: key.public_key.as_bytes(),
            },
        )
        .map_err(|_| OpenError::WrongPassphrase)?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| damaged("its sealed key has the wrong length"))?;
    let signing = SigningKey::from_bytes(&seed);
    (hex::encode(signing.verifying_key().as_bytes()) == key.public_key)
        .then_some(signing)
        .ok_or_else(|| damaged("its sealed key does not match its public key"))
}

/// Whether `signature` (hex) is `public_key`'s (hex) over `message`.
pub fn signature_valid(public_key: &str, message: &[u8], signature: &str) -> bool {
    let key = hex::decode(public_key)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let sig = hex::decode(signature)
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s).ok());
    match (key, sig) {
        (Some(k), Some(s)) => k.verify_strict(message, &Signature::from_bytes(&s)).is_ok(),
        _ => false,
    }
}

/// What an endorsement of a new key signs: the reader, the new key, why, and the key it
/// replaces (`none`), so that an old endorsement cannot be replayed to put a superseded key
/// back.
pub fn endorsement_message(
    reader_id: i64,
    public_key: &str,
    reason: &str,
    previous_key: Option<&str>,
) -> Vec<u8> {
    format!(
        "dokuei-reader-key/2\nreader {reader_id}\nkey {public_key}\nreason {reason}\nreplaces {}\n",
        previous_key.unwrap_or("none")
    )
    .into_bytes()
}

/// Why a reader's key was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReason {
    /// With the profile (or its first passphrase).
    Created,
    /// By the reader, endorsed by the old key.
    Changed,
    /// By an administrator, endorsed by the administrator's key.
    Reset,
}

impl KeyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyReason::Created => "created",
            KeyReason::Changed => "changed",
            KeyReason::Reset => "reset",
        }
    }
}

/// Passphrase events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEvent {
    Failure,
    Success,
    Locked,
    Unlocked,
}

impl AuthEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthEvent::Failure => "failure",
            AuthEvent::Success => "success",
            AuthEvent::Locked => "locked",
            AuthEvent::Unlocked => "unlocked",
        }
    }
}

/// A reader's current key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderKeyRow {
    pub id: i64,
    pub reader_id: i64,
    pub os_account: String,
    pub key: SealedKey,
    pub reason: String,
    pub recorded_at: String,
}

/// A signed sign-off, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRow {
    pub sign_off_id: i64,
    pub reader_key_id: i64,
    pub statement: String,
    pub signature: String,
}

/// Who signs, as the statement prints it.
#[derive(Debug, Clone)]
pub struct SignOffSigner<'a> {
    pub display_name: &'a str,
    pub role: &'a str,
    pub key_row: &'a ReaderKeyRow,
    pub key: &'a SigningKey,
}

impl Ledger {
    /// Records a reader's key (`by`: the administrator of a reset). `endorsement`: hex
    /// signature of [`endorsement_message`] by the old key (changed) or the administrator's
    /// (reset); empty for a key created with its profile.
    pub fn record_reader_key(
        &self,
        reader_id: i64,
        os_account: &str,
        key: &SealedKey,
        reason: KeyReason,
        by: Option<i64>,
        endorsement: &str,
    ) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("reader_id", Value::Integer(reader_id)),
            ("os_account", Value::Text(os_account.to_owned())),
            ("public_key", Value::Text(key.public_key.clone())),
            ("sealed_key", Value::Text(key.sealed.clone())),
            ("kdf", Value::Text(key.kdf.clone())),
            ("reason", Value::Text(reason.as_str().to_owned())),
            ("by_reader_id", by.map_or(Value::Null, Value::Integer)),
            ("endorsement", Value::Text(endorsement.to_owned())),
        ]);
        self.append("reader_keys", &cols)
    }

    /// Creates a reader profile and its key in one transaction (a profile never exists
    /// without its key, for someone else to claim). Returns the reader's id.
    pub fn add_reader_with_key(
        &self,
        display_name: &str,
        role: crate::records::Role,
        os_account: &str,
        key: &SealedKey,
    ) -> Result<i64, LedgerError> {
        let reader_cols = self.stamped(vec![
            ("display_name", Value::Text(display_name.to_owned())),
            ("role", Value::Text(role.as_str().to_owned())),
        ]);
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|e| self.write_err(e))?;
        let id =
            crate::store::append_in(&tx, "readers", &reader_cols).map_err(|e| self.write_err(e))?;
        let key_cols = self.stamped(vec![
            ("reader_id", Value::Integer(id)),
            ("os_account", Value::Text(os_account.to_owned())),
            ("public_key", Value::Text(key.public_key.clone())),
            ("sealed_key", Value::Text(key.sealed.clone())),
            ("kdf", Value::Text(key.kdf.clone())),
            (
                "reason",
                Value::Text(KeyReason::Created.as_str().to_owned()),
            ),
            ("by_reader_id", Value::Null),
            ("endorsement", Value::Text(String::new())),
        ]);
        crate::store::append_in(&tx, "reader_keys", &key_cols).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        Ok(id)
    }

    /// The reader's current key, if they have one.
    pub fn reader_key(&self, reader_id: i64) -> Result<Option<ReaderKeyRow>, LedgerError> {
        self.conn
            .query_row(
                "SELECT id, reader_id, os_account, public_key, sealed_key, kdf, reason, recorded_at \
                 FROM reader_keys WHERE reader_id = ?1 ORDER BY seq DESC LIMIT 1",
                [reader_id],
                |r| {
                    Ok(ReaderKeyRow {
                        id: r.get(0)?,
                        reader_id: r.get(1)?,
                        os_account: r.get(2)?,
                        key: SealedKey {
                            public_key: r.get(3)?,
                            sealed: r.get(4)?,
                            kdf: r.get(5)?,
                        },
                        reason: r.get(6)?,
                        recorded_at: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.read_err(e))
    }

    pub fn record_auth_event(
        &self,
        reader_id: i64,
        event: AuthEvent,
        by: Option<i64>,
    ) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("reader_id", Value::Integer(reader_id)),
            ("kind", Value::Text(event.as_str().to_owned())),
            ("by_reader_id", by.map_or(Value::Null, Value::Integer)),
        ]);
        self.append("auth_events", &cols)
    }

    /// Wrong passphrases since the reader's last success, unlock or new key.
    pub fn failures_in_a_row(&self, reader_id: i64) -> Result<i64, LedgerError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM auth_events WHERE reader_id = ?1 AND kind = 'failure' AND seq > max(
                    COALESCE((SELECT max(seq) FROM auth_events WHERE reader_id = ?1 AND kind IN ('success', 'unlocked')), 0),
                    COALESCE((SELECT max(seq) FROM reader_keys WHERE reader_id = ?1), 0))",
                [reader_id],
                |r| r.get(0),
            )
            .map_err(|e| self.read_err(e))
    }

    /// Whether the reader is an administrator.
    pub fn is_administrator(&self, reader_id: i64) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM administrators WHERE reader_id = ?1)",
                [reader_id],
                |r| r.get(0),
            )
            .map_err(|e| self.read_err(e))
    }

    pub fn administrator_count(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("SELECT count(*) FROM administrators", [], |r| r.get(0))
            .map_err(|e| self.read_err(e))
    }

    /// Makes `reader_id` an administrator; `by` (with the signature of
    /// [`endorsement_message`] with reason `admin`) unless this is the first.
    pub fn grant_administrator(
        &self,
        reader_id: i64,
        by: Option<i64>,
        endorsement: &str,
    ) -> Result<i64, LedgerError> {
        let cols = self.stamped(vec![
            ("reader_id", Value::Integer(reader_id)),
            ("granted_by", by.map_or(Value::Null, Value::Integer)),
            ("endorsement", Value::Text(endorsement.to_owned())),
        ]);
        self.append("administrators", &cols)
    }

    /// Records the sign-off and its signature in one transaction (with the checkpoint every
    /// sign-off gets). Returns the sign-off's id and the statement signed.
    pub fn record_signed_sign_off(
        &self,
        s: &SignOffRecord,
        study_uid: &str,
        signer: &SignOffSigner<'_>,
    ) -> Result<(i64, String), LedgerError> {
        let cols = self.sign_off_columns(s);
        let at = cols
            .iter()
            .find(|(n, _)| *n == "recorded_at")
            .and_then(|(_, v)| match v {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|e| self.write_err(e))?;
        let id = crate::store::append_in(&tx, "sign_offs", &cols).map_err(|e| self.write_err(e))?;
        let (seq, hash) = crate::anchor::head_in(&tx).map_err(|e| self.write_err(e))?;
        let statement = sign_off_statement(&StatementFields {
            display_name: signer.display_name,
            role: signer.role,
            os_account: &signer.key_row.os_account,
            at: &at,
            study_uid,
            s,
            sign_off_id: id,
            seq,
            hash: &hash,
        });
        let signature = hex::encode(signer.key.sign(statement.as_bytes()).to_bytes());
        let sig_cols = self.stamped(vec![
            ("sign_off_id", Value::Integer(id)),
            ("reader_key_id", Value::Integer(signer.key_row.id)),
            ("statement", Value::Text(statement.clone())),
            ("signature", Value::Text(signature)),
        ]);
        crate::store::append_in(&tx, "sign_off_signatures", &sig_cols)
            .map_err(|e| self.write_err(e))?;
        let checkpoint = self
            .checkpoint_in(&tx, crate::anchor::CheckpointReason::SignOff, false)
            .map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        if let Some((c, true)) = checkpoint {
            self.witness(&c);
        }
        Ok((id, statement))
    }

    pub fn sign_off_signature(
        &self,
        sign_off_id: i64,
    ) -> Result<Option<SignatureRow>, LedgerError> {
        self.conn
            .query_row(
                "SELECT sign_off_id, reader_key_id, statement, signature FROM sign_off_signatures \
                 WHERE sign_off_id = ?1",
                [sign_off_id],
                |r| {
                    Ok(SignatureRow {
                        sign_off_id: r.get(0)?,
                        reader_key_id: r.get(1)?,
                        statement: r.get(2)?,
                        signature: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.read_err(e))
    }
}

struct StatementFields<'a> {
    display_name: &'a str,
    role: &'a str,
    os_account: &'a str,
    at: &'a str,
    study_uid: &'a str,
    s: &'a SignOffRecord,
    sign_off_id: i64,
    seq: u64,
    hash: &'a str,
}

/// `text` on one line: control characters (a newline could add a line to the statement)
/// become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The statement a sign-off signs: its manifestation (name, time, meaning) and the record.
fn sign_off_statement(f: &StatementFields<'_>) -> String {
    let (name, role, account, study) = (
        one_line(f.display_name),
        one_line(f.role),
        one_line(f.os_account),
        one_line(f.study_uid),
    );
    format!(
        "Dokuei electronic signature\n\
         Signed by: {} ({}), operating-system account {}\n\
         Date and time (UTC): {}\n\
         Meaning: {SIGN_OFF_MEANING}\n\
         Study: {}\n\
         Decisions: confirmed {}, edited {}, rejected {}, added {}\n\
         Impression SHA-256: {}\n\
         Ledger: sign_offs row {}, chain entry {} with hash {}\n",
        name,
        role,
        account,
        f.at,
        study,
        f.s.confirmed,
        f.s.edited,
        f.s.rejected,
        f.s.added,
        hex::encode(Sha256::digest(f.s.impression.as_bytes())),
        f.sign_off_id,
        f.seq,
        f.hash
    )
}

/// The `chain entry N with hash H` a statement names.
pub(crate) fn statement_anchor(statement: &str) -> Option<(i64, u64, String)> {
    let line = statement
        .lines()
        .find(|l| l.starts_with("Ledger: sign_offs row "))?;
    let rest = line.strip_prefix("Ledger: sign_offs row ")?;
    let (row, rest) = rest.split_once(", chain entry ")?;
    let (seq, hash) = rest.split_once(" with hash ")?;
    Some((row.parse().ok()?, seq.parse().ok()?, hash.to_owned()))
}
