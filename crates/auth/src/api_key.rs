//! API keys: `og_` followed by 32 random bytes in unpadded base64url. The
//! first characters after `og_` form a public prefix used to find the row;
//! only the SHA-256 digest of the whole key is stored, compared in constant
//! time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "og_";
const RANDOM_BYTES: usize = 32;
/// Length of the public prefix, `og_` included.
pub const PUBLIC_PREFIX_LEN: usize = 12;
/// Length of a whole key.
pub const KEY_LEN: usize = 3 + 43;

/// A freshly generated key: the secret (shown once) and what to store.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The whole key, to show the user once.
    pub secret: String,
    /// The public prefix.
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub digest: Vec<u8>,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Makes a new random key.
pub fn generate() -> GeneratedKey {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    GeneratedKey {
        prefix: secret[..PUBLIC_PREFIX_LEN].to_owned(),
        digest: digest(&secret),
        secret,
    }
}

/// SHA-256 of a key.
pub fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The public prefix of a well-formed key, or `None` when the text cannot
/// be a key.
pub fn public_prefix(key: &str) -> Option<&str> {
    let ok = key.len() == KEY_LEN
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| &key[..PUBLIC_PREFIX_LEN])
}

/// Whether `key` hashes to `stored`, in constant time.
pub fn matches(key: &str, stored: &[u8]) -> bool {
    digest(key).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_recognisable() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), KEY_LEN);
        assert_eq!(public_prefix(&a.secret), Some(a.prefix.as_str()));
        assert!(matches(&a.secret, &a.digest));
        assert!(!matches(&b.secret, &a.digest));
        assert!(!format!("{a:?}").contains(&a.secret));
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        assert_eq!(public_prefix("og_short"), None);
        assert_eq!(public_prefix(&format!("xx_{}", "a".repeat(43))), None);
        assert_eq!(public_prefix(&format!("og_{}", "!".repeat(43))), None);
    }
}
