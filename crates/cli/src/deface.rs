//! `dokuei deface PATH… -o DIR`: a head CT or MR series defaced into a new DERIVED series
//! (quickshear-style: everything beyond a plane in front of and below the brain set to air).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::Args;
use dokuei_review::AppError;
use dokuei_review::deface::deface_series;
use dokuei_review::dicom::stack::stacks;
use dokuei_review::study::{open_study, series_by_number};

#[derive(Debug, Args)]
pub struct DefaceArgs {
    /// The head CT's or MR's folders, files, DICOMDIRs or zip archives.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The output folder (the new series goes into `<series UID>/`).
    #[arg(short, long)]
    out: PathBuf,
    /// Series number in `dokuei info`'s listing (1-based).
    #[arg(long, default_value_t = 1)]
    series: usize,
    /// Stack within the series (1-based).
    #[arg(long, default_value_t = 1)]
    stack: usize,
    /// Distance kept between the brain and the cut (mm).
    #[arg(long, default_value_t = 5.0)]
    margin: f64,
}

pub fn run(a: DefaceArgs) -> Result<(), AppError> {
    let index = open_study(&a.paths)?;
    let series = series_by_number(&index, a.series)?;
    let all = stacks(series);
    let stack = a
        .stack
        .checked_sub(1)
        .and_then(|i| all.get(i))
        .ok_or_else(|| {
            AppError::new(
                dokuei_review::ErrorCode::InvalidArgument,
                format!("series {} has {} stack(s)", a.series, all.len()),
            )
        })?;
    let started = std::time::Instant::now();
    let r = deface_series(series, stack, &a.out, a.margin, &AtomicBool::new(false))?;
    let p = r.plane;
    println!(
        "brain {:.0} ml ({} voxels); plane {:.0}° from anterior, {:.0} mm from the brain; {} \
         voxels set to air",
        p.brain_ml, p.brain_voxels, p.degrees_from_anterior, p.margin_mm, r.removed_voxels
    );
    println!(
        "{} DERIVED image(s) written to {} in {:.2} s (still identified: de-identify with \
         `dokuei deid` before they leave)",
        r.files.len(),
        r.folder,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
