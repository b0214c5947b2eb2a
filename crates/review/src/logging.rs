//! The application log: `tracing` events to a daily-rotated file (`dokuei.YYYY-MM-DD.log`,
//! the last 14 kept) in the data folder's `logs/`, or `DOKUEI_LOG_DIR`. Dokuei's events are
//! logged from `info`, other crates' from `warn`, unless `DOKUEI_LOG` holds another `tracing`
//! filter (e.g. `debug`: then HTTP clients' debug lines, with URLs, may be logged too).
//!
//! The log never holds a patient name, patient ID, accession number or a study, series or
//! instance UID: events say what happened with counts, durations, model ids and error codes,
//! and any text that may carry identifiers (error messages, panic messages) goes through
//! [`redact`] first. A test greps the logs of the whole end-to-end suite for the sample studies'
//! identifying values.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable naming the log folder.
pub const LOG_DIR_ENV: &str = "DOKUEI_LOG_DIR";
/// Environment variable with the log filter (default `info`).
pub const LOG_LEVEL_ENV: &str = "DOKUEI_LOG";

static LOG_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Where the log is being written, once [`init`] has run.
pub fn log_dir() -> Option<&'static Path> {
    LOG_DIR.get().map(PathBuf::as_path)
}

/// Starts the log in `DOKUEI_LOG_DIR`, else `default_dir`, and installs the panic hook that
/// writes a crash to it. Returns the folder. Safe to call once per process; a second call
/// changes nothing.
pub fn init(default_dir: &Path) -> Result<PathBuf, String> {
    let dir = std::env::var_os(LOG_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| default_dir.to_path_buf(), PathBuf::from);
    if let Some(existing) = LOG_DIR.get() {
        return Ok(existing.clone());
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the log folder `{}`: {e}", dir.display()))?;
    let appender = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("dokuei")
        .filename_suffix("log")
        .max_log_files(14)
        .build(&dir)
        .map_err(|e| format!("cannot open a log file in `{}`: {e}", dir.display()))?;
    // Dokuei's own events at info; other crates' (HTTP clients log URLs, which hold UIDs) only
    // from warn up.
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_LEVEL_ENV).unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,dokuei_review=info,dokuei_app=info")
    });
    // Blocking writes: few events, and a crash's last line must reach the file.
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(appender))
        .with_ansi(false)
        .with_target(false)
        .try_init()
        .is_ok();
    let _ = LOG_DIR.set(dir.clone());
    if installed {
        install_panic_hook();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            platform = %format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            "Dokuei started"
        );
    }
    Ok(dir)
}

/// A panic is written to the log (redacted: its message may hold a path or an identifier) and
/// to stderr with where the log is; then the default hook runs.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let location = info
            .location()
            .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        let thread = std::thread::current();
        // Written with a file handle of its own, not through the log's writer: a panic while
        // that writer's lock is held must not deadlock or abort here.
        if let Some(dir) = log_dir() {
            let now = dokuei_ledger::records::now_utc();
            let line = format!(
                "{now} ERROR crash (a bug in Dokuei): {} thread={} location={location}\n",
                redact(&payload),
                thread.name().unwrap_or("unnamed"),
            );
            let file = dir.join(format!("dokuei.{}.log", now.get(..10).unwrap_or("crash")));
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
            eprintln!(
                "dokuei: internal error (a bug); the details are in the log in {}",
                dir.display()
            );
        }
        default(info);
    }));
}

/// `text` with what may identify a patient or a study taken out: anything quoted in backticks
/// (Dokuei's messages quote paths and values that way), DICOM UIDs (digit groups joined by
/// dots), person names in DICOM form (with `^`), and file paths.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Backquoted spans first.
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        match rest[start + 1..].find('`') {
            Some(len) => {
                out.push_str("`…`");
                rest = &rest[start + 1 + len + 1..];
            }
            None => {
                out.push_str("`…");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.split_inclusive(|c: char| c.is_whitespace())
        .map(|word| {
            let trimmed = word.trim_end();
            let core = trimmed.trim_matches(|c: char| "()[]{}<>,;:'\"".contains(c));
            if core.is_empty() {
                return word.to_owned();
            }
            // A URL keeps its scheme and host: its path and query hold UIDs (DICOMweb).
            if let Some(at) = core.find("://") {
                let host_end = core[at + 3..].find('/').map_or(core.len(), |n| at + 3 + n);
                return if host_end < core.len() {
                    word.replace(core, &format!("{}/…", &core[..host_end]))
                } else {
                    word.to_owned()
                };
            }
            let replacement = if has_uid_run(core) {
                Some("<uid>")
            } else if core.contains('^') {
                Some("<name>")
            } else if core.contains('/') || core.contains('\\') {
                Some("<path>")
            } else {
                None
            };
            match replacement {
                Some(r) => word.replace(core, r),
                None => word.to_owned(),
            }
        })
        .collect()
}

/// Whether `token` holds a run of digits and dots with at least three dots (a DICOM UID, or
/// part of one, like `uid=1.2.840.10008`); version numbers such as `1.0.0` have fewer.
fn has_uid_run(token: &str) -> bool {
    token
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|run| run.matches('.').count() >= 3 && run.chars().any(|c| c.is_ascii_digit()))
}

/// Logs how a use case ended (at `info` with `detail`, which must hold no identifier; a failure
/// at `warn` with its code and its message redacted) and passes the result on.
pub(crate) fn outcome<T>(
    what: &str,
    started: std::time::Instant,
    result: Result<T, crate::AppError>,
    detail: impl FnOnce(&T) -> String,
) -> Result<T, crate::AppError> {
    let ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(value) => tracing::info!(ms, "{what}: {}", detail(value)),
        Err(e) => tracing::warn!(
            ms,
            code = e.code.as_str(),
            "{what} failed: {}",
            redact(&e.message)
        ),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_takes_out_paths_uids_and_names_and_keeps_the_rest() {
        let r = redact(
            "cannot read `/data/YAMADA^HANAKO/IM1.dcm`: bad tag in 1.2.840.113619.2.55.3 (YAMADA^HANAKO) at /srv/x.dcm, code 7",
        );
        assert!(
            !r.contains("YAMADA") && !r.contains("113619") && !r.contains("/srv"),
            "{r}"
        );
        assert!(
            r.contains("cannot read `…`") && r.contains("<uid>") && r.contains("<name>"),
            "{r}"
        );
        assert!(r.contains("<path>") && r.contains("code 7"), "{r}");
        assert_eq!(
            redact("model ct-nodule-demo 1.0.0 ran in 2.5 s"),
            "model ct-nodule-demo 1.0.0 ran in 2.5 s"
        );
        assert_eq!(
            redact("see https://example.invalid"),
            "see https://example.invalid"
        );
        let web = redact(
            "Orthanc (http://127.0.0.1:8042/dicom-web/studies/1.2.3.4.5/series?x=1): 404; uid=1.2.840.1.2",
        );
        assert!(
            web.contains("(http://127.0.0.1:8042/…)") && web.contains("<uid>"),
            "{web}"
        );
        assert!(
            !web.contains("1.2.3.4.5") && !web.contains("1.2.840"),
            "{web}"
        );
    }
}
