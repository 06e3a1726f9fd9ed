//! Repository traits: declared here, implemented by the storage crate.
//!
//! Methods are synchronous (SQLite is blocking); callers on an async runtime
//! run them on a blocking pool. Methods on tenant-owned rows take a [`Scope`]
//! so the owner filter is part of the call, not something to remember.

use crate::audit::{AuditEvent, AuditQuery, NewAuditEvent};
use crate::invitation::{Invitation, NewInvitation};
use crate::rag::{
    ChunkHit, Collection, CollectionPatch, CollectionQuery, Document, Indexed, NewCollection,
    NewDocument, StatusCounts, StoredEmbedding,
};
use crate::user::{
    Admission, ApiKey, ApiKeyRecord, AttemptKeys, LoginSession, NewApiKey, NewUser, Page,
    ThrottleState, User, UserCredentials, UserPatch, UserQuery,
};
use crate::workspace::{
    ChatMessage, ChatSession, ChatSessionPatch, Cursor, CursorPage, Grant, GrantLevel,
    NewChatMessage, NewChatSession, Preset, PresetFields, Reader, ResourceKind, SessionQuery,
    Visible,
};
use crate::{
    ApiKeyId, ChatSessionId, CollectionId, DocumentId, InvitationId, PresetId, RepoError, Scope,
    SessionId, Timestamp, UserId,
};

/// User accounts.
pub trait UserRepository: Send + Sync {
    /// Creates a user. `Conflict("username")` / `Conflict("email")` when taken.
    fn create(&self, user: NewUser, now: Timestamp) -> Result<User, RepoError>;

    /// Creates the first administrator, atomically refusing with
    /// `Conflict("admin")` when any admin account already exists. With
    /// `adopt`, what the built-in `system` user owns (the work of
    /// single-user mode: chat sessions, presets) becomes the new admin's in
    /// the same transaction.
    fn create_first_admin(
        &self,
        user: NewUser,
        now: Timestamp,
        adopt: bool,
    ) -> Result<User, RepoError>;

    /// A user by id (the system user included).
    fn get(&self, id: &UserId) -> Result<User, RepoError>;

    /// A user by exact username (case-insensitive).
    fn get_by_username(&self, username: &str) -> Result<User, RepoError>;

    /// The account and hash for a login name: a username (case-insensitive)
    /// or an e-mail. Never returns the system user.
    fn find_for_login(&self, login: &str) -> Result<Option<UserCredentials>, RepoError>;

    /// Loginable users (not the system user), filtered and paged.
    fn list(&self, query: &UserQuery) -> Result<Page<User>, RepoError>;

    /// Applies a patch. Refuses (`LastAdmin`) to demote or disable the last
    /// active admin and (`SystemUser`) to promote or enable the system user.
    /// A role change or disabling bumps the token epoch, which ends every
    /// session and API key of the user.
    fn update(&self, id: &UserId, patch: &UserPatch, now: Timestamp) -> Result<User, RepoError>;

    /// Stores a new password hash and bumps the token epoch. The session
    /// `keep`, if given, moves to the new epoch so the caller stays logged in.
    fn set_password(
        &self,
        id: &UserId,
        password_hash: &str,
        keep: Option<&SessionId>,
        now: Timestamp,
    ) -> Result<(), RepoError>;

    /// Deletes a user and, by cascade, their keys, login sessions, chat
    /// sessions, presets, the shares they held and the shares on their
    /// sessions. With `transfer_to` (an enabled User or Admin, else
    /// `Conflict("transfer_to")`), their chat sessions and presets first
    /// become that user's, without those shares, in the same transaction.
    /// Refuses `LastAdmin` and `SystemUser`; `NotFound` if either user is
    /// missing.
    fn delete(&self, id: &UserId, transfer_to: Option<&UserId>) -> Result<(), RepoError>;

    /// Whether an active (enabled) admin exists.
    fn admin_exists(&self) -> Result<bool, RepoError>;

    /// Records a successful login.
    fn record_login(&self, id: &UserId, now: Timestamp) -> Result<(), RepoError>;
}

/// Per-user API keys.
pub trait ApiKeyRepository: Send + Sync {
    /// Stores a key for `key.user_id`, which must be inside `scope`
    /// (`NotFound` otherwise). Atomically refuses with `StaleEpoch` unless
    /// the owner's token epoch is still `key.epoch`.
    fn create(&self, scope: &Scope, key: NewApiKey) -> Result<ApiKey, RepoError>;

    /// One key of `owner` visible in `scope` (`NotFound` otherwise).
    fn get(&self, scope: &Scope, owner: &UserId, id: &ApiKeyId) -> Result<ApiKey, RepoError>;

    /// The keys of `owner` visible in `scope`, newest first, revoked ones
    /// included.
    fn list(&self, scope: &Scope, owner: &UserId) -> Result<Vec<ApiKey>, RepoError>;

    /// Revokes a key of `owner` visible in `scope`; `NotFound` when there is
    /// no such key for that owner in scope.
    fn revoke(
        &self,
        scope: &Scope,
        owner: &UserId,
        id: &ApiKeyId,
        now: Timestamp,
    ) -> Result<ApiKey, RepoError>;

    /// Authentication lookup by public prefix: the key and its owner. Not
    /// scoped, because the caller is not known yet.
    fn find_by_prefix(&self, prefix: &str) -> Result<Option<(ApiKeyRecord, User)>, RepoError>;

    /// Records a use of the key (callers may rate-limit how often).
    fn touch(&self, id: &ApiKeyId, now: Timestamp) -> Result<(), RepoError>;
}

/// Login sessions, one per issued token.
pub trait SessionRepository: Send + Sync {
    /// Stores a new session. Atomically refuses with `StaleEpoch` unless the
    /// owner's token epoch is still `session.epoch` (the one read when the
    /// password was verified).
    fn create(&self, session: LoginSession) -> Result<LoginSession, RepoError>;

    /// Authentication lookup: the session and its owner.
    fn find(&self, id: &SessionId) -> Result<Option<(LoginSession, User)>, RepoError>;

    /// Revokes one session visible in `scope` (`NotFound` otherwise).
    fn revoke(&self, scope: &Scope, id: &SessionId, now: Timestamp) -> Result<(), RepoError>;

    /// Active sessions of `owner` visible in `scope`.
    fn list(
        &self,
        scope: &Scope,
        owner: &UserId,
        now: Timestamp,
    ) -> Result<Vec<LoginSession>, RepoError>;

    /// Records activity on a session.
    fn touch(&self, id: &SessionId, now: Timestamp) -> Result<(), RepoError>;
}

/// Login throttling counters keyed by `account:<user id>`, `login:<name>`
/// (a login naming no account), `addr:<ip>` and the like.
pub trait ThrottleRepository: Send + Sync {
    /// Judges one attempt and, when it may go ahead, counts it as a failure
    /// on its keys before any password is verified, all in one write
    /// transaction: concurrent attempts see each other's counts, so no more
    /// than the threshold get through before the lock. A success undoes the
    /// count with [`ThrottleRepository::attempt_succeeded`].
    ///
    /// Refused without counting while the address is locked, or while the
    /// account is locked and the client is not a known device of it
    /// (`keys.known_device`): a locked account still lets its owner's known
    /// devices in, so nobody can lock an owner out from elsewhere, and
    /// nobody else gets a password check, so rotating addresses does not
    /// buy guesses. `backoff(failures, threshold)` gives the lock length.
    fn begin_attempt(
        &self,
        keys: &AttemptKeys<'_>,
        now: Timestamp,
        backoff: &dyn Fn(u32, u32) -> i64,
    ) -> Result<Admission, RepoError>;

    /// The same judgement as [`ThrottleRepository::begin_attempt`], read
    /// only: refusals are decided without a write (nothing is counted).
    /// An `Admitted` answer is advisory; `begin_attempt` decides again.
    fn check(&self, keys: &AttemptKeys<'_>, now: Timestamp) -> Result<Admission, RepoError>;

    /// Forgets counters idle for a day and no longer locked; returns how
    /// many. Run on a timer (at most once a minute), not per attempt.
    fn prune_stale(&self, now: Timestamp) -> Result<u64, RepoError>;

    /// Undoes a successful attempt's count: the account key is forgotten,
    /// the address gives back the one failure `begin_attempt` counted.
    fn attempt_succeeded(&self, keys: &AttemptKeys<'_>) -> Result<(), RepoError>;

    /// Current state for a key (zero failures when unknown).
    fn get(&self, key: &str) -> Result<ThrottleState, RepoError>;

    /// Atomically counts one more failure and sets the lock to
    /// `now + backoff(failures)` seconds (no lock when it returns 0).
    fn record_failure(
        &self,
        key: &str,
        now: Timestamp,
        backoff: &dyn Fn(u32) -> i64,
    ) -> Result<ThrottleState, RepoError>;

    /// Forgets a key's failures.
    fn reset(&self, key: &str) -> Result<(), RepoError>;
}

/// The audit log.
pub trait AuditRepository: Send + Sync {
    /// Appends an event.
    fn append(&self, event: NewAuditEvent) -> Result<(), RepoError>;

    /// Appends an event seen `repeats` times, unless one with the same
    /// action, target and client address was recorded at or after `since`:
    /// then that entry counts `repeats` more instead, so a flood of the same
    /// event adds no rows.
    fn append_coalesced(
        &self,
        event: NewAuditEvent,
        since: Timestamp,
        repeats: u32,
    ) -> Result<(), RepoError>;

    /// Deletes the events recorded before `before`; returns how many.
    fn prune(&self, before: Timestamp) -> Result<u64, RepoError>;

    /// Events, newest first.
    fn list(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, RepoError>;
}

/// Token usage records.
pub trait UsageRepository: Send + Sync {
    /// Records one request.
    fn record(&self, usage: crate::usage::NewUsage) -> Result<(), RepoError>;

    /// Totals per user and model since `since`, for the users in `scope`
    /// (anonymous guests' usage only with an unrestricted scope).
    fn totals(
        &self,
        scope: &Scope,
        since: Timestamp,
    ) -> Result<Vec<crate::usage::UsageTotal>, RepoError>;
}

/// Benchmark runs: machine-wide figures, not anyone's data (every run is
/// listed to whoever may see the models).
pub trait BenchmarkRepository: Send + Sync {
    /// Records a run of `user` (None: no account) and returns it.
    fn record(
        &self,
        user: Option<&UserId>,
        figures: crate::benchmark::BenchmarkFigures,
        at: Timestamp,
    ) -> Result<crate::benchmark::BenchmarkRun, RepoError>;

    /// The newest `limit` runs, newest first (of one model, if given).
    fn recent(
        &self,
        model: Option<&str>,
        limit: i64,
    ) -> Result<Vec<crate::benchmark::BenchmarkRun>, RepoError>;
}

/// Chat sessions and their messages. Every method takes the [`Reader`]:
/// a session the reader may not see at all (not theirs, not shared with
/// them, and they do not see everything) is `NotFound`, exactly like one
/// that does not exist. What the reader may *do* with a visible session
/// is the policy's decision, from [`Visible::shared`].
pub trait ChatSessionRepository: Send + Sync {
    /// Creates a session for `new.owner`.
    fn create(&self, new: NewChatSession, now: Timestamp) -> Result<ChatSession, RepoError>;

    /// One session as the reader sees it.
    fn get(&self, reader: &Reader, id: &ChatSessionId) -> Result<Visible<ChatSession>, RepoError>;

    /// Sessions by last change, newest first.
    fn list(
        &self,
        reader: &Reader,
        query: &SessionQuery,
    ) -> Result<CursorPage<Visible<ChatSession>>, RepoError>;

    /// Applies a patch to a session the reader can see.
    fn update(
        &self,
        reader: &Reader,
        id: &ChatSessionId,
        patch: &ChatSessionPatch,
        now: Timestamp,
    ) -> Result<ChatSession, RepoError>;

    /// Deletes a session the reader can see, its messages and its shares.
    fn delete(&self, reader: &Reader, id: &ChatSessionId) -> Result<(), RepoError>;

    /// Appends messages, in order, in one transaction.
    fn append(
        &self,
        reader: &Reader,
        id: &ChatSessionId,
        messages: &[NewChatMessage],
        now: Timestamp,
    ) -> Result<Vec<ChatMessage>, RepoError>;

    /// The messages, oldest first.
    fn messages(&self, reader: &Reader, id: &ChatSessionId) -> Result<Vec<ChatMessage>, RepoError>;

    /// The latest messages whose contents total at most `max_bytes`,
    /// oldest first, and how many older ones were left out.
    fn recent_messages(
        &self,
        reader: &Reader,
        id: &ChatSessionId,
        max_bytes: usize,
    ) -> Result<(Vec<ChatMessage>, usize), RepoError>;
}

/// RAG collections, their documents and chunks. Like
/// [`ChatSessionRepository`], every method but the indexer's takes the
/// [`Reader`], and a collection the reader may not see is `NotFound`, its
/// documents and chunks with it.
pub trait CollectionRepository: Send + Sync {
    /// Creates a collection for `new.owner`.
    fn create(&self, new: NewCollection, now: Timestamp) -> Result<Collection, RepoError>;

    /// One collection as the reader sees it.
    fn get(&self, reader: &Reader, id: &CollectionId) -> Result<Visible<Collection>, RepoError>;

    /// Collections by last change, newest first.
    fn list(
        &self,
        reader: &Reader,
        query: &CollectionQuery,
    ) -> Result<CursorPage<Visible<Collection>>, RepoError>;

    /// Applies a patch to a collection the reader can see.
    fn update(
        &self,
        reader: &Reader,
        id: &CollectionId,
        patch: &CollectionPatch,
        now: Timestamp,
    ) -> Result<Collection, RepoError>;

    /// Deletes a collection the reader can see, its documents, chunks and
    /// shares.
    fn delete(&self, reader: &Reader, id: &CollectionId) -> Result<(), RepoError>;

    /// Adds a document as `indexing`.
    fn add_document(
        &self,
        reader: &Reader,
        id: &CollectionId,
        new: &NewDocument,
        now: Timestamp,
    ) -> Result<Document, RepoError>;

    /// Documents by upload, newest first (the cursor's `updated_at` is the
    /// upload time of the previous page's last row).
    fn documents(
        &self,
        reader: &Reader,
        id: &CollectionId,
        limit: i64,
        cursor: Option<&Cursor>,
    ) -> Result<CursorPage<Document>, RepoError>;

    /// One document.
    fn document(
        &self,
        reader: &Reader,
        id: &CollectionId,
        document: &DocumentId,
    ) -> Result<Document, RepoError>;

    /// Deletes a document and its chunks.
    fn delete_document(
        &self,
        reader: &Reader,
        id: &CollectionId,
        document: &DocumentId,
    ) -> Result<(), RepoError>;

    /// The indexer's: in one transaction, stores a document's chunks and
    /// marks it ready, or marks it failed. `None` when the document is no
    /// longer `indexing` (deleted meanwhile, with its collection or its
    /// owner): nothing is written.
    fn finish_document(
        &self,
        document: &DocumentId,
        outcome: &Indexed,
        now: Timestamp,
    ) -> Result<Option<Document>, RepoError>;

    /// The indexer's, at startup: marks every document still `indexing`
    /// failed with `message` (its indexing died with the last process).
    fn fail_unfinished(&self, message: &str, now: Timestamp) -> Result<u64, RepoError>;

    /// The embeddings of a collection's ready chunks, by chunk id.
    fn embeddings(
        &self,
        reader: &Reader,
        id: &CollectionId,
    ) -> Result<Vec<StoredEmbedding>, RepoError>;

    /// The chunks with these ids that still exist in collections the
    /// reader can see, with their documents and collections.
    fn chunks(&self, reader: &Reader, ids: &[i64]) -> Result<Vec<ChunkHit>, RepoError>;

    /// Documents per status in the collections the reader can see among
    /// `ids`.
    fn status_counts(
        &self,
        reader: &Reader,
        ids: &[CollectionId],
    ) -> Result<StatusCounts, RepoError>;
}

/// Presets. A reader sees their own, every public one, and (reading
/// everything) every preset; anything else is `NotFound`.
pub trait PresetRepository: Send + Sync {
    /// Creates a preset owned by `owner`.
    fn create(
        &self,
        owner: &UserId,
        fields: &PresetFields,
        now: Timestamp,
    ) -> Result<Preset, RepoError>;

    /// One preset the reader can see.
    fn get(&self, reader: &Reader, id: &PresetId) -> Result<Preset, RepoError>;

    /// The reader's own and the public presets, by last change, newest
    /// first.
    fn list(
        &self,
        reader: &Reader,
        limit: i64,
        cursor: Option<&Cursor>,
    ) -> Result<CursorPage<Preset>, RepoError>;

    /// Replaces the fields of a preset the reader can see.
    fn update(
        &self,
        reader: &Reader,
        id: &PresetId,
        fields: &PresetFields,
        now: Timestamp,
    ) -> Result<Preset, RepoError>;

    /// Deletes a preset the reader can see (sessions naming it forget it).
    fn delete(&self, reader: &Reader, id: &PresetId) -> Result<(), RepoError>;
}

/// Shares of owned resources: one table for every kind of resource.
pub trait GrantRepository: Send + Sync {
    /// Shares `resource` with `user` at `level`, or changes the level of
    /// an existing share. `true` when the share is new.
    fn grant(
        &self,
        kind: ResourceKind,
        resource: &str,
        user: &UserId,
        level: GrantLevel,
        now: Timestamp,
    ) -> Result<(Grant, bool), RepoError>;

    /// The shares of one resource, oldest first.
    fn grants(&self, kind: ResourceKind, resource: &str) -> Result<Vec<Grant>, RepoError>;

    /// Ends a share; `false` when there was none.
    fn revoke(&self, kind: ResourceKind, resource: &str, user: &UserId) -> Result<bool, RepoError>;
}

/// Quota overrides and counters. A subject is `user:<id>` or
/// `guest:<network>`.
pub trait QuotaRepository: Send + Sync {
    /// A user's overrides (none: all defaults).
    fn overrides(&self, user: &UserId) -> Result<crate::quota::QuotaOverrides, RepoError>;

    /// Replaces a user's overrides; `NotFound` for an unknown user.
    fn set_overrides(
        &self,
        user: &UserId,
        overrides: &crate::quota::QuotaOverrides,
        now: Timestamp,
    ) -> Result<(), RepoError>;

    /// In one write transaction: forgets requests older than `window_ms`,
    /// then counts this one at `now_ms` if fewer than `limit` are left in
    /// the subject's window.
    fn take_request(
        &self,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
        limit: u64,
    ) -> Result<crate::quota::RequestWindow, RepoError>;

    /// Adds tokens to the subject's count for `day` (days since the
    /// epoch), forgetting days before yesterday.
    fn add_tokens(&self, subject: &str, day: i64, tokens: u64) -> Result<(), RepoError>;

    /// The subject's counters: requests in the window ending at `now_ms`,
    /// tokens on `day`.
    fn counters(
        &self,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
        day: i64,
    ) -> Result<crate::quota::QuotaCounters, RepoError>;

    /// Clears the subject's counters.
    fn reset(&self, subject: &str) -> Result<(), RepoError>;
}

/// Invitations. Not tenant-owned: whoever may manage users sees them all,
/// and accepting one is how an account without a principal begins.
pub trait InvitationRepository: Send + Sync {
    /// Stores an invitation. `Conflict("code_hash")` if the digest exists.
    fn create(&self, new: NewInvitation) -> Result<Invitation, RepoError>;

    /// One invitation (`NotFound` otherwise).
    fn get(&self, id: &InvitationId) -> Result<Invitation, RepoError>;

    /// Invitations by creation, newest first. The cursor's `updated_at` is
    /// the creation time of the previous page's last row.
    fn list(
        &self,
        limit: i64,
        cursor: Option<&Cursor>,
    ) -> Result<CursorPage<Invitation>, RepoError>;

    /// The invitation whose code has this digest, if it can still be
    /// accepted at `now` (not used, not revoked, not expired). A read: the
    /// answer is advisory, [`InvitationRepository::accept`] decides.
    fn find_pending(
        &self,
        code_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<Invitation>, RepoError>;

    /// In one write transaction: finds the invitation for `code_hash` that
    /// is still pending at `now` (`NotFound` otherwise), creates `user` with
    /// the invitation's role (whatever `user.role` says; `Conflict` on a
    /// taken username or e-mail) and marks the invitation used by them,
    /// checking that exactly one pending row changed. Concurrent calls with
    /// one code make exactly one account.
    fn accept(
        &self,
        code_hash: &[u8],
        user: NewUser,
        now: Timestamp,
    ) -> Result<(Invitation, User), RepoError>;

    /// Revokes an unused invitation; revoking a revoked one changes
    /// nothing. `true` when this call revoked it. `NotFound`, or
    /// `Conflict("used")` once it was accepted.
    fn revoke(&self, id: &InvitationId, now: Timestamp) -> Result<(Invitation, bool), RepoError>;
}

/// Every repository, as trait objects: what the binaries hand to the auth
/// service and the HTTP layer.
#[derive(Clone)]
pub struct Repositories {
    /// Accounts.
    pub users: std::sync::Arc<dyn UserRepository>,
    /// API keys.
    pub api_keys: std::sync::Arc<dyn ApiKeyRepository>,
    /// Login sessions.
    pub sessions: std::sync::Arc<dyn SessionRepository>,
    /// Login throttling.
    pub throttle: std::sync::Arc<dyn ThrottleRepository>,
    /// Audit log.
    pub audit: std::sync::Arc<dyn AuditRepository>,
    /// Token usage.
    pub usage: std::sync::Arc<dyn UsageRepository>,
    /// Chat sessions.
    pub chats: std::sync::Arc<dyn ChatSessionRepository>,
    /// Shares.
    pub grants: std::sync::Arc<dyn GrantRepository>,
    /// Presets.
    pub presets: std::sync::Arc<dyn PresetRepository>,
    /// Quota overrides and counters.
    pub quotas: std::sync::Arc<dyn QuotaRepository>,
    /// Invitations.
    pub invitations: std::sync::Arc<dyn InvitationRepository>,
    /// RAG collections.
    pub collections: std::sync::Arc<dyn CollectionRepository>,
    /// Benchmark runs.
    pub benchmarks: std::sync::Arc<dyn BenchmarkRepository>,
}
