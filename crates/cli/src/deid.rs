//! `dokuei deid PATH… -o DIR`: de-identified copies by DICOM PS3.15 Annex E, with a summary of
//! what was changed, removed and refused per file.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use clap::{Args, ValueEnum};
use dokuei_review::AppError;
use dokuei_review::deid::{
    DeidDates, DeidRequest, DeidSettings, DeidStatus, REPORT, read_safe_private,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Dates {
    /// Keep dates as they are (Retain Longitudinal Temporal Information, Full Dates).
    Full,
    /// Move each patient's dates back by a keyed number of days, times of day kept
    /// (Retain Longitudinal Temporal Information, Modified Dates).
    Modified,
}

#[derive(Debug, Args)]
pub struct DeidArgs {
    /// Folders, files, DICOMDIRs or zip archives.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The output folder: `<pseudonym>/<study>/<series>/<instance>.dcm` and `deid-report.json`.
    #[arg(short, long)]
    out: PathBuf,
    /// The ledger file: its folder holds the site key and pseudonyms, its access audit records
    /// the export (default: DOKUEI_LEDGER, else the OS data directory).
    #[arg(long)]
    ledger: Option<PathBuf>,
    #[command(flatten)]
    options: DeidOptions,
    /// Retain Safe Private Option, with the list of private attributes to keep
    /// (`creator,gggg,ee` per line).
    #[arg(long)]
    safe_private: Option<PathBuf>,
    /// Pseudonym prefix (`PREFIX-000001`…).
    #[arg(long, default_value = "DOKUEI")]
    prefix: String,
    /// Region table that blanks burned-in text (CTP DicomPixelAnonymizer syntax; see
    /// docs/deidentification.md). Default: `pixel-regions.script` in the ledger's `deid` folder,
    /// when there is one. Images that may show text and that no signature matches are refused.
    #[arg(long)]
    pixel_regions: Option<PathBuf>,
    /// List every attribute changed per file, not only the counts.
    #[arg(long)]
    verbose: bool,
}

/// The PS3.15 options, as flags (shared by `dokuei deid` and `dokuei export training`).
#[derive(Debug, Args)]
pub struct DeidOptions {
    /// Keep dates (`full`) or shift them per patient (`modified`); default: removed.
    #[arg(long, value_enum)]
    dates: Option<Dates>,
    /// Retain UIDs Option (default: replaced by keyed `2.25.` UIDs).
    #[arg(long)]
    retain_uids: bool,
    /// Retain Device Identity Option.
    #[arg(long)]
    retain_device: bool,
    /// Retain Institution Identity Option.
    #[arg(long)]
    retain_institution: bool,
    /// Retain Patient Characteristics Option (sex, age, size, weight…).
    #[arg(long)]
    retain_patient_characteristics: bool,
    /// Clean Descriptors Option: descriptions kept unless they hold an identifier of the patient.
    #[arg(long)]
    clean_descriptors: bool,
    /// Clean Structured Content Option: report content cleaned item by item, not replaced.
    #[arg(long)]
    clean_structured_content: bool,
    /// Clean Recognizable Visual Features Option: head CTs defaced (a new DERIVED series is
    /// exported in place of each); CT and MR that could show a face but cannot be defaced, and
    /// photographs, are refused.
    #[arg(long)]
    deface: bool,
}

impl DeidOptions {
    pub fn settings(&self) -> DeidSettings {
        DeidSettings {
            dates: match self.dates {
                Some(Dates::Full) => DeidDates::Full,
                Some(Dates::Modified) => DeidDates::Modified,
                None => DeidDates::Removed,
            },
            retain_uids: self.retain_uids,
            retain_device: self.retain_device,
            retain_institution: self.retain_institution,
            retain_patient_characteristics: self.retain_patient_characteristics,
            clean_descriptors: self.clean_descriptors,
            clean_structured_content: self.clean_structured_content,
            clean_recognizable_visual_features: self.deface,
        }
    }
}

pub fn run(a: DeidArgs) -> Result<(), AppError> {
    let settings = a.options.settings();
    let request = DeidRequest {
        safe_private: match &a.safe_private {
            Some(p) => read_safe_private(p)?,
            None => Vec::new(),
        },
        prefix: Some(a.prefix.clone()),
        pixel_regions: a.pixel_regions.clone(),
        ..settings.request()
    };
    let ledger = dokuei_review::ledger::open_ledger(a.ledger.as_deref())?;
    let cancel = AtomicBool::new(false);
    let report = dokuei_review::deid::export(
        &ledger,
        &a.paths,
        &a.out,
        &request,
        None,
        &cancel,
        |_, _| {},
    )?;
    for f in &report.files {
        match &f.status {
            DeidStatus::Written { summary } => {
                println!(
                    "written  {} -> {}: {}",
                    f.input,
                    f.output.as_deref().unwrap_or("?"),
                    summary.line()
                );
                if a.verbose {
                    for (kind, map) in [
                        ("removed", &summary.removed),
                        ("emptied", &summary.emptied),
                        ("dummy", &summary.dummied),
                        ("kept after check", &summary.cleaned),
                    ] {
                        if !map.is_empty() {
                            let list: Vec<String> =
                                map.iter().map(|(k, n)| format!("{k}×{n}")).collect();
                            println!("         {kind}: {}", list.join(", "));
                        }
                    }
                }
            }
            DeidStatus::Refused { reason } => println!("refused  {}: {reason}", f.input),
            DeidStatus::Failed { reason } => println!("failed   {}: {reason}", f.input),
            DeidStatus::Skipped { reason } => println!("skipped  {}: {reason}", f.input),
        }
    }
    for note in &report.notes {
        println!("note     {note}");
    }
    let table = match &report.region_table {
        Some(t) => format!(
            "; burned-in text blanked in {} by the region table {t}",
            report.pixels_cleaned
        ),
        None => String::new(),
    };
    println!(
        "{} written, {} refused, {} failed, {} skipped; {}; site key {}{table}; report: {}",
        report.written,
        report.refused,
        report.failed,
        report.skipped,
        report.options.join(", "),
        report.key_id,
        Path::new(&a.out).join(REPORT).display()
    );
    if report.failed > 0 {
        return Err(AppError::new(
            dokuei_review::ErrorCode::WriteFailed,
            format!("{} file(s) could not be de-identified", report.failed),
        ));
    }
    Ok(())
}

/// `dokuei reidentify …`: the site's re-identification key, and who is behind a pseudonym.
#[derive(Debug, clap::Subcommand)]
pub enum ReidCommand {
    /// Make the site's re-identification key under a passphrase (on standard input). From then
    /// on, exports seal each new patient's identity to it; without it, pseudonyms cannot be
    /// reversed. Recorded in the access audit.
    Init {
        /// The ledger file (its folder holds the de-identification files).
        #[arg(long)]
        ledger: Option<PathBuf>,
    },
    /// Show the identity behind a pseudonym (the re-identification passphrase on standard
    /// input). Every attempt is recorded in the access audit.
    Show {
        pseudonym: String,
        #[arg(long)]
        ledger: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn reidentify(command: ReidCommand) -> Result<(), AppError> {
    match command {
        ReidCommand::Init { ledger } => {
            let passphrase = one_passphrase()?;
            let ledger = dokuei_review::ledger::open_ledger(ledger.as_deref())?;
            dokuei_review::deid::set_up_reidentification(&ledger, &passphrase, None)?;
            println!(
                "re-identification key made in {}; exports from now on keep each new patient's identity sealed to it",
                dokuei_review::deid::deid_dir(ledger.path()).display()
            );
            Ok(())
        }
        ReidCommand::Show {
            pseudonym,
            ledger,
            json,
        } => {
            let passphrase = one_passphrase()?;
            let ledger = dokuei_review::ledger::open_ledger(ledger.as_deref())?;
            let found = dokuei_review::deid::reidentify(&ledger, &pseudonym, &passphrase, None)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&found).unwrap_or_default()
                );
            } else {
                for i in &found {
                    println!(
                        "{pseudonym}: Patient ID {} (issuer {}), name {}",
                        i.patient_id,
                        if i.issuer.is_empty() { "-" } else { &i.issuer },
                        i.name
                    );
                }
            }
            Ok(())
        }
    }
}

/// One passphrase, from standard input.
fn one_passphrase() -> Result<String, AppError> {
    crate::readers::passphrases(1)?.pop().ok_or_else(|| {
        AppError::new(
            dokuei_review::ErrorCode::InvalidArgument,
            "give the passphrase on standard input",
        )
    })
}
