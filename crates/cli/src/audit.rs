//! `dokuei audit …`: the access audit as DICOM PS3.15 audit messages: write them to a folder,
//! send the ones the audit repository does not have yet, and configure the repository.

use std::path::PathBuf;

use clap::Subcommand;
use dokuei_review::AppError;
use dokuei_review::audit::{self, AuditSettings};
use dokuei_review::ledger::open_ledger;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the audit messages (one XML file each, `<chain position>-<event>.xml`) to a folder.
    Export {
        #[arg(long)]
        out: PathBuf,
        /// Only events after this chain position.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Send the messages the audit repository does not have yet (syslog over TLS).
    Send,
    /// Show the audit repository settings, or change them (the change is recorded).
    Configure {
        /// Send every event to the repository as it is recorded (`--send false` stops).
        #[arg(long)]
        send: Option<bool>,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        /// The CA certificate (PEM) the repository's certificate must chain to.
        #[arg(long)]
        ca: Option<String>,
        /// Dokuei's certificate and key (PEM), for repositories that ask for one.
        #[arg(long)]
        certificate: Option<String>,
        #[arg(long)]
        key: Option<String>,
        /// AuditSourceID (default: this machine's name) and AuditEnterpriseSiteID.
        #[arg(long)]
        source_id: Option<String>,
        #[arg(long)]
        site_id: Option<String>,
    },
}

pub fn run(ledger: Option<PathBuf>, command: AuditCommand) -> Result<(), AppError> {
    let l = open_ledger(ledger.as_deref())?;
    match command {
        AuditCommand::Export { out, after } => {
            let settings = audit::load_settings(l.path())?;
            let done = audit::export(&l, &out, &settings, &[], after, None)?;
            println!(
                "{} audit message(s) written to {}",
                done.messages, done.folder
            );
        }
        AuditCommand::Send => {
            let settings = audit::load_settings(l.path())?;
            if !settings.send {
                println!(
                    "sending is off: `dokuei audit configure --send true --host … --port … --ca …` turns it on"
                );
                return Ok(());
            }
            let f = audit::forward(&l, &settings, &[])?;
            println!(
                "{} message(s) sent to {}; the repository has every event up to chain position {}",
                f.sent,
                settings.repository.address(),
                f.up_to
            );
        }
        AuditCommand::Configure {
            send,
            host,
            port,
            ca,
            certificate,
            key,
            source_id,
            site_id,
        } => {
            let before = audit::load_settings(l.path())?;
            let mut s: AuditSettings = before.clone();
            let set = |field: &mut String, value: Option<String>| {
                if let Some(v) = value {
                    *field = v;
                }
            };
            if let Some(v) = send {
                s.send = v;
            }
            set(&mut s.repository.host, host);
            if let Some(p) = port {
                s.repository.port = p;
            }
            set(&mut s.repository.tls.ca_file, ca);
            set(&mut s.repository.tls.certificate_file, certificate);
            set(&mut s.repository.tls.key_file, key);
            set(&mut s.source_id, source_id);
            set(&mut s.site_id, site_id);
            if s != before {
                audit::save_settings(l.path(), &s)?;
                let path = audit::settings_path(l.path());
                if let Some(e) = audit::setting_change("audit repository", &path, &before, &s, None)
                {
                    l.record_access(&e)?;
                }
            }
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
        }
    }
    Ok(())
}
