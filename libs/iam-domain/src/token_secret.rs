//! The format of API token secrets: `iam_`, 256 random bits and a CRC32
//! checksum, in URL-safe base64 (53 characters). The prefix lets secret
//! scanners recognize a leaked token; the checksum lets them (and the
//! service) reject look-alikes without a lookup.
//!
//! Pure: the random bytes are passed in by the caller.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What every secret starts with.
pub const PREFIX: &str = "iam_";
/// Random bytes in a secret.
pub const RANDOM_BYTES: usize = 32;
const PAYLOAD_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;
/// Length of a secret in characters.
pub const LENGTH: usize = PREFIX.len() + PAYLOAD_CHARS + CHECKSUM_CHARS;

/// The secret made of `random` (which must come from a secure source).
pub fn format(random: &[u8; RANDOM_BYTES]) -> String {
    let checksum = crc32fast::hash(random).to_be_bytes();
    format!(
        "{PREFIX}{}{}",
        URL_SAFE_NO_PAD.encode(random),
        URL_SAFE_NO_PAD.encode(checksum)
    )
}

/// Whether `candidate` has the form of a secret with a valid checksum.
pub fn is_well_formed(candidate: &str) -> bool {
    let Some(body) = candidate.strip_prefix(PREFIX) else {
        return false;
    };
    if body.len() != PAYLOAD_CHARS + CHECKSUM_CHARS || !body.is_ascii() {
        return false;
    }
    let (payload, checksum) = body.split_at(PAYLOAD_CHARS);
    let (Ok(random), Ok(checksum)) = (
        URL_SAFE_NO_PAD.decode(payload),
        URL_SAFE_NO_PAD.decode(checksum),
    ) else {
        return false;
    };
    random.len() == RANDOM_BYTES && checksum == crc32fast::hash(&random).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_has_the_prefix_the_length_and_a_valid_checksum() {
        let secret = format(&[7; RANDOM_BYTES]);
        assert!(secret.starts_with("iam_"));
        assert_eq!(secret.len(), LENGTH);
        assert!(is_well_formed(&secret));
    }

    #[test]
    fn any_changed_character_breaks_the_checksum() {
        let secret = format(&[42; RANDOM_BYTES]);
        for at in PREFIX.len()..secret.len() {
            let mut changed: Vec<char> = secret.chars().collect();
            changed[at] = if changed[at] == 'A' { 'B' } else { 'A' };
            let changed: String = changed.into_iter().collect();
            assert!(!is_well_formed(&changed), "a change at {at} went unnoticed");
        }
    }

    #[test]
    fn other_strings_are_not_secrets() {
        for candidate in [
            "",
            "iam_",
            "ghp_abc",
            "iam_short",
            &format!("xam_{}", &format(&[1; 32])[4..]),
        ] {
            assert!(!is_well_formed(candidate), "{candidate}");
        }
    }
}
