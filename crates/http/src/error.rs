//! Error policy: every failure a client sees is `{"error": {"message",
//! "type", "code"}}` with a fitting status. Leaf crates' errors are mapped
//! here and nowhere else; internal causes are logged, not shown.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use offgrid_auth::AuthError;
use offgrid_domain::RepoError;

use crate::code::ErrorCode;
use offgrid_inference::{EngineError, ModelError};

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI-style error type.
    pub kind: &'static str,
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// Seconds for `Retry-After`, on 429 and 503.
    pub retry_after: Option<i64>,
    /// The limit that was hit, for `X-RateLimit-*`.
    pub rate: Option<offgrid_workspace::quota::RateInfo>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl ApiError {
    /// An error with a status, type, code and message.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            retry_after: None,
            rate: None,
        }
    }

    /// 400 for a malformed request.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    /// 401: credentials missing or not valid.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            ErrorCode::Unauthorized,
            message,
        )
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            ErrorCode::NotFound,
            message,
        )
    }

    /// 404 for user-management routes in single-user mode.
    pub fn multi_user_disabled() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            ErrorCode::MultiUserDisabled,
            format!(
                "{} and restart the server.",
                offgrid_config::multi_user_disabled("~/.offgrid-llm/config.yaml")
            ),
        )
    }

    /// 500; the cause is logged, the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            ErrorCode::InternalError,
            "internal server error",
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        // For the request metrics (auth failures and throttling by code).
        res.extensions_mut().insert(self.code);
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.max(1).to_string()));
        }
        if let Some(rate) = &self.rate {
            rate_headers(&mut res, rate);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        res.json(crate::wire::ErrorBody {
            error: crate::wire::ErrorDetail {
                message: self.message.clone(),
                kind: self.kind.to_owned(),
                code: self.code.as_str().to_owned(),
            },
        })
    }
}

impl ApiError {
    /// 429 with a `Retry-After`: this caller has too much in flight.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(2),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                ErrorCode::TooManyRequests,
                message,
            )
        }
    }

    /// 503 with a `Retry-After`: the server as a whole is busy.
    pub fn server_busy(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(2),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                ErrorCode::ServerBusy,
                message,
            )
        }
    }

    /// 404 for a model that is not installed (or not of the kind asked for).
    pub fn model_not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            ErrorCode::ModelNotFound,
            message,
        )
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        let msg = e.to_string();
        match e {
            ModelError::NotFound { .. } | ModelError::WrongKind { .. } => {
                Self::model_not_found(msg)
            }
            // The detail (paths, candle's message) was logged where the
            // load failed; the client gets the generic message.
            ModelError::LoadFailed(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                ErrorCode::ModelLoadFailed,
                msg,
            ),
            ModelError::Engine(EngineError::Busy { .. })
            | ModelError::GuestsBusy
            | ModelError::EmbeddingBusy => Self::server_busy(msg),
            ModelError::Engine(EngineError::UserBusy { .. }) | ModelError::EmbeddingCallerBusy => {
                Self::too_many_requests(msg)
            }
            ModelError::InvalidPrompt(_) => Self::bad_request(ErrorCode::InvalidPrompt, msg),
            ModelError::EmptyPrompt | ModelError::InvalidFormat(_) => {
                Self::bad_request(ErrorCode::InvalidValue, msg)
            }
            ModelError::ContextExceeded { .. } | ModelError::MaxTokensExceedContext { .. } => {
                Self::bad_request(ErrorCode::ContextLengthExceeded, msg)
            }
            ModelError::Engine(EngineError::Stopped)
            | ModelError::Inference(_)
            | ModelError::Embedding(_) => Self::internal(DisplayChain(&e)),
            // Nobody reads the answer; not worth an error in the log.
            ModelError::ClientLeft => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                ErrorCode::ServerBusy,
                msg,
            ),
        }
    }
}

/// An error with its causes, for the log: `outer: cause: root`.
struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let msg = e.to_string();
        match e {
            AuthError::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                ErrorCode::InvalidCredentials,
                msg,
            ),
            AuthError::Unauthenticated => Self::unauthenticated(msg),
            AuthError::Throttled { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    ErrorCode::TooManyLoginAttempts,
                    msg,
                )
            },
            AuthError::Invalid { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                ErrorCode::InvalidValue,
                msg,
            ),
            AuthError::CommonPassword => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                ErrorCode::CommonPassword,
                msg,
            ),
            AuthError::WrongCurrentPassword => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                ErrorCode::WrongCurrentPassword,
                msg,
            ),
            AuthError::InvalidSetupCode => Self::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                ErrorCode::InvalidSetupCode,
                msg,
            ),
            AuthError::InvalidInvitation => Self::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                ErrorCode::InvalidInvitation,
                msg,
            ),
            AuthError::InvitationUsed => Self::conflict(ErrorCode::InvitationUsed, msg),
            AuthError::KeyCannotCreateKeys => {
                Self::forbidden(ErrorCode::ApiKeyCannotCreateKeys, msg)
            }
            AuthError::NotASession => Self::bad_request(ErrorCode::NotASession, msg),
            AuthError::SetupDone => Self::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                ErrorCode::SetupComplete,
                msg,
            ),
            AuthError::NotFound => Self::not_found("not found"),
            AuthError::Conflict(_) => Self::conflict(ErrorCode::Conflict, msg),
            AuthError::LastAdmin => Self::conflict(ErrorCode::LastAdmin, msg),
            AuthError::SystemUser => Self::conflict(ErrorCode::SystemUser, msg),
            AuthError::SelfChange(_) => Self::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                ErrorCode::SelfChange,
                msg,
            ),
            AuthError::Busy => Self::database_busy(msg),
            AuthError::Storage(source) => Self::internal(DisplayChain(&AuthError::Storage(source))),
            AuthError::Internal(cause) => Self::internal(cause),
        }
    }
}

impl ApiError {
    /// 409 with `code`.
    fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
    }

    /// 503 `database_busy`, retry in a second.
    fn database_busy(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                ErrorCode::DatabaseBusy,
                message,
            )
        }
    }
}

/// A repository's refusal, for routes that call a repository directly
/// (listings, usage): the same answers the auth service gives for the same
/// refusal, without going through `AuthError`.
impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        let msg = e.to_string();
        match e {
            RepoError::NotFound => Self::not_found("not found"),
            RepoError::Conflict(_) => Self::conflict(ErrorCode::Conflict, msg),
            RepoError::LastAdmin => Self::conflict(ErrorCode::LastAdmin, msg),
            RepoError::SystemUser => Self::conflict(ErrorCode::SystemUser, msg),
            // A credential checked at an epoch that has since moved on.
            RepoError::StaleEpoch => Self::unauthenticated("invalid or expired credentials"),
            RepoError::Busy => Self::database_busy(msg),
            RepoError::Internal(_) => Self::internal(DisplayChain(&e)),
        }
    }
}

/// `X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until a place
/// frees up) for one limit.
pub(crate) fn rate_headers(
    res: &mut actix_web::HttpResponseBuilder,
    rate: &offgrid_workspace::quota::RateInfo,
) {
    res.insert_header(("X-RateLimit-Limit", rate.limit.to_string()));
    res.insert_header(("X-RateLimit-Remaining", rate.remaining.to_string()));
    res.insert_header(("X-RateLimit-Reset", rate.reset_secs.to_string()));
}

impl From<offgrid_workspace::quota::QuotaExceeded> for ApiError {
    fn from(e: offgrid_workspace::quota::QuotaExceeded) -> Self {
        ApiError {
            retry_after: Some(i64::try_from(e.0.reset_secs).unwrap_or(i64::MAX)),
            rate: Some(e.0),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                ErrorCode::QuotaExceeded,
                e.to_string(),
            )
        }
    }
}

impl From<offgrid_workspace::WorkspaceError> for ApiError {
    fn from(e: offgrid_workspace::WorkspaceError) -> Self {
        use offgrid_workspace::WorkspaceError as W;
        let msg = e.to_string();
        match e {
            W::NotFound => Self::not_found("not found"),
            W::UserNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "not_found_error",
                ErrorCode::UserNotFound,
                msg,
            ),
            W::Forbidden(why) => Self::forbidden(ErrorCode::InsufficientPermissions, why),
            // Like the account routes' refused values (auth's `Invalid`).
            W::Invalid { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                ErrorCode::InvalidValue,
                msg,
            ),
            W::Overloaded(why) => Self {
                retry_after: Some(30),
                ..Self::server_busy(why)
            },
            W::Busy => Self::database_busy(msg),
            W::Storage(_) => Self::internal(DisplayChain(&e)),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::internal(e)
    }
}

/// Maps actix's JSON body errors (size, content type, syntax, types).
pub(crate) fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than the limit of {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json",
        ),
        E::Deserialize(e) => {
            ApiError::bad_request(ErrorCode::InvalidJson, format!("invalid JSON body: {e}"))
        }
        other => ApiError::bad_request(
            ErrorCode::InvalidBody,
            format!("cannot read request body: {other}"),
        ),
    }
}

/// Maps query-string errors.
pub(crate) fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidQuery,
        format!("invalid query string: {err}"),
    )
}

/// Maps path errors.
pub(crate) fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidPath, format!("invalid path: {err}"))
}
