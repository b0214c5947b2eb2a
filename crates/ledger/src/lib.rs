//! Dokuei's decision ledger: the record of who decided what, on which AI suggestion, from which
//! exact model — and proof that the record has not been altered.
//!
//! SQLite (WAL, `synchronous=FULL`, foreign keys on, a busy timeout so several processes can
//! share one file). Every record table is append-only (triggers refuse UPDATE and DELETE), and
//! every row extends a SHA-256 chain that [`Ledger::verify`] recomputes.

pub mod access;
pub mod anchor;
pub mod atna;
pub mod export;
pub mod key_images;
pub mod location;
pub mod records;
pub mod review;
mod schema;
pub mod signing;
pub mod stats;
mod store;
pub mod watch;

pub use access::{AccessAction, AccessDetail, AccessEvent, AccessRow, Outcome, SopClassInstances};
pub use anchor::{
    Anchoring, CHECKPOINT_LOG_ENV, CHECKPOINT_MARK, Checkpoint, CheckpointReason, InstallationKey,
    Witness,
};
pub use atna::{AuditMessage, AuditSource};
pub use export::{DecisionFilter, EXPORT_SCHEMA_VERSION, ExportedDecision, Format, Identifiers};
pub use key_images::{KeyImageRecord, KeyImageRow, KeyObjectRecord};
pub use location::{LEDGER_PATH_ENV, LedgerLocation, LocationError};
pub use records::{
    Action, AnalysisRecord, DecisionRecord, ExportKind, ExportRecord, FindingRecord, ImportRecord,
    ReadingEventKind, RejectReason, Role, SentRecord, SignOffRecord, StudyRecord,
};
pub use review::{
    AnalysisRow, AnalysisSourceRow, DecisionRow, ExportRow, FindingRow, ImportRow, ReaderRow,
    ReadingEventRow, SignOffRow, StudyRows,
};
pub use schema::LATEST as SCHEMA_VERSION;
pub use stats::{Agreement, Stats};
pub use store::{
    ChainProblem, Ledger, LedgerError, ProblemKind, VerifyReport, WitnessCheck,
    drop_triggers_as_an_attacker, plain_insert_reference, recompute_chain_as_an_attacker,
};
