//! OpenAI-compatible inference: `POST /v1/chat/completions`,
//! `POST /v1/completions` (plain and SSE streaming) and
//! `POST /v1/embeddings`.
//!
//! A request goes: the handler ([`chat`], [`completions`], [`embeddings`])
//! parses its body once into a [`crate::wire`] struct, naming the field of
//! any error; [`params`] checks each value; the caller is admitted (their
//! place taken before any costly work); one blocking call into
//! `offgrid_inference::Models` loads the model if needed, renders the
//! template, tokenizes, checks the context and queues the work; the
//! engine's events come back through a channel and leave as one answer
//! ([`generate`]) or as server-sent events ([`sse`]), with log-probabilities
//! in OpenAI's shapes ([`logprobs`]). Usage is recorded when the answer is
//! done.

mod chat;
mod completions;
mod embeddings;
mod generate;
mod knowledge;
mod logprobs;
mod params;
mod sse;
mod transcript;

use std::sync::Arc;

use offgrid_inference::Requester;
use offgrid_workspace::quota::QuotaPass;

pub(crate) use chat::{__path_chat_completions, chat_completions};
pub(crate) use completions::{__path_completions, completions};
pub(crate) use embeddings::{__path_embeddings, embed, embeddings};
pub(crate) use generate::{Started, Submit, start};
pub(crate) use params::{Kind, MAX_EMBEDDING_INPUTS, invalid, parse};

use crate::access::Caller;
use crate::extract::Client;
use crate::state::AppState;

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Who asks, as the inference crate schedules fairly: a user by id, a
/// guest by network.
pub(crate) fn requester(caller: &Caller, client: &Client) -> Requester {
    match &caller.principal.user_id {
        Some(id) => Requester {
            key: format!("user:{id}"),
            guest: false,
        },
        None => Requester {
            key: format!("guest:{}", guest_network(client.addr.as_deref())),
            guest: true,
        },
    }
}

/// The caller's quota subject: the user, or a guest's network.
pub(crate) fn quota_subject(caller: &Caller, client: &Client) -> String {
    offgrid_workspace::quota::subject(&caller.principal, &guest_network(client.addr.as_deref()))
}

/// Admits one inference request against the caller's quota (on the
/// blocking pool: one write transaction): 429 with `Retry-After` and
/// `X-RateLimit-*` when over a limit. A generation also takes one of the
/// caller's places at once, held by the pass.
pub(crate) async fn admit_quota(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    generation: bool,
) -> Result<QuotaPass, crate::error::ApiError> {
    let subject = quota_subject(caller, client);
    let (ws, principal) = (state.workspace.clone(), caller.principal.clone());
    let admitted =
        crate::trace::block(move || ws.admit_quota(&principal, &subject, generation)).await??;
    Ok(admitted?)
}

/// The requests-per-minute standing as `X-RateLimit-*` headers on an
/// inference answer.
pub(crate) fn with_rate(
    mut res: actix_web::HttpResponse,
    pass: &QuotaPass,
) -> actix_web::HttpResponse {
    if let Some(rate) = &pass.rate {
        let headers = res.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", rate.limit),
            ("x-ratelimit-remaining", rate.remaining),
            ("x-ratelimit-reset", rate.reset_secs),
        ] {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(name),
                actix_web::http::header::HeaderValue::from(value),
            );
        }
    }
    res
}

/// Records an embedding's tokens for the caller and waits for the write.
pub(crate) async fn record_embedding(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    model: &str,
    endpoint: &'static str,
    tokens: usize,
    duration: std::time::Duration,
) {
    Accounting::new(state, caller, client, model, endpoint)
        .record(tokens, 0, duration)
        .done()
        .await;
}

/// A guest's address as one key: IPv6 by its /64 (one host may use any
/// address in it), IPv4 as it is.
fn guest_network(addr: Option<&str>) -> String {
    match addr.map(str::parse::<std::net::IpAddr>) {
        Some(Ok(std::net::IpAddr::V6(v6))) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Some(Ok(ip)) => ip.to_string(),
        Some(Err(_)) => addr.unwrap_or("?").to_owned(),
        None => "?".to_owned(),
    }
}

/// A usage record being written; awaited before an answer is acknowledged,
/// so a client that got its answer finds it counted, even if the server is
/// killed right after.
#[derive(Default)]
pub(crate) struct Recorded(Option<tokio::task::JoinHandle<()>>);

impl Recorded {
    /// Waits for the write (its failure was logged where it happened).
    async fn done(&mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.await;
        }
    }
}

/// Where the engine's thread leaves the record of a request's usage for
/// the answer to wait on.
pub(crate) type RecordSlot = std::sync::Arc<std::sync::Mutex<Recorded>>;

/// Takes the record out of the slot and waits for it.
pub(crate) async fn wait_recorded(slot: &RecordSlot) {
    let mut recorded = match slot.lock() {
        Ok(mut r) => std::mem::take(&mut *r),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    recorded.done().await;
}

/// Who to charge a request's tokens to, recorded when it finishes.
#[derive(Clone)]
struct Accounting {
    repo: Arc<dyn offgrid_domain::repo::UsageRepository>,
    workspace: offgrid_workspace::Workspace,
    quota_subject: String,
    user_id: Option<offgrid_domain::UserId>,
    api_key_id: Option<offgrid_domain::ApiKeyId>,
    model: String,
    endpoint: &'static str,
    /// The caller as the per-user metrics name them.
    user_label: String,
    metrics: Arc<crate::metrics::Metrics>,
    /// The server's runtime: `record` may be called from the engine's
    /// thread, which has none.
    runtime: tokio::runtime::Handle,
}

impl Accounting {
    fn new(
        state: &AppState,
        caller: &Caller,
        client: &Client,
        model: &str,
        endpoint: &'static str,
    ) -> Self {
        let api_key_id = match &caller.principal.credential {
            offgrid_domain::Credential::ApiKey { key_id } => Some(key_id.clone()),
            _ => None,
        };
        Accounting {
            repo: state.usage.clone(),
            workspace: state.workspace.clone(),
            quota_subject: quota_subject(caller, client),
            user_id: caller.principal.user_id.clone(),
            api_key_id,
            model: model.to_owned(),
            endpoint,
            user_label: match (&caller.user, &caller.principal.user_id) {
                (Some(user), _) => user.username.clone(),
                // `~` is in no username.
                (None, Some(_)) => "~owner".to_owned(),
                (None, None) => "~guest".to_owned(),
            },
            metrics: state.metrics.clone(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Records on the blocking pool (from any thread); a failure is logged,
    /// not shown.
    fn record(
        &self,
        prompt_tokens: usize,
        completion_tokens: usize,
        duration: std::time::Duration,
    ) -> Recorded {
        let record = offgrid_domain::usage::NewUsage {
            at: offgrid_domain::Timestamp(now()),
            user_id: self.user_id.clone(),
            api_key_id: self.api_key_id.clone(),
            model: self.model.clone(),
            endpoint: self.endpoint.to_owned(),
            prompt_tokens: i64::try_from(prompt_tokens).unwrap_or(i64::MAX),
            completion_tokens: i64::try_from(completion_tokens).unwrap_or(i64::MAX),
            duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        };
        self.metrics.tokens(
            &self.model,
            self.endpoint,
            &self.user_label,
            u64::try_from(prompt_tokens).unwrap_or(u64::MAX),
            u64::try_from(completion_tokens).unwrap_or(u64::MAX),
        );
        let repo = self.repo.clone();
        let (workspace, subject) = (self.workspace.clone(), self.quota_subject.clone());
        let tokens =
            u64::try_from(prompt_tokens.saturating_add(completion_tokens)).unwrap_or(u64::MAX);
        Recorded(Some(self.runtime.spawn_blocking(move || {
            if let Err(e) = repo.record(record) {
                tracing::error!(error = %e, "cannot record usage");
            }
            if let Err(e) = workspace.record_quota_tokens(&subject, tokens) {
                tracing::error!(error = %e, "cannot count tokens against the quota");
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::guest_network;

    #[test]
    fn guests_are_keyed_by_ipv4_address_or_ipv6_slash_64() {
        assert_eq!(guest_network(Some("10.0.0.7")), "10.0.0.7");
        assert_eq!(
            guest_network(Some("2001:db8:1:2:aaaa::1")),
            guest_network(Some("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_eq!(guest_network(Some("2001:db8:1:2::9")), "2001:db8:1:2::/64");
        assert_ne!(
            guest_network(Some("2001:db8:1:2::1")),
            guest_network(Some("2001:db8:1:3::1"))
        );
        assert_eq!(guest_network(Some("::ffff:10.0.0.7")), "10.0.0.7");
        assert_eq!(guest_network(None), "?");
    }
}
