//! The application log in its own process (the log is process-wide): events and a crash are
//! written to the file, the crash without the identifiers its message held.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn a_crash_is_written_to_the_log_without_identifiers_and_says_where_the_log_is() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let got = dokuei_review::logging::init(&logs).unwrap();
    let expected = std::env::var_os(dokuei_review::logging::LOG_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or(logs, std::path::PathBuf::from);
    assert_eq!(got, expected);
    assert_eq!(
        dokuei_review::logging::log_dir(),
        Some(got.as_path()),
        "the app's About panel shows this folder"
    );
    assert_eq!(dokuei_review::app_info().log_dir, got.display().to_string());
    let crashed = std::thread::Builder::new()
        .name("worker".into())
        .spawn(|| {
            panic!(
                "cannot decode `/studies/YAMADA^HANAKO/IM1.dcm` (instance 1.2.840.99999.1.2.3.4)"
            )
        })
        .unwrap()
        .join();
    assert!(crashed.is_err());
    let text: String = std::fs::read_dir(&got)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(text.contains("Dokuei started"), "{text}");
    let crash = text
        .lines()
        .find(|l| l.contains("crash (a bug in Dokuei)"))
        .unwrap_or_else(|| panic!("no crash line in the log:\n{text}"));
    assert!(
        crash.contains("ERROR") && crash.contains("worker"),
        "{crash}"
    );
    assert!(
        crash.contains("cannot decode `…`") && crash.contains("<uid>"),
        "{crash}"
    );
    for secret in ["YAMADA", "HANAKO", "1.2.840.99999", "/studies"] {
        assert!(!text.contains(secret), "{secret} in the log: {text}");
    }
}
