//! `dokuei ledger …`: verify, export and follow the decision ledger.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use dokuei_review::AppError;
use dokuei_review::ledger::{
    CheckpointReason, DecisionFilter, Format, export, open_ledger, open_ledger_for_audit,
    verify_with,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the hash chain, check the schema and every checkpoint: the ledger's own, the
    /// checkpoint log's, and each witness's; exit code 8 and the first thing that does not
    /// match when something was altered.
    Verify {
        /// A file holding checkpoints kept outside the ledger: a checkpoint log, a QA export,
        /// an assessment SR (repeatable).
        #[arg(long)]
        witness: Vec<PathBuf>,
        /// The Ed25519 public key (hex) checkpoints must be signed with (default: this
        /// installation's key).
        #[arg(long)]
        key: Option<String>,
    },
    /// Sign a checkpoint of the ledger's head now (if it moved) and print it.
    Checkpoint,
    /// Print this installation's public checkpoint key (give it to your auditor).
    Key,
    /// Export decisions (de-identified unless --identified).
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[arg(short, long)]
        output: PathBuf,
        /// Inclusive start, UTC (`2026-01-01` or an RFC 3339 time).
        #[arg(long)]
        from: Option<String>,
        /// Exclusive end, UTC.
        #[arg(long)]
        to: Option<String>,
        /// Reader display name.
        #[arg(long)]
        reader: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        model_version: Option<String>,
        #[arg(long)]
        label: Option<String>,
        /// confirm, edit, reject or add.
        #[arg(long)]
        action: Option<String>,
        /// Study Instance UID.
        #[arg(long)]
        study: Option<String>,
        /// Export Study Instance UIDs and accession numbers as recorded instead of pseudonyms.
        #[arg(long)]
        identified: bool,
    },
    /// Agreement between physicians and each model version, per label.
    Stats {
        #[arg(long)]
        model: Option<String>,
    },
    /// The model-version watch: each version's scores and decision rates (95% intervals), and
    /// each version against the one before it (PSI, Kolmogorov–Smirnov, agreement difference),
    /// with an alert when a shift passes the thresholds.
    Watch {
        #[arg(long)]
        model: Option<String>,
        /// PSI above this alerts.
        #[arg(long, default_value_t = 0.2)]
        psi: f64,
        /// A Kolmogorov–Smirnov p-value below this alerts.
        #[arg(long, default_value_t = 0.01)]
        ks_p: f64,
        /// A drop of the kept rate by at least this (0–1), its interval below zero, alerts.
        #[arg(long, default_value_t = 0.05)]
        drop: f64,
        /// Fewer scored findings than this in either version: never alerts.
        #[arg(long, default_value_t = 20)]
        min_findings: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also write the report for a QA committee (HTML with plots).
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

pub fn run(ledger_path: Option<PathBuf>, command: LedgerCommand) -> Result<(), AppError> {
    // Checking never creates a key (an auditor may verify a copy); everything else anchors.
    let ledger = match command {
        LedgerCommand::Verify { .. } => open_ledger_for_audit(ledger_path.as_deref())?,
        _ => open_ledger(ledger_path.as_deref())?,
    };
    match command {
        LedgerCommand::Verify { witness, key } => {
            let report = verify_with(&ledger, &witness, key.as_deref())?;
            println!("ledger {} is {}", ledger.path().display(), report.summary());
            for w in &report.witnesses {
                println!(
                    "  {}: {} checkpoint(s){}{}",
                    w.name,
                    w.checkpoints,
                    if w.checkpoints > 0 {
                        format!(
                            ", the latest of {} entries made {}",
                            w.latest_size, w.latest_made_at
                        )
                    } else {
                        String::new()
                    },
                    if w.torn_tail {
                        " (its last line was cut short and was ignored)"
                    } else {
                        ""
                    }
                );
            }
        }
        LedgerCommand::Checkpoint => {
            match ledger.checkpoint(CheckpointReason::Manual)? {
                Some(c) => println!("{}", c.line()),
                None => println!("the ledger is empty: nothing to checkpoint"),
            }
            if let Some(e) = ledger.witness_error() {
                eprintln!("warning: {e}");
            }
        }
        LedgerCommand::Key => {
            if let Some(a) = ledger.anchoring() {
                println!("{}  ({})", a.key.public_hex(), a.key.path().display());
            }
        }
        LedgerCommand::Export {
            format,
            output,
            from,
            to,
            reader,
            model,
            model_version,
            label,
            action,
            study,
            identified,
        } => {
            let filter = DecisionFilter {
                from,
                to,
                reader,
                model_id: model,
                model_version,
                label,
                action,
                study_uid: study,
            };
            let format = match format {
                ExportFormat::Csv => Format::Csv,
                ExportFormat::Jsonl => Format::JsonLines,
            };
            let n = export(&ledger, &filter, format, identified, &output, None)?;
            println!(
                "exported {n} decision(s) to {}{}",
                output.display(),
                if identified {
                    " (identified)"
                } else {
                    " (pseudonymised)"
                }
            );
        }
        LedgerCommand::Watch {
            model,
            psi,
            ks_p,
            drop,
            min_findings,
            json,
            report,
        } => {
            let t = dokuei_review::ledger::WatchThresholds {
                psi,
                ks_p,
                agreement_drop: drop,
                min_findings,
            };
            let watch = ledger.watch(model.as_deref(), &t)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&watch).unwrap_or_default()
                );
            } else {
                print_watch(&watch);
            }
            if let Some(path) = report {
                dokuei_review::watch::write_report(&watch, &t, &path)?;
                eprintln!("report written to {}", path.display());
            }
        }
        LedgerCommand::Stats { model } => {
            let stats = ledger.stats(model.as_deref())?;
            println!(
                "{:<18} {:<9} {:<12} {:>8} {:>8} {:>8} {:>6} {:>9} {:>10}",
                "model",
                "version",
                "label",
                "confirm",
                "edit",
                "reject",
                "added",
                "median s",
                "edit IoU"
            );
            for a in &stats.agreement {
                let pct = |n: u64| format!("{:.0}%", a.rate(n) * 100.0);
                println!(
                    "{:<18} {:<9} {:<12} {:>8} {:>8} {:>8} {:>6} {:>9} {:>10}",
                    a.model_id,
                    a.model_version,
                    a.label,
                    pct(a.confirmed),
                    pct(a.edited),
                    pct(a.rejected),
                    a.added,
                    a.median_seconds_to_decision
                        .map_or("-".into(), |s| format!("{s:.1}")),
                    a.mean_edit_box_iou
                        .map_or("-".into(), |v| format!("{v:.2}")),
                );
                for (reason, n) in &a.reject_reasons {
                    println!("    rejected as {reason}: {n}");
                }
            }
            if stats.agreement.is_empty() {
                println!("(no decisions)");
            }
            for (day, n) in &stats.sign_offs_per_day {
                println!("sign-offs on {day}: {n}");
            }
        }
    }
    Ok(())
}

fn print_watch(watch: &dokuei_review::ledger::Watch) {
    use dokuei_review::ledger::Interval;
    let pct = |i: &Interval| {
        format!(
            "{:.0}% ({:.0}–{:.0})",
            100.0 * i.value,
            100.0 * i.low,
            100.0 * i.high
        )
    };
    println!(
        "{:<18} {:<9} {:>8} {:>7} {:<16} {:<16} {:<16}",
        "model", "version", "findings", "median", "kept", "edited", "rejected"
    );
    for v in &watch.versions {
        println!(
            "{:<18} {:<9} {:>8} {:>7} {:<16} {:<16} {:<16}",
            v.model_id,
            v.model_version,
            v.findings,
            v.score_median.map_or("-".into(), |m| format!("{m:.3}")),
            pct(&v.kept_rate),
            pct(&v.edit_rate),
            pct(&v.reject_rate)
        );
    }
    if watch.versions.is_empty() {
        println!("(no AI findings)");
    }
    for c in &watch.comparisons {
        let num = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
        println!(
            "{} {} -> {}: PSI {}, KS D {} (p {}), kept {:+.1} points ({:+.1} to {:+.1}){}",
            c.model_id,
            c.previous,
            c.current,
            num(c.psi),
            num(c.ks_d),
            c.ks_p.map_or("-".into(), |p| format!("{p:.2e}")),
            100.0 * c.kept_difference.value,
            100.0 * c.kept_difference.low,
            100.0 * c.kept_difference.high,
            if c.alert { "  ALERT" } else { "" }
        );
        for r in &c.reasons {
            println!("    {r}");
        }
    }
}
