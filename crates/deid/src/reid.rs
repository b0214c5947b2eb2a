//! Re-identification: who is behind a pseudonym, for an authorised user only.
//!
//! Each new patient's identity (Patient ID, its issuer, the name) is sealed, as the export runs,
//! to the site's re-identification public key: X25519 with a fresh ephemeral key per record,
//! then XChaCha20-Poly1305 under SHA-256 of the shared secret and both public keys. The export
//! needs only the public key; opening a record needs the private key, which is sealed under a
//! passphrase (Argon2id, then XChaCha20-Poly1305: the ledger's sealed-key format, an Ed25519
//! seed whose scalar is the X25519 secret). Without the key file no identity is kept at all,
//! and pseudonyms cannot be reversed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use dokuei_ledger::signing::{OpenError, SealedKey, new_sealed_key, open_sealed};
use sha2::{Digest, Sha256};

use crate::DeidError;

/// The file (in the de-identification folder) that holds the sealed re-identification key.
pub const KEY_FILE: &str = "reidentification-key.json";
/// The file that holds the sealed identities, one `<pseudonym> <hex>` per line.
pub const IDENTITIES_FILE: &str = "identities";

/// A patient's identity as it stood in the data set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub patient_id: String,
    pub issuer: String,
    pub name: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFile {
    public_key: String,
    sealed: String,
    kdf: String,
}

fn store_error(path: &Path, reason: impl std::fmt::Display) -> DeidError {
    DeidError::Store {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Makes the site's re-identification key, sealed under `passphrase`. Refused when there is
/// one already (a second key would strand every identity sealed to the first).
pub fn init(dir: &Path, passphrase: &str) -> Result<(), DeidError> {
    let path = dir.join(KEY_FILE);
    if path.exists() {
        return Err(store_error(
            &path,
            "a re-identification key exists already; identities sealed to it could not be opened with a new one",
        ));
    }
    let (sealed, _) = new_sealed_key(passphrase).map_err(DeidError::Policy)?;
    let json = serde_json::to_vec_pretty(&KeyFile {
        public_key: sealed.public_key,
        sealed: sealed.sealed,
        kdf: sealed.kdf,
    })
    .map_err(|e| store_error(&path, e))?;
    fs::create_dir_all(dir).map_err(|e| store_error(dir, e))?;
    crate::keys::write_private(&path, &json).map_err(|e| store_error(&path, e))
}

fn read_key(dir: &Path) -> Result<Option<SealedKey>, DeidError> {
    let path = dir.join(KEY_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(store_error(&path, e)),
    };
    let k: KeyFile = serde_json::from_slice(&text).map_err(|e| store_error(&path, e))?;
    Ok(Some(SealedKey {
        public_key: k.public_key,
        sealed: k.sealed,
        kdf: k.kdf,
    }))
}

/// Seals identities to the site's re-identification key.
#[derive(Debug, Clone)]
pub struct Sealer {
    recipient: MontgomeryPoint,
    path: PathBuf,
}

impl Sealer {
    /// The sealer for the key in `dir`, or `None` when re-identification is not set up.
    pub fn of(dir: &Path) -> Result<Option<Sealer>, DeidError> {
        let Some(key) = read_key(dir)? else {
            return Ok(None);
        };
        let path = dir.join(KEY_FILE);
        let bytes: [u8; 32] = hex::decode(&key.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| store_error(&path, "its public key is not 32 bytes of hex"))?;
        let verifying =
            ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|e| store_error(&path, e))?;
        if verifying.is_weak() {
            return Err(store_error(
                &path,
                "its public key is a weak (small-order) point",
            ));
        }
        Ok(Some(Sealer {
            recipient: verifying.to_montgomery(),
            path: dir.join(IDENTITIES_FILE),
        }))
    }

    /// Appends `identity`, sealed, under `pseudonym` (synced before the pseudonym is used).
    pub fn record(&self, pseudonym: &str, identity: &Identity) -> Result<(), DeidError> {
        let plain = serde_json::to_vec(identity).map_err(|e| store_error(&self.path, e))?;
        let mut ephemeral = [0u8; 32];
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut ephemeral).map_err(|e| store_error(&self.path, e))?;
        getrandom::fill(&mut nonce).map_err(|e| store_error(&self.path, e))?;
        let ephemeral_public = MontgomeryPoint::mul_base_clamped(ephemeral);
        let shared = self.recipient.mul_clamped(ephemeral);
        let key = record_key(&shared, &ephemeral_public, &self.recipient);
        let sealed = XChaCha20Poly1305::new((&key).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: pseudonym.as_bytes(),
                },
            )
            .map_err(|e| store_error(&self.path, e))?;
        let line = format!(
            "{pseudonym} {}\n",
            hex::encode([ephemeral_public.as_bytes().as_slice(), &nonce, &sealed].concat())
        );
        let mut options = fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options
            .open(&self.path)
            .map_err(|e| store_error(&self.path, e))?;
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| store_error(&self.path, e))
    }
}

fn record_key(
    shared: &MontgomeryPoint,
    ephemeral: &MontgomeryPoint,
    recipient: &MontgomeryPoint,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"dokuei re-identification record\0");
    h.update(shared.as_bytes());
    h.update(ephemeral.as_bytes());
    h.update(recipient.as_bytes());
    h.finalize().into()
}

/// Why re-identification did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReidError {
    /// Re-identification is not set up at this site: no identity was kept.
    NotSetUp,
    WrongPassphrase,
    /// No identity is recorded under that pseudonym.
    Unknown,
    /// The key or a record is damaged.
    Damaged(String),
}

impl std::fmt::Display for ReidError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReidError::NotSetUp => write!(
                f,
                "re-identification is not set up at this site, so no identity was kept"
            ),
            ReidError::WrongPassphrase => write!(f, "the re-identification passphrase is wrong"),
            ReidError::Unknown => write!(f, "no identity is recorded under that pseudonym"),
            ReidError::Damaged(why) => write!(f, "the re-identification store is damaged: {why}"),
        }
    }
}

/// The identities recorded under `pseudonym` (one per identity the exports met: the same
/// person under two spellings of the name is two records), opened with the passphrase.
pub fn reidentify(
    dir: &Path,
    pseudonym: &str,
    passphrase: &str,
) -> Result<Vec<Identity>, ReidError> {
    let damaged = |e: &dyn std::fmt::Display| ReidError::Damaged(e.to_string());
    let key = read_key(dir)
        .map_err(|e| damaged(&e))?
        .ok_or(ReidError::NotSetUp)?;
    let signing = open_sealed(&key, passphrase).map_err(|e| match e {
        OpenError::WrongPassphrase => ReidError::WrongPassphrase,
        OpenError::Damaged(why) => ReidError::Damaged(why),
    })?;
    let secret = signing.to_scalar_bytes();
    let recipient = MontgomeryPoint::mul_base_clamped(secret);
    let text = match fs::read_to_string(dir.join(IDENTITIES_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(damaged(&e)),
    };
    let mut found = Vec::new();
    for line in text.lines() {
        let Some((p, blob)) = line.split_once(' ') else {
            continue;
        };
        if p != pseudonym {
            continue;
        }
        let blob = hex::decode(blob).map_err(|e| damaged(&e))?;
        if blob.len() < 32 + 24 + 16 {
            return Err(damaged(&"a record is too short"));
        }
        let ephemeral = MontgomeryPoint(blob[..32].try_into().map_err(|_| damaged(&"length"))?);
        let shared = ephemeral.mul_clamped(secret);
        let key = record_key(&shared, &ephemeral, &recipient);
        let plain = XChaCha20Poly1305::new((&key).into())
            .decrypt(
                XNonce::from_slice(&blob[32..56]),
                Payload {
                    msg: &blob[56..],
                    aad: pseudonym.as_bytes(),
                },
            )
            .map_err(|_| damaged(&"a record does not open with this key"))?;
        found.push(serde_json::from_slice(&plain).map_err(|e| damaged(&e))?);
    }
    if found.is_empty() {
        return Err(ReidError::Unknown);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_identities_open_with_the_passphrase_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            reidentify(dir.path(), "X-000001", "whatever passphrase"),
            Err(ReidError::NotSetUp)
        );
        assert!(Sealer::of(dir.path()).expect("read").is_none());
        init(dir.path(), "correct horse battery").expect("init");
        assert!(init(dir.path(), "another passphrase").is_err(), "one key");
        let sealer = Sealer::of(dir.path()).expect("read").expect("set up");
        let who = Identity {
            patient_id: "PID-123".into(),
            issuer: "HOSP".into(),
            name: "Yamada^Tarou".into(),
        };
        sealer.record("X-000001", &who).expect("sealed");
        // The store holds no identifier in the clear.
        let stored = fs::read_to_string(dir.path().join(IDENTITIES_FILE)).expect("read");
        assert!(!stored.contains("PID-123") && !stored.contains("Yamada"));
        assert_eq!(
            reidentify(dir.path(), "X-000001", "correct horse battery"),
            Ok(vec![who])
        );
        assert_eq!(
            reidentify(dir.path(), "X-000001", "wrong horse battery"),
            Err(ReidError::WrongPassphrase)
        );
        assert_eq!(
            reidentify(dir.path(), "X-000002", "correct horse battery"),
            Err(ReidError::Unknown)
        );
        // A record moved to another pseudonym does not open (the pseudonym is bound to it).
        let moved = stored.replace("X-000001", "X-000009");
        fs::write(dir.path().join(IDENTITIES_FILE), moved).expect("write");
        assert!(matches!(
            reidentify(dir.path(), "X-000009", "correct horse battery"),
            Err(ReidError::Damaged(_))
        ));
    }
}
