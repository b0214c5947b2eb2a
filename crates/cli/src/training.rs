//! `dokuei export training PATH… -o DIR`: the findings physicians decided, as training data
//! (de-identified DICOM with a SEG of the final labels, an nnU-Net v2 dataset, a MONAI
//! datalist, findings.jsonl, patient-level splits and provenance).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::{Args, Subcommand};
use dokuei_review::AppError;
use dokuei_review::reading::model_roots;
use dokuei_review::study::open_study;
use dokuei_review::training::{TrainingFilter, TrainingSettings, export_training};

use crate::deid::DeidOptions;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Training data from the signed-off studies under PATH… whose findings pass the filter.
    Training(TrainingArgs),
}

#[derive(Debug, Args)]
pub struct TrainingArgs {
    /// The studies' folders, files, DICOMDIRs or zip archives (the ledger says which were
    /// analysed and decided).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The output folder (new or empty).
    #[arg(short, long)]
    out: PathBuf,
    /// The ledger file (default: DOKUEI_LEDGER, else the OS data directory).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Only this model's findings.
    #[arg(long)]
    model: Option<String>,
    /// Only this model version's findings.
    #[arg(long)]
    model_version: Option<String>,
    /// Only analyses finished on or after this day (YYYY-MM-DD, UTC).
    #[arg(long)]
    from: Option<String>,
    /// Only analyses finished on or before this day (YYYY-MM-DD, UTC).
    #[arg(long)]
    to: Option<String>,
    /// Only findings with this label.
    #[arg(long)]
    label: Option<String>,
    /// Share of patients in the validation split.
    #[arg(long, default_value_t = 0.15)]
    validation: f64,
    /// Share of patients in the test split.
    #[arg(long, default_value_t = 0.15)]
    test: f64,
    /// Identified export: original DICOM files and readers' free text leave as they are
    /// (recorded in the access audit as identified).
    #[arg(long)]
    identified: bool,
    #[command(flatten)]
    options: DeidOptions,
}

pub fn run(command: ExportCommand) -> Result<(), AppError> {
    let ExportCommand::Training(a) = command;
    let settings = TrainingSettings {
        filter: TrainingFilter {
            model_id: a.model,
            model_version: a.model_version,
            from: a.from,
            to: a.to,
            label: a.label,
        },
        deid: a.options.settings(),
        identified: a.identified,
        validation: a.validation,
        test: a.test,
    };
    let index = open_study(&a.paths)?;
    let ledger = dokuei_review::ledger::open_ledger(a.ledger.as_deref())?;
    let started = std::time::Instant::now();
    let e = export_training(
        &ledger,
        &index,
        &a.out,
        &settings,
        &model_roots(&[]),
        None,
        &AtomicBool::new(false),
        |_| {},
    )?;
    for n in &e.notes {
        println!("note: {n}");
    }
    println!(
        "{} case(s) of {} patient(s): {} AI finding(s) ({} rejected, kept as negatives), {} \
         added; splits {} / {} / {} (training / validation / test)",
        e.cases,
        e.patients,
        e.ai_findings,
        e.rejected,
        e.added_findings,
        e.splits[0],
        e.splits[1],
        e.splits[2]
    );
    println!(
        "{} file(s), {:.1} MB written to {} in {:.2} s{}",
        e.files,
        e.bytes as f64 / 1e6,
        a.out.display(),
        started.elapsed().as_secs_f64(),
        if e.identified {
            " (IDENTIFIED: originals and readers' text)"
        } else {
            ""
        }
    );
    Ok(())
}
