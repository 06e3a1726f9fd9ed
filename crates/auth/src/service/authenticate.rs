//! Credential checks: resolving a bearer value, a login token or an API
//! key to the principal and user behind it.

use offgrid_domain::{Credential, Principal};

use super::{AuthService, Authenticated, TOUCH_INTERVAL_SECS, now};
use crate::token::TOKEN_PREFIX;
use crate::{AuthError, api_key};

impl AuthService {
    /// Resolves an `Authorization: Bearer` value: an API key (`og_…`) or a
    /// login token.
    pub fn authenticate_bearer(&self, value: &str) -> Result<Authenticated, AuthError> {
        if value.starts_with(api_key::KEY_PREFIX) {
            self.authenticate_api_key(value)
        } else {
            self.authenticate_token(value, false)
        }
    }

    /// Resolves a login token. Fails unless the token verifies, its session
    /// exists, is neither revoked, expired nor idle too long, belongs to the
    /// token's subject and matches the user's current token epoch, and the
    /// user is active.
    ///
    /// Idle: a session's last use is written at most once a minute, so its
    /// `last_seen_at` may lag the real last use by up to that; a session
    /// fails once `last_seen_at` is older than the timeout plus that minute,
    /// and never while it was really used within the timeout.
    pub fn authenticate_token(
        &self,
        token: &str,
        from_cookie: bool,
    ) -> Result<Authenticated, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(AuthError::Unauthenticated);
        }
        let claims = self.tokens.verify(token)?;
        let (session, user) = self
            .repos
            .sessions
            .find(&claims.session_id)?
            .ok_or(AuthError::Unauthenticated)?;
        let t = now();
        let idle_limit = self.config.session_idle_timeout_secs;
        let idle = idle_limit > 0
            && session.last_seen_at.secs_until(t) >= idle_limit.saturating_add(TOUCH_INTERVAL_SECS);
        let valid = session.user_id == claims.user_id
            && session.revoked_at.is_none()
            && session.expires_at > t
            && !idle
            && session.epoch == user.token_epoch
            && user.is_active();
        if !valid {
            return Err(AuthError::Unauthenticated);
        }
        if session.last_seen_at.secs_until(t) >= TOUCH_INTERVAL_SECS {
            self.repos.sessions.touch(&session.id, t)?;
        }
        Ok(Authenticated {
            principal: Principal {
                user_id: Some(user.id.clone()),
                role: user.role,
                credential: Credential::Session {
                    session_id: session.id,
                    from_cookie,
                },
            },
            user,
        })
    }

    /// Resolves an API key. Fails unless it is well formed, its digest
    /// matches, it is neither revoked nor expired, it matches the owner's
    /// token epoch and the owner is active.
    pub fn authenticate_api_key(&self, key: &str) -> Result<Authenticated, AuthError> {
        let prefix = api_key::public_prefix(key).ok_or(AuthError::Unauthenticated)?;
        let (record, user) = self
            .repos
            .api_keys
            .find_by_prefix(prefix)?
            .ok_or(AuthError::Unauthenticated)?;
        let t = now();
        let valid = api_key::matches(key, &record.secret_hash)
            && record.key.revoked_at.is_none()
            && record.key.expires_at.is_none_or(|e| e > t)
            && record.key.epoch == user.token_epoch
            && user.is_active();
        if !valid {
            return Err(AuthError::Unauthenticated);
        }
        let stale = record
            .key
            .last_used_at
            .is_none_or(|last| last.secs_until(t) >= TOUCH_INTERVAL_SECS);
        if stale {
            self.repos.api_keys.touch(&record.key.id, t)?;
        }
        Ok(Authenticated {
            principal: Principal {
                user_id: Some(user.id.clone()),
                role: user.role,
                credential: Credential::ApiKey {
                    key_id: record.key.id,
                },
            },
            user,
        })
    }
}
