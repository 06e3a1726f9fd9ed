//! Bodies of the invitation routes: making one (the code comes back once),
//! the listing (never a code) and accepting one, which answers like a login
//! ([`crate::wire::LoginResponse`]).

use offgrid_domain::invitation::{Invitation, InvitationStatus};
use offgrid_domain::{InvitationId, Role, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RoleSchema;

fn default_hours() -> u32 {
    offgrid_auth::DEFAULT_INVITATION_HOURS
}

/// `POST /v1/invitations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    /// The new account's role: admin, user or viewer (guests need no
    /// account).
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    /// How long the code works, 1 to 720 hours (default 72).
    #[serde(default = "default_hours")]
    #[schema(default = 72, minimum = 1, maximum = 720)]
    pub expires_in_hours: u32,
    /// Whom it is for, up to 200 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /v1/invitations`: the code, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedInvitation {
    /// Invitation id (for listing and revoking).
    #[schema(value_type = String)]
    pub id: InvitationId,
    /// The code to hand over; never shown again.
    pub code: String,
    /// `/invite/{code}`: where a browser UI takes the code.
    pub path: String,
    /// When the code stops working (RFC 3339).
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
}

/// Where an invitation stands (`offgrid_domain::invitation::InvitationStatus`).
#[derive(Serialize, ToSchema)]
#[schema(as = InvitationStatus)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatusSchema {
    /// Can still be accepted.
    Pending,
    /// Made an account.
    Used,
    /// Ran out unused.
    Expired,
    /// Withdrawn unused.
    Revoked,
}

/// Who made an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationCreator {
    /// The inviting account; null for `offgrid-admin` or once deleted.
    #[schema(value_type = Option<String>)]
    pub id: Option<UserId>,
    /// Its username, or `offgrid-admin`.
    pub name: String,
}

/// The account an invitation made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitedUser {
    /// Its id.
    #[schema(value_type = String)]
    pub id: UserId,
    /// Its username.
    pub username: String,
}

/// An invitation as listed: never its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Invitation)]
pub struct InvitationInfo {
    /// Invitation id.
    #[schema(value_type = String)]
    pub id: InvitationId,
    /// `invitation`.
    #[schema(pattern = "^invitation$")]
    pub object: String,
    /// The role the account gets.
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    /// Where it stands now.
    #[schema(value_type = InvitationStatusSchema)]
    pub status: InvitationStatus,
    /// Whom it is for.
    pub note: Option<String>,
    /// Who made it.
    pub created_by: InvitationCreator,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    /// When it was accepted.
    #[schema(value_type = Option<String>)]
    pub used_at: Option<Timestamp>,
    /// The account it made (null once that account is deleted).
    pub used_by: Option<InvitedUser>,
    /// When it was revoked.
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<Timestamp>,
}

impl InvitationInfo {
    /// An invitation as it stands at `now`.
    pub fn new(i: Invitation, now: Timestamp) -> Self {
        InvitationInfo {
            object: "invitation".to_owned(),
            status: i.status(now),
            id: i.id,
            role: i.role,
            note: i.note,
            created_by: InvitationCreator {
                id: i.created_by.id,
                name: i.created_by.name,
            },
            created_at: i.created_at,
            expires_at: i.expires_at,
            used_at: i.used_at,
            used_by: i.used_by.map(|u| InvitedUser {
                id: u.id,
                username: u.username,
            }),
            revoked_at: i.revoked_at,
        }
    }
}

/// A page of invitations, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationList {
    /// `list`.
    pub object: String,
    /// The invitations.
    pub data: Vec<InvitationInfo>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `POST /v1/auth/accept-invite`: the code and the new account. The
/// username, e-mail and password follow the rules of `POST /v1/users`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The invitation code (case, dashes and spaces do not matter).
    pub code: String,
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Optional e-mail.
    #[serde(default)]
    pub email: Option<String>,
}

impl std::fmt::Debug for AcceptInvitationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptInvitationRequest")
            .field("code", &"<redacted>")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("email", &self.email)
            .finish()
    }
}
