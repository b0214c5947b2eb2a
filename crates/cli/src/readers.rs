//! `dokuei readers …`: reader profiles and what administrators do (grant the role, unlock a
//! profile locked by wrong passphrases, reset a lost passphrase). Passphrases are read from
//! standard input, one per line, never from the command line (it shows in `ps` and the shell's
//! history).

use std::io::BufRead;
use std::path::PathBuf;

use clap::Subcommand;
use dokuei_review::AppError;
use dokuei_review::ledger::open_ledger;
use dokuei_review::reading;

#[derive(Debug, Subcommand)]
pub enum ReadersCommand {
    /// List the reader profiles: id, name, role, key, administrator, locked.
    List,
    /// Make a reader an administrator. The first gives their own passphrase on stdin; later
    /// ones are granted `--by` an administrator (the administrator's passphrase on stdin).
    GrantAdmin {
        #[arg(long)]
        reader: i64,
        #[arg(long)]
        by: Option<i64>,
    },
    /// Unlock a profile locked by wrong passphrases (stdin: the administrator's passphrase).
    Unlock {
        #[arg(long)]
        reader: i64,
        #[arg(long)]
        by: i64,
    },
    /// Ask for the reader's passphrase with every decision too, not only at sign-off (`on`), or
    /// stop (`off`); an administrator's passphrase on stdin. Without an argument: show it.
    DecisionPassphrase {
        #[arg(value_parser = ["on", "off"])]
        state: Option<String>,
        #[arg(long)]
        by: Option<i64>,
    },
    /// Give a reader a new key under a new passphrase (stdin: the administrator's passphrase,
    /// then the new one). A profile that never had a key needs `--os-account`.
    Reset {
        #[arg(long)]
        reader: i64,
        #[arg(long)]
        by: i64,
        #[arg(long)]
        os_account: Option<String>,
    },
}

pub(crate) fn passphrases(n: usize) -> Result<Vec<String>, AppError> {
    let lines: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .take(n)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            AppError::new(
                dokuei_review::ErrorCode::InvalidArgument,
                format!("cannot read passphrases from standard input: {e}"),
            )
        })?;
    if lines.len() < n {
        return Err(AppError::new(
            dokuei_review::ErrorCode::InvalidArgument,
            format!("give {n} passphrase(s) on standard input, one per line"),
        ));
    }
    Ok(lines)
}

pub fn run(ledger_path: Option<PathBuf>, command: ReadersCommand) -> Result<(), AppError> {
    let ledger = open_ledger(ledger_path.as_deref())?;
    match command {
        ReadersCommand::List => {
            for r in reading::readers(&ledger)? {
                let key = ledger.reader_key(r.id)?;
                let locked = ledger.failures_in_a_row(r.id)?
                    >= dokuei_review::ledger::signing::LOCK_AFTER_FAILURES;
                println!(
                    "{:>4}  {:<30} {:<12} {}{}{}",
                    r.id,
                    r.display_name,
                    r.role.as_str(),
                    key.map_or("no passphrase".into(), |k| format!(
                        "key {}… of OS account {}",
                        k.key.public_key.get(..16).unwrap_or("?"),
                        k.os_account
                    )),
                    if ledger.is_administrator(r.id)? {
                        ", administrator"
                    } else {
                        ""
                    },
                    if locked { ", LOCKED" } else { "" }
                );
            }
        }
        ReadersCommand::GrantAdmin { reader, by } => {
            let p = passphrases(1)?;
            reading::grant_administrator(&ledger, reader, by, &p[0])?;
            println!("reader {reader} is an administrator");
        }
        ReadersCommand::DecisionPassphrase { state, by } => {
            if let Some(state) = state {
                let by = by.ok_or_else(|| {
                    AppError::new(
                        dokuei_review::ErrorCode::InvalidArgument,
                        "give the administrator changing the policy with --by",
                    )
                })?;
                let p = passphrases(1)?;
                reading::set_decision_passphrase_policy(&ledger, by, &p[0], state == "on")?;
            }
            println!(
                "passphrase for every decision: {}",
                if reading::decision_passphrase_required(&ledger)? {
                    "on"
                } else {
                    "off (asked at sign-off only)"
                }
            );
        }
        ReadersCommand::Unlock { reader, by } => {
            let p = passphrases(1)?;
            reading::unlock_reader(&ledger, reader, by, &p[0])?;
            println!("reader {reader} unlocked");
        }
        ReadersCommand::Reset {
            reader,
            by,
            os_account,
        } => {
            let p = passphrases(2)?;
            reading::reset_passphrase(&ledger, reader, by, &p[0], &p[1], os_account.as_deref())?;
            println!("reader {reader} has a new key under the new passphrase");
        }
    }
    Ok(())
}
