//! Device cookies (OWASP, "Slow down online guessing attacks with device
//! cookies"): a successful login hands the browser a signed token bound to
//! the account. While an account is locked, only a login presenting a
//! valid device token for that account has its password checked; everyone
//! else is refused without bcrypt, so an attacker rotating addresses gains
//! nothing and the owner's known devices still get in.
//!
//! Format: `d1.<user id>.<issued at>.<nonce hex>.<HMAC-SHA-256 hex>`, the
//! MAC over everything before it, with a key derived from the server secret.

use hmac::{Hmac, Mac};
use offgrid_domain::{Timestamp, UserId};
use rand::RngCore;
use sha2::Sha256;

/// How long a device token is honoured (a year).
pub const DEVICE_TTL_SECS: i64 = 365 * 86_400;
const PREFIX: &str = "d1";
/// Anything longer is not one of ours.
const MAX_LEN: usize = 256;

/// Issues and checks device tokens. `Debug` never shows the key.
pub struct DeviceKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKeys(<redacted>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl DeviceKeys {
    /// Keys from a 32-byte secret (derived from the server secret).
    pub fn new(key: [u8; 32]) -> Self {
        DeviceKeys { key }
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(body.as_bytes());
        mac
    }

    /// A fresh token for `user`'s device.
    pub fn issue(&self, user: &UserId, now: Timestamp) -> String {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let body = format!("{PREFIX}.{user}.{}.{}", now.0, hex(&nonce));
        let tag = hex(&self.mac(&body).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// Whether `token` is a device token this server issued for `user`,
    /// less than [`DEVICE_TTL_SECS`] ago.
    pub fn verify(&self, token: &str, user: &UserId, now: Timestamp) -> bool {
        self.device_id(token, user, now).is_some()
    }

    /// The device's id (its nonce) when `token` verifies for `user`: the
    /// key its own failures are counted under.
    pub fn device_id<'t>(&self, token: &'t str, user: &UserId, now: Timestamp) -> Option<&'t str> {
        if token.len() > MAX_LEN {
            return None;
        }
        let (body, tag) = token.rsplit_once('.')?;
        let tag = unhex(tag)?;
        self.mac(body).verify_slice(&tag).ok()?;
        let mut parts = body.split('.');
        let (Some(PREFIX), Some(id), Some(issued), Some(nonce), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let issued = issued.parse::<i64>().ok()?;
        (id == user.to_string() && issued <= now.0 + 60 && now.0 - issued < DEVICE_TTL_SECS)
            .then_some(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_the_account_expire_and_resist_tampering() {
        let keys = DeviceKeys::new([7; 32]);
        let (alice, bob) = (UserId::generate(), UserId::generate());
        let now = Timestamp(1_000_000_000);
        let token = keys.issue(&alice, now);
        assert!(keys.verify(&token, &alice, now));
        assert!(!keys.verify(&token, &bob, now));
        assert!(!keys.verify(&token, &alice, now.plus_secs(DEVICE_TTL_SECS)));
        assert!(!DeviceKeys::new([8; 32]).verify(&token, &alice, now));
        let forged = token.replace(&alice.to_string(), &bob.to_string());
        assert!(!keys.verify(&forged, &bob, now));
        for junk in ["", "d1", "d1.x.y.z.zz", &"a".repeat(1000)] {
            assert!(!keys.verify(junk, &alice, now));
        }
        assert_eq!(format!("{keys:?}"), "DeviceKeys(<redacted>)");
    }
}
