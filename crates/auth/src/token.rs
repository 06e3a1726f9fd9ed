//! Login tokens: PASETO v4.local (encrypted and authenticated) carrying
//! `jti` (the session id), `sub` (the user id), `iat`, `nbf` and `exp`, with
//! an implicit assertion that binds the token to its purpose, so a token
//! made for something else with the same key never verifies as a login.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use pasetors::claims::{Claims, ClaimsValidationRules};
use pasetors::keys::SymmetricKey;
use pasetors::token::UntrustedToken;
use pasetors::version4::V4;
use pasetors::{Local, local};

use offgrid_domain::{SessionId, Timestamp, UserId};

use crate::AuthError;

/// Bound into every login token's authentication tag.
const IMPLICIT_ASSERTION: &[u8] = b"offgrid:login-token:v1";
/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "v4.local.";

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Session id (`jti`).
    pub session_id: SessionId,
    /// User id (`sub`).
    pub user_id: UserId,
    /// Expiry (`exp`).
    pub expires_at: Timestamp,
}

/// How many verified tokens to remember (see [`TokenKeys::verify`]).
const VERIFIED_CACHE_CAPACITY: usize = 4096;

/// Issues and verifies login tokens with one symmetric key.
pub struct TokenKeys {
    key: SymmetricKey<V4>,
    /// Tokens that already passed decryption, with their claims. Only
    /// verified tokens enter, so the cache cannot be poisoned; revocation is
    /// unaffected because it is checked against the session row on every
    /// request, after this step.
    verified: Mutex<HashMap<String, TokenClaims>>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(<redacted>)")
    }
}

fn internal(e: impl fmt::Display) -> AuthError {
    AuthError::Internal(format!("paseto: {e}"))
}

impl TokenKeys {
    /// Keys from 32 secret bytes.
    pub fn new(key: [u8; 32]) -> Result<Self, AuthError> {
        Ok(TokenKeys {
            key: SymmetricKey::<V4>::from(&key).map_err(internal)?,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// A token for `session` of `user`, valid until `expires_at`.
    pub fn issue(
        &self,
        session: &SessionId,
        user: &UserId,
        expires_at: Timestamp,
    ) -> Result<String, AuthError> {
        let mut claims = Claims::new().map_err(internal)?;
        claims
            .token_identifier(session.as_str())
            .map_err(internal)?;
        claims.subject(user.as_str()).map_err(internal)?;
        claims
            .expiration(&expires_at.to_rfc3339())
            .map_err(internal)?;
        local::encrypt(&self.key, &claims, None, Some(IMPLICIT_ASSERTION)).map_err(internal)
    }

    /// Checks a token: authenticity, purpose, `nbf`, `exp`. Any failure is
    /// `Unauthenticated`. A token verified before is answered from memory
    /// (its expiry still checked): the decryption is the dominant cost of an
    /// authenticated request (see docs/PERFORMANCE.md).
    pub fn verify(&self, token: &str) -> Result<TokenClaims, AuthError> {
        // We never issue a footer: `v4.local.<payload>` only. An empty
        // footer (a trailing '.') would otherwise verify as a second
        // spelling of the same token.
        if token.split('.').count() != 3 {
            return Err(AuthError::Unauthenticated);
        }
        let now = now_secs();
        if let Some(claims) = self.cached(token) {
            return if claims.expires_at.0 > now {
                Ok(claims)
            } else {
                Err(AuthError::Unauthenticated)
            };
        }
        let claims = self.decrypt(token)?;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= VERIFIED_CACHE_CAPACITY {
            cache.retain(|_, c| c.expires_at.0 > now);
            if cache.len() >= VERIFIED_CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn cached(&self, token: &str) -> Option<TokenClaims> {
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(token).cloned()
    }

    fn decrypt(&self, token: &str) -> Result<TokenClaims, AuthError> {
        let untrusted =
            UntrustedToken::<Local, V4>::try_from(token).map_err(|_| AuthError::Unauthenticated)?;
        let rules = ClaimsValidationRules::new();
        let trusted = local::decrypt(
            &self.key,
            &untrusted,
            &rules,
            None,
            Some(IMPLICIT_ASSERTION),
        )
        .map_err(|_| AuthError::Unauthenticated)?;
        let claims = trusted.payload_claims().ok_or(AuthError::Unauthenticated)?;
        let text = |name: &str| {
            claims
                .get_claim(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or(AuthError::Unauthenticated)
        };
        let expires_at =
            Timestamp::parse_rfc3339(&text("exp")?).ok_or(AuthError::Unauthenticated)?;
        Ok(TokenClaims {
            session_id: SessionId::from_string(text("jti")?),
            user_id: UserId::from_string(text("sub")?),
            expires_at,
        })
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        )
    }

    #[test]
    fn issue_and_verify_round_trip() {
        let keys = TokenKeys::new([1u8; 32]).expect("keys");
        let (sid, uid) = (SessionId::generate(), UserId::generate());
        let exp = now().plus_secs(3600);
        let token = keys.issue(&sid, &uid, exp).expect("issue");
        assert!(token.starts_with(TOKEN_PREFIX));
        let claims = keys.verify(&token).expect("verify");
        assert_eq!(
            claims,
            TokenClaims {
                session_id: sid,
                user_id: uid,
                expires_at: exp
            }
        );
        // The second check is answered from the verified-token cache.
        assert_eq!(keys.verify(&token).expect("cached"), claims);
    }

    #[test]
    fn wrong_key_tampering_and_expiry_fail() {
        let keys = TokenKeys::new([1u8; 32]).expect("keys");
        let other = TokenKeys::new([2u8; 32]).expect("keys");
        let token = keys
            .issue(
                &SessionId::generate(),
                &UserId::generate(),
                now().plus_secs(60),
            )
            .expect("issue");
        assert_eq!(other.verify(&token), Err(AuthError::Unauthenticated));
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("utf8");
        assert_eq!(keys.verify(&tampered), Err(AuthError::Unauthenticated));
        assert_eq!(keys.verify("not a token"), Err(AuthError::Unauthenticated));
        let expired = keys
            .issue(
                &SessionId::generate(),
                &UserId::generate(),
                now().plus_secs(-10),
            )
            .expect("issue");
        assert_eq!(keys.verify(&expired), Err(AuthError::Unauthenticated));
    }

    #[test]
    fn a_token_for_another_purpose_does_not_verify() {
        let raw = [1u8; 32];
        let keys = TokenKeys::new(raw).expect("keys");
        let sk = SymmetricKey::<V4>::from(&raw).expect("key");
        let mut claims = Claims::new().expect("claims");
        claims.token_identifier("x").expect("jti");
        claims.subject("y").expect("sub");
        let foreign = local::encrypt(&sk, &claims, None, Some(b"other purpose")).expect("enc");
        assert_eq!(keys.verify(&foreign), Err(AuthError::Unauthenticated));
    }
}
