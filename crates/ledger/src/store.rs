//! Opening the ledger, appending records, and verifying the hash chain.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params_from_iter};
use sha2::{Digest, Sha256};

use crate::anchor::CheckpointReason;
use crate::schema::{
    APPEND_ONLY_OPS, LATEST, MIGRATIONS, RECORD_TABLES, UNCHAINED_TABLES, V5_RECORD_TABLES,
    append_only_triggers, trigger_sql,
};

/// Why the ledger could not do what was asked. Every variant names the ledger file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot open the ledger `{path}`: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "the ledger `{path}` was written by a newer Dokuei (schema version {found}; this version \
         reads up to {supported}); it was not changed. Update Dokuei to open it."
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "cannot upgrade the ledger `{path}` from schema version {from}: {reason} (a backup is at `{backup}`)"
    )]
    Migration {
        path: PathBuf,
        from: i64,
        backup: PathBuf,
        reason: String,
    },
    #[error(
        "cannot write to the ledger `{path}`: {reason}. Nothing was recorded by this action; everything recorded before is intact"
    )]
    Write { path: PathBuf, reason: String },
    #[error("cannot read the ledger `{path}`: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the ledger `{path}` has no {what} with id {id}")]
    NoSuch {
        path: PathBuf,
        what: &'static str,
        id: i64,
    },
}

/// An open ledger. Each append is one transaction with `synchronous=FULL`: when it returns
/// `Ok`, the record is on disk.
#[derive(Debug)]
pub struct Ledger {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) app_version: String,
    /// A fixed time for every row written (for golden-file tests); `None` is the real clock.
    pub(crate) fixed_clock: Option<(String, i64)>,
    /// Signed checkpoints, when the ledger is anchored (see `anchor.rs`).
    pub(crate) anchoring: Option<crate::anchor::Anchoring>,
    pub(crate) witness_error: std::cell::RefCell<Option<String>>,
    /// Checkpoints the log could not take yet, written first at the next checkpoint.
    pub(crate) witness_pending: std::cell::RefCell<Vec<crate::anchor::Checkpoint>>,
    /// When this process last made or saw a checkpoint younger than the interval: appends
    /// before the interval is up skip looking (another process's checkpoints are found later).
    pub(crate) checkpoint_fresh_until: std::cell::Cell<Option<std::time::Instant>>,
    /// A sync of the checkpoint log is scheduled (see `anchor::LOG_SYNC_DELAY`).
    pub(crate) log_sync_due: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Ledger {
    /// A checkpoint log sync still waiting (see `anchor::LOG_SYNC_DELAY`) is done now, so that
    /// a short-lived process (the command line) leaves its lines on disk too.
    fn drop(&mut self) {
        if self.log_sync_due.load(std::sync::atomic::Ordering::SeqCst) {
            self.sync_log_now();
        }
    }
}

/// How long a writer waits for another process holding the ledger before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`. An older schema is upgraded after a
    /// backup copy (`<file>.v<N>.bak`, SQLite's online backup); a newer one is refused.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Self::open_as(path, env!("CARGO_PKG_VERSION"))
    }

    /// [`Ledger::open`], recording `app_version` on every row written.
    pub fn open_as(path: &Path, app_version: &str) -> Result<Ledger, LedgerError> {
        let mut ledger = Self::open_unmigrated(path, app_version)?;
        ledger.migrate()?;
        Ok(ledger)
    }

    /// Opens a ledger without upgrading its schema, so a test can write rows as an older
    /// Dokuei would have (see [`Ledger::create_at_schema_version`]).
    #[doc(hidden)]
    pub fn open_without_upgrade(path: &Path) -> Result<Ledger, LedgerError> {
        Self::open_unmigrated(path, "0.0.0-old")
    }

    fn open_unmigrated(path: &Path, app_version: &str) -> Result<Ledger, LedgerError> {
        let open_err = |e: &dyn std::fmt::Display| LedgerError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(&e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_err(&e))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(|e| open_err(&e))?;
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
            app_version: app_version.to_owned(),
            fixed_clock: None,
            anchoring: None,
            witness_error: std::cell::RefCell::new(None),
            witness_pending: std::cell::RefCell::new(Vec::new()),
            checkpoint_fresh_until: std::cell::Cell::new(None),
            log_sync_due: Default::default(),
        })
    }

    /// Creates a ledger file at an older schema version, as an older Dokuei would have left
    /// it: for tests of the upgrade path.
    #[doc(hidden)]
    pub fn create_at_schema_version(path: &Path, version: i64) -> Result<(), LedgerError> {
        let conn = Connection::open(path).map_err(|e| LedgerError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut batch: String = MIGRATIONS
            .iter()
            .take(version as usize)
            .map(|sql| with_triggers(sql))
            .collect();
        batch.push_str(&format!("PRAGMA user_version = {version};"));
        conn.execute_batch(&batch).map_err(|e| LedgerError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Stamps every row written from now on with this UTC time and offset instead of the
    /// clock: for golden-file tests only.
    #[doc(hidden)]
    pub fn set_fixed_clock(&mut self, utc: &str, offset_minutes: i64) {
        self.fixed_clock = Some((utc.to_owned(), offset_minutes));
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.read_err(e))
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let found = self.schema_version()?;
        if found > LATEST {
            return Err(LedgerError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: LATEST,
            });
        }
        if found == LATEST {
            return Ok(());
        }
        let backup = backup_path(&self.path, found);
        if found > 0 {
            // Copy before changing anything, with SQLite's online backup (consistent even with
            // another process writing).
            let mut dst =
                Connection::open(&backup).map_err(|e| self.migration_err(found, &backup, e))?;
            rusqlite::backup::Backup::new(&self.conn, &mut dst)
                .and_then(|b| b.run_to_completion(256, Duration::from_millis(5), None))
                .map_err(|e| self.migration_err(found, &backup, e))?;
        }
        // The transaction borrows the connection, so errors are built from copies.
        let (path, from) = (self.path.clone(), found);
        let fail = |e: rusqlite::Error| LedgerError::Migration {
            path: path.clone(),
            from,
            backup: backup.clone(),
            reason: e.to_string(),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(fail)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap_or(found);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(now as usize) {
            let mut batch = with_triggers(sql);
            batch.push_str(&format!("PRAGMA user_version = {};", i + 1));
            tx.execute_batch(&batch).map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }

    /// Appends one row to `table` and extends the hash chain, in one transaction.
    /// `columns` are the row's columns other than `id` and `seq`.
    pub(crate) fn append(
        &self,
        table: &'static str,
        columns: &[(&str, Value)],
    ) -> Result<i64, LedgerError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.write_err(e))?;
        let id = append_in(&tx, table, columns).map_err(|e| self.write_err(e))?;
        // A sign-off is checkpointed in its own transaction: the checkpoint costs no sync of
        // its own, and a sign-off is never on disk without it.
        let checkpoint = if table == "sign_offs" {
            self.checkpoint_in(&tx, CheckpointReason::SignOff, false)
        } else {
            self.checkpoint_in(&tx, CheckpointReason::Hourly, true)
        }
        .map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        if let Some((checkpoint, true)) = checkpoint {
            self.witness(&checkpoint);
        }
        Ok(id)
    }

    /// Appends one row to `table` and then whatever `rest` appends (given that row's id), in
    /// one transaction: the group is on disk whole or not at all.
    pub(crate) fn append_group(
        &self,
        table: &'static str,
        columns: &[(&str, Value)],
        rest: impl FnOnce(i64, &Connection) -> Result<(), rusqlite::Error>,
    ) -> Result<i64, LedgerError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.write_err(e))?;
        let id = append_in(&tx, table, columns).map_err(|e| self.write_err(e))?;
        rest(id, &tx).map_err(|e| self.write_err(e))?;
        let checkpoint = self
            .checkpoint_in(&tx, CheckpointReason::Hourly, true)
            .map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        if let Some((checkpoint, true)) = checkpoint {
            self.witness(&checkpoint);
        }
        Ok(id)
    }

    /// Appends many rows in one transaction (for benchmarks and imports; the application
    /// appends one decision per transaction).
    #[doc(hidden)]
    pub fn append_many<F>(&self, n: usize, mut row: F) -> Result<(), LedgerError>
    where
        F: FnMut(usize) -> (&'static str, Vec<(&'static str, Value)>),
    {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.write_err(e))?;
        for i in 0..n {
            let (table, columns) = row(i);
            append_in(&tx, table, &columns).map_err(|e| self.write_err(e))?;
        }
        tx.commit().map_err(|e| self.write_err(e))
    }

    /// Recomputes the whole chain and checks the schema and the ledger's own checkpoints
    /// (internal consistency only: see [`Ledger::verify_with`] for external witnesses).
    pub fn verify(&self) -> Result<VerifyReport, LedgerError> {
        self.verify_with(&[], None)
    }

    /// [`Ledger::verify`], then every checkpoint the `witnesses` hold: each must be validly
    /// signed (by `trusted_key` when given, else by this installation's key when the ledger is
    /// anchored), be of this ledger, and match the chain, whose entry `size` must exist and
    /// have the hash signed. That detects truncation and rollback (the ledger is shorter than a
    /// checkpoint) and any rewrite before a checkpoint, even with the chain recomputed.
    pub fn verify_with(
        &self,
        witnesses: &[crate::anchor::Witness],
        trusted_key: Option<&str>,
    ) -> Result<VerifyReport, LedgerError> {
        let own = crate::anchor::Witness {
            name: "the ledger's own checkpoints".into(),
            external: false,
            checkpoints: self.checkpoints()?,
            malformed: Vec::new(),
            torn_tail: false,
        };
        // Signatures are checked on another core while this one recomputes the chain: each
        // distinct checkpoint once (the same one is usually in several witnesses), keyed by
        // every field signed.
        let mut distinct: Vec<&crate::anchor::Checkpoint> = Vec::new();
        {
            let mut seen = std::collections::HashSet::new();
            for c in std::iter::once(&own)
                .chain(witnesses)
                .flat_map(|w| &w.checkpoints)
            {
                if seen.insert(c) {
                    distinct.push(c);
                }
            }
        }
        // The chain hashes the checkpoints name, picked up as the chain is recomputed.
        let wanted: std::collections::HashSet<u64> = distinct.iter().map(|c| c.size).collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1);
        let (internal, validly_signed) = std::thread::scope(|scope| {
            let chunk = distinct.len().div_ceil(workers).max(1);
            let handles: Vec<_> = distinct
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let ok = crate::anchor::signatures_ok(part);
                        part.iter()
                            .zip(ok)
                            .filter_map(|(c, ok)| ok.then_some(*c))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let internal = self.verify_internal(&wanted);
            let valid: std::collections::HashSet<&crate::anchor::Checkpoint> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect();
            (internal, valid)
        });
        let (mut report, hashes) = internal?;
        if report.first_problem.is_some() {
            return Ok(report);
        }
        let installation = self.anchoring.as_ref().map(|a| a.key.public_hex());
        report.key_pinned = trusted_key.is_some();
        // With no key given and none beside the ledger, every checkpoint must at least be
        // signed by one and the same key (the first found).
        let first_key = own
            .checkpoints
            .iter()
            .chain(witnesses.iter().flat_map(|w| &w.checkpoints))
            .next()
            .map(|c| c.key.clone());
        let trusted = trusted_key
            .map(str::to_ascii_lowercase)
            .or(installation)
            .or(first_key);
        let ledger_id = self.ledger_id()?;
        let size = report.rows_checked;
        for witness in std::iter::once(&own).chain(witnesses) {
            let mut check = WitnessCheck {
                name: witness.name.clone(),
                external: witness.external,
                checkpoints: 0,
                latest_size: 0,
                latest_made_at: String::new(),
                torn_tail: witness.torn_tail,
            };
            if let Some((line, why)) = witness.malformed.first() {
                report.first_problem = Some(ChainProblem {
                    seq: 0,
                    kind: ProblemKind::BadCheckpoint,
                    description: format!(
                        "line {line} of {} is not a checkpoint Dokuei wrote ({why}): it was edited",
                        witness.name
                    ),
                });
                return Ok(report);
            }
            if witness.external && witness.checkpoints.is_empty() && !witness.torn_tail {
                report.first_problem = Some(ChainProblem {
                    seq: 0,
                    kind: ProblemKind::BadCheckpoint,
                    description: format!(
                        "{} holds no checkpoint: it is not a witness of this ledger, or its checkpoints were removed",
                        witness.name
                    ),
                });
                return Ok(report);
            }
            for c in &witness.checkpoints {
                let at = format!(
                    "the checkpoint of {} entries made at {} in {}",
                    c.size, c.made_at, witness.name
                );
                let fail = |kind, description: String| ChainProblem {
                    seq: c.size as i64,
                    kind,
                    description,
                };
                // Keyed by every field signed, not by the signature alone.
                let problem = if !validly_signed.contains(c) {
                    Some(fail(
                        ProblemKind::BadCheckpoint,
                        format!("{at} does not carry a valid signature: it was edited"),
                    ))
                } else if trusted.as_ref().is_some_and(|k| *k != c.key) {
                    Some(fail(
                        ProblemKind::BadCheckpoint,
                        format!(
                            "{at} is signed by key {}, not by the trusted key {}",
                            c.key,
                            trusted.as_deref().unwrap_or_default()
                        ),
                    ))
                } else if ledger_id.as_deref() != Some(c.ledger_id.as_str()) {
                    Some(fail(
                        ProblemKind::OtherLedger,
                        format!(
                            "{at} is of ledger {}, and this ledger is {}: the wrong witness, or the start of this ledger was rewritten",
                            c.ledger_id,
                            ledger_id.as_deref().unwrap_or("empty")
                        ),
                    ))
                } else if c.size > size {
                    Some(fail(
                        ProblemKind::Truncated,
                        format!(
                            "{at} covers {} chain entries but the ledger now has {size}: entries were removed (the file was truncated or replaced by an older copy)",
                            c.size
                        ),
                    ))
                } else {
                    let hash = hashes.get(&c.size).map(hex::encode).unwrap_or_default();
                    (hash != c.head).then(|| fail(ProblemKind::Rewritten, format!(
                        "chain entry {} no longer has the hash {at} signed: an entry at or before it was changed, inserted, removed or moved, and the chain recomputed",
                        c.size
                    )))
                };
                if let Some(p) = problem {
                    report.first_problem = Some(p);
                    return Ok(report);
                }
                check.checkpoints += 1;
                if c.size >= check.latest_size {
                    check.latest_size = c.size;
                    check.latest_made_at.clone_from(&c.made_at);
                }
            }
            report.witnesses.push(check);
        }
        Ok(report)
    }

    /// The chain, the schema, and the rule that no decision follows its study's sign-off.
    fn verify_internal(
        &self,
        wanted: &std::collections::HashSet<u64>,
    ) -> Result<(VerifyReport, std::collections::HashMap<u64, Vec<u8>>), LedgerError> {
        let (mut report, hashes) = self.verify_chain(wanted)?;
        if report.first_problem.is_some() {
            return Ok((report, hashes));
        }
        let r = |e: rusqlite::Error| self.read_err(e);
        if let Some(problem) = self.check_schema().map_err(r)? {
            report.first_problem = Some(problem);
            return Ok((report, hashes));
        }
        // Dokuei refuses decisions on a signed-off study: one recorded after the sign-off was
        // appended outside the application (with the chain recomputed, or it would have failed
        // above).
        let late = self
            .conn
            .query_row(
                "SELECT d.id, d.seq, s.id FROM decisions d JOIN sign_offs s ON s.study_id = d.study_id \
                 WHERE d.seq > s.seq ORDER BY d.seq LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(r)?;
        if let Some((decision, seq, sign_off)) = late {
            report.first_problem = Some(ChainProblem {
                seq,
                kind: ProblemKind::AfterSignOff,
                description: format!(
                    "decisions row {decision} (chain entry {seq}) was recorded after its study's sign-off (sign_offs row {sign_off}); Dokuei refuses those, so it was appended outside the application"
                ),
            });
            return Ok((report, hashes));
        }
        if let Some(problem) = self.check_signatures().map_err(|e| self.read_err(e))? {
            report.first_problem = Some(problem);
        }
        Ok((report, hashes))
    }

    /// Signed sign-offs, reader keys and administrator grants: each signature holds, under
    /// the key that was current for its reader when it was made.
    fn check_signatures(&self) -> rusqlite::Result<Option<ChainProblem>> {
        use crate::signing::{endorsement_message, signature_valid, statement_anchor};
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < 6 {
            return Ok(None);
        }
        let forged = |seq: i64, description: String| {
            Ok(Some(ChainProblem {
                seq,
                kind: ProblemKind::ForgedSignature,
                description,
            }))
        };
        // The key a reader had just before chain entry `seq`: (id, public key).
        let key_before = |reader: i64, seq: i64| -> rusqlite::Result<Option<(i64, String)>> {
            self.conn
                .prepare_cached(
                    "SELECT id, public_key FROM reader_keys WHERE reader_id = ?1 AND seq < ?2 \
                     ORDER BY seq DESC LIMIT 1",
                )?
                .query_row([reader, seq], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        };
        let admin_before = |reader: i64, seq: i64| -> rusqlite::Result<bool> {
            self.conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM administrators WHERE reader_id = ?1 AND seq < ?2)",
                )?
                .query_row([reader, seq], |r| r.get(0))
        };
        // Reader keys: the first is created; later ones are endorsed.
        {
            let mut stmt = self.conn.prepare(
                "SELECT id, seq, reader_id, public_key, reason, by_reader_id, endorsement \
                 FROM reader_keys ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let (id, seq, reader, key, reason, by, endorsement): (
                    i64,
                    i64,
                    i64,
                    String,
                    String,
                    Option<i64>,
                    String,
                ) = (
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                );
                let previous = key_before(reader, seq)?;
                let message = endorsement_message(
                    reader,
                    &key,
                    &reason,
                    previous.as_ref().map(|(_, k)| k.as_str()),
                );
                // A created key is written with its profile, in the same transaction: the
                // reader's row is the entry just before it.
                let with_profile = self
                    .conn
                    .prepare_cached("SELECT seq FROM readers WHERE id = ?1")?
                    .query_row([reader], |r| r.get::<_, i64>(0))
                    .optional()?
                    == Some(seq - 1);
                let ok = match (reason.as_str(), &previous, by) {
                    ("created", None, _) => with_profile,
                    ("changed", Some((_, old)), _) => signature_valid(old, &message, &endorsement),
                    ("reset", _, Some(admin)) => {
                        admin_before(admin, seq)?
                            && key_before(admin, seq)?
                                .is_some_and(|(_, k)| signature_valid(&k, &message, &endorsement))
                    }
                    _ => false,
                };
                if !ok {
                    return forged(
                        seq,
                        format!(
                            "reader_keys row {id} ({reason} key of reader {reader}) is not endorsed by the reader's previous key or an administrator's: a key was put in place outside Dokuei"
                        ),
                    );
                }
            }
        }
        // Administrators: the first needs nobody; later ones an administrator's endorsement.
        {
            let mut stmt = self.conn.prepare(
                "SELECT id, seq, reader_id, granted_by, endorsement FROM administrators ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            let mut first = true;
            while let Some(r) = rows.next()? {
                let (id, seq, reader, by, endorsement): (i64, i64, i64, Option<i64>, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                let message = endorsement_message(reader, "administrator", "admin", None);
                let ok = match by {
                    // The first administrator is granted by nobody, but has a key of their own.
                    None => first && key_before(reader, seq)?.is_some(),
                    Some(by) => {
                        admin_before(by, seq)?
                            && key_before(by, seq)?
                                .is_some_and(|(_, k)| signature_valid(&k, &message, &endorsement))
                    }
                };
                if !ok {
                    return forged(
                        seq,
                        format!(
                            "administrators row {id} (reader {reader}) was not granted by an administrator"
                        ),
                    );
                }
                first = false;
            }
        }
        // Sign-offs: signed by their reader's key of the time, over their own chain entry.
        // Once any reader has a key, every sign-off is signed.
        let first_key: Option<i64> =
            self.conn
                .query_row("SELECT min(seq) FROM reader_keys", [], |r| r.get(0))?;
        let mut stmt = self.conn.prepare(
            "SELECT s.id, s.seq, s.reader_id, g.reader_key_id, g.statement, g.signature, c.hash \
             FROM sign_offs s JOIN chain c ON c.seq = s.seq \
             LEFT JOIN sign_off_signatures g ON g.sign_off_id = s.id ORDER BY s.seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (id, seq, reader): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let key = key_before(reader, seq)?;
            let signed: Option<(i64, String, String)> = match r.get::<_, Option<i64>>(3)? {
                Some(k) => Some((k, r.get(4)?, r.get(5)?)),
                None => None,
            };
            let hash: Vec<u8> = r.get(6)?;
            match (key, signed) {
                // Before any reader had a key (a ledger from before signed sign-offs).
                (None, None) if first_key.is_none_or(|k| seq < k) => {}
                (None, None) => {
                    return forged(
                        seq,
                        format!(
                            "sign_offs row {id} carries no signature, though readers had signing keys by then: it was recorded outside Dokuei"
                        ),
                    );
                }
                (Some(_), None) => {
                    return forged(
                        seq,
                        format!(
                            "sign_offs row {id} carries no signature, though its reader had a signing key: it was recorded outside Dokuei"
                        ),
                    );
                }
                (None, Some(_)) => {
                    return forged(
                        seq,
                        format!("sign_offs row {id} is signed, but its reader had no key then"),
                    );
                }
                (Some((key_id, public_key)), Some((signed_with, statement, signature))) => {
                    let anchored =
                        statement_anchor(&statement) == Some((id, seq as u64, hex::encode(&hash)));
                    if signed_with != key_id
                        || !anchored
                        || !signature_valid(&public_key, statement.as_bytes(), &signature)
                    {
                        return forged(
                            seq,
                            format!(
                                "the signature of sign_offs row {id} does not hold under its reader's key for this entry: the sign-off, or something recorded before it, was changed, or it was signed without the reader's key"
                            ),
                        );
                    }
                }
            }
        }
        Ok(None)
    }

    /// Every record table is STRICT and exactly as its migration made it, and every
    /// append-only trigger is present and unchanged; no other trigger exists.
    fn check_schema(&self) -> rusqlite::Result<Option<ChainProblem>> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let migrations = &MIGRATIONS[..(version.clamp(0, LATEST) as usize)];
        let problem = |description: String| {
            Ok(Some(ChainProblem {
                seq: 0,
                kind: ProblemKind::Schema,
                description,
            }))
        };
        let mut tables = std::collections::HashMap::new();
        let mut triggers = std::collections::HashMap::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT type, name, sql FROM sqlite_schema WHERE type IN ('table', 'trigger')",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (kind, name, sql): (String, String, Option<String>) =
                    (row.get(0)?, row.get(1)?, row.get(2)?);
                let map = if kind == "table" {
                    &mut tables
                } else {
                    &mut triggers
                };
                map.insert(name, sql.unwrap_or_default());
            }
        }
        let mut strict = std::collections::HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT name, strict FROM pragma_table_list WHERE schema = 'main'")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                strict.insert(row.get::<_, String>(0)?, row.get::<_, i64>(1)? != 0);
            }
        }
        let mut expected_triggers = std::collections::HashSet::new();
        for table in RECORD_TABLES.iter().chain(UNCHAINED_TABLES) {
            let opening = format!("CREATE TABLE {table} (");
            let Some(expected) = migrations.iter().find_map(|m| {
                let start = m.find(&opening)?;
                let end = start + m[start..].find(") STRICT")? + ") STRICT".len();
                Some(&m[start..end])
            }) else {
                continue; // not in this schema version
            };
            match tables.get(*table) {
                None => return problem(format!("table {table} has been dropped")),
                Some(sql) if sql != expected => {
                    return problem(format!("table {table} has been redefined outside Dokuei"));
                }
                Some(_) if strict.get(*table) != Some(&true) => {
                    return problem(format!("table {table} is no longer STRICT"));
                }
                Some(_) => {}
            }
            for op in APPEND_ONLY_OPS {
                let name = format!("{table}_no_{op}");
                if op == "replace" && version < 5 {
                    // Not required before version 5 (a test's old file may have it).
                    if triggers.contains_key(&name) {
                        expected_triggers.insert(name);
                    }
                    continue;
                }
                match triggers.get(&name) {
                    None => {
                        return problem(format!(
                            "trigger {name} has been dropped: {table} rows could be {} without SQLite refusing",
                            match op {
                                "update" => "changed",
                                "delete" => "deleted",
                                _ => "replaced",
                            }
                        ));
                    }
                    Some(sql) if *sql != trigger_sql(table, op) => {
                        return problem(format!("trigger {name} has been changed outside Dokuei"));
                    }
                    Some(_) => {}
                }
                expected_triggers.insert(name);
            }
        }
        let mut unknown: Vec<&String> = triggers
            .keys()
            .filter(|n| !expected_triggers.contains(*n))
            .collect();
        unknown.sort();
        if let Some(name) = unknown.first() {
            return problem(format!("trigger {name} was added outside Dokuei"));
        }
        Ok(None)
    }

    /// Recomputes the whole chain. Reports the first row that does not match: a changed,
    /// deleted, inserted or reordered row, or a gap. Streams every table once, in chain
    /// order, so it runs in constant memory.
    /// Also returns the hashes of the entries `wanted`.
    fn verify_chain(
        &self,
        wanted: &std::collections::HashSet<u64>,
    ) -> Result<(VerifyReport, std::collections::HashMap<u64, Vec<u8>>), LedgerError> {
        let mut hashes = std::collections::HashMap::with_capacity(wanted.len());
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)
            .map_err(|e| self.read_err(e))?;
        let r = |e: rusqlite::Error| self.read_err(e);
        let mut statements = Vec::new();
        for table in RECORD_TABLES {
            statements.push(
                tx.prepare(&format!("SELECT * FROM {table} ORDER BY seq"))
                    .map_err(r)?,
            );
        }
        let columns: Vec<Vec<String>> = statements
            .iter()
            .map(|s| s.column_names().map(str::to_owned).collect())
            .collect();
        let mut cursors = Vec::new();
        for s in statements.iter_mut() {
            cursors.push(s.query([]).map_err(r)?);
        }
        // The next row of each table: (id, seq, canonical bytes).
        let advance = |cursor: &mut rusqlite::Rows<'_>,
                       t: usize|
         -> rusqlite::Result<Option<(i64, i64, Vec<u8>)>> {
            match cursor.next()? {
                None => Ok(None),
                Some(row) => {
                    let (canonical, id, seq) = canonical_of(row, RECORD_TABLES[t], &columns[t])?;
                    Ok(Some((id, seq, canonical)))
                }
            }
        };
        let mut heads = Vec::new();
        for (t, c) in cursors.iter_mut().enumerate() {
            heads.push(advance(c, t).map_err(r)?);
        }

        let mut chain = tx
            .prepare("SELECT seq, table_name, row_id, prev_hash, hash FROM chain ORDER BY seq")
            .map_err(r)?;
        let mut entries = chain.query([]).map_err(r)?;
        let mut expected_prev = vec![0u8; 32];
        let mut expected_seq = 1i64;
        let mut rows_checked = 0u64;
        let problem = |rows_checked: u64, seq: i64, description: String| {
            let kind = if description.contains("deleted") || description.contains("missing") {
                ProblemKind::Deleted
            } else if description.contains("inserted outside") {
                ProblemKind::Inserted
            } else {
                ProblemKind::Altered
            };
            Ok((
                VerifyReport {
                    rows_checked,
                    first_problem: Some(ChainProblem {
                        seq,
                        kind,
                        description,
                    }),
                    witnesses: Vec::new(),
                    key_pinned: false,
                },
                std::collections::HashMap::new(),
            ))
        };
        while let Some(entry) = entries.next().map_err(r)? {
            let seq: i64 = entry.get(0).map_err(r)?;
            let table: String = entry.get(1).map_err(r)?;
            let row_id: i64 = entry.get(2).map_err(r)?;
            let prev: Vec<u8> = entry.get(3).map_err(r)?;
            let stored: Vec<u8> = entry.get(4).map_err(r)?;
            if seq != expected_seq {
                return problem(
                    rows_checked,
                    seq,
                    format!("chain entry {expected_seq} is missing (the next entry is {seq})"),
                );
            }
            if prev != expected_prev {
                return problem(
                    rows_checked,
                    seq,
                    format!("chain entry {seq} does not follow entry {}", seq - 1),
                );
            }
            let Some(t) = RECORD_TABLES.iter().position(|n| *n == table) else {
                return problem(
                    rows_checked,
                    seq,
                    format!("chain entry {seq} names an unknown table `{table}`"),
                );
            };
            match &heads[t] {
                None => {
                    return problem(
                        rows_checked,
                        seq,
                        format!("{table} row {row_id} (chain entry {seq}) has been deleted"),
                    );
                }
                Some((id, row_seq, _)) if *row_seq < seq => {
                    return problem(
                        rows_checked,
                        *row_seq,
                        format!(
                            "{table} row {id} is not in the chain: it was inserted outside Dokuei"
                        ),
                    );
                }
                Some((_, row_seq, _)) if *row_seq > seq => {
                    return problem(
                        rows_checked,
                        seq,
                        format!("{table} row {row_id} (chain entry {seq}) has been deleted"),
                    );
                }
                Some((id, _, canonical)) => {
                    if *id != row_id || chain_hash(&prev, canonical).as_slice() != stored.as_slice()
                    {
                        return problem(
                            rows_checked,
                            seq,
                            format!("{table} row {row_id} (chain entry {seq}) has been altered"),
                        );
                    }
                }
            }
            heads[t] = advance(&mut cursors[t], t).map_err(r)?;
            rows_checked += 1;
            if wanted.contains(&(seq as u64)) {
                hashes.insert(seq as u64, stored.clone());
            }
            expected_prev = stored;
            expected_seq += 1;
        }
        // Rows left over were inserted behind the application's back.
        if let Some((t, (id, seq, _))) = heads
            .iter()
            .enumerate()
            .filter_map(|(t, h)| h.as_ref().map(|h| (t, h)))
            .min_by_key(|(_, h)| h.1)
        {
            return problem(
                rows_checked,
                *seq,
                format!(
                    "{} row {id} is not in the chain: it was inserted outside Dokuei",
                    RECORD_TABLES[t]
                ),
            );
        }
        Ok((
            VerifyReport {
                rows_checked,
                first_problem: None,
                witnesses: Vec::new(),
                key_pinned: false,
            },
            hashes,
        ))
    }

    pub(crate) fn write_err(&self, e: impl std::fmt::Display) -> LedgerError {
        LedgerError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn read_err(&self, e: impl std::fmt::Display) -> LedgerError {
        LedgerError::Read {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn migration_err(&self, from: i64, backup: &Path, e: impl std::fmt::Display) -> LedgerError {
        LedgerError::Migration {
            path: self.path.clone(),
            from,
            backup: backup.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

/// Inserts a row and its chain entry inside an open transaction.
pub(crate) fn append_in(
    tx: &Connection,
    table: &str,
    columns: &[(&str, Value)],
) -> Result<i64, rusqlite::Error> {
    let (last_seq, prev_hash): (i64, Vec<u8>) = tx
        .prepare_cached("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, vec![0u8; 32])),
            e => Err(e),
        })?;
    let seq = last_seq + 1;
    let names: Vec<&str> = std::iter::once("seq")
        .chain(columns.iter().map(|(n, _)| *n))
        .collect();
    let placeholders = vec!["?"; names.len()].join(", ");
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({placeholders})",
        names.join(", ")
    );
    let values = std::iter::once(Value::Integer(seq)).chain(columns.iter().map(|(_, v)| v.clone()));
    tx.prepare_cached(&sql)?.execute(params_from_iter(values))?;
    let row_id = tx.last_insert_rowid();
    let (canonical, _) = canonical_row(tx, table, row_id)?;
    let hash = chain_hash(&prev_hash, &canonical);
    tx.prepare_cached(
        "INSERT INTO chain (seq, table_name, row_id, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(rusqlite::params![
        seq,
        table,
        row_id,
        prev_hash,
        hash.to_vec()
    ])?;
    Ok(row_id)
}

/// The result of [`Ledger::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chain entries that matched before the first problem (all of them when there is none).
    pub rows_checked: u64,
    pub first_problem: Option<ChainProblem>,
    /// The checkpoints checked, per witness (the ledger's own first), when the chain and the
    /// schema were intact.
    pub witnesses: Vec<WitnessCheck>,
    /// The signing key was given by the auditor (not taken from beside the ledger).
    pub key_pinned: bool,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_problem.is_none()
    }

    /// Checkpoints from outside the ledger file that matched.
    pub fn external_checkpoints(&self) -> usize {
        self.witnesses
            .iter()
            .filter(|w| w.external)
            .map(|w| w.checkpoints)
            .sum()
    }

    /// One sentence on what was checked, for people: never just "intact" when no external
    /// checkpoint was checked.
    pub fn summary(&self) -> String {
        if let Some(p) = &self.first_problem {
            return format!(
                "altered outside Dokuei: {} ({} chain entries verified before it)",
                p.description, self.rows_checked
            );
        }
        let external: Vec<&WitnessCheck> = self
            .witnesses
            .iter()
            .filter(|w| w.external && w.checkpoints > 0)
            .collect();
        if external.is_empty() {
            return format!(
                "internally consistent: {} chain entries verified, schema and append-only triggers intact (internal consistency only; no external checkpoint checked)",
                self.rows_checked
            );
        }
        let latest = external
            .iter()
            .max_by_key(|w| w.latest_size)
            .map_or(String::new(), |w| {
                format!(
                    "; the latest covers {} entries, made {}",
                    w.latest_size, w.latest_made_at
                )
            });
        format!(
            "intact: {} chain entries verified, schema and append-only triggers intact, and {} external checkpoint(s) from {} witness(es) match{latest}{}",
            self.rows_checked,
            self.external_checkpoints(),
            external.len(),
            if self.key_pinned {
                " (signed by the key given)"
            } else {
                " (signed by the key beside the ledger, which was not pinned: give the public key the auditor holds with --key to rule out a replaced key)"
            }
        )
    }
}

/// The checkpoints of one witness that matched the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessCheck {
    pub name: String,
    /// False for the ledger's own checkpoints table.
    pub external: bool,
    pub checkpoints: usize,
    pub latest_size: u64,
    pub latest_made_at: String,
    /// The witness's last line was cut short (a write stopped mid-line), and ignored.
    pub torn_tail: bool,
}

/// What kind of alteration verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// A row's content differs from its chain entry.
    Altered,
    /// A row or chain entry is gone.
    Deleted,
    /// A row that has no chain entry.
    Inserted,
    /// A table, its STRICT flag, or a trigger was changed, dropped or added.
    Schema,
    /// A witness's checkpoint covers more entries than the ledger has.
    Truncated,
    /// A witness's checkpoint does not match the chain at its size.
    Rewritten,
    /// A checkpoint is unsigned, badly signed, by another key, or malformed.
    BadCheckpoint,
    /// A checkpoint of another ledger.
    OtherLedger,
    /// A decision recorded after its study's sign-off (the application refuses those).
    AfterSignOff,
    /// A sign-off, reader key or administrator grant whose signature does not hold.
    ForgedSignature,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProblem {
    /// The chain position where verification stopped.
    pub seq: i64,
    pub kind: ProblemKind,
    pub description: String,
}

/// A migration's SQL followed by the append-only triggers of every table it creates.
fn with_triggers(sql: &str) -> String {
    let mut batch = sql.to_owned();
    for table in RECORD_TABLES.iter().chain(UNCHAINED_TABLES) {
        if sql.contains(&format!("CREATE TABLE {table} ")) {
            batch.push_str(&append_only_triggers(table));
        }
    }
    // Version 5 added `_no_replace` to every table made before it.
    if sql.contains("CREATE TABLE checkpoints ") {
        for table in RECORD_TABLES[..V5_RECORD_TABLES]
            .iter()
            .chain(UNCHAINED_TABLES)
        {
            batch.push_str(
                &(trigger_sql(table, "replace").replacen(
                    "CREATE TRIGGER ",
                    "CREATE TRIGGER IF NOT EXISTS ",
                    1,
                ) + ";\n"),
            );
        }
    }
    batch
}

fn backup_path(path: &Path, version: i64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".v{version}.bak"));
    path.with_file_name(name)
}

/// SHA-256(previous hash ‖ canonical bytes of the row).
fn chain_hash(prev: &[u8], canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// The canonical bytes of a stored row: the table name, then every column but `id` in schema
/// order, each as name, type tag, length and value. Read back from the database, so appending
/// and verifying hash exactly what is stored.
/// Also returns the row's `seq` column.
fn canonical_row(
    conn: &Connection,
    table: &str,
    row_id: i64,
) -> Result<(Vec<u8>, i64), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(&format!("SELECT * FROM {table} WHERE id = ?1"))?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    stmt.query_row([row_id], |row| {
        canonical_of(row, table, &names).map(|(c, _, seq)| (c, seq))
    })
}

/// The canonical bytes of a row read with `SELECT *`, with its `id` and `seq`.
fn canonical_of(
    row: &rusqlite::Row<'_>,
    table: &str,
    names: &[String],
) -> Result<(Vec<u8>, i64, i64), rusqlite::Error> {
    let (mut id, mut seq) = (0, 0);
    let mut out = Vec::with_capacity(256);
    push_field(&mut out, table.as_bytes());
    for (i, name) in names.iter().enumerate() {
        if name == "id" {
            id = row.get(i)?;
            continue;
        }
        if name == "seq" {
            seq = row.get(i)?;
        }
        push_field(&mut out, name.as_bytes());
        match row.get_ref(i)? {
            ValueRef::Null => out.push(0),
            ValueRef::Integer(v) => {
                out.push(1);
                push_field(&mut out, &v.to_le_bytes());
            }
            ValueRef::Real(v) => {
                out.push(2);
                push_field(&mut out, &v.to_le_bytes());
            }
            ValueRef::Text(v) => {
                out.push(3);
                push_field(&mut out, v);
            }
            ValueRef::Blob(v) => {
                out.push(4);
                push_field(&mut out, v);
            }
        }
    }
    Ok((out, id, seq))
}

fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Drops every trigger, as someone with write access and the `sqlite3` tool would before
/// editing rows; returns their `CREATE` statements, to put them back. For the tamper tests.
#[doc(hidden)]
pub fn drop_triggers_as_an_attacker(conn: &Connection) -> Result<Vec<String>, rusqlite::Error> {
    let triggers: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, _) in &triggers {
        conn.execute_batch(&format!("DROP TRIGGER {name}"))?;
    }
    Ok(triggers.into_iter().map(|(_, sql)| sql).collect())
}

/// Rebuilds the `chain` table from the rows as they now are, in `seq` order: what an attacker
/// with the source code and write access would run after editing rows, so that the chain is
/// internally consistent again. Only an external checkpoint catches that; the tamper tests use
/// this to prove it does. The `chain` table's triggers must have been dropped.
#[doc(hidden)]
pub fn recompute_chain_as_an_attacker(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mut rows: Vec<(i64, &str, i64)> = Vec::new();
    for table in RECORD_TABLES {
        let mut stmt = conn.prepare(&format!("SELECT seq, id FROM {table}"))?;
        let found = stmt.query_map([], |r| Ok((r.get(0)?, *table, r.get(1)?)))?;
        for row in found {
            rows.push(row?);
        }
    }
    rows.sort_unstable();
    conn.execute("DELETE FROM chain", [])?;
    let mut prev = vec![0u8; 32];
    for (seq, table, id) in rows {
        let (canonical, _) = canonical_row(conn, table, id)?;
        let hash = chain_hash(&prev, &canonical);
        conn.execute(
            "INSERT INTO chain (seq, table_name, row_id, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![seq, table, id, prev, hash.to_vec()],
        )?;
        prev = hash.to_vec();
    }
    Ok(())
}

/// The reference run for the append benchmark: rows of the same width inserted with the same
/// pragmas (WAL, synchronous=FULL), one per transaction, without the chain. Returns rows/s.
#[doc(hidden)]
pub fn plain_insert_reference(path: &Path, n: usize) -> Result<f64, String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, c TEXT, d TEXT,
             e TEXT, f TEXT, g TEXT, h INTEGER, i INTEGER, j TEXT, k INTEGER, l TEXT) STRICT;",
    )
    .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    for _ in 0..n {
        conn.execute(
            "INSERT INTO t (a, b, c, d, e, f, g, h, i, j, k, l) VALUES (1, 1, 'confirm', 'nodule', NULL, '', '', 1, NULL, '2026-01-01T00:00:00.000Z', 540, '0.1.0')",
            [],
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
