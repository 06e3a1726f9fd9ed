//! The HTTP client the server commands (`session`, `benchmark`) share:
//! the server's base URL, `OFFGRID_API_KEY` as a bearer key, and the
//! server's error message as the command's one-line failure.

use std::time::Duration;

use offgrid_cli::{EXIT_USAGE, Failure};
use offgrid_http::wire::ErrorBody;
use reqwest::blocking::{Client, RequestBuilder, Response};

/// The server, with the caller's key.
pub(crate) struct Api {
    base: String,
    client: Client,
    key: Option<String>,
}

impl Api {
    /// A client whose requests give up after a minute.
    pub(crate) fn new(base: String) -> Result<Api, Failure> {
        Self::with_timeout(base, Duration::from_secs(60))
    }

    /// A client whose requests give up after `timeout`.
    pub(crate) fn with_timeout(base: String, timeout: Duration) -> Result<Api, Failure> {
        let client = Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Failure::new(1, e.to_string()))?;
        Ok(Api {
            base,
            client,
            key: std::env::var("OFFGRID_API_KEY").ok(),
        })
    }

    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let rb = self.client.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => rb.bearer_auth(key),
            None => rb,
        }
    }

    /// Sends; a failure is the server's error message (exit 1, or 2 for a
    /// refused value) or a connection error.
    pub(crate) fn send(&self, rb: RequestBuilder) -> Result<Response, Failure> {
        let res = rb.send().map_err(|e| {
            Failure::new(
                1,
                format!(
                    "no OffGrid server answers at {} ({e}); start one with `offgrid serve`",
                    self.base
                ),
            )
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let message = res
            .json::<ErrorBody>()
            .map(|b| b.error.message)
            .unwrap_or_else(|_| status.to_string());
        let code = if status.as_u16() == 400 || status.as_u16() == 422 {
            EXIT_USAGE
        } else {
            1
        };
        let hint = if status.as_u16() == 401 {
            " (set OFFGRID_API_KEY)"
        } else {
            ""
        };
        Err(Failure::new(code, format!("{message}{hint}")))
    }
}
