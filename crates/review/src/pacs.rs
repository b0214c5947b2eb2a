//! PACS use cases. So far: test a DIMSE node with C-ECHO.

use std::time::Duration;

pub use dokuei_net::{DimseNode, EchoReport};

use crate::AppError;

/// C-ECHO to `node`: its status and round-trip time, or an error naming the node and the cause
/// (unreachable, association rejected with its reason, a failed exchange).
pub fn echo(node: &DimseNode, timeout: Duration) -> Result<EchoReport, AppError> {
    Ok(dokuei_net::echo(node, timeout)?)
}
