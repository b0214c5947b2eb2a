//! `dokuei info`: the study tree as a reading list shows it.

use std::path::PathBuf;

use dokuei_review::dicom::decode::transfer_syntax_info;
use dokuei_review::dicom::stack::stacks;
use dokuei_review::study::open_study;
use dokuei_review::{AppError, ErrorCode};

pub fn run(paths: &[PathBuf], json: bool) -> Result<(), AppError> {
    let index = open_study(paths)?;
    if json {
        let text = serde_json::to_string_pretty(&index)
            .map_err(|e| AppError::new(ErrorCode::WriteFailed, e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let mut n = 0;
    for patient in &index.patients {
        println!(
            "Patient {} (ID {}){}{}",
            or_dash(&patient.name),
            or_dash(&patient.id),
            if patient.birth_date.is_empty() {
                String::new()
            } else {
                format!(", born {}", patient.birth_date)
            },
            if patient.sex.is_empty() {
                String::new()
            } else {
                format!(", sex {}", patient.sex)
            },
        );
        for study in &patient.studies {
            println!(
                "  Study {} {} \"{}\" accession {}  [{}]",
                or_dash(&study.date),
                or_dash(&study.time),
                study.description,
                or_dash(&study.accession_number),
                study.uid
            );
            for series in &study.series {
                n += 1;
                let first = series.instances.first();
                let ts = first
                    .map(|i| transfer_syntax_info(&i.transfer_syntax).0)
                    .unwrap_or_default();
                println!(
                    "    {n}. Series {} {} \"{}\" {}: {} instance(s), {} image(s), {}",
                    series.number.map_or("-".to_owned(), |x| x.to_string()),
                    or_dash(&series.modality),
                    series.description,
                    series.body_part,
                    series.instances.len(),
                    series.frame_count(),
                    ts
                );
                for (k, stack) in stacks(series).iter().enumerate() {
                    let spacing = if stack.spacing.spacing > 0.0 {
                        format!(", spacing {:.2} mm", stack.spacing.spacing.abs())
                    } else {
                        String::new()
                    };
                    let thickness = stack
                        .slice_thickness
                        .map_or(String::new(), |t| format!(", thickness {t:.2} mm"));
                    println!(
                        "       stack {}: {}, {} slice(s){spacing}{thickness}",
                        k + 1,
                        stack.label,
                        stack.frames.len()
                    );
                    for w in stack.warnings() {
                        println!("         warning: {w}");
                    }
                }
            }
        }
    }
    if !index.problems.is_empty() {
        println!("Problems ({} file(s)):", index.problems.len());
        for p in &index.problems {
            println!("  {}: {}", p.file, p.reason);
        }
    }
    println!(
        "{} file(s) looked at, {} series, {} problem(s), {} skipped (not DICOM images)",
        index.files_scanned,
        n,
        index.problems.len(),
        index.skipped
    );
    Ok(())
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
