//! Id newtypes. Ids are random UUIDv4 strings, so they reveal neither counts
//! nor creation order, and one kind of id cannot be passed where another is
//! expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// Wraps an id read from storage or from a request path.
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// Identifies a user account.
    UserId
);
id_type!(
    /// Identifies an API key (not the secret: the row).
    ApiKeyId
);
id_type!(
    /// Identifies a login session; it is the `jti` of the session's token.
    SessionId
);
id_type!(
    /// Identifies a chat session (a conversation, not a login).
    ChatSessionId
);
id_type!(
    /// Identifies a preset (a saved system prompt and parameters).
    PresetId
);
id_type!(
    /// Identifies an invitation (the row, not its code).
    InvitationId
);
id_type!(
    /// Identifies a RAG collection.
    CollectionId
);
id_type!(
    /// Identifies a document in a RAG collection.
    DocumentId
);
id_type!(
    /// Identifies a benchmark run.
    BenchmarkId
);

impl UserId {
    /// The built-in, non-loginable user that owns everything made in
    /// single-user mode.
    pub fn system() -> Self {
        Self(SYSTEM_USER_ID.to_owned())
    }

    /// Whether this is the built-in system user.
    pub fn is_system(&self) -> bool {
        self.0 == SYSTEM_USER_ID
    }
}

/// The fixed id of the system user (also written by the first migration).
pub const SYSTEM_USER_ID: &str = "00000000-0000-0000-0000-000000000000";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_uuids() {
        let a = UserId::generate();
        let b = UserId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 36);
        assert!(!a.is_system());
        assert!(UserId::system().is_system());
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = ApiKeyId::from_string("abc");
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("\"abc\""));
    }
}
