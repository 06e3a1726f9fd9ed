#![doc = include_str!("../README.md")]

pub mod audit;
pub mod benchmark;
pub mod error;
pub mod ids;
pub mod invitation;
pub mod principal;
pub mod quota;
pub mod rag;
pub mod repo;
pub mod role;
pub mod scope;
pub mod time;
pub mod usage;
pub mod user;
pub mod workspace;

pub use error::RepoError;
pub use ids::{
    ApiKeyId, BenchmarkId, ChatSessionId, CollectionId, DocumentId, InvitationId, PresetId,
    SessionId, UserId,
};
pub use principal::{Credential, Principal};
pub use role::{Permission, Role};
pub use scope::{OperatorCapability, Scope};
pub use time::{SECS_PER_DAY, Timestamp};
