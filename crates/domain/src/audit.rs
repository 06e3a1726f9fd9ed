//! Audit log entries: every admin and security event.

use serde::{Deserialize, Serialize};

use crate::{Timestamp, UserId};

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Sequence number.
    pub id: i64,
    /// When it happened.
    pub at: Timestamp,
    /// Who did it (`None` for anonymous attempts and for the operator CLI).
    pub actor_id: Option<UserId>,
    /// The actor's name at the time (kept after the user is deleted).
    pub actor: Option<String>,
    /// What happened, e.g. `login.failed`, `user.created`.
    pub action: String,
    /// What it happened to (a user id, a key id, a username).
    pub target: Option<String>,
    /// Client address, when over HTTP.
    pub client_addr: Option<String>,
    /// Extra detail as JSON text.
    pub details: Option<String>,
    /// How many times it happened: repeats within one window (a throttled
    /// client retrying) are counted on one entry.
    pub repeats: i64,
    /// When the last repeat happened, if it repeated.
    pub last_at: Option<Timestamp>,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// When.
    pub at: Timestamp,
    /// Who (`None` when anonymous or the operator).
    pub actor_id: Option<UserId>,
    /// Who, by name.
    pub actor: Option<String>,
    /// What.
    pub action: String,
    /// To what.
    pub target: Option<String>,
    /// From where.
    pub client_addr: Option<String>,
    /// Extra detail as JSON text.
    pub details: Option<String>,
}

/// Filter and paging for audit listings (newest first).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this action; a trailing `.` matches a family (`login.`).
    pub action: Option<String>,
    /// Only events by this actor.
    pub actor_id: Option<UserId>,
    /// Only events about this target.
    pub target: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events with a sequence number above this (for following).
    pub after_id: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}
