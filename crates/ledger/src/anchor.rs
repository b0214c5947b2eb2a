//! Anchoring the chain outside the ledger file: signed checkpoints of its head, kept in the
//! ledger and in witnesses the workstation does not control (a checkpoint log elsewhere, the
//! trailer of every QA export, every assessment SR sent to the PACS).
//!
//! A checkpoint is the chain's size (entries) and the hash of its last entry, signed with the
//! installation's Ed25519 key. Each chain hash already covers every entry before it, so an
//! auditor holding an old checkpoint `(n, h)` checks that today's ledger extends it by
//! recomputing the chain and finding `h` at entry `n`. That is the consistency check a
//! Certificate Transparency log (RFC 9162) gets from a Merkle tree, whose point is proofs that
//! need only O(log n) hashes; an auditor of a Dokuei ledger has the whole file (verifying a
//! million entries takes about a second), so a Merkle tree would add code and no assurance.
//!
//! A checkpoint line (`dokuei-checkpoint/1 <ledger> <size> <head> <time> <key> <signature>`)
//! is plain ASCII, so it survives in a CSV comment, a JSON string and a DICOM text value.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rusqlite::Connection;

use crate::store::{Ledger, LedgerError};

/// The mark that starts every checkpoint line, wherever it is kept.
pub const CHECKPOINT_MARK: &str = "dokuei-checkpoint/1";

/// How often a checkpoint is made while the ledger is in use, besides one at every sign-off.
pub const CHECKPOINT_INTERVAL: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Environment variable naming the checkpoint log (a witness outside the ledger file).
pub const CHECKPOINT_LOG_ENV: &str = "DOKUEI_CHECKPOINT_LOG";

/// Why a checkpoint was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointReason {
    SignOff,
    Hourly,
    Export,
    Closing,
    Manual,
}

impl CheckpointReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointReason::SignOff => "sign_off",
            CheckpointReason::Hourly => "hourly",
            CheckpointReason::Export => "export",
            CheckpointReason::Closing => "closing",
            CheckpointReason::Manual => "manual",
        }
    }
}

/// A signed statement that the ledger `ledger_id` had `size` chain entries, the last with hash
/// `head`, at `made_at`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The first 16 bytes of the ledger's first chain hash, in hex: which ledger this is.
    pub ledger_id: String,
    pub size: u64,
    /// Hex SHA-256 of chain entry `size`.
    pub head: String,
    /// UTC, RFC 3339.
    pub made_at: String,
    /// Hex Ed25519 public key of the installation that signed.
    pub key: String,
    /// Hex Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
}

impl Checkpoint {
    /// What is signed: the mark and every field but the key and signature, one per line.
    pub fn signed_bytes(ledger_id: &str, size: u64, head: &str, made_at: &str) -> Vec<u8> {
        format!("{CHECKPOINT_MARK}\n{ledger_id}\n{size}\n{head}\n{made_at}\n").into_bytes()
    }

    /// The checkpoint as one line of text (no newline).
    pub fn line(&self) -> String {
        format!(
            "{CHECKPOINT_MARK} {} {} {} {} {} {}",
            self.ledger_id, self.size, self.head, self.made_at, self.key, self.signature
        )
    }

    /// Parses the text after a [`CHECKPOINT_MARK`] (or a whole line that starts with it).
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let text = text.trim();
        let text = text.strip_prefix(CHECKPOINT_MARK).unwrap_or(text);
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        let [ledger_id, size, head, made_at, key, signature] = fields[..] else {
            return Err(format!("it has {} fields, not 6", fields.len()));
        };
        let hex_of = |s: &str, len: usize, what: &str| {
            if s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(s.to_ascii_lowercase())
            } else {
                Err(format!("its {what} is not {len} hex digits"))
            }
        };
        Ok(Checkpoint {
            ledger_id: hex_of(ledger_id, 32, "ledger id")?,
            size: size
                .parse()
                .map_err(|_| format!("its size `{size}` is not a number"))?,
            head: hex_of(head, 64, "head hash")?,
            made_at: made_at.to_owned(),
            key: hex_of(key, 64, "public key")?,
            signature: hex_of(signature, 128, "signature")?,
        })
    }

    /// Whether the signature is the key's signature over the checkpoint's fields.
    pub fn signature_ok(&self) -> bool {
        let Ok(key) = hex::decode(&self.key).map(<[u8; 32]>::try_from) else {
            return false;
        };
        let Ok(sig) = hex::decode(&self.signature).map(<[u8; 64]>::try_from) else {
            return false;
        };
        let (Ok(key), Ok(sig)) = (key, sig) else {
            return false;
        };
        let Ok(key) = VerifyingKey::from_bytes(&key) else {
            return false;
        };
        let message = Self::signed_bytes(&self.ledger_id, self.size, &self.head, &self.made_at);
        key.verify_strict(&message, &Signature::from_bytes(&sig))
            .is_ok()
    }
}

/// Whether each of the `checkpoints` is validly signed. Verified in batches (about twice as
/// fast as one by one); a batch that fails is checked one by one to find the bad ones.
pub fn signatures_ok(checkpoints: &[&Checkpoint]) -> Vec<bool> {
    let mut valid = Vec::with_capacity(checkpoints.len());
    for batch in checkpoints.chunks(256) {
        let mut messages = Vec::with_capacity(batch.len());
        let mut signatures = Vec::with_capacity(batch.len());
        let mut keys = Vec::with_capacity(batch.len());
        let mut parsed = true;
        for c in batch {
            let key = hex::decode(&c.key)
                .ok()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .and_then(|k| VerifyingKey::from_bytes(&k).ok());
            let sig = hex::decode(&c.signature)
                .ok()
                .and_then(|s| <[u8; 64]>::try_from(s).ok());
            match (key, sig) {
                (Some(k), Some(s)) => {
                    keys.push(k);
                    signatures.push(Signature::from_bytes(&s));
                    messages.push(Checkpoint::signed_bytes(
                        &c.ledger_id,
                        c.size,
                        &c.head,
                        &c.made_at,
                    ));
                }
                _ => parsed = false,
            }
        }
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        if parsed && ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok() {
            valid.extend(std::iter::repeat_n(true, batch.len()));
        } else {
            valid.extend(batch.iter().map(|c| c.signature_ok()));
        }
    }
    valid
}

/// The installation's checkpoint key: an Ed25519 key pair whose secret half lives in a file
/// readable by its owner only (0600), beside the ledger but never in it.
pub struct InstallationKey {
    signing: SigningKey,
    path: PathBuf,
}

impl std::fmt::Debug for InstallationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationKey")
            .field("path", &self.path)
            .field("public", &self.public_hex())
            .finish()
    }
}

impl InstallationKey {
    /// Where the key of the ledger at `ledger` is kept: `<ledger>.checkpoint-key`.
    pub fn path_for(ledger: &Path) -> PathBuf {
        let mut name = ledger.file_name().unwrap_or_default().to_os_string();
        name.push(".checkpoint-key");
        ledger.with_file_name(name)
    }

    /// Reads the key at `path`, creating it (from the OS's random source) when there is none.
    pub fn load_or_create(path: &Path) -> Result<InstallationKey, String> {
        match Self::load(path) {
            Err(e) if e.kind == std::io::ErrorKind::NotFound => {}
            other => return other.map_err(|e| e.message),
        }
        let fail = |e: &dyn std::fmt::Display| {
            format!("cannot create the checkpoint key `{}`: {e}", path.display())
        };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| fail(&e))?;
        // Written whole and synced under a temporary name, then linked into place (which fails
        // if another process got there first) and the folder synced: the key file is never
        // seen empty or half written, and survives a power cut once this returns.
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&tmp).and_then(|mut file| {
            file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())?;
            file.sync_all()
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(&e));
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(|e| fail(&e))?;
                }
                Ok(InstallationKey {
                    signing: SigningKey::from_bytes(&seed),
                    path: path.to_path_buf(),
                })
            }
            // Another process made it meanwhile: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load(path).map_err(|e| e.message)
            }
            Err(e) => Err(fail(&e)),
        }
    }

    /// Reads the key at `path`. Refused when others than its owner can read it.
    pub fn load(path: &Path) -> Result<InstallationKey, KeyError> {
        let fail = |kind, e: &dyn std::fmt::Display| KeyError {
            kind,
            message: format!("cannot use the checkpoint key `{}`: {e}", path.display()),
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.kind(), &e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| fail(e.kind(), &e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(fail(
                    std::io::ErrorKind::PermissionDenied,
                    &format!(
                        "others than its owner can read it (mode {:o}); `chmod 600` it",
                        mode & 0o777
                    ),
                ));
            }
        }
        let seed = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                fail(
                    std::io::ErrorKind::InvalidData,
                    &"it is not 64 hex digits (an Ed25519 seed)",
                )
            })?;
        Ok(InstallationKey {
            signing: SigningKey::from_bytes(&seed),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key, hex: what an auditor trusts.
    pub fn public_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().as_bytes())
    }

    fn sign(&self, ledger_id: &str, size: u64, head: &str, made_at: &str) -> Checkpoint {
        let signature = self
            .signing
            .sign(&Checkpoint::signed_bytes(ledger_id, size, head, made_at));
        Checkpoint {
            ledger_id: ledger_id.to_owned(),
            size,
            head: head.to_owned(),
            made_at: made_at.to_owned(),
            key: self.public_hex(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// A checkpoint key that could not be read.
#[derive(Debug)]
pub struct KeyError {
    pub kind: std::io::ErrorKind,
    pub message: String,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checkpoints as a ledger writes them: signed with `key`, appended to `log` when set.
#[derive(Debug)]
pub struct Anchoring {
    pub key: InstallationKey,
    pub log: Option<PathBuf>,
}

/// The checkpoints found in one witness (a checkpoint log, a QA export, an assessment SR…).
#[derive(Debug, Clone)]
pub struct Witness {
    /// What the witness is (its path), for messages.
    pub name: String,
    /// Kept outside the ledger's folder (a checkpoint log elsewhere, an export, an SR): what
    /// makes a check more than internal consistency.
    pub external: bool,
    pub checkpoints: Vec<Checkpoint>,
    /// Checkpoint lines that do not parse: (line number, why).
    pub malformed: Vec<(usize, String)>,
    /// A line cut short (its writer was stopped mid-line) was found and ignored: not a
    /// checkpoint, not an alteration.
    pub torn_tail: bool,
}

impl Witness {
    /// The checkpoints in `bytes`: lines that are a checkpoint (a checkpoint log, or a DICOM
    /// value read by its tag), `# ` and one (a CSV export's trailer), or `{"checkpoint":"`, one
    /// and `"}` (a JSON Lines trailer). Other lines are not read, so free text that quotes a
    /// checkpoint (a reader's words in an export) is never taken for one.
    pub fn scan(name: &str, bytes: &[u8]) -> Witness {
        let mut witness = Witness {
            name: name.to_owned(),
            external: true,
            checkpoints: Vec::new(),
            malformed: Vec::new(),
            torn_tail: false,
        };
        let json_prefix = format!("{{\"checkpoint\":\"{CHECKPOINT_MARK}");
        let csv_prefix = format!("# {CHECKPOINT_MARK}");
        for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let log_line = line.starts_with(CHECKPOINT_MARK.as_bytes());
            let body = if log_line {
                line
            } else if line.starts_with(csv_prefix.as_bytes()) {
                &line[2..]
            } else if line.starts_with(json_prefix.as_bytes()) {
                match line[json_prefix.len() - CHECKPOINT_MARK.len()..].strip_suffix(b"\"}") {
                    Some(body) => body,
                    None => {
                        witness
                            .malformed
                            .push((number + 1, "its JSON record is cut short".into()));
                        continue;
                    }
                }
            } else {
                continue;
            };
            let parsed = std::str::from_utf8(body)
                .map_err(|_| "it is not ASCII text".to_owned())
                .and_then(Checkpoint::parse);
            match parsed {
                Ok(c) => witness.checkpoints.push(c),
                // A checkpoint log line cut short by a crash while it was written (the next
                // append ends it first): only what a complete line starts with. Ignoring it is
                // no weaker than what anyone who can write the log can do anyway, removing a
                // line; any other change to a line is reported.
                Err(_) if log_line && is_line_prefix(body) => {
                    witness.torn_tail = true;
                }
                Err(e) => witness.malformed.push((number + 1, e)),
            }
        }
        witness
    }

    /// Reads a text witness (a checkpoint log, a QA export). A DICOM SR's checkpoint is read by
    /// its tag (the review crate does that).
    pub fn read(path: &Path) -> Result<Witness, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the witness `{}`: {e}", path.display()))?;
        Ok(Witness::scan(&path.display().to_string(), &bytes))
    }
}

/// Whether `text` (from the mark on) is what a complete checkpoint line starts with: every
/// field but the last complete and well formed, the last a prefix of one.
fn is_line_prefix(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let Some(rest) = text.strip_prefix(CHECKPOINT_MARK) else {
        return false;
    };
    let fields: Vec<&str> = rest.split(' ').skip(1).collect();
    let hex = |s: &str, n: usize, whole: bool| {
        s.bytes().all(|b| b.is_ascii_hexdigit()) && if whole { s.len() == n } else { s.len() <= n }
    };
    let ok = |i: usize, s: &str, whole: bool| match i {
        0 => hex(s, 32, whole),
        1 => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) || (!whole && s.is_empty()),
        2 | 4 => hex(s, 64, whole),
        3 => s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":.-+".contains(&b)),
        5 => hex(s, 128, whole),
        _ => false,
    };
    fields.len() <= 6
        && fields
            .iter()
            .enumerate()
            .all(|(i, f)| ok(i, f, i + 1 < fields.len()))
}

/// Appends a checkpoint line to the log at `path` in one write, then flushes it to disk.
pub fn append_to_log(path: &Path, checkpoint: &Checkpoint) -> Result<(), String> {
    write_to_log(path, checkpoint, true)
}

/// Syncs a file's data (opened for writing: some systems flush only handles that can write).
fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .sync_data()
}

/// How soon after a checkpoint the log is synced, when the line was written on an append's path
/// (a sign-off's, or the hourly one): the line is in the operating system's hands at once (a
/// killed process loses nothing), and on disk within this, off the reader's path. A power cut
/// in between can cost the log that line, never the ledger its checkpoint.
pub const LOG_SYNC_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

fn write_to_log(path: &Path, checkpoint: &Checkpoint, sync: bool) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| {
        format!(
            "cannot write the checkpoint log `{}`: {e}; the ledger is unchanged and holds the checkpoint",
            path.display()
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| fail(&e))?;
    // A line cut short by a crash is ended first, so this one is whole and on its own line.
    let torn = {
        use std::io::{Read, Seek, SeekFrom};
        let len = file.metadata().map_err(|e| fail(&e))?.len();
        let mut last = [b'\n'];
        if len > 0 {
            file.seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| fail(&e))?;
        }
        last[0] != b'\n'
    };
    let line = format!("{}{}\n", if torn { "\n" } else { "" }, checkpoint.line());
    file.write_all(line.as_bytes())
        .and_then(|()| if sync { file.sync_data() } else { Ok(()) })
        .map_err(|e| fail(&e))
}

impl Ledger {
    /// From now on, signs a checkpoint at every sign-off and at the first append after an hour
    /// without one, and appends each to `anchoring.log`.
    pub fn anchor(&mut self, anchoring: Anchoring) {
        self.anchoring = Some(anchoring);
    }

    pub fn anchoring(&self) -> Option<&Anchoring> {
        self.anchoring.as_ref()
    }

    /// The last failure to write the checkpoint log, if the last checkpoint could not be
    /// written there (the ledger itself holds it).
    pub fn witness_error(&self) -> Option<String> {
        self.witness_error.borrow().clone()
    }

    /// The ledger's id: the first 16 bytes of its first chain hash (none while it is empty).
    pub fn ledger_id(&self) -> Result<Option<String>, LedgerError> {
        ledger_id_in(&self.conn).map_err(|e| self.read_err(e))
    }

    /// The newest checkpoint the ledger holds.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        latest_in(&self.conn).map_err(|e| self.read_err(e))
    }

    /// The first checkpoint that covers sign-off `sign_off_id` (the one made with it).
    pub fn checkpoint_of_sign_off(
        &self,
        sign_off_id: i64,
    ) -> Result<Option<Checkpoint>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "{SELECT_CHECKPOINTS} WHERE size >= (SELECT seq FROM sign_offs WHERE id = ?1) \
                 ORDER BY id LIMIT 1"
            ))
            .map_err(|e| self.read_err(e))?;
        let mut rows = stmt
            .query_map([sign_off_id], checkpoint_of)
            .map_err(|e| self.read_err(e))?;
        rows.next().transpose().map_err(|e| self.read_err(e))
    }

    /// Every checkpoint the ledger holds, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!("{SELECT_CHECKPOINTS} ORDER BY id"))
            .map_err(|e| self.read_err(e))?;
        stmt.query_map([], checkpoint_of)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.read_err(e))
    }

    /// Makes a checkpoint of the current head unless the newest one already covers it; returns
    /// the checkpoint that covers the head (none for an empty ledger or without anchoring).
    pub fn checkpoint(&self, reason: CheckpointReason) -> Result<Option<Checkpoint>, LedgerError> {
        if self.anchoring.is_none() {
            return Ok(None);
        }
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|e| self.write_err(e))?;
        let made = self
            .checkpoint_in(&tx, reason, false)
            .map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        if let Some((checkpoint, true)) = &made {
            self.witness(checkpoint);
        }
        // Asked for (closing, export, by hand): the log on disk before this returns, with
        // whatever a sign-off wrote into it moments ago.
        self.sync_log_now();
        match made {
            Some((c, _)) => Ok(Some(c)),
            None => Ok(None),
        }
    }

    /// Makes a checkpoint when the head has moved and the newest is older than
    /// [`CHECKPOINT_INTERVAL`] (for a timer, and when the application closes: `Closing`).
    pub fn checkpoint_if_due(
        &self,
        reason: CheckpointReason,
    ) -> Result<Option<Checkpoint>, LedgerError> {
        let due = match self.latest_checkpoint()? {
            None => true,
            Some(c) => {
                let (size, _) = head_in(&self.conn).map_err(|e| self.read_err(e))?;
                size > c.size && (reason == CheckpointReason::Closing || older_than_interval(&c))
            }
        };
        if due {
            self.checkpoint(reason)
        } else {
            Ok(None)
        }
    }

    /// Inside an open transaction: signs the head and stores the checkpoint, unless the newest
    /// checkpoint covers the head already (`only_if_due`: unless it is younger than an hour).
    /// Returns the checkpoint covering the head and whether it is new.
    pub(crate) fn checkpoint_in(
        &self,
        tx: &Connection,
        reason: CheckpointReason,
        only_if_due: bool,
    ) -> rusqlite::Result<Option<(Checkpoint, bool)>> {
        let Some(anchoring) = &self.anchoring else {
            return Ok(None);
        };
        if only_if_due
            && self
                .checkpoint_fresh_until
                .get()
                .is_some_and(|t| std::time::Instant::now() < t)
        {
            return Ok(None);
        }
        let (size, head) = head_in(tx)?;
        if size == 0 {
            return Ok(None);
        }
        let latest = latest_in(tx)?;
        // Only a checkpoint this installation signed counts (a row inserted behind the
        // application's back does not stop checkpoints).
        let latest = latest.filter(|c| c.key == anchoring.key.public_hex() && c.signature_ok());
        if let Some(latest) = latest
            && (latest.size == size || (only_if_due && !older_than_interval(&latest)))
        {
            if let Some(left) = time_left(&latest) {
                self.checkpoint_fresh_until
                    .set(Some(std::time::Instant::now() + left));
            }
            return Ok((latest.size == size).then_some((latest, false)));
        }
        let Some(ledger_id) = ledger_id_in(tx)? else {
            return Ok(None);
        };
        let made_at = self
            .fixed_clock
            .as_ref()
            .map_or_else(crate::records::now_utc, |(t, _)| t.clone());
        let checkpoint = anchoring.key.sign(&ledger_id, size, &head, &made_at);
        tx.prepare_cached(
            "INSERT INTO checkpoints (ledger_id, size, head, made_at, reason, public_key, signature) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(rusqlite::params![
            checkpoint.ledger_id,
            size as i64,
            checkpoint.head,
            checkpoint.made_at,
            reason.as_str(),
            checkpoint.key,
            checkpoint.signature
        ])?;
        // (If the transaction then fails, the next due check merely comes an hour late for
        // this process; a sign-off always makes its own.)
        if let Some(left) = time_left(&checkpoint) {
            self.checkpoint_fresh_until
                .set(Some(std::time::Instant::now() + left));
        }
        Ok(Some((checkpoint, true)))
    }

    /// Signs a checkpoint of every `step`-th chain entry, as a ledger checkpointed at every
    /// sign-off would hold, in one transaction, and writes them to the checkpoint log: for the
    /// verify benchmark. Returns how many.
    #[doc(hidden)]
    pub fn checkpoints_for_benchmark(&self, step: u64) -> Result<usize, LedgerError> {
        let Some(anchoring) = &self.anchoring else {
            return Ok(0);
        };
        let ledger_id = self.ledger_id()?.unwrap_or_default();
        let made_at = crate::records::now_utc();
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|e| self.write_err(e))?;
        let mut lines = String::new();
        let mut n = 0;
        {
            let mut read = tx
                .prepare("SELECT seq, hash FROM chain WHERE seq % ?1 = 0 ORDER BY seq")
                .map_err(|e| self.write_err(e))?;
            let mut rows = read.query([step as i64]).map_err(|e| self.write_err(e))?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO checkpoints (ledger_id, size, head, made_at, reason, public_key, signature) \
                     VALUES (?1, ?2, ?3, ?4, 'manual', ?5, ?6)",
                )
                .map_err(|e| self.write_err(e))?;
            while let Some(row) = rows.next().map_err(|e| self.write_err(e))? {
                let size: i64 = row.get(0).map_err(|e| self.write_err(e))?;
                let hash: Vec<u8> = row.get(1).map_err(|e| self.write_err(e))?;
                let c = anchoring
                    .key
                    .sign(&ledger_id, size as u64, &hex::encode(hash), &made_at);
                insert
                    .execute(rusqlite::params![
                        c.ledger_id,
                        size,
                        c.head,
                        c.made_at,
                        c.key,
                        c.signature
                    ])
                    .map_err(|e| self.write_err(e))?;
                lines.push_str(&c.line());
                lines.push('\n');
                n += 1;
            }
        }
        tx.commit().map_err(|e| self.write_err(e))?;
        if let Some(log) = &anchoring.log {
            std::fs::write(log, lines).map_err(|e| self.write_err(e))?;
        }
        Ok(n)
    }

    /// Appends a new checkpoint to the checkpoint log; remembers a failure for
    /// [`Ledger::witness_error`] (the record is in the ledger already and is not undone).
    pub(crate) fn witness(&self, checkpoint: &Checkpoint) {
        let Some(log) = self.anchoring.as_ref().and_then(|a| a.log.as_ref()) else {
            return;
        };
        // Checkpoints that could not be written before go first, oldest first.
        let mut pending = self.witness_pending.borrow_mut();
        pending.push(checkpoint.clone());
        while let Some(first) = pending.first() {
            if let Err(e) = write_to_log(log, first, false) {
                *self.witness_error.borrow_mut() = Some(e);
                let excess = pending.len().saturating_sub(1000);
                pending.drain(..excess);
                return;
            }
            pending.remove(0);
        }
        *self.witness_error.borrow_mut() = None;
        self.schedule_log_sync(log);
    }

    /// Syncs the checkpoint log now (a failure is kept for [`Ledger::witness_error`]).
    pub(crate) fn sync_log_now(&self) {
        let Some(log) = self.anchoring.as_ref().and_then(|a| a.log.as_ref()) else {
            return;
        };
        if self.witness_error.borrow().is_some() || !log.exists() {
            return;
        }
        if let Err(e) = sync_file(log) {
            *self.witness_error.borrow_mut() = Some(format!(
                "cannot sync the checkpoint log `{}`: {e}; the ledger holds the checkpoint",
                log.display()
            ));
        }
    }

    /// Syncs the checkpoint log [`LOG_SYNC_DELAY`] from now in another thread, unless a sync is
    /// already due (lines written meanwhile go with it).
    fn schedule_log_sync(&self, log: &Path) {
        use std::sync::atomic::Ordering;
        if self.log_sync_due.swap(true, Ordering::SeqCst) {
            return;
        }
        let (due, log) = (self.log_sync_due.clone(), log.to_path_buf());
        std::thread::spawn(move || {
            std::thread::sleep(LOG_SYNC_DELAY);
            // Cleared first: a line written during the sync schedules another.
            due.store(false, Ordering::SeqCst);
            if let Err(e) = sync_file(&log) {
                tracing::warn!("cannot sync the checkpoint log: {e}");
            }
        });
    }
}

/// How long until `c` is older than [`CHECKPOINT_INTERVAL`] (none when it is already, or its
/// time does not parse).
fn time_left(c: &Checkpoint) -> Option<std::time::Duration> {
    let made = chrono::DateTime::parse_from_rfc3339(&c.made_at).ok()?;
    let age = chrono::Utc::now().signed_duration_since(made);
    if age < chrono::TimeDelta::zero() {
        return None; // made "in the future": a clock that ran ahead, or a forged row
    }
    (CHECKPOINT_INTERVAL - age).to_std().ok()
}

fn older_than_interval(c: &Checkpoint) -> bool {
    time_left(c).is_none()
}

/// The columns [`checkpoint_of`] reads.
const SELECT_CHECKPOINTS: &str =
    "SELECT ledger_id, size, head, made_at, public_key, signature FROM checkpoints";

/// The newest checkpoint in the ledger.
fn latest_in(conn: &Connection) -> rusqlite::Result<Option<Checkpoint>> {
    conn.prepare_cached(&format!("{SELECT_CHECKPOINTS} ORDER BY id DESC LIMIT 1"))?
        .query_map([], checkpoint_of)?
        .next()
        .transpose()
}

fn checkpoint_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        ledger_id: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        head: r.get(2)?,
        made_at: r.get(3)?,
        key: r.get(4)?,
        signature: r.get(5)?,
    })
}

/// The chain's size and the hex hash of its last entry (0 and zeros when empty).
pub(crate) fn head_in(conn: &Connection) -> rusqlite::Result<(u64, String)> {
    conn.prepare_cached("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                hex::encode(r.get::<_, Vec<u8>>(1)?),
            ))
        })
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, hex::encode([0u8; 32]))),
            e => Err(e),
        })
}

fn ledger_id_in(conn: &Connection) -> rusqlite::Result<Option<String>> {
    match conn
        .prepare_cached("SELECT hash FROM chain WHERE seq = 1")?
        .query_row([], |r| r.get::<_, Vec<u8>>(0))
    {
        Ok(h) => Ok(Some(hex::encode(&h[..h.len().min(16)]))),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}
