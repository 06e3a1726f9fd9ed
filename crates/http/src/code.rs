//! The API's error codes: the closed set of `code` strings an error answer
//! can carry. Clients match on them; adding one is an API change, and
//! changing one's meaning is a breaking one.

use serde::{Serialize, Serializer};

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// Every `code` an error answer can carry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as clients see it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    /// An API key was used to create an API key, and it may not.
    ApiKeyCannotCreateKeys => "api_key_cannot_create_keys",
    /// The new password is on the list of common passwords.
    CommonPassword => "common_password",
    /// The resource exists already (a username, an e-mail).
    Conflict => "conflict",
    /// The prompt, or the prompt and max_tokens, do not fit the model's context.
    ContextLengthExceeded => "context_length_exceeded",
    /// A state-changing request came from another origin.
    CrossOriginRequest => "cross_origin_request",
    /// The database stayed locked; retry.
    DatabaseBusy => "database_busy",
    /// The Host header names no address this server answers to.
    HostNotAllowed => "host_not_allowed",
    /// The model import directory does not exist.
    ImportDirUnavailable => "import_dir_unavailable",
    /// The caller's role does not allow this.
    InsufficientPermissions => "insufficient_permissions",
    /// A bug or an unexpected failure; the server log has the cause.
    InternalError => "internal_error",
    /// The request body could not be read.
    InvalidBody => "invalid_body",
    /// Wrong username or password, or an unknown or expired credential.
    InvalidCredentials => "invalid_credentials",
    /// An invitation code is wrong, used, revoked or expired (one answer for all).
    InvalidInvitation => "invalid_invitation",
    /// The body is not JSON.
    InvalidJson => "invalid_json",
    /// The file or folder is not a usable model.
    InvalidModel => "invalid_model",
    /// The model id is not allowed.
    InvalidModelName => "invalid_model_name",
    /// A path parameter is malformed, or an import path is refused.
    InvalidPath => "invalid_path",
    /// The chat template or the tokenizer refused the prompt.
    InvalidPrompt => "invalid_prompt",
    /// A query parameter is malformed or out of range.
    InvalidQuery => "invalid_query",
    /// The body is JSON but not of the expected shape (a missing or unknown field, a wrong type).
    InvalidRequest => "invalid_request",
    /// The setup code is wrong.
    InvalidSetupCode => "invalid_setup_code",
    /// A field's value is out of range or not allowed; the message names the field.
    InvalidValue => "invalid_value",
    /// A used invitation cannot be revoked.
    InvitationUsed => "invitation_used",
    /// The change would leave no active administrator.
    LastAdmin => "last_admin",
    /// The route exists, but not with this method.
    MethodNotAllowed => "method_not_allowed",
    /// A model with this id is installed already.
    ModelExists => "model_exists",
    /// Importing failed on the server's side; the server log has the cause.
    ModelImportFailed => "model_import_failed",
    /// The model's files would not load; the server log has the cause.
    ModelLoadFailed => "model_load_failed",
    /// No installed model has this id (or not of the kind asked for).
    ModelNotFound => "model_not_found",
    /// The route needs multi-user mode.
    MultiUserDisabled => "multi_user_disabled",
    /// Logout was called with an API key, which it does not revoke.
    NotASession => "not_a_session",
    /// No such route or resource (another user's included).
    NotFound => "not_found",
    /// The body is larger than the limit.
    PayloadTooLarge => "payload_too_large",
    /// Administrators may not demote, disable or delete themselves.
    SelfChange => "self_change",
    /// The server as a whole is busy; see Retry-After.
    ServerBusy => "server_busy",
    /// Over a quota (requests per minute, tokens per day, generations at
    /// once); see Retry-After and X-RateLimit-*.
    QuotaExceeded => "rate_limit_exceeded",
    /// Remote setup needs the setup code shown at start-up.
    SetupCodeRequired => "setup_code_required",
    /// An administrator exists already.
    SetupComplete => "setup_complete",
    /// The system user cannot be changed.
    SystemUser => "system_user",
    /// Login is throttled for this account or address; see Retry-After.
    TooManyLoginAttempts => "too_many_login_attempts",
    /// This caller has too much in flight; see Retry-After.
    TooManyRequests => "too_many_requests",
    /// Credentials are missing or not valid.
    Unauthorized => "unauthorized",
    /// The model's architecture is not supported.
    UnsupportedArchitecture => "unsupported_architecture",
    /// The body must be application/json.
    UnsupportedMediaType => "unsupported_media_type",
    /// No such user to share with.
    UserNotFound => "user_not_found",
    /// The current password given is wrong.
    WrongCurrentPassword => "wrong_current_password",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_distinct_snake_case_words() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{s}"
            );
        }
    }
}
