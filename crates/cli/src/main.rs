//! `dokuei`: Dokuei without a window, for scripts, QA and benchmarks. All logic lives in
//! `dokuei-review`; this file parses arguments, prints, and maps errors to exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dokuei_review::AppError;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::System { json } => system(json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dokuei: error [{}]: {}", e.code.as_str(), e.message);
            ExitCode::from(e.code.exit_code())
        }
    }
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
