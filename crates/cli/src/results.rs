//! `dokuei results …`: export a study's results as DICOM, and read results other tools wrote.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use dokuei_review::reading::model_roots;
use dokuei_review::results::{export_results, import_results};
use dokuei_review::study::open_study;
use dokuei_review::{AppError, ErrorCode};

#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// Write the study's AI results (SEG, SR TID 1500) and, once signed off, the physician's
    /// assessment SR into a folder; each object written is recorded in the ledger.
    Export {
        /// The study's folders, files, DICOMDIRs or zip archives.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The ledger file (default: DOKUEI_LEDGER, else the OS data directory).
        #[arg(long)]
        ledger: Option<PathBuf>,
        /// Study Instance UID, when the paths hold more than one study.
        #[arg(long)]
        study: Option<String>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// List the findings in the SEG and SR TID 1500 objects under the paths, placed on their
    /// source series (which must be among the paths).
    Show {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: ResultsCommand) -> Result<(), AppError> {
    match command {
        ResultsCommand::Export {
            paths,
            ledger,
            study,
            output,
        } => export(&paths, ledger.as_deref(), study, &output),
        ResultsCommand::Show { paths, json } => show(&paths, json),
    }
}

fn export(
    paths: &[PathBuf],
    ledger: Option<&Path>,
    study: Option<String>,
    output: &Path,
) -> Result<(), AppError> {
    let index = open_study(paths)?;
    let studies: Vec<String> = index
        .patients
        .iter()
        .flat_map(|p| p.studies.iter().map(|s| s.uid.clone()))
        .collect();
    let study_uid = match study {
        Some(s) => s,
        None if studies.len() == 1 => studies[0].clone(),
        None => {
            return Err(AppError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "the paths hold {} studies: name one with --study",
                    studies.len()
                ),
            ));
        }
    };
    let ledger = dokuei_review::ledger::open_ledger(ledger)?;
    let result = export_results(
        &ledger,
        &index,
        &study_uid,
        &model_roots(&[]),
        &Default::default(),
        output,
    );
    // The access audit; its failure is reported but never hides the export's own outcome.
    if let Err(e) = dokuei_review::audit::results_exported_event(
        &ledger, &index, &study_uid, &result, output, None,
    )
    .and_then(|event| Ok(ledger.record_access(&event)?))
    {
        eprintln!(
            "warning: the access audit could not record this export: {}",
            e.message
        );
    }
    let done = result?;
    for o in &done.objects {
        println!(
            "{:<14} {:>3} finding(s)  {}",
            o.kind.as_str(),
            o.findings,
            o.file
        );
    }
    for n in &done.notes {
        println!("note: {n}");
    }
    Ok(())
}

fn show(paths: &[PathBuf], json: bool) -> Result<(), AppError> {
    let index = open_study(paths)?;
    let r = import_results(&index);
    if json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        for f in &r.findings {
            let g = &f.geometry;
            println!(
                "{} [{}] by {} {} ({}): slices {}–{}, {:.1} mm, {:.1} mm³",
                f.label,
                f.finding,
                f.algorithm_name,
                f.algorithm_version,
                f.algorithm_type,
                g.slices[0] + 1,
                g.slices[1] + 1,
                g.longest_diameter_mm,
                g.volume_mm3
            );
            for (name, value, unit) in &f.measurements {
                println!("    {name}: {value} {unit}");
            }
        }
        for n in &r.notes {
            println!("note: {n}");
        }
        for p in &r.problems {
            println!("problem: {p}");
        }
    }
    if r.findings.is_empty() && !r.problems.is_empty() {
        return Err(AppError::new(
            ErrorCode::DicomUnreadable,
            format!("no result could be placed: {}", r.problems.join("; ")),
        ));
    }
    Ok(())
}
