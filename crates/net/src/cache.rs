//! The local cache retrieved studies land in: `root/<Study Instance UID>/<series>/<instance>.dcm`,
//! with a size limit. Each study's last use is a stamp file beside the studies (`.last-used/`, so
//! a study's folder holds only its instances); when the cache is over its limit, the least
//! recently used studies leave first (never the ones being used).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::instance::uid_component;

const STAMPS: &str = ".last-used";

/// One cached study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct CachedStudy {
    pub study_uid: String,
    pub path: PathBuf,
    #[specta(type = f64)]
    pub bytes: u64,
    pub instances: u32,
    /// Seconds since 1970 of its last use (retrieve or open).
    pub last_used: f64,
}

/// What the cache holds, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct CacheUsage {
    pub root: PathBuf,
    pub studies: Vec<CachedStudy>,
    #[specta(type = f64)]
    pub bytes: u64,
    #[specta(type = f64)]
    pub limit_bytes: u64,
}

/// The retrieve cache.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    limit_bytes: u64,
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn folder_size(dir: &Path) -> (u64, u32) {
    let mut bytes = 0;
    let mut files = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                let (b, f) = folder_size(&p);
                bytes += b;
                files += f;
            } else if let Ok(m) = e.metadata() {
                bytes += m.len();
                if p.extension().is_some_and(|x| x == "dcm") {
                    files += 1;
                }
            }
        }
    }
    (bytes, files)
}

impl Cache {
    pub fn new(root: PathBuf, limit_bytes: u64) -> Cache {
        Cache { root, limit_bytes }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a study's files are.
    pub fn study_dir(&self, study_uid: &str) -> Result<PathBuf, String> {
        Ok(self.root.join(uid_component(study_uid)?))
    }

    fn stamp(&self, study_uid: &str) -> PathBuf {
        self.root.join(STAMPS).join(study_uid)
    }

    /// Marks a study as used now.
    pub fn touch(&self, study_uid: &str) -> Result<(), String> {
        let stamp = self.root.join(STAMPS).join(uid_component(study_uid)?);
        let dir = self.root.join(STAMPS);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        std::fs::write(&stamp, format!("{}", now_seconds()))
            .map_err(|e| format!("writing {}: {e}", stamp.display()))
    }

    /// What the cache holds, most recently used first.
    pub fn usage(&self) -> CacheUsage {
        let mut studies = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let path = e.path();
                let Some(uid) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                if !path.is_dir() || uid_component(&uid).is_err() {
                    continue;
                }
                // A study pushed to the receiver has no stamp yet: its folder's time.
                let last_used = std::fs::read_to_string(self.stamp(&uid))
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .or_else(|| {
                        let modified = e.metadata().ok()?.modified().ok()?;
                        Some(
                            modified
                                .duration_since(SystemTime::UNIX_EPOCH)
                                .ok()?
                                .as_secs_f64(),
                        )
                    })
                    .unwrap_or(0.0);
                let (bytes, instances) = folder_size(&path);
                studies.push(CachedStudy {
                    study_uid: uid,
                    path,
                    bytes,
                    instances,
                    last_used,
                });
            }
        }
        studies.sort_by(|a, b| b.last_used.total_cmp(&a.last_used));
        CacheUsage {
            root: self.root.clone(),
            bytes: studies.iter().map(|s| s.bytes).sum(),
            studies,
            limit_bytes: self.limit_bytes,
        }
    }

    /// Removes least recently used studies until the cache is within its limit, never those in
    /// `keep`. Returns the studies removed.
    pub fn evict(&self, keep: &[&str]) -> Result<Vec<String>, String> {
        let usage = self.usage();
        let mut total = usage.bytes;
        let mut removed = Vec::new();
        for s in usage.studies.iter().rev() {
            if total <= self.limit_bytes {
                break;
            }
            if keep.contains(&s.study_uid.as_str()) {
                continue;
            }
            std::fs::remove_dir_all(&s.path)
                .map_err(|e| format!("removing {}: {e}", s.path.display()))?;
            let _ = std::fs::remove_file(self.stamp(&s.study_uid));
            total = total.saturating_sub(s.bytes);
            removed.push(s.study_uid.clone());
        }
        Ok(removed)
    }

    /// Removes every cached study (or the one named).
    pub fn clear(&self, study_uid: Option<&str>) -> Result<u32, String> {
        let usage = self.usage();
        let mut n = 0;
        for s in usage
            .studies
            .iter()
            .filter(|s| study_uid.is_none_or(|u| u == s.study_uid))
        {
            std::fs::remove_dir_all(&s.path)
                .map_err(|e| format!("removing {}: {e}", s.path.display()))?;
            let _ = std::fs::remove_file(self.stamp(&s.study_uid));
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn put(cache: &Cache, uid: &str, bytes: usize, used: f64) {
        let dir = cache.study_dir(uid).unwrap().join("1.2");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("1.2.3.dcm"), vec![0u8; bytes]).unwrap();
        std::fs::create_dir_all(cache.root.join(STAMPS)).unwrap();
        std::fs::write(cache.stamp(uid), used.to_string()).unwrap();
    }

    #[test]
    fn least_recently_used_studies_leave_first_and_kept_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf(), 2500);
        put(&cache, "1.1", 1000, 100.0);
        put(&cache, "1.2", 1000, 300.0);
        put(&cache, "1.3", 1000, 200.0);
        put(&cache, "1.4", 1000, 50.0);
        let usage = cache.usage();
        assert_eq!(usage.studies.len(), 4);
        assert_eq!(usage.studies[0].study_uid, "1.2");
        assert!(usage.bytes >= 4000);
        // 1.4 is the oldest but is in use: 1.1 and then 1.3 go.
        let removed = cache.evict(&["1.4"]).unwrap();
        assert_eq!(removed, vec!["1.1".to_string(), "1.3".to_string()]);
        let left: Vec<String> = cache
            .usage()
            .studies
            .into_iter()
            .map(|s| s.study_uid)
            .collect();
        assert_eq!(left, vec!["1.2".to_string(), "1.4".to_string()]);
        cache.touch("1.4").unwrap();
        assert_eq!(cache.usage().studies[0].study_uid, "1.4");
        assert_eq!(cache.clear(Some("1.2")).unwrap(), 1);
        assert_eq!(cache.clear(None).unwrap(), 1);
        assert!(cache.usage().studies.is_empty());
        assert!(cache.study_dir("../etc").is_err());
    }
}
