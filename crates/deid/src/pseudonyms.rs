//! Patient pseudonyms: a site prefix and a counter (`DOKUEI-000001`), the same patient getting
//! the same pseudonym in every export. The store holds, per line, the keyed hash of the
//! patient's normalised identity and the pseudonym: no name or ID in the clear, so it can sit
//! beside the exports' logs; mapping a pseudonym back to the patient needs the original data
//! and the site key.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::DeidError;

/// A person name made comparable: components trimmed, empty trailing components and
/// component groups dropped, letters upper-cased. `A^B` and `a^b^` are one person.
pub fn normalise_name(name: &str) -> String {
    let groups: Vec<String> = name
        .trim_end_matches(['\0', ' '])
        .split('=')
        .map(|group| {
            let mut parts: Vec<String> = group
                .split('^')
                .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
                .map(|c| c.to_uppercase())
                .collect();
            while parts.last().is_some_and(|p| p.is_empty()) {
                parts.pop();
            }
            parts.join("^")
        })
        .collect();
    let mut groups = groups;
    while groups.last().is_some_and(|g| g.is_empty()) {
        groups.pop();
    }
    groups.join("=")
}

/// The text a patient's pseudonym and date shift are keyed on: the normalised Patient ID and
/// its issuer when there is an ID, else the normalised name.
pub fn identity(patient_id: &str, issuer: &str, name: &str) -> String {
    let id = patient_id.trim_matches(['\0', ' ']);
    if id.is_empty() {
        format!("name\0{}", normalise_name(name))
    } else {
        format!("id\0{}\0{}", issuer.trim_matches(['\0', ' ']), id)
    }
}

/// The pseudonyms given so far.
#[derive(Debug)]
pub struct Pseudonyms {
    prefix: String,
    path: Option<PathBuf>,
    /// By prefix and keyed identity: a prefix is a namespace (another trial, another
    /// pseudonym), so one patient exported under two prefixes is not linked by them.
    by_key: HashMap<(String, String), String>,
    /// The last counter given, per prefix.
    last: HashMap<String, u64>,
    /// Seals each new patient's identity for re-identification, when the site has a key.
    sealer: Option<crate::reid::Sealer>,
}

impl Pseudonyms {
    /// Pseudonyms kept only for this run.
    pub fn in_memory(prefix: &str) -> Self {
        Pseudonyms {
            prefix: prefix.to_owned(),
            path: None,
            by_key: HashMap::new(),
            last: HashMap::new(),
            sealer: None,
        }
    }

    /// The store at `path` (created on the first pseudonym given).
    pub fn open(path: &Path, prefix: &str) -> Result<Self, DeidError> {
        let mut store = Pseudonyms::in_memory(prefix);
        store.path = Some(path.to_path_buf());
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(store.error(e)),
        };
        store.absorb(&text)?;
        Ok(store)
    }

    fn error(&self, e: impl std::fmt::Display) -> DeidError {
        DeidError::Store {
            path: self.path.clone().unwrap_or_default(),
            reason: e.to_string(),
        }
    }

    /// Takes in the store's lines (`<key> <prefix>-<counter>`).
    fn absorb(&mut self, text: &str) -> Result<(), DeidError> {
        for (n, line) in text.lines().enumerate() {
            let bad = || self.error(format!("line {} is not `<key> <pseudonym>`", n + 1));
            let (key, pseudonym) = line.split_once(' ').ok_or_else(bad)?;
            let (prefix, counter) = pseudonym
                .rsplit_once('-')
                .and_then(|(p, c)| Some((p, c.parse::<u64>().ok()?)))
                .ok_or_else(bad)?;
            if key.len() != 64 {
                return Err(bad());
            }
            let last = self.last.entry(prefix.to_owned()).or_default();
            *last = (*last).max(counter);
            self.by_key
                .insert((prefix.to_owned(), key.to_owned()), pseudonym.to_owned());
        }
        Ok(())
    }

    /// Seals each new patient's identity with `sealer` (see [`crate::reid`]).
    pub fn with_sealer(mut self, sealer: Option<crate::reid::Sealer>) -> Self {
        self.sealer = sealer;
        self
    }

    /// The pseudonym of the patient whose keyed identity is `key`: the one given before, else
    /// the next. A new one is appended to the store, synced, under an exclusive lock on the
    /// store taken after re-reading it (so two processes never give one number twice), and
    /// only then is `identity` sealed for re-identification (when the site has a key).
    pub fn pseudonym(
        &mut self,
        key: &str,
        identity: &crate::reid::Identity,
    ) -> Result<String, DeidError> {
        let slot = (self.prefix.clone(), key.to_owned());
        if let Some(p) = self.by_key.get(&slot) {
            return Ok(p.clone());
        }
        let mut locked = None;
        if let Some(path) = self.path.clone() {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| self.error(e))?;
            }
            let mut options = fs::OpenOptions::new();
            options.read(true).append(true).create(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&path).map_err(|e| self.error(e))?;
            f.lock().map_err(|e| self.error(e))?;
            // What other processes added since this store was read.
            let mut text = String::new();
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.read_to_string(&mut text))
                .map_err(|e| self.error(e))?;
            self.absorb(&text)?;
            if let Some(p) = self.by_key.get(&slot) {
                return Ok(p.clone());
            }
            locked = Some(f);
        }
        let counter = self.last.get(&self.prefix).copied().unwrap_or(0) + 1;
        let pseudonym = format!("{}-{counter:06}", self.prefix);
        if let Some(f) = &mut locked {
            f.write_all(format!("{key} {pseudonym}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| self.error(e))?;
        }
        self.last.insert(self.prefix.clone(), counter);
        self.by_key.insert(slot, pseudonym.clone());
        if let Some(sealer) = &self.sealer {
            sealer.record(&pseudonym, identity)?;
        }
        drop(locked);
        Ok(pseudonym)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_before_they_are_compared() {
        assert_eq!(normalise_name("A^B"), normalise_name("A^B^"));
        assert_eq!(normalise_name("Doe^John"), normalise_name("DOE^JOHN^^^"));
        assert_eq!(normalise_name("Doe^ John "), "DOE^JOHN");
        assert_eq!(normalise_name("Yamada^Tarou="), "YAMADA^TAROU");
        assert_ne!(normalise_name("Doe^John"), normalise_name("Doe^Jane"));
        assert_eq!(identity("", "", "a^b^"), identity("", "", "A^B"));
        assert_ne!(identity("12", "", "A^B"), identity("13", "", "A^B"));
        assert_eq!(identity("12 ", "", "A^B"), identity("12", "", "Other^Name"));
    }

    #[test]
    fn pseudonyms_count_up_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pseudonyms");
        let key = |c: char| c.to_string().repeat(64);
        let who = crate::reid::Identity {
            patient_id: String::new(),
            issuer: String::new(),
            name: String::new(),
        };
        let mut s = Pseudonyms::open(&path, "SITE").expect("open");
        assert_eq!(s.pseudonym(&key('a'), &who).expect("a"), "SITE-000001");
        assert_eq!(s.pseudonym(&key('b'), &who).expect("b"), "SITE-000002");
        assert_eq!(
            s.pseudonym(&key('a'), &who).expect("a again"),
            "SITE-000001"
        );
        let mut s = Pseudonyms::open(&path, "SITE").expect("reopen");
        assert_eq!(s.len(), 2);
        assert_eq!(s.pseudonym(&key('b'), &who).expect("b"), "SITE-000002");
        assert_eq!(s.pseudonym(&key('c'), &who).expect("c"), "SITE-000003");
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 3);
        // Two stores open on one file (the app and the command line): no number twice.
        let mut one = Pseudonyms::open(&path, "SITE").expect("one");
        let mut two = Pseudonyms::open(&path, "SITE").expect("two");
        assert_eq!(one.pseudonym(&key('d'), &who).expect("d"), "SITE-000004");
        assert_eq!(two.pseudonym(&key('e'), &who).expect("e"), "SITE-000005");
        assert_eq!(
            two.pseudonym(&key('d'), &who).expect("d in two"),
            "SITE-000004"
        );
        // Another prefix is another namespace: the same patient is not linked across them.
        let mut trial = Pseudonyms::open(&path, "TRIAL").expect("trial");
        assert_eq!(trial.pseudonym(&key('a'), &who).expect("a"), "TRIAL-000001");
        fs::write(&path, "short line\n").expect("spoil");
        let e = Pseudonyms::open(&path, "SITE").expect_err("bad line");
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
