//! Request extractors: the gated caller and client details.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, http::header};
use offgrid_auth::Actor;

use crate::access::Caller;
use crate::code::ErrorCode;
use crate::error::ApiError;

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Present whenever the route's access rule is not Public; a handler
        // asking for it on a public route is a programming error.
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or_else(|| ApiError::internal("route has no resolved caller")),
        )
    }
}

/// The client's address (the TCP peer; forwarded headers are not trusted)
/// and user agent.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub addr: Option<String>,
    pub user_agent: Option<String>,
    /// The connection, to notice when the client hangs up.
    pub socket: Option<crate::peer::PeerSocket>,
}

impl Client {
    /// Whether the client is still connected (true when unknown).
    pub fn is_connected(&self) -> bool {
        self.socket
            .as_ref()
            .is_none_or(crate::peer::PeerSocket::is_open)
    }
}

impl Client {
    /// An audit actor for this client acting as `caller` (if known).
    pub fn actor(&self, caller: Option<&Caller>) -> Actor {
        Actor::request(caller.map(|c| &c.principal), self.addr.clone())
    }

    /// The caller as the workspace service's actor.
    pub fn workspace_actor(&self, caller: &Caller) -> offgrid_workspace::Actor {
        offgrid_workspace::Actor::new(caller.principal.clone(), self.addr.clone())
    }
}

impl FromRequest for Client {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Client {
            addr: req.peer_addr().map(|a| a.ip().to_string()),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
            socket: req.conn_data::<crate::peer::PeerSocket>().cloned(),
        }))
    }
}

/// A JSON body that must be an object, deserialized into `T`. `web::Json<T>`
/// alone would also fill a struct from an array, element by element in field
/// order (`[null, null]` was a valid `PATCH /v1/users/{id}`); here an array,
/// a string or a number is refused like any other malformed body.
pub(crate) struct JsonObject<T>(T);

impl<T> JsonObject<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = actix_web::web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = body.await?.into_inner();
            Ok(JsonObject(object(value)?))
        })
    }
}

/// Deserializes `value` into `T` if it is a JSON object: anything else, a
/// missing or unknown field or a wrong type is 400 `invalid_request`, as on
/// every route (a body that is not JSON at all is `invalid_json`).
pub(crate) fn object<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "invalid request body: expected a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidRequest,
            format!("invalid request body: {e}"),
        )
    })
}
