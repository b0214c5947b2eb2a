//! Where the ledger file lives: a setting, else `DOKUEI_LEDGER`, else the OS data directory.

use std::path::{Path, PathBuf};

/// Environment variable naming the ledger file.
pub const LEDGER_PATH_ENV: &str = "DOKUEI_LEDGER";
const FILE_NAME: &str = "ledger.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(
        "no data directory is known for this user (is HOME set?); set {LEDGER_PATH_ENV} to the ledger file's path"
    )]
    NoDataDir,
}

/// The ledger file and how it was chosen (shown in the QA view, so nobody wonders which file
/// their decisions went to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLocation {
    pub path: PathBuf,
    pub chosen_by: &'static str,
}

impl LedgerLocation {
    /// Resolves the ledger path: `setting` first, then `DOKUEI_LEDGER`, then the OS data
    /// directory (`~/.local/share/dokuei/ledger.sqlite3` on Linux).
    pub fn resolve(setting: Option<&Path>) -> Result<Self, LocationError> {
        let env = std::env::var_os(LEDGER_PATH_ENV).filter(|v| !v.is_empty());
        let data_dir = directories::ProjectDirs::from("org", "Dokuei", "dokuei")
            .map(|dirs| dirs.data_dir().to_path_buf());
        Self::choose(setting, env.as_deref().map(Path::new), data_dir.as_deref())
    }

    fn choose(
        setting: Option<&Path>,
        env: Option<&Path>,
        data_dir: Option<&Path>,
    ) -> Result<Self, LocationError> {
        let (path, chosen_by) = match (setting, env, data_dir) {
            (Some(p), _, _) => (p.to_path_buf(), "setting"),
            (None, Some(p), _) => (p.to_path_buf(), LEDGER_PATH_ENV),
            (None, None, Some(dir)) => (dir.join(FILE_NAME), "data directory"),
            (None, None, None) => return Err(LocationError::NoDataDir),
        };
        Ok(LedgerLocation { path, chosen_by })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_beats_environment_beats_data_dir() {
        let s = Path::new("/s/l.db");
        let e = Path::new("/e/l.db");
        let d = Path::new("/home/r/.local/share/dokuei");
        let pick = |s, e, d| LedgerLocation::choose(s, e, d).unwrap();
        assert_eq!(pick(Some(s), Some(e), Some(d)).path, s);
        assert_eq!(pick(None, Some(e), Some(d)).chosen_by, LEDGER_PATH_ENV);
        assert_eq!(pick(None, None, Some(d)).path, d.join("ledger.sqlite3"));
    }

    #[test]
    fn no_home_is_an_error_that_says_what_to_set() {
        let err = LedgerLocation::choose(None, None, None).unwrap_err();
        assert!(err.to_string().contains(LEDGER_PATH_ENV));
    }
}
