//! `dokuei`: Dokuei without a window, for scripts, QA and benchmarks. All logic lives in
//! `dokuei-review`; this file parses arguments, prints, and maps errors to exit codes.

mod analyse;
mod audit;
mod bench;
mod bench_mpr;
mod bench_results;
mod bench_training;
mod deface;
mod deid;
mod info;
mod ledger;
mod pacs;
mod readers;
mod results;
mod training;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dokuei_review::study::{WindowChoice, export_png, open_study, series_by_number};
use dokuei_review::{AppError, ErrorCode};

#[derive(Debug, Parser)]
#[command(
    name = "dokuei",
    version,
    about = "Dokuei: AI-assisted image reading, headless"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the application, the ONNX Runtime library in use and its execution providers.
    System {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the patients, studies, series and stacks under PATH, and any file problems.
    Info {
        /// Folders, files, DICOMDIRs or zip archives.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the index as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render one slice to an 8-bit PNG.
    Render {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Series number in `dokuei info`'s listing (1-based).
        #[arg(long, default_value_t = 1)]
        series: usize,
        /// Stack within the series (1-based).
        #[arg(long, default_value_t = 1)]
        stack: usize,
        /// Slice within the stack (1-based; the stack's display order).
        #[arg(long, default_value_t = 1)]
        slice: usize,
        /// A preset (lung, mediastinum, abdomen, liver, bone, brain, stroke), `file`, `auto`,
        /// or CENTER,WIDTH.
        #[arg(long, default_value = "file")]
        window: String,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run a model on a series and print its findings.
    Analyse {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The model folder (its manifest.toml and .onnx), e.g. models/ct-nodule-demo.
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 1)]
        series: usize,
        #[arg(long, default_value_t = 1)]
        stack: usize,
        /// ONNX Runtime intra-op threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Also write the findings as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Verify, export and follow the decision ledger.
    Ledger {
        /// The ledger file (default: DOKUEI_LEDGER, else the OS data directory).
        #[arg(long, global = true)]
        ledger: Option<PathBuf>,
        #[command(subcommand)]
        command: ledger::LedgerCommand,
    },
    /// The access audit: export it as DICOM PS3.15 audit messages, send it to the audit
    /// repository (syslog over TLS), configure the repository.
    Audit {
        /// The ledger file (default: DOKUEI_LEDGER, else the OS data directory).
        #[arg(long, global = true)]
        ledger: Option<PathBuf>,
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Reader profiles, administrators, locked profiles and lost passphrases.
    Readers {
        /// The ledger file (default: DOKUEI_LEDGER, else the OS data directory).
        #[arg(long, global = true)]
        ledger: Option<PathBuf>,
        #[command(subcommand)]
        command: readers::ReadersCommand,
    },
    /// Talk to a PACS node (so far: C-ECHO).
    Pacs {
        #[command(subcommand)]
        command: pacs::PacsCommand,
    },
    /// DICOM results: export SEG and SR TID 1500, read other tools' results.
    Results {
        #[command(subcommand)]
        command: results::ResultsCommand,
    },
    /// De-identified copies of studies by DICOM PS3.15 Annex E (Basic Profile and options), with
    /// a summary per file of what was changed, removed and refused.
    Deid(deid::DeidArgs),
    /// Training data: the findings physicians decided, as de-identified DICOM, an nnU-Net v2
    /// dataset and a MONAI datalist.
    Export {
        #[command(subcommand)]
        command: training::ExportCommand,
    },
    /// Deface a head CT or MR (PS3.15 Clean Recognizable Visual Features): a new DERIVED series with
    /// everything beyond a plane in front of and below the brain set to air.
    Deface(deface::DefaceArgs),
    /// Re-identification: the site's key, and who is behind a pseudonym (audited).
    Reidentify {
        #[command(subcommand)]
        command: deid::ReidCommand,
    },
    /// Benchmarks that print numbers against a reference run.
    Bench {
        #[command(subcommand)]
        what: bench::Bench,
    },
    /// Write a synthetic CT series (a phantom; no patient data).
    #[command(hide = true)]
    SynthCt {
        dir: PathBuf,
        #[arg(long, default_value_t = 300)]
        slices: usize,
        #[arg(long, default_value_t = 512)]
        size: u16,
        /// A sphere to plant, X,Y,Z,RADIUS,HU (mm, mm, mm, mm, HU); repeatable.
        #[arg(long)]
        sphere: Vec<String>,
        /// Seeds the UIDs and the noise.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Image noise, standard deviation in HU.
        #[arg(long, default_value_t = 0.0)]
        noise: f64,
        #[arg(long, default_value = "Synthetic CT")]
        description: String,
        /// Between slices (mm).
        #[arg(long, default_value_t = 2.5)]
        slice_spacing: f64,
        /// Series Number (also seeds the Series Instance UID; the study and frame of reference
        /// come from the seed alone, so series of one seed share them).
        #[arg(long, default_value_t = 1)]
        series_number: i32,
    },
    /// Write a synthetic chest radiograph (a phantom; no patient data); prints the planted
    /// opacities as JSON.
    #[command(hide = true)]
    SynthCxr {
        file: PathBuf,
        #[arg(long, default_value_t = 512)]
        size: u16,
        /// Opacities planted in the lungs (placed from the seed).
        #[arg(long, default_value_t = 0)]
        opacities: usize,
        /// Seeds the UIDs, the anatomy, the opacities and the noise.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "Synthetic chest radiograph PA")]
        description: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::System { json } => system(json),
        Command::Info { paths, json } => info::run(&paths, json),
        Command::Render {
            paths,
            series,
            stack,
            slice,
            window,
            output,
        } => render(&paths, series, stack, slice, &window, &output),
        Command::Analyse {
            paths,
            model,
            series,
            stack,
            threads,
            json,
        } => analyse::run(&paths, &model, series, stack, threads, json.as_deref()),
        Command::Ledger { ledger, command } => ledger::run(ledger, command),
        Command::Readers { ledger, command } => readers::run(ledger, command),
        Command::Audit { ledger, command } => audit::run(ledger, command),
        Command::Results { command } => results::run(command),
        Command::Pacs { command } => pacs::run(command),
        Command::Deid(args) => deid::run(args),
        Command::Export { command } => training::run(command),
        Command::Deface(args) => deface::run(args),
        Command::Reidentify { command } => deid::reidentify(command),
        Command::Bench { what } => bench::run(what),
        Command::SynthCt {
            dir,
            slices,
            size,
            sphere,
            seed,
            noise,
            description,
            slice_spacing,
            series_number,
        } => bench::synth_ct(
            &dir,
            &bench::SynthCtArgs {
                slices,
                size,
                spheres: sphere,
                seed,
                noise_hu: noise,
                description,
                slice_spacing,
                series_number,
            },
        ),
        Command::SynthCxr {
            file,
            size,
            opacities,
            seed,
            description,
        } => bench::synth_cxr(&file, size, opacities, seed, &description),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dokuei: error [{}]: {}", e.code.as_str(), e.message);
            ExitCode::from(e.code.exit_code())
        }
    }
}

fn render(
    paths: &[PathBuf],
    series: usize,
    stack: usize,
    slice: usize,
    window: &str,
    output: &std::path::Path,
) -> Result<(), AppError> {
    let window = WindowChoice::parse(window)?;
    let index = open_study(paths)?;
    let one_based = |n: usize, what: &str| {
        n.checked_sub(1).ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidArgument,
                format!("{what} numbers start at 1"),
            )
        })
    };
    let s = series_by_number(&index, series)?;
    let used = export_png(
        s,
        one_based(stack, "stack")?,
        one_based(slice, "slice")?,
        &window,
        output,
    )?;
    println!("wrote {} ({used})", output.display());
    Ok(())
}

fn system(json: bool) -> Result<(), AppError> {
    let app = dokuei_review::app_info();
    let ort = dokuei_review::onnx_runtime_info();
    if json {
        let value = serde_json::json!({
            "app": app,
            "onnx_runtime": match &ort { Ok(info) => serde_json::json!(info), Err(e) => serde_json::json!({"error": e}) },
        });
        println!("{value:#}");
        return ort.map(|_| ());
    }
    println!("{} {} ({})", app.name, app.version, app.platform);
    println!("{}", app.clinical_use_notice);
    let ort = ort?;
    println!();
    println!("ONNX Runtime {} from {}", ort.version, ort.library_path);
    println!(
        "{:<10} {:<12} {:<10}",
        "provider", "in Dokuei", "in library"
    );
    for p in &ort.providers {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        println!(
            "{:<10} {:<12} {:<10}",
            p.kind.name(),
            yes_no(p.compiled_in),
            yes_no(p.in_library)
        );
    }
    println!("models will run on: {}", ort.preferred_provider.name());
    Ok(())
}
