//! Integration tests of dokuei-ledger, in one test binary. Each module covers one area; add new
//! areas as modules here:
//!
//! - `anchoring`: signed checkpoints, witnesses, and the attacks they catch;
//! - `audit`: access events, and every kind as a PS3.15 audit message valid against its schema;
//! - `chain`: appends, append-only triggers, verification of an intact ledger;
//! - `tamper`: edits made behind the application's back, each detected and named;
//! - `migrations`: from empty, from every earlier schema version, and a newer file refused;
//! - `durability`: SIGKILL during appends, two processes at once, a full disk;
//! - `export`: CSV/JSONL round trip, filters, pseudonymisation, agreement statistics.

// Tests fail loudly on unexpected errors, including in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anchoring;
mod audit;
mod chain;
mod durability;
mod export;
mod jing;
mod migrations;
mod support;
mod tamper;
