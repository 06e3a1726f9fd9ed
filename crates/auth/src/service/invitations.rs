//! Invitations: administrators make, list and revoke them (their callers
//! check `ManageUsers`); anyone holding a code accepts it once, which
//! creates their account with the invited role and signs them in.
//!
//! Accepting is throttled per client address like setup codes, counted
//! before the code is looked at; a wrong, used, revoked or expired code is
//! one error, [`AuthError::InvalidInvitation`]. The new account's fields
//! are checked before the code (so a mistake costs neither the code nor a
//! throttle count), the password is hashed only once the code was found
//! pending, and storage decides for good in one transaction, so one code
//! makes one account however many try at once.

use offgrid_domain::invitation::{Invitation, Inviter, NewInvitation};
use offgrid_domain::user::{Admission, AttemptKeys};
use offgrid_domain::workspace::{Cursor, CursorPage};
use offgrid_domain::{InvitationId, RepoError, Role};

use super::{
    AcceptInvitation, AccountInput, Actor, AuthService, InvitationRequest, IssuedInvitation,
    LoginOutcome, address_key, invalid, now, validate_email, validate_username,
};
use crate::password::validate_password;
use crate::requests::INVITATION_EXPIRY_HOURS;
use crate::{AuthError, invite_code};

/// Largest page of invitations.
const MAX_INVITATION_PAGE: i64 = 100;
/// Page size when none is asked for.
const DEFAULT_PAGE: i64 = 50;
/// Longest note on an invitation.
const MAX_NOTE_CHARS: usize = 200;

impl AuthService {
    /// Makes an invitation for an account with `request.role`, valid for
    /// `request.expires_in_hours`. The code is in the answer only.
    pub fn create_invitation(
        &self,
        request: InvitationRequest,
        actor: &Actor,
    ) -> Result<IssuedInvitation, AuthError> {
        if request.role == Role::Guest {
            return Err(invalid(
                "role",
                "guests need no account (anyone may chat as a guest when guest_access is on); invite a viewer, user or admin",
            ));
        }
        if !INVITATION_EXPIRY_HOURS.contains(&request.expires_in_hours) {
            return Err(invalid(
                "expires_in_hours",
                format!(
                    "must be between {} and {}",
                    INVITATION_EXPIRY_HOURS.start(),
                    INVITATION_EXPIRY_HOURS.end()
                ),
            ));
        }
        let note = request
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if let Some(n) = &note
            && (n.chars().count() > MAX_NOTE_CHARS || n.chars().any(char::is_control))
        {
            return Err(invalid(
                "note",
                format!("must be at most {MAX_NOTE_CHARS} characters without control characters"),
            ));
        }
        let generated = invite_code::generate();
        let t = now();
        let invitation = self.repos.invitations.create(NewInvitation {
            code_hash: generated.digest,
            role: request.role,
            note,
            created_by: self.inviter(actor)?,
            created_at: t,
            expires_at: t.plus_secs(i64::from(request.expires_in_hours) * 3600),
        })?;
        self.audit(
            actor,
            "invitation.created",
            Some(invitation.id.to_string()),
            Some(
                serde_json::json!({
                    "role": invitation.role,
                    "expires_at": invitation.expires_at,
                })
                .to_string(),
            ),
        );
        Ok(IssuedInvitation {
            invitation,
            code: generated.code,
        })
    }

    /// Who is inviting: the caller's account, or the operator by name.
    fn inviter(&self, actor: &Actor) -> Result<Inviter, AuthError> {
        Ok(match &actor.user_id {
            Some(id) if !id.is_system() => Inviter {
                id: Some(id.clone()),
                name: self.repos.users.get(id)?.username,
            },
            _ => Inviter {
                id: None,
                name: actor
                    .name
                    .clone()
                    .unwrap_or_else(|| "offgrid-admin".to_owned()),
            },
        })
    }

    /// Invitations, newest first: `limit` 1 to [`MAX_INVITATION_PAGE`]
    /// (default 50), from the `next_cursor` of the previous page.
    pub fn list_invitations(
        &self,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> Result<CursorPage<Invitation>, AuthError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_INVITATION_PAGE).contains(&limit) {
            return Err(invalid(
                "limit",
                format!("must be between 1 and {MAX_INVITATION_PAGE}"),
            ));
        }
        let cursor = cursor
            .map(|c| {
                Cursor::decode(c)
                    .ok_or_else(|| invalid("cursor", "not a cursor this server gave out"))
            })
            .transpose()?;
        Ok(self.repos.invitations.list(limit, cursor.as_ref())?)
    }

    /// Revokes an unused invitation (again: no change);
    /// [`AuthError::InvitationUsed`] once it made an account.
    pub fn revoke_invitation(
        &self,
        id: &InvitationId,
        actor: &Actor,
    ) -> Result<Invitation, AuthError> {
        let (invitation, revoked_now) = match self.repos.invitations.revoke(id, now()) {
            Err(RepoError::Conflict(field)) if field == "used" => {
                return Err(AuthError::InvitationUsed);
            }
            other => other?,
        };
        if revoked_now {
            self.audit(actor, "invitation.revoked", Some(id.to_string()), None);
        }
        Ok(invitation)
    }

    /// Creates the account an invitation offers and signs it in, answering
    /// like [`AuthService::login`]. The account's fields follow the rules
    /// of [`AuthService::create_user`] and are checked first; then the
    /// attempt is counted against the client's address and the code looked
    /// up; only a pending code gets its password hashed and its account.
    pub fn accept_invitation(&self, req: &AcceptInvitation) -> Result<LoginOutcome, AuthError> {
        let username = req.username.trim();
        validate_username(username)?;
        if let Some(email) = req
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            validate_email(email)?;
        }
        validate_password(&req.password)?;

        let actor = Actor {
            user_id: None,
            name: None,
            client_addr: req.client_addr.clone(),
        };
        let policy = self.config.throttle;
        let key = format!(
            "invitation:{}",
            req.client_addr
                .as_deref()
                .map_or_else(|| "unknown".to_owned(), address_key)
        );
        let keys = AttemptKeys {
            account: (&key, policy.user_threshold),
            address: None,
            known_device: false,
        };
        let t = now();
        self.housekeeping_if_due(t);
        if let Admission::Refused { until, since, .. } = self.admit(&keys, t)? {
            self.audit_repeated(&actor, "invitation.throttled", None, since);
            return Err(AuthError::Throttled {
                retry_after_secs: t.secs_until(until).max(1),
            });
        }
        let refused = || {
            self.audit(&actor, "invitation.accept_failed", None, None);
            AuthError::InvalidInvitation
        };
        let Some(digest) = invite_code::digest(&req.code) else {
            return Err(refused());
        };
        let Some(pending) = self.repos.invitations.find_pending(&digest, t)? else {
            return Err(refused());
        };
        // The code is right: its holder's own mistakes (a taken name) are
        // not guesses.
        self.repos.throttle.attempt_succeeded(&keys)?;
        let new = self.new_user(AccountInput {
            username: username.to_owned(),
            password: req.password.clone(),
            email: req.email.clone(),
            display_name: None,
            role: pending.role,
        })?;
        let (invitation, user) = match self.repos.invitations.accept(&digest, new, now()) {
            // Used, revoked or expired since the look-up.
            Err(RepoError::NotFound) => return Err(refused()),
            other => other?,
        };
        let actor = Actor {
            user_id: Some(user.id.clone()),
            ..actor
        };
        self.audit(
            &actor,
            "invitation.accepted",
            Some(invitation.id.to_string()),
            Some(
                serde_json::json!({
                    "user_id": user.id,
                    "username": user.username,
                    "role": user.role,
                })
                .to_string(),
            ),
        );
        self.open_session(
            &user,
            false,
            req.client_addr.clone(),
            req.user_agent.clone(),
            now(),
        )
    }
}
