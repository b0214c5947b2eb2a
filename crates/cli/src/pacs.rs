//! `dokuei pacs …`: talk to a PACS node. So far: `echo` (DIMSE C-ECHO).

use std::time::Duration;

use clap::Subcommand;
use dokuei_review::AppError;
use dokuei_review::pacs::{DimseNode, echo};

#[derive(Debug, Subcommand)]
pub enum PacsCommand {
    /// Test a DIMSE node with C-ECHO.
    Echo {
        /// Host name or address.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long)]
        port: u16,
        /// The node's AE title.
        #[arg(long)]
        called: String,
        /// Dokuei's AE title.
        #[arg(long, default_value = "DOKUEI")]
        calling: String,
        /// Seconds to wait for each step.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
}

pub fn run(command: PacsCommand) -> Result<(), AppError> {
    match command {
        PacsCommand::Echo {
            host,
            port,
            called,
            calling,
            timeout,
        } => {
            let node = DimseNode {
                name: "PACS node".into(),
                called_ae_title: called,
                calling_ae_title: calling,
                host,
                port,
            };
            let r = echo(&node, Duration::from_secs(timeout))?;
            println!(
                "C-ECHO {}@{}:{}: status 0x{:04X} in {:.1} ms",
                node.called_ae_title, node.host, node.port, r.status, r.milliseconds
            );
            Ok(())
        }
    }
}
