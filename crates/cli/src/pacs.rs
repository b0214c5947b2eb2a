//! `dokuei pacs echo|find|get|send`: talk to a PACS node (DIMSE or DICOMweb), named in a PACS
//! settings file or given on the command line.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use clap::{Args, Subcommand};
use dokuei_review::pacs::{
    Auth, DimseNode, Level, Node, PacsSettings, Query, RetrieveRequest, Via, WebNode,
};
use dokuei_review::{AppError, ErrorCode};

/// Which node: `--node NAME` from `--settings FILE`, a DICOMweb base URL, or a DIMSE peer.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// A node by name from the settings file.
    #[arg(long)]
    node: Option<String>,
    /// The PACS settings file (JSON: nodes, receiver, cache).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// A DICOMweb server's base URL (the one /studies hangs from).
    #[arg(long)]
    dicomweb: Option<String>,
    /// HTTP Basic user and password for --dicomweb.
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    password: Option<String>,
    /// A bearer token for --dicomweb.
    #[arg(long)]
    token: Option<String>,
    /// A DIMSE peer: host, port and AE titles.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: Option<u16>,
    /// The node's AE title.
    #[arg(long)]
    called: Option<String>,
    /// Dokuei's AE title.
    #[arg(long, default_value = "DOKUEI")]
    calling: String,
    /// Seconds to wait for each step.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

impl NodeArgs {
    fn settings(&self) -> Result<PacsSettings, AppError> {
        let mut s = match &self.settings {
            Some(p) => PacsSettings::load(p)?,
            None => PacsSettings::default(),
        };
        s.timeout_seconds = self.timeout;
        Ok(s)
    }

    fn node(&self, settings: &PacsSettings) -> Result<Node, AppError> {
        if let Some(name) = &self.node {
            return settings.node(name).cloned();
        }
        if let Some(url) = &self.dicomweb {
            let auth = match (&self.user, &self.password, &self.token) {
                (_, _, Some(token)) => Auth::Bearer {
                    token: token.clone(),
                },
                (Some(user), password, None) => Auth::Basic {
                    user: user.clone(),
                    password: password.clone().unwrap_or_default(),
                },
                _ => Auth::None,
            };
            return Ok(Node::Dicomweb(WebNode {
                name: "DICOMweb node".into(),
                base_url: url.clone(),
                auth,
            }));
        }
        match (self.port, &self.called) {
            (Some(port), Some(called)) => Ok(Node::Dimse(DimseNode {
                name: "PACS node".into(),
                called_ae_title: called.clone(),
                calling_ae_title: self.calling.clone(),
                host: self.host.clone(),
                port,
                tls: None,
            })),
            _ => Err(AppError::new(
                ErrorCode::InvalidArgument,
                "name a node: --node NAME (with --settings), --dicomweb URL, or --port and --called",
            )),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PacsCommand {
    /// Test a node: C-ECHO (DIMSE) or a QIDO-RS probe (DICOMweb).
    Echo {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Query a node: studies (by patient, accession, date range, modality), the series of a
    /// study (--study), or the instances of a series (--study and --series).
    Find {
        #[command(flatten)]
        node: NodeArgs,
        /// Patient name; * and ? are wildcards.
        #[arg(long, default_value = "")]
        patient_name: String,
        #[arg(long, default_value = "")]
        patient_id: String,
        #[arg(long, default_value = "")]
        accession: String,
        /// Study date range, YYYYMMDD.
        #[arg(long, default_value = "")]
        from: String,
        #[arg(long, default_value = "")]
        to: String,
        #[arg(long, default_value = "")]
        modality: String,
        #[arg(long)]
        study: Option<String>,
        #[arg(long)]
        series: Option<String>,
        #[arg(long, default_value_t = 0)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Print the answers as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retrieve a study (or some of its series) into a folder: WADO-RS for a DICOMweb node,
    /// C-GET or C-MOVE for a DIMSE one. What arrived is kept if it fails part way.
    Get {
        #[command(flatten)]
        node: NodeArgs,
        #[arg(long)]
        study: String,
        /// Only these series (repeat for several).
        #[arg(long)]
        series: Vec<String>,
        /// Where the instances go (as <study>/<series>/<instance>.dcm).
        #[arg(short, long)]
        output: PathBuf,
        /// C-MOVE instead of C-GET: Dokuei listens on --listen-port (127.0.0.1) as --calling
        /// for the duration, accepting only the node's AE title.
        #[arg(long)]
        r#move: bool,
        #[arg(long, default_value_t = 11113)]
        listen_port: u16,
    },
    /// Run Dokuei's C-STORE SCP until stopped (Ctrl-C): it listens on --address:--port as
    /// --ae and accepts only the --allow calling AE titles; instances go to
    /// OUTPUT/<study>/<series>/.
    Receive {
        #[arg(long, default_value = "127.0.0.1")]
        address: String,
        #[arg(long, default_value_t = 11112)]
        port: u16,
        #[arg(long, default_value = "DOKUEI")]
        ae: String,
        /// Calling AE titles allowed to send (repeat for several).
        #[arg(long, required = true)]
        allow: Vec<String>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Send DICOM files (e.g. exported results) by C-STORE or STOW-RS; each instance sent and
    /// its outcome is recorded in the ledger.
    Send {
        #[command(flatten)]
        node: NodeArgs,
        /// The ledger file (default: DOKUEI_LEDGER, else the OS data directory).
        #[arg(long)]
        ledger: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: PacsCommand) -> Result<(), AppError> {
    match command {
        PacsCommand::Echo { node } => {
            let settings = node.settings()?;
            let n = node.node(&settings)?;
            let (what, ms) = dokuei_review::pacs::test_connection(&n, &settings.timing())?;
            println!("{} ({}): {what} in {ms:.1} ms", n.name(), n.address());
            Ok(())
        }
        PacsCommand::Find {
            node,
            patient_name,
            patient_id,
            accession,
            from,
            to,
            modality,
            study,
            series,
            limit,
            offset,
            json,
        } => {
            let settings = node.settings()?;
            let n = node.node(&settings)?;
            let level = match (&study, &series) {
                (_, Some(_)) => Level::Image,
                (Some(_), None) => Level::Series,
                _ => Level::Study,
            };
            let query = Query {
                level,
                patient_name,
                patient_id,
                accession_number: accession,
                date_from: from,
                date_to: to,
                modality,
                study_uid: study.unwrap_or_default(),
                series_uid: series.unwrap_or_default(),
                limit,
                offset,
            };
            let rows = dokuei_review::pacs::find(&n, &query, &settings.timing())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
                return Ok(());
            }
            for r in &rows {
                match level {
                    Level::Study => println!(
                        "{}  {}  {}  {}  {}  {} series, {} instances  {}",
                        r.study_uid,
                        r.study_date,
                        r.patient_id,
                        r.patient_name,
                        r.modalities,
                        r.series_count.map_or("?".into(), |n| n.to_string()),
                        r.instance_count.map_or("?".into(), |n| n.to_string()),
                        r.study_description
                    ),
                    Level::Series => println!(
                        "{}  {}  #{}  {} instances  {}",
                        r.series_uid,
                        r.modality,
                        r.series_number.map_or("?".into(), |n| n.to_string()),
                        r.instance_count.map_or("?".into(), |n| n.to_string()),
                        r.series_description
                    ),
                    Level::Image => println!(
                        "{}  {}  #{}",
                        r.sop_instance_uid,
                        r.sop_class_uid,
                        r.instance_number.map_or("?".into(), |n| n.to_string())
                    ),
                }
            }
            eprintln!("{} answers", rows.len());
            Ok(())
        }
        PacsCommand::Get {
            node,
            study,
            series,
            output,
            r#move,
            listen_port,
        } => {
            let settings = node.settings()?;
            let n = node.node(&settings)?;
            get(&n, &settings, &study, series, &output, r#move, listen_port)
        }
        PacsCommand::Receive {
            address,
            port,
            ae,
            allow,
            output,
        } => {
            let config = dokuei_review::pacs::ReceiverConfig {
                enabled: true,
                address,
                port,
                ae_title: ae,
                allowed_calling_ae_titles: allow,
            };
            let receiver = dokuei_review::pacs::Receiver::start(&config, output)?;
            eprintln!(
                "listening on {} as {}; Ctrl-C stops",
                receiver.address(),
                receiver.ae_title()
            );
            let (mut seen, mut problems) = (0, 0);
            loop {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let received = receiver.received();
                for r in &received[seen..] {
                    println!(
                        "{}  {}  {} bytes",
                        r.calling_ae_title,
                        r.instance.path.display(),
                        r.instance.bytes
                    );
                }
                seen = received.len();
                let p = receiver.problems();
                for (who, why) in &p[problems..] {
                    eprintln!("refused or failed: {who}: {why}");
                }
                problems = p.len();
            }
        }
        PacsCommand::Send {
            node,
            ledger,
            files,
        } => {
            let settings = node.settings()?;
            let n = node.node(&settings)?;
            let ledger = dokuei_review::ledger::open_ledger(ledger.as_deref())?;
            let outcomes = dokuei_review::pacs::send(&ledger, &n, &files, &settings.timing())?;
            let stored = outcomes.iter().filter(|o| o.stored).count();
            for o in &outcomes {
                println!(
                    "{}  {}  {}",
                    if o.stored { "stored" } else { "FAILED" },
                    o.path.display(),
                    o.detail
                );
            }
            println!(
                "{stored} of {} instances stored on {} ({}); recorded in the ledger",
                outcomes.len(),
                n.name(),
                n.address()
            );
            if stored == outcomes.len() {
                Ok(())
            } else {
                Err(AppError::new(
                    ErrorCode::NodeFailed,
                    format!("{} instances were not stored", outcomes.len() - stored),
                ))
            }
        }
    }
}

fn get(
    node: &Node,
    settings: &PacsSettings,
    study: &str,
    series: Vec<String>,
    output: &Path,
    via_move: bool,
    listen_port: u16,
) -> Result<(), AppError> {
    let request = RetrieveRequest {
        study_uid: study.to_string(),
        series_uids: series,
    };
    let receiver = match (node, via_move) {
        (Node::Dimse(d), true) => {
            let config = dokuei_review::pacs::ReceiverConfig {
                enabled: true,
                port: listen_port,
                ae_title: d.calling_ae_title.clone(),
                allowed_calling_ae_titles: vec![d.called_ae_title.clone()],
                ..Default::default()
            };
            Some(dokuei_review::pacs::Receiver::start(
                &config,
                output.to_path_buf(),
            )?)
        }
        _ => None,
    };
    let via = if via_move {
        Via::Move(receiver.as_ref())
    } else {
        Via::Get
    };
    let mut last_series = usize::MAX;
    let report = dokuei_review::pacs::retrieve(
        node,
        &request,
        output,
        via,
        &settings.timing(),
        &mut |p| {
            if p.series_complete && p.series_index != last_series {
                last_series = p.series_index;
                eprintln!(
                    "series {}/{} complete: {} instances, {:.1} MB, {:.1} s{}",
                    p.series_index + 1,
                    p.series_count,
                    p.series_instances_done,
                    p.bytes as f64 / 1e6,
                    p.seconds,
                    p.seconds_left
                        .map_or(String::new(), |s| format!(", about {s:.0} s left"))
                );
            }
        },
        &AtomicBool::new(false),
    )?;
    println!(
        "{} instances, {:.1} MB in {:.2} s ({:.1} MB/s) into {}",
        report.instances.len(),
        report.bytes as f64 / 1e6,
        report.seconds,
        report.bytes as f64 / 1e6 / report.seconds.max(1e-9),
        output.display()
    );
    let incomplete = report.incomplete();
    if incomplete.is_empty() {
        return Ok(());
    }
    for s in &incomplete {
        eprintln!("series {} not complete: {}", s.series_uid, s.status);
    }
    let retry: Vec<String> = incomplete
        .iter()
        .map(|s| format!("--series {}", s.series_uid))
        .collect();
    Err(AppError::new(
        ErrorCode::NodeFailed,
        format!(
            "{} series did not arrive whole (kept what came); retry with {}",
            incomplete.len(),
            retry.join(" ")
        ),
    ))
}
