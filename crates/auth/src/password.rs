//! Password hashing: HMAC-SHA-256 pre-hash (keyed with the server pepper),
//! base64, then bcrypt. Stored as `$ogv1$<bcrypt hash>`.
//!
//! The pre-hash makes every password, whatever its length in bytes, a
//! 44-byte input to bcrypt, so nothing past bcrypt's 72-byte limit is
//! silently ignored.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::AuthError;
use crate::limiter::Limiter;

/// Version tag of the stored hash format.
const V1_PREFIX: &str = "$ogv1$";
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Hashes and verifies passwords at a fixed bcrypt cost.
pub struct PasswordHasher {
    pepper: [u8; 32],
    cost: u32,
    limiter: Limiter,
    dummy: String,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

/// The 10,000 most common passwords, lowercased (see `data/README.md`).
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// The list as a set, built on first use; only entries long enough to be
/// accepted otherwise are kept.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|p| p.chars().count() >= MIN_PASSWORD_CHARS)
        .collect()
});

/// Whether `password` is on the common-password list, without regard to
/// case.
pub fn is_common_password(password: &str) -> bool {
    password.chars().count() <= 64 && COMMON.contains(password.to_lowercase().as_str())
}

/// Checks a new password: its length in characters (any Unicode is fine)
/// and that it is not one of the most common passwords.
pub fn validate_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid {
            field: "password",
            message: format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        });
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AuthError::Invalid {
            field: "password",
            message: format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        });
    }
    if is_common_password(password) {
        return Err(AuthError::CommonPassword);
    }
    Ok(())
}

impl PasswordHasher {
    /// A hasher with the given pepper and bcrypt cost (4–31). Computes one
    /// dummy hash up front for timing-safe unknown-user checks.
    pub fn new(pepper: [u8; 32], cost: u32) -> Result<Self, AuthError> {
        let mut hasher = PasswordHasher {
            pepper,
            cost,
            limiter: Limiter::for_hashing(),
            dummy: String::new(),
        };
        hasher.dummy = hasher.hash_unchecked("offgrid dummy password")?;
        Ok(hasher)
    }

    fn prehash(&self, password: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.pepper)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(password.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    fn hash_unchecked(&self, password: &str) -> Result<String, AuthError> {
        let _permit = self.limiter.acquire();
        let inner = bcrypt::hash(self.prehash(password), self.cost)
            .map_err(|e| AuthError::Internal(format!("bcrypt: {e}")))?;
        Ok(format!("{V1_PREFIX}{inner}"))
    }

    /// Validates and hashes a password. Blocking: run off the executor.
    pub fn hash(&self, password: &str) -> Result<String, AuthError> {
        validate_password(password)?;
        self.hash_unchecked(password)
    }

    /// Whether `password` matches `stored`. Unknown formats never match.
    /// Blocking: run off the executor.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        let Some(inner) = stored.strip_prefix(V1_PREFIX) else {
            // Still spend the time, so a bad row is not a timing oracle.
            self.dummy_verify();
            return false;
        };
        let _permit = self.limiter.acquire();
        bcrypt::verify(self.prehash(password), inner).unwrap_or(false)
    }

    /// Spends the time of one verification, for unknown users.
    pub fn dummy_verify(&self) {
        let _permit = self.limiter.acquire();
        let inner = self.dummy.strip_prefix(V1_PREFIX).unwrap_or(&self.dummy);
        let _ = bcrypt::verify(self.prehash("not the password"), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new([7u8; 32], 4).expect("hasher")
    }

    #[test]
    fn hash_and_verify_round_trip_with_version_tag() {
        let h = hasher();
        let stored = h.hash("correct horse battery").expect("hash");
        assert!(stored.starts_with("$ogv1$$2"));
        assert!(h.verify("correct horse battery", &stored));
        assert!(!h.verify("correct horse batterx", &stored));
    }

    #[test]
    fn passwords_sharing_their_first_72_bytes_do_not_match() {
        let h = hasher();
        let base = "a".repeat(72);
        let one = format!("{base}one");
        let two = format!("{base}two");
        let stored = h.hash(&one).expect("hash");
        assert!(h.verify(&one, &stored));
        assert!(!h.verify(&two, &stored), "bytes past 72 must count");
    }

    #[test]
    fn unicode_passwords_count_characters() {
        let h = hasher();
        let pw = "пароль密码🔑🔑"; // 10 characters, 27 bytes
        assert_eq!(pw.chars().count(), 10);
        let stored = h.hash(pw).expect("hash");
        assert!(h.verify(pw, &stored));
        let long = "é".repeat(256); // 256 chars, 512 bytes
        assert!(h.hash(&long).is_ok());
        assert!(h.hash(&"é".repeat(257)).is_err());
        assert!(h.hash("short").is_err());
    }

    #[test]
    fn a_different_pepper_does_not_verify() {
        let stored = hasher().hash("correct horse battery").expect("hash");
        let other = PasswordHasher::new([8u8; 32], 4).expect("hasher");
        assert!(!other.verify("correct horse battery", &stored));
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        let h = hasher();
        assert_eq!(COMMON_PASSWORDS.lines().count(), 10_000);
        for common in [
            "password",
            "12345678",
            "PassWord1",
            "iloveyou",
            "QWERTYUIOP",
        ] {
            assert_eq!(
                validate_password(common),
                Err(AuthError::CommonPassword),
                "{common}"
            );
            assert_eq!(h.hash(common).map(|_| ()), Err(AuthError::CommonPassword));
        }
        assert!(validate_password("correct horse battery").is_ok());
        assert!(!is_common_password(&"a".repeat(300)));
    }

    #[test]
    fn non_loginable_hashes_never_match() {
        let h = hasher();
        assert!(!h.verify("anything at all", "!"));
        assert!(!h.verify("", ""));
    }
}
