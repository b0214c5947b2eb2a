//! Dokuei's decision ledger: the record of who decided what, on which AI suggestion, from which
//! exact model. So far it holds where the ledger file lives; the schema, the hash chain and the
//! QA export arrive with the ledger work.

pub mod location;

pub use location::{LEDGER_PATH_ENV, LedgerLocation, LocationError};
