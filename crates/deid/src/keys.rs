//! The per-site secret behind every replacement that must be stable across exports: UIDs
//! (`2.25.` + 128 bits of HMAC-SHA256), each patient's date offset, and the key under which a
//! patient's identity is looked up among the pseudonyms.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::DeidError;

/// A site's de-identification key: 32 random bytes, kept in a file readable by its owner only.
#[derive(Clone)]
pub struct SiteKey {
    bytes: [u8; 32],
    /// The first 8 bytes of SHA-256 of the key, in hex: names the key in provenance records
    /// without revealing it.
    id: String,
}

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteKey").field("id", &self.id).finish()
    }
}

/// The days a patient's dates move back: between 1 and this many (about ten years).
pub const MAX_DAY_SHIFT: i64 = 3652;

impl SiteKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        use sha2::Digest;
        let id = hex::encode(&Sha256::digest(bytes)[..8]);
        SiteKey { bytes, id }
    }

    /// Reads the key at `path`, or makes one there (mode 0600, written whole and synced) when
    /// there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, DeidError> {
        let fail = |e: std::io::Error| DeidError::Key {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        match fs::read_to_string(path) {
            Ok(text) => {
                let raw = hex::decode(text.trim()).map_err(|e| DeidError::Key {
                    path: path.to_path_buf(),
                    reason: format!("not a hex key: {e}"),
                })?;
                let bytes: [u8; 32] = raw.try_into().map_err(|_| DeidError::Key {
                    path: path.to_path_buf(),
                    reason: "the key is not 32 bytes".into(),
                })?;
                Ok(SiteKey::from_bytes(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| DeidError::Key {
                    path: path.to_path_buf(),
                    reason: format!("no random numbers: {e}"),
                })?;
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir).map_err(fail)?;
                }
                write_private(path, format!("{}\n", hex::encode(bytes)).as_bytes())
                    .map_err(fail)?;
                Ok(SiteKey::from_bytes(bytes))
            }
            Err(e) => Err(fail(e)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, domain: &str, value: &str) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.bytes).expect("HMAC takes a key of any length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The UID that replaces `original`: `2.25.` and the first 128 bits of its HMAC as one
    /// decimal integer. The same key maps the same UID the same way in every export.
    pub fn uid(&self, original: &str) -> String {
        let h = self.mac("uid", original.trim_end_matches(['\0', ' ']));
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        // A decimal integer has no leading zero, as PS3.5 9.1 asks of every UID component.
        format!("2.25.{}", u128::from_be_bytes(b))
    }

    /// The keyed name of a patient's identity (see [`crate::identity`]), in hex.
    pub fn patient_key(&self, identity: &str) -> String {
        hex::encode(self.mac("patient", identity))
    }

    /// How many days this patient's dates move back: 1 to [`MAX_DAY_SHIFT`].
    pub fn day_shift(&self, identity: &str) -> i64 {
        let h = self.mac("date-shift", identity);
        let n = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
        1 + (n % MAX_DAY_SHIFT as u64) as i64
    }
}

/// Writes `bytes` to `path` readable by its owner only: to a temporary file beside it, synced,
/// then renamed over it.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp: PathBuf = {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        path.with_file_name(name)
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_valid_and_keyed() {
        let a = SiteKey::from_bytes([7; 32]);
        let b = SiteKey::from_bytes([8; 32]);
        let u = a.uid("1.2.3.4");
        assert_eq!(u, a.uid("1.2.3.4"));
        assert_eq!(u, a.uid("1.2.3.4\0"), "padding is not part of the UID");
        assert_ne!(u, a.uid("1.2.3.5"));
        assert_ne!(u, b.uid("1.2.3.4"), "another site's key gives another UID");
        assert!(u.len() <= 64 && u.starts_with("2.25."));
        assert!(u[5..].bytes().all(|c| c.is_ascii_digit()) && !u[5..].starts_with('0'));
    }

    #[test]
    fn day_shifts_stay_in_range_and_differ_between_patients() {
        let k = SiteKey::from_bytes([1; 32]);
        let shifts: Vec<i64> = (0..200).map(|i| k.day_shift(&format!("p{i}"))).collect();
        assert!(shifts.iter().all(|d| (1..=MAX_DAY_SHIFT).contains(d)));
        let distinct: std::collections::BTreeSet<_> = shifts.iter().collect();
        assert!(distinct.len() > 150, "{} distinct of 200", distinct.len());
        assert_eq!(k.day_shift("p1"), k.day_shift("p1"));
    }

    #[test]
    fn a_key_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/site.key");
        let a = SiteKey::load_or_create(&path).expect("made");
        let b = SiteKey::load_or_create(&path).expect("read");
        assert_eq!(a.uid("1.2"), b.uid("1.2"));
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(&path, "zz").expect("spoil");
        let e = SiteKey::load_or_create(&path).expect_err("not hex");
        assert!(e.to_string().contains("site.key"), "{e}");
    }
}
