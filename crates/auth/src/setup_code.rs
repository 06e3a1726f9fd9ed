//! The one-time setup code: until the first administrator exists, a client
//! that is not on this machine must present it to run first-run setup. It
//! lives only in the server's memory and is printed once at start-up, so
//! only someone who can read the server's console or log can use it.

use std::fmt;

use rand::Rng;
use subtle::ConstantTimeEq;

/// Letters and digits that cannot be mistaken for one another (no 0/O, 1/I/L).
/// Invitation codes use them too.
pub(crate) const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Characters in a code (about 99 bits).
const LEN: usize = 20;

/// A random setup code. `Debug` never shows it.
#[derive(Clone)]
pub struct SetupCode(String);

impl fmt::Debug for SetupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SetupCode(<redacted>)")
    }
}

/// Upper case without separators, as codes are compared.
pub(crate) fn normalized(text: &str) -> Vec<u8> {
    text.bytes()
        .filter(|b| !matches!(b, b'-' | b' '))
        .map(|b| b.to_ascii_uppercase())
        .collect()
}

impl SetupCode {
    /// A fresh code from the operating system's random source.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let code = (0..LEN)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        SetupCode(code)
    }

    /// The code in groups of five (`ABCDE-FGHJK-…`), to print once.
    pub fn reveal(&self) -> String {
        self.0
            .as_bytes()
            .chunks(5)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Whether `given` is this code (case, dashes and spaces ignored),
    /// compared in constant time.
    pub fn matches(&self, given: &str) -> bool {
        if given.len() > 4 * LEN {
            return false;
        }
        normalized(given).ct_eq(&normalized(&self.0)).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_readable_and_matched_loosely() {
        let a = SetupCode::generate();
        let b = SetupCode::generate();
        let shown = a.reveal();
        assert_eq!(shown.len(), LEN + 3);
        assert_ne!(shown, b.reveal());
        assert!(a.matches(&shown));
        assert!(a.matches(&shown.to_lowercase().replace('-', " ")));
        assert!(!a.matches(&b.reveal()));
        assert!(!a.matches(""));
        assert!(!a.matches(&shown[..LEN]));
        assert!(!format!("{a:?}").contains(&shown[..5]));
    }
}
