//! Invitation codes: 25 characters of the setup code's unmistakable
//! alphabet (about 124 bits from the operating system's random source),
//! shown once in groups of five. Only the SHA-256 digest of the code
//! (upper case, without separators) is stored; a code is found by its
//! digest, which reveals nothing about other codes, so no slow hash is
//! needed at this entropy (as for API keys).

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::setup_code::{ALPHABET, normalized};

/// Characters in a code, separators not counted.
const LEN: usize = 25;
/// Longest text looked at as a code: anything longer is not one.
pub const MAX_CODE_CHARS: usize = 64;

/// A fresh code: the text to show once and the digest to store. `Debug`
/// shows neither.
#[derive(Clone)]
pub struct GeneratedCode {
    /// `ABCDE-FGHJK-…`, to show the administrator once.
    pub code: String,
    /// SHA-256 of the normalized code.
    pub digest: Vec<u8>,
}

impl std::fmt::Debug for GeneratedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GeneratedCode(<redacted>)")
    }
}

/// Makes a new random code.
pub fn generate() -> GeneratedCode {
    let mut rng = rand::rngs::OsRng;
    let raw: Vec<u8> = (0..LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
        .collect();
    let code = raw
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    GeneratedCode {
        digest: Sha256::digest(&raw).to_vec(),
        code,
    }
}

/// The digest to look a given code up by (case, dashes and spaces
/// ignored), or `None` when the text cannot be a code.
pub fn digest(given: &str) -> Option<Vec<u8>> {
    if given.len() > MAX_CODE_CHARS {
        return None;
    }
    let raw = normalized(given);
    let well_formed = raw.len() == LEN && raw.iter().all(|b| ALPHABET.contains(b));
    well_formed.then(|| Sha256::digest(&raw).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_readable_and_found_by_their_digest_loosely() {
        let a = generate();
        let b = generate();
        assert_ne!(a.code, b.code);
        assert_eq!(a.code.len(), LEN + 4);
        assert_eq!(digest(&a.code), Some(a.digest.clone()));
        let typed = a.code.to_lowercase().replace('-', " ");
        assert_eq!(digest(&typed), Some(a.digest.clone()));
        assert_ne!(digest(&b.code), Some(a.digest.clone()));
        assert!(!format!("{a:?}").contains(&a.code[..5]));
    }

    #[test]
    fn text_that_cannot_be_a_code_has_no_digest() {
        let a = generate();
        assert_eq!(digest(""), None);
        assert_eq!(digest(&a.code[..LEN - 1]), None);
        assert_eq!(digest(&format!("{}A", a.code)), None);
        assert_eq!(digest(&"0".repeat(LEN)), None, "0 is not in the alphabet");
        assert_eq!(digest(&format!("{}{}", a.code, " ".repeat(60))), None);
    }
}
