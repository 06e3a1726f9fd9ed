//! Prometheus metrics, served at `GET /metrics` in the OpenMetrics text
//! format (`prometheus-client`: a registry owned by the app state, no
//! global state, so every test server has its own).
//!
//! Recorded where the facts are: requests by the request-span middleware
//! ([`Metrics::request`]), generations and tokens where usage is recorded
//! and the engine reports timings ([`Metrics::generation`],
//! [`Metrics::gap`]), model loads by a hook the inference crate calls
//! ([`Metrics::model_load`]). Gauges (running, queued, loaded) are read at
//! scrape time. Every label has a bounded set of values: route patterns
//! (not paths), known methods, statuses, installed model ids, error codes,
//! and usernames (per-user series can be switched off).

pub(crate) mod history;

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// `route`, `method`, `api`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    route: String,
    method: String,
    api: String,
    status: u16,
}

/// `model`, `api`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelApi {
    model: String,
    api: String,
}

/// `model`, `api`, `finish_reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Finished {
    model: String,
    api: String,
    finish_reason: String,
}

/// `model`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabel {
    model: String,
}

/// `reason`: an error code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    reason: String,
}

/// `user`: a username (`~guest` for anonymous guests, `~owner` in
/// single-user mode: `~` is in no username).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UserLabel {
    user: String,
}

/// `user`, `kind` (`prompt` or `completion`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UserTokens {
    user: String,
    kind: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latencies from 1 ms to about 65 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Gaps between tokens, from 1 ms to about 4 s.
fn gaps() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

/// Which API a route or usage endpoint belongs to.
pub(crate) fn api_of(route_or_endpoint: &str) -> &'static str {
    if route_or_endpoint.starts_with("/api/") || route_or_endpoint.starts_with("ollama.") {
        "ollama"
    } else if matches!(
        route_or_endpoint,
        "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/models"
            | "/v1/models/{id}"
            | "chat.completions"
            | "completions"
            | "embeddings"
    ) {
        "openai"
    } else {
        "offgrid"
    }
}

/// A label value with the characters the text format would need escaped
/// (`"`, `\`, control characters) replaced: model ids come from folder
/// names, and one odd folder must not break every scrape.
fn label(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A method as a label: the usual ones, else `other` (a client may send
/// any token as a method).
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    generations: Family<Finished, Counter>,
    prompt_tokens: Family<ModelApi, Counter>,
    generated_tokens: Family<ModelApi, Counter>,
    ttft: Histograms<ModelLabel>,
    itl: Histograms<ModelLabel>,
    e2e: Histograms<ModelApi>,
    queue_wait: Histograms<ModelLabel>,
    model_loads: Family<ModelLabel, Counter>,
    model_load_seconds: Histograms<ModelLabel>,
    models_loaded: Gauge,
    running: Gauge,
    queued: Gauge,
    auth_failures: Family<Reason, Counter>,
    throttled: Family<Reason, Counter>,
    user_requests: Option<Family<UserLabel, Counter>>,
    user_tokens: Option<Family<UserTokens, Counter>>,
    /// One scrape at a time (gauges are set, then encoded).
    scrape: Mutex<()>,
    /// The last hour, read back from the exposition.
    history: history::History,
    /// The history's monotonic origin.
    started: std::time::Instant,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every metric; per-user series only with
    /// `per_user`.
    pub fn new(per_user: bool) -> Self {
        let mut registry = Registry::with_prefix("offgrid");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route pattern, method, API and status",
            requests.clone(),
        );
        let generations = Family::<Finished, Counter>::default();
        registry.register(
            "generations",
            "Finished generations by model, API and finish reason",
            generations.clone(),
        );
        let prompt_tokens = Family::<ModelApi, Counter>::default();
        registry.register(
            "prompt_tokens",
            "Prompt tokens read, by model and API (embeddings included)",
            prompt_tokens.clone(),
        );
        let generated_tokens = Family::<ModelApi, Counter>::default();
        registry.register(
            "generated_tokens",
            "Tokens generated, by model and API",
            generated_tokens.clone(),
        );
        let ttft: Histograms<ModelLabel> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "time_to_first_token",
            "From the engine taking a generation to its first token",
            Unit::Seconds,
            ttft.clone(),
        );
        let itl: Histograms<ModelLabel> = Family::new_with_constructor(gaps);
        registry.register_with_unit(
            "inter_token_latency",
            "Time between two tokens of one generation",
            Unit::Seconds,
            itl.clone(),
        );
        let e2e: Histograms<ModelApi> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "generation_duration",
            "A generation from the request's arrival to its last token",
            Unit::Seconds,
            e2e.clone(),
        );
        let queue_wait: Histograms<ModelLabel> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "queue_wait",
            "Time a generation waited before its first step",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let model_loads = Family::<ModelLabel, Counter>::default();
        registry.register("model_loads", "Model loads", model_loads.clone());
        let model_load_seconds: Histograms<ModelLabel> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "model_load",
            "Time to load a model",
            Unit::Seconds,
            model_load_seconds.clone(),
        );
        let models_loaded = Gauge::default();
        registry.register("models_loaded", "Models in memory", models_loaded.clone());
        let running = Gauge::default();
        registry.register(
            "generations_running",
            "Generations being decoded or having their prompt read",
            running.clone(),
        );
        let queued = Gauge::default();
        registry.register(
            "generations_queued",
            "Generations waiting for a slot",
            queued.clone(),
        );
        let auth_failures = Family::<Reason, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused for missing, invalid or insufficient credentials, by error code",
            auth_failures.clone(),
        );
        let throttled = Family::<Reason, Counter>::default();
        registry.register(
            "throttled",
            "Requests refused by a limit (429, 503), by error code",
            throttled.clone(),
        );
        let (user_requests, user_tokens) = if per_user {
            let r = Family::<UserLabel, Counter>::default();
            registry.register("user_requests", "Inference requests per user", r.clone());
            let t = Family::<UserTokens, Counter>::default();
            registry.register("user_tokens", "Tokens per user and kind", t.clone());
            (Some(r), Some(t))
        } else {
            (None, None)
        };
        Metrics {
            registry,
            requests,
            generations,
            prompt_tokens,
            generated_tokens,
            ttft,
            itl,
            e2e,
            queue_wait,
            model_loads,
            model_load_seconds,
            models_loaded,
            running,
            queued,
            auth_failures,
            throttled,
            user_requests,
            user_tokens,
            scrape: Mutex::new(()),
            history: history::History::starting_at(unix_now(), 0.0),
            started: std::time::Instant::now(),
        }
    }

    /// One HTTP request answered; `code` is the error code of an error
    /// answer (auth failures and throttling are counted by it).
    pub(crate) fn request(&self, route: &str, method: &str, status: u16, code: Option<&str>) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method_label(method).to_owned(),
                api: api_of(route).to_owned(),
                status,
            })
            .inc();
        let reason = || Reason {
            reason: code.unwrap_or("unknown").to_owned(),
        };
        match status {
            401 | 403 => {
                self.auth_failures.get_or_create(&reason()).inc();
            }
            429 | 503 => {
                self.throttled.get_or_create(&reason()).inc();
            }
            _ => {}
        }
    }

    /// Tokens of one request (a generation or an embedding) by `user`.
    pub(crate) fn tokens(
        &self,
        model: &str,
        endpoint: &str,
        user: &str,
        prompt: u64,
        generated: u64,
    ) {
        let labels = ModelApi {
            model: label(model),
            api: api_of(endpoint).to_owned(),
        };
        self.prompt_tokens.get_or_create(&labels).inc_by(prompt);
        self.generated_tokens
            .get_or_create(&labels)
            .inc_by(generated);
        if let (Some(requests), Some(tokens)) = (&self.user_requests, &self.user_tokens) {
            let user = label(user);
            requests
                .get_or_create(&UserLabel { user: user.clone() })
                .inc();
            for (kind, n) in [("prompt", prompt), ("completion", generated)] {
                tokens
                    .get_or_create(&UserTokens {
                        user: user.clone(),
                        kind: kind.to_owned(),
                    })
                    .inc_by(n);
            }
        }
    }

    /// A generation finished: its timings.
    pub(crate) fn generation(
        &self,
        model: &str,
        endpoint: &str,
        finish_reason: &str,
        timings: Option<&GenerationTimings>,
    ) {
        let api = api_of(endpoint).to_owned();
        let model = label(model);
        self.generations
            .get_or_create(&Finished {
                model: model.clone(),
                api: api.clone(),
                finish_reason: finish_reason.to_owned(),
            })
            .inc();
        let Some(timings) = timings else {
            // Failed: counted, no timings.
            return;
        };
        let m = ModelLabel {
            model: model.clone(),
        };
        if let Some(t) = timings.first_token {
            self.ttft.get_or_create(&m).observe(t.as_secs_f64());
        }
        self.queue_wait
            .get_or_create(&m)
            .observe(timings.queued.as_secs_f64());
        self.e2e
            .get_or_create(&ModelApi { model, api })
            .observe(timings.total.as_secs_f64());
    }

    /// The histogram of the time between two tokens of `model`'s
    /// generations (taken once per generation, observed per token on the
    /// engine's thread).
    pub(crate) fn gaps_of(&self, model: &str) -> Histogram {
        self.itl
            .get_or_create(&ModelLabel {
                model: label(model),
            })
            .clone()
    }

    /// A model was loaded, taking `took`.
    pub fn model_load(&self, model: &str, took: Duration) {
        let m = ModelLabel {
            model: label(model),
        };
        self.model_loads.get_or_create(&m).inc();
        self.model_load_seconds
            .get_or_create(&m)
            .observe(took.as_secs_f64());
    }

    /// The exposition, with the gauges set to `now`.
    pub(crate) fn render(&self, now: &Gauges) -> String {
        let _one = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.models_loaded.set(as_i64(now.models_loaded));
        self.running.set(as_i64(now.running));
        self.queued.set(as_i64(now.queued));
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

impl Metrics {
    /// Reads the exposition back into the history (every
    /// [`history::INTERVAL`]).
    pub(crate) fn sample(&self, now: &Gauges) {
        let reading = history::read(&self.render(now), unix_now(), self.mono());
        self.history.record(reading);
    }

    /// The history's points, and one from the last sample to now.
    pub(crate) fn history(&self, now: &Gauges) -> Vec<crate::wire::MetricsPoint> {
        let reading = history::read(&self.render(now), unix_now(), self.mono());
        self.history.points(&reading)
    }

    fn mono(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A generation's timings, as the engine reported them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GenerationTimings {
    /// Until the first token, from the engine taking it.
    pub first_token: Option<Duration>,
    /// Waiting before its first step.
    pub queued: Duration,
    /// From the request's arrival to its end.
    pub total: Duration,
}

/// The gauges' values at a scrape.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gauges {
    pub models_loaded: usize,
    pub running: usize,
    pub queued: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_names_follow_the_conventions() {
        let m = Metrics::new(true);
        m.request("/v1/chat/completions", "POST", 200, None);
        m.request("/api/chat", "BREW", 401, Some("invalid_token"));
        m.request("unmatched", "GET", 429, Some("too_many_requests"));
        m.tokens("smollm2", "ollama.chat", "alice", 10, 3);
        m.model_load("smollm2", Duration::from_millis(120));
        m.gaps_of("smollm2").observe(0.007);
        m.generation(
            "smollm2",
            "chat.completions",
            "stop",
            Some(&GenerationTimings {
                first_token: Some(Duration::from_millis(40)),
                queued: Duration::ZERO,
                total: Duration::from_millis(400),
            }),
        );
        m.generation("smollm2", "ollama.chat", "error", None);
        m.model_load("odd\"name\nx", Duration::from_millis(1));
        let text = m.render(&Gauges {
            models_loaded: 1,
            running: 2,
            queued: 3,
        });
        for line in [
            r#"offgrid_http_requests_total{route="/v1/chat/completions",method="POST",api="openai",status="200"} 1"#,
            r#"offgrid_http_requests_total{route="/api/chat",method="other",api="ollama",status="401"} 1"#,
            r#"offgrid_auth_failures_total{reason="invalid_token"} 1"#,
            r#"offgrid_throttled_total{reason="too_many_requests"} 1"#,
            r#"offgrid_prompt_tokens_total{model="smollm2",api="ollama"} 10"#,
            r#"offgrid_user_tokens_total{user="alice",kind="completion"} 3"#,
            r#"offgrid_model_loads_total{model="smollm2"} 1"#,
            r#"offgrid_generations_queued 3"#,
            "# TYPE offgrid_time_to_first_token_seconds histogram",
            "# TYPE offgrid_inter_token_latency_seconds histogram",
            r#"offgrid_generations_total{model="smollm2",api="ollama",finish_reason="error"} 1"#,
            r#"offgrid_model_loads_total{model="odd_name_x"} 1"#,
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        let off = Metrics::new(false);
        off.tokens("smollm2", "completions", "alice", 1, 1);
        assert!(!off.render(&Gauges::default()).contains("alice"));
    }

    #[test]
    fn routes_and_endpoints_map_to_their_api() {
        assert_eq!(api_of("/api/generate"), "ollama");
        assert_eq!(api_of("ollama.embed"), "ollama");
        assert_eq!(api_of("/v1/completions"), "openai");
        assert_eq!(api_of("embeddings"), "openai");
        assert_eq!(api_of("/v1/sessions"), "offgrid");
    }
}
