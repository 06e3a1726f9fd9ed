//! Account changes: a user's own password change, and user management
//! (create, update, delete, password reset), whose callers check
//! `ManageUsers`.

use offgrid_domain::user::{Admission, AttemptKeys, NewUser, User, UserPatch};
use offgrid_domain::{Principal, RepoError, Role, Scope, UserId};

use super::{
    AccountInput, Actor, AuthService, IssuedKey, KeyIssuer, invalid, issuer_binding, now,
    validate_display_name, validate_email, validate_username,
};
use crate::AuthError;
use crate::password::{MAX_PASSWORD_CHARS, validate_password};

impl AuthService {
    /// Changes the principal's own password after checking the current one.
    /// Every other session and every API key of the user stops working; the
    /// session making the request stays valid.
    pub fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let id = principal
            .user_id
            .as_ref()
            .ok_or(AuthError::Unauthenticated)?;
        if id.is_system() {
            return Err(AuthError::SystemUser);
        }
        validate_password(new)?;
        if current.chars().count() > MAX_PASSWORD_CHARS {
            // Cannot be anyone's password; not worth a bcrypt run.
            return Err(AuthError::WrongCurrentPassword);
        }
        let user = self.repos.users.get(id)?;
        let creds = self
            .repos
            .users
            .find_for_login(&user.username)?
            .ok_or(AuthError::NotFound)?;
        // Wrong current passwords are throttled per user, counted before
        // the check like logins, so a stolen session cannot guess the
        // password at bcrypt speed.
        let policy = self.config.throttle;
        let key = format!("password:{id}");
        let keys = AttemptKeys {
            account: (&key, policy.user_threshold),
            address: None,
            known_device: false,
        };
        let t = now();
        self.housekeeping_if_due(t);
        let admission = self.admit(&keys, t)?;
        if let Admission::Refused { until, since, .. } = admission {
            self.audit_repeated(
                actor,
                "password.change_throttled",
                Some(id.to_string()),
                since,
            );
            return Err(AuthError::Throttled {
                retry_after_secs: t.secs_until(until).max(1),
            });
        }
        if !self.hasher.verify(current, &creds.password_hash) {
            self.audit(actor, "password.change_failed", Some(id.to_string()), None);
            return Err(AuthError::WrongCurrentPassword);
        }
        self.repos.throttle.attempt_succeeded(&keys)?;
        let hash = self.hasher.hash(new)?;
        self.repos
            .users
            .set_password(id, &hash, principal.session_id(), now())?;
        self.audit(actor, "password.changed", Some(id.to_string()), None);
        Ok(())
    }

    pub(super) fn new_user(&self, input: AccountInput) -> Result<NewUser, AuthError> {
        let username = input.username.trim().to_owned();
        validate_username(&username)?;
        let email = input
            .email
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty());
        if let Some(email) = &email {
            validate_email(email)?;
        }
        let display_name = input
            .display_name
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if let Some(d) = &display_name {
            validate_display_name(d)?;
        }
        let password_hash = self.hasher.hash(&input.password)?;
        Ok(NewUser {
            username,
            email,
            display_name,
            role: input.role,
            password_hash,
        })
    }

    /// Creates an account and, when `key_issuer` is given, a first API key
    /// named `default` (shown once).
    pub fn create_user(
        &self,
        input: AccountInput,
        key_issuer: Option<KeyIssuer<'_>>,
        actor: &Actor,
    ) -> Result<(User, Option<IssuedKey>), AuthError> {
        if let Some(issuer) = key_issuer {
            self.check_may_create_keys(issuer)?;
            // Refuse before creating anyone when the issuer has already
            // lost the epoch they were verified at; the key's insert checks
            // it again, atomically.
            if let Some((id, verified)) = issuer_binding(issuer)
                && self.repos.users.get(&id)?.token_epoch != verified
            {
                return Err(AuthError::Unauthenticated);
            }
        }
        let new = self.new_user(input)?;
        let role = new.role;
        let user = self.repos.users.create(new, now())?;
        self.audit(
            actor,
            "user.created",
            Some(user.id.to_string()),
            Some(serde_json::json!({"username": user.username, "role": role}).to_string()),
        );
        let key = match key_issuer {
            Some(issuer) => Some(self.store_api_key(
                &Scope::owned_by(user.id.clone()),
                &user,
                user.token_epoch,
                issuer_binding(issuer),
                "default",
                None,
                false,
                actor,
            )?),
            None => None,
        };
        Ok((user, key))
    }

    /// Changes role, display name, e-mail or disabled state. A role change
    /// or disabling ends every session and key of the user at once.
    pub fn update_user(
        &self,
        id: &UserId,
        patch: UserPatch,
        actor: &Actor,
    ) -> Result<User, AuthError> {
        if let Some(d) = &patch.display_name {
            validate_display_name(d)?;
        }
        if let Some(Some(e)) = &patch.email {
            validate_email(e)?;
        }
        let before = self.repos.users.get(id)?;
        let user = self.repos.users.update(id, &patch, now())?;
        let details = serde_json::json!({
            "role": patch.role.filter(|r| *r != before.role).map(|r| [before.role, r]),
            "disabled": patch.disabled.filter(|d| *d != before.disabled),
            "display_name": patch.display_name.is_some(),
            "email": patch.email.is_some(),
        });
        self.audit(
            actor,
            "user.updated",
            Some(id.to_string()),
            Some(details.to_string()),
        );
        Ok(user)
    }

    /// Deletes an account with its keys and sessions.
    pub fn delete_user(
        &self,
        id: &UserId,
        transfer_to: Option<&UserId>,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let user = self.repos.users.get(id)?;
        let heir = match transfer_to {
            None => None,
            Some(to) => {
                let heir = match self.repos.users.get(to) {
                    Ok(u) if !u.system => u,
                    Ok(_) | Err(RepoError::NotFound) => {
                        return Err(invalid("transfer_to", "no such user"));
                    }
                    Err(e) => return Err(e.into()),
                };
                if heir.id == user.id {
                    return Err(invalid(
                        "transfer_to",
                        "a user cannot inherit from themselves",
                    ));
                }
                if heir.disabled || !matches!(heir.role, Role::User | Role::Admin) {
                    return Err(invalid(
                        "transfer_to",
                        "only an enabled User or Admin can own sessions and presets",
                    ));
                }
                Some(heir)
            }
        };
        self.repos.users.delete(id, heir.as_ref().map(|h| &h.id))?;
        let mut details = serde_json::json!({"username": user.username});
        if let Some(heir) = &heir {
            details["transfer_to"] = serde_json::json!(heir.username);
        }
        self.audit(
            actor,
            "user.deleted",
            Some(id.to_string()),
            Some(details.to_string()),
        );
        Ok(())
    }

    /// Sets a new password for another user; all their sessions and keys end.
    pub fn reset_password(&self, id: &UserId, new: &str, actor: &Actor) -> Result<(), AuthError> {
        let user = self.repos.users.get(id)?;
        if user.system {
            return Err(AuthError::SystemUser);
        }
        let hash = self.hasher.hash(new)?;
        self.repos.users.set_password(id, &hash, None, now())?;
        self.audit(actor, "password.reset", Some(id.to_string()), None);
        Ok(())
    }
}
