//! Request extractors: the gated caller and client details.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, http::header};
use offgrid_auth::Actor;

use crate::access::Caller;
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
