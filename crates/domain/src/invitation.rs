//! Invitations: an administrator's one-time code with which someone creates
//! their own account, with the role the administrator chose. Only the
//! code's digest is stored; the record stays after use, revocation or
//! expiry.

use serde::{Deserialize, Serialize};

use crate::workspace::OwnerRef;
use crate::{InvitationId, Role, Timestamp, UserId};

/// Where an invitation stands, at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    /// Can still be accepted.
    Pending,
    /// An account was made with it.
    Used,
    /// Its time ran out unused.
    Expired,
    /// An administrator withdrew it unused.
    Revoked,
}

impl InvitationStatus {
    /// Every status, for exhaustive tests and help texts.
    pub const ALL: [InvitationStatus; 4] = [
        InvitationStatus::Pending,
        InvitationStatus::Used,
        InvitationStatus::Expired,
        InvitationStatus::Revoked,
    ];

    /// The lowercase name used in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Used => "used",
            InvitationStatus::Expired => "expired",
            InvitationStatus::Revoked => "revoked",
        }
    }
}

/// Who made an invitation: the account (gone once deleted, and none for the
/// operator's CLI) and its name as it was then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inviter {
    /// The inviting account, if it still exists.
    pub id: Option<UserId>,
    /// Its username, or `offgrid-admin` for the operator.
    pub name: String,
}

/// An invitation as listed: never its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    /// Row id.
    pub id: InvitationId,
    /// The role the new account gets.
    pub role: Role,
    /// The administrator's note (whom it is for).
    pub note: Option<String>,
    /// Who made it.
    pub created_by: Inviter,
    /// Creation time.
    pub created_at: Timestamp,
    /// It cannot be accepted from this time on.
    pub expires_at: Timestamp,
    /// When it was accepted.
    pub used_at: Option<Timestamp>,
    /// The account made with it (while that account exists).
    pub used_by: Option<OwnerRef>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

impl Invitation {
    /// Its status at `now`: revoked and used are final; otherwise pending
    /// until `expires_at`, expired from then on.
    pub fn status(&self, now: Timestamp) -> InvitationStatus {
        if self.revoked_at.is_some() {
            InvitationStatus::Revoked
        } else if self.used_at.is_some() {
            InvitationStatus::Used
        } else if now >= self.expires_at {
            InvitationStatus::Expired
        } else {
            InvitationStatus::Pending
        }
    }
}

/// An invitation to store. `Debug` hides the code's digest.
#[derive(Clone)]
pub struct NewInvitation {
    /// SHA-256 of the code.
    pub code_hash: Vec<u8>,
    /// The role the new account gets (never Guest).
    pub role: Role,
    /// The administrator's note.
    pub note: Option<String>,
    /// Who makes it.
    pub created_by: Inviter,
    /// Creation time.
    pub created_at: Timestamp,
    /// End of its validity.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvitation")
            .field("code_hash", &"<redacted>")
            .field("role", &self.role)
            .field("note", &self.note)
            .field("created_by", &self.created_by)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitation() -> Invitation {
        Invitation {
            id: InvitationId::from_string("i1"),
            role: Role::User,
            note: None,
            created_by: Inviter {
                id: None,
                name: "offgrid-admin".into(),
            },
            created_at: Timestamp(100),
            expires_at: Timestamp(200),
            used_at: None,
            used_by: None,
            revoked_at: None,
        }
    }

    #[test]
    fn status_is_revoked_or_used_for_good_else_pending_until_expiry() {
        let pending = invitation();
        assert_eq!(pending.status(Timestamp(199)), InvitationStatus::Pending);
        assert_eq!(pending.status(Timestamp(200)), InvitationStatus::Expired);
        let used = Invitation {
            used_at: Some(Timestamp(150)),
            ..invitation()
        };
        assert_eq!(used.status(Timestamp(500)), InvitationStatus::Used);
        let revoked = Invitation {
            revoked_at: Some(Timestamp(150)),
            ..invitation()
        };
        assert_eq!(revoked.status(Timestamp(100)), InvitationStatus::Revoked);
    }

    #[test]
    fn debug_never_shows_the_code_digest() {
        let new = NewInvitation {
            code_hash: vec![0xAB; 32],
            role: Role::Viewer,
            note: None,
            created_by: Inviter {
                id: None,
                name: "x".into(),
            },
            created_at: Timestamp(0),
            expires_at: Timestamp(1),
        };
        let text = format!("{new:?}");
        assert!(!text.contains("171") && text.contains("redacted"), "{text}");
    }
}
