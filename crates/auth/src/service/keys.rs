//! API keys: creating them (with the rule on who may mint keys and the
//! token-epoch binding), listing and revoking them.

use offgrid_domain::user::{ApiKey, NewApiKey, User};
use offgrid_domain::{ApiKeyId, Credential, RepoError, Scope, Timestamp, UserId};

use super::{Actor, AuthService, IssuedKey, KeyIssuer, KeyRequest, invalid, issuer_binding, now};
use crate::{AuthError, api_key};

impl AuthService {
    /// Creates a key for `request.owner` (who must be inside `scope`), asked
    /// for by `issuer`. The key is stored only while the owner is still at
    /// the token epoch the issuer verified (for a caller's own key: the one
    /// read with their credential), so a password change, reset, role change
    /// or disabling that lands meanwhile is not outlived by the new key.
    pub fn create_api_key(
        &self,
        issuer: KeyIssuer<'_>,
        scope: &Scope,
        request: KeyRequest,
        actor: &Actor,
    ) -> Result<IssuedKey, AuthError> {
        self.check_may_create_keys(issuer)?;
        let owner = self.repos.users.get(&request.owner)?;
        let epoch = match issuer {
            KeyIssuer::Caller(caller) if caller.user.id == owner.id => caller.user.token_epoch,
            _ => owner.token_epoch,
        };
        // An admin issuing a key for someone else must still be at the
        // epoch their own credential was verified at when it is stored.
        let binding = issuer_binding(issuer).filter(|(id, _)| *id != owner.id);
        self.store_api_key(
            scope,
            &owner,
            epoch,
            binding,
            &request.name,
            request.expires_at,
            request.can_create_keys,
            actor,
        )
    }

    /// Logins may create API keys; an API key only if it was created with
    /// `can_create_keys`, so a leaked key cannot mint its own successors.
    pub(super) fn check_may_create_keys(&self, issuer: KeyIssuer<'_>) -> Result<(), AuthError> {
        let KeyIssuer::Caller(caller) = issuer else {
            return Ok(());
        };
        let Credential::ApiKey { key_id } = &caller.principal.credential else {
            return Ok(());
        };
        let me = &caller.user.id;
        let key = self
            .repos
            .api_keys
            .get(&Scope::owned_by(me.clone()), me, key_id)?;
        if key.can_create_keys {
            Ok(())
        } else {
            Err(AuthError::KeyCannotCreateKeys)
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn store_api_key(
        &self,
        scope: &Scope,
        owner: &User,
        epoch: i64,
        issuer: Option<(UserId, i64)>,
        name: &str,
        expires_at: Option<Timestamp>,
        can_create_keys: bool,
        actor: &Actor,
    ) -> Result<IssuedKey, AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid("name", "must be 1 to 100 characters"));
        }
        if expires_at.is_some_and(|e| e <= now()) {
            return Err(invalid("expires_at", "must be in the future"));
        }
        if owner.system {
            return Err(AuthError::SystemUser);
        }
        let owner = &owner.id;
        // A prefix clash is astronomically unlikely; retry a few times anyway.
        for _ in 0..3 {
            let generated = api_key::generate();
            let stored = self.repos.api_keys.create(
                scope,
                NewApiKey {
                    user_id: owner.clone(),
                    name: name.to_owned(),
                    prefix: generated.prefix.clone(),
                    secret_hash: generated.digest.clone(),
                    expires_at,
                    created_at: now(),
                    epoch,
                    can_create_keys,
                    issuer: issuer.clone(),
                },
            );
            match stored {
                Ok(key) => {
                    self.audit(
                        actor,
                        "api_key.created",
                        Some(key.id.to_string()),
                        Some(
                            serde_json::json!({
                                "owner": owner,
                                "name": key.name,
                                "can_create_keys": key.can_create_keys,
                            })
                            .to_string(),
                        ),
                    );
                    return Ok(IssuedKey {
                        key,
                        secret: generated.secret,
                    });
                }
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::Internal(
            "could not generate a unique key prefix".to_owned(),
        ))
    }

    /// Keys of `owner` visible in `scope`.
    pub fn list_api_keys(&self, scope: &Scope, owner: &UserId) -> Result<Vec<ApiKey>, AuthError> {
        Ok(self.repos.api_keys.list(scope, owner)?)
    }

    /// Revokes a key of `owner` visible in `scope`.
    pub fn revoke_api_key(
        &self,
        scope: &Scope,
        owner: &UserId,
        id: &ApiKeyId,
        actor: &Actor,
    ) -> Result<ApiKey, AuthError> {
        let key = self.repos.api_keys.revoke(scope, owner, id, now())?;
        self.audit(
            actor,
            "api_key.revoked",
            Some(id.to_string()),
            Some(serde_json::json!({"owner": owner}).to_string()),
        );
        Ok(key)
    }
}
