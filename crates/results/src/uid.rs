//! UIDs under the `2.25.` root (ISO/IEC 9834-8: a UUID as one decimal integer).

use sha2::{Digest, Sha256};

/// A fresh random UID.
pub fn random_uid() -> String {
    let mut b = [0u8; 16];
    // getrandom fails only where the OS has no entropy source; a time-and-counter hash is then
    // still unique on this machine.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b.copy_from_slice(&Sha256::digest(t.to_le_bytes())[..16]);
    }
    from_bytes(b)
}

/// The UID named by `basis`: the same basis always gives the same UID (so an object exported
/// twice keeps its identity), different bases collide with the odds of a random UUID.
pub fn uid_from(basis: &str) -> String {
    let h = Sha256::digest(basis.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    from_bytes(b)
}

/// The Device UID of a model: derived from its file's SHA-256, so a changed model is a changed
/// device.
pub fn device_uid(model_sha256: &str) -> String {
    uid_from(&format!(
        "dokuei/device/{}",
        model_sha256.to_ascii_lowercase()
    ))
}

fn from_bytes(mut b: [u8; 16]) -> String {
    // UUID version 4 / variant bits, as 9834-8 expects of a UUID.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_and_stable() {
        let a = uid_from("x");
        assert_eq!(a, uid_from("x"));
        assert_ne!(a, uid_from("y"));
        for u in [a, random_uid(), device_uid("AB")] {
            assert!(u.len() <= 64, "{u}");
            assert!(u.starts_with("2.25."));
            assert!(!u[5..].starts_with('0'), "no leading zero: {u}");
            assert!(u[5..].bytes().all(|c| c.is_ascii_digit()));
        }
        assert_eq!(device_uid("AB"), device_uid("ab"));
    }
}
