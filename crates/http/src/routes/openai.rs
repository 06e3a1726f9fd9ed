//! OpenAI-compatible inference: `POST /v1/chat/completions`,
//! `POST /v1/completions` (plain and SSE streaming), `POST /v1/embeddings`,
//! `GET /v1/models`, `GET /v1/models/{id}`.
//!
//! Bodies are parsed with `serde_path_to_error`, so a wrong type names its
//! field (`messages[0].content: invalid type…`). Tokenizing, template
//! rendering and embedding run on the blocking pool; generation runs on the
//! engine's own thread and comes back through a channel.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use offgrid_inference::engine::Usage;
use offgrid_inference::{
    Admission, ChatMessage, ChatModel, EngineError, Event, Job, SamplingParams,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::models::EmbeddingRefusal;
use crate::state::AppState;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn invalid(param: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_value", format!("{param}: {message}"))
}

/// Deserializes a JSON body, naming the field of the first error.
fn parse<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    // serde would fill a struct from an array's elements in field order.
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "invalid request body: expected a JSON object",
        ));
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::bad_request("invalid_request", format!("invalid request body: {inner}"))
        } else {
            invalid(&path, inner)
        }
    })
}

/// Message content: a string, or OpenAI's list of `{type: "text", text}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// A content part; only `{"type": "text", "text"}` is supported.
#[derive(Deserialize, utoipa::ToSchema)]
struct Part {
    #[serde(rename = "type")]
    #[schema(pattern = "^text$")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// A chat message.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ChatMessage)]
struct InMessage {
    #[schema(value_type = ChatRoleSchema)]
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

/// Stop sequences: one, or up to four.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Streaming options.
#[derive(Deserialize, Default, utoipa::ToSchema)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Fields shared by chat and text completions.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CompletionOptions)]
struct Common {
    /// A chat model's id.
    #[schema(example = "smollm2-135m-instruct")]
    model: String,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<i64>,
    #[serde(default)]
    max_completion_tokens: Option<i64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<i64>,
    #[serde(default)]
    repetition_penalty: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    n: Option<i64>,
    /// Chat: `true` or `false`; text completions: 0 to 5 alternatives.
    #[serde(default)]
    #[schema(value_type = Option<LogprobsSchema>)]
    logprobs: Option<Value>,
    #[serde(default)]
    top_logprobs: Option<i64>,
    #[serde(default)]
    echo: Option<bool>,
    /// How long the model stays loaded: seconds, or a duration like `"5m"`
    /// (applied for callers who may manage models).
    #[serde(default)]
    #[schema(value_type = Option<KeepAliveSchema>)]
    keep_alive: Option<Value>,
}

/// Who says a message (`developer` is taken as `system`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ChatRole)]
#[allow(dead_code)]
enum ChatRoleSchema {
    System,
    Developer,
    User,
    Assistant,
}

/// `logprobs`: a flag (chat) or a count (text completions).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum LogprobsSchema {
    Flag(bool),
    Count(i64),
}

/// `keep_alive`: seconds, or a duration string.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum KeepAliveSchema {
    Seconds(f64),
    Duration(String),
}

// The request-specific fields are parsed separately from `Common` (not
// with `#[serde(flatten)]`, which loses the field path in errors).
#[derive(Deserialize, utoipa::ToSchema)]
struct ChatRequest {
    #[schema(min_items = 1)]
    messages: Vec<InMessage>,
}

/// The body of `POST /v1/chat/completions`, as documented: parsed as
/// [`Common`] and [`ChatRequest`] in turn.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct ChatCompletionBody {
    #[serde(flatten)]
    common: Common,
    #[serde(flatten)]
    chat: ChatRequest,
}

/// The body of `POST /v1/completions`, as documented: parsed as
/// [`Common`] and [`CompletionRequest`] in turn.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct CompletionBody {
    #[serde(flatten)]
    common: Common,
    #[serde(flatten)]
    completion: CompletionRequest,
}

/// One prompt (a list must hold exactly one).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum PromptField {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CompletionRequest {
    prompt: PromptField,
}

/// Default completion length when the client gives none.
const DEFAULT_MAX_TOKENS: usize = 512;

impl Common {
    /// Log-probabilities requested, as the number of alternatives per token:
    /// chat uses `logprobs: true` + `top_logprobs` (0–20), text completions
    /// `logprobs: N` (0–5).
    fn logprobs(&self, kind: Kind) -> Result<Option<usize>, ApiError> {
        if self.echo == Some(true) && kind == Kind::Chat {
            return Err(invalid("echo", "is only available on /v1/completions"));
        }
        match kind {
            Kind::Chat => {
                let on = match &self.logprobs {
                    None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                    Some(Value::Bool(true)) => true,
                    Some(other) => {
                        return Err(invalid(
                            "logprobs",
                            format!("must be true or false, got {other}"),
                        ));
                    }
                };
                match (on, self.top_logprobs) {
                    (false, Some(_)) => Err(invalid("top_logprobs", "needs logprobs: true")),
                    (false, None) => Ok(None),
                    (true, None) => Ok(Some(0)),
                    (true, Some(k)) if (0..=20).contains(&k) => Ok(Some(k as usize)),
                    (true, Some(k)) => Err(invalid(
                        "top_logprobs",
                        format!("must be between 0 and 20, got {k}"),
                    )),
                }
            }
            Kind::Text => match &self.logprobs {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => match n.as_u64() {
                    Some(k) if k <= 5 => Ok(Some(k as usize)),
                    _ => Err(invalid(
                        "logprobs",
                        format!("must be an integer from 0 to 5, got {n}"),
                    )),
                },
                Some(other) => Err(invalid(
                    "logprobs",
                    format!("must be an integer from 0 to 5, got {other}"),
                )),
            },
        }
    }

    fn params(&self, kind: Kind) -> Result<(SamplingParams, Option<usize>), ApiError> {
        if let Some(n) = self.n.filter(|n| *n != 1) {
            return Err(invalid("n", format!("only n=1 is supported, got {n}")));
        }
        let logprobs = self.logprobs(kind)?;
        let echo = self.echo == Some(true);
        let max = match self.max_completion_tokens.or(self.max_tokens) {
            None => None,
            Some(m) if (1..=1_000_000).contains(&m) => Some(m as usize),
            // Scoring a given text: echo it, generate nothing.
            Some(0) if echo => Some(0),
            Some(m) => {
                let field = if self.max_completion_tokens.is_some() {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                return Err(invalid(
                    field,
                    format!("must be between 1 and 1000000, got {m}"),
                ));
            }
        };
        let temperature = self.temperature.unwrap_or(0.7);
        if !(0.0..=2.0).contains(&temperature) || temperature.is_nan() {
            return Err(invalid(
                "temperature",
                format!("must be between 0 and 2, got {temperature}"),
            ));
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(invalid("top_p", format!("must be in (0, 1], got {p}")));
        }
        let top_k = match self.top_k {
            None | Some(0) => None,
            Some(k) if (1..=100_000).contains(&k) => Some(k as usize),
            Some(k) => {
                return Err(invalid(
                    "top_k",
                    format!("must be between 0 and 100000, got {k}"),
                ));
            }
        };
        let repetition_penalty = match self.repetition_penalty {
            None => None,
            Some(r) if r > 0.0 && r <= 10.0 => Some(r as f32),
            Some(r) => {
                return Err(invalid(
                    "repetition_penalty",
                    format!("must be in (0, 10], got {r}"),
                ));
            }
        };
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) if v.len() <= 4 => v.clone(),
            Some(Stop::Many(v)) => {
                return Err(invalid(
                    "stop",
                    format!("at most 4 sequences, got {}", v.len()),
                ));
            }
        };
        let seed = match self.seed {
            None => rand_seed(),
            Some(s) => s as u64,
        };
        Ok((
            SamplingParams {
                temperature,
                top_p: self.top_p,
                top_k,
                repetition_penalty,
                seed,
                max_tokens: max.unwrap_or(DEFAULT_MAX_TOKENS),
                stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
                logprobs,
                score_prompt: echo && logprobs.is_some(),
            },
            max,
        ))
    }
}

fn rand_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

fn messages(input: Vec<InMessage>) -> Result<Vec<ChatMessage>, ApiError> {
    if input.is_empty() {
        return Err(invalid("messages", "must contain at least one message"));
    }
    input
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(invalid(
                        &format!("messages[{i}].role"),
                        format!("must be system, user or assistant, got {other:?}"),
                    ));
                }
            };
            let content = match m.content {
                None => String::new(),
                Some(Content::Text(t)) => t,
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, p) in parts.into_iter().enumerate() {
                        if p.kind != "text" {
                            return Err(invalid(
                                &format!("messages[{i}].content[{j}].type"),
                                format!("only text parts are supported, got {:?}", p.kind),
                            ));
                        }
                        text.push_str(&p.text.unwrap_or_default());
                    }
                    text
                }
            };
            Ok(ChatMessage::new(role, &content))
        })
        .collect()
}

/// The user key the engine schedules fairly on.
fn fairness_key(caller: &Caller, client: &Client) -> String {
    match &caller.principal.user_id {
        Some(id) => format!("user:{id}"),
        None => format!("guest:{}", guest_network(client.addr.as_deref())),
    }
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

fn too_many(message: impl Into<String>) -> ApiError {
    ApiError {
        retry_after: Some(2),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "too_many_requests",
            message,
        )
    }
}

fn server_busy(message: impl Into<String>) -> ApiError {
    ApiError {
        retry_after: Some(2),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "server_busy",
            message,
        )
    }
}

fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Busy { .. } => server_busy(e.to_string()),
        EngineError::UserBusy { .. } => too_many(e.to_string()),
        EngineError::Stopped => ApiError::internal(e),
    }
}

/// Takes the caller's place for one generation request before any costly
/// work (model load, template, tokenizer) is done for it. Guests also take
/// a place in the share all guests have together.
fn admit_generation(
    state: &AppState,
    caller: &Caller,
    client: &Client,
) -> Result<Admission, ApiError> {
    let admission = state
        .models
        .engine
        .admit(&fairness_key(caller, client))
        .map_err(engine_error)?;
    if caller.principal.user_id.is_some() {
        return Ok(admission);
    }
    let share = state
        .models
        .guests
        .generation
        .try_admit("all")
        .ok_or_else(|| server_busy("too many guest requests in progress; try again shortly"))?;
    Ok(admission.with(share))
}

struct Prepared {
    model: Arc<ChatModel>,
    prompt: Vec<u32>,
    params: SamplingParams,
}

/// Tokenizes on the blocking pool and checks the context length.
async fn prepare(
    model: Arc<ChatModel>,
    text: PromptText,
    mut params: SamplingParams,
    explicit_max: Option<usize>,
) -> Result<Prepared, ApiError> {
    let m = model.clone();
    let prompt = web::block(move || -> Result<Vec<u32>, String> {
        let rendered = match text {
            PromptText::Chat(messages) => m
                .template
                .render(&messages, true)
                .map_err(|e| e.to_string())?,
            PromptText::Raw(s) => s,
        };
        m.tokenizer.encode(&rendered).map_err(|e| e.to_string())
    })
    .await?
    .map_err(|e| ApiError::bad_request("invalid_prompt", e))?;
    if prompt.is_empty() {
        return Err(invalid("prompt", "is empty"));
    }
    let context = model.context_length();
    if prompt.len() >= context {
        return Err(ApiError::bad_request(
            "context_length_exceeded",
            format!(
                "This model's maximum context length is {context} tokens; the prompt has {} tokens",
                prompt.len()
            ),
        ));
    }
    let room = context - prompt.len();
    if let Some(max) = explicit_max.filter(|m| *m > room) {
        return Err(ApiError::bad_request(
            "context_length_exceeded",
            format!(
                "max_tokens ({max}) plus the prompt ({} tokens) exceeds the context length of {context} tokens",
                prompt.len()
            ),
        ));
    }
    params.max_tokens = params.max_tokens.min(room);
    Ok(Prepared {
        model,
        prompt,
        params,
    })
}

enum PromptText {
    Chat(Vec<ChatMessage>),
    Raw(String),
}

fn submit(
    state: &AppState,
    user: String,
    client: &Client,
    admission: Admission,
    prepared: Prepared,
) -> Result<mpsc::UnboundedReceiver<Event>, ApiError> {
    let (tx, rx) = mpsc::unbounded_channel();
    // The engine stops at its next step once the receiver is dropped (the
    // response body or the handler's future is dropped) or the client's
    // connection is closed (a plain request's handler keeps running).
    let watch = tx.clone();
    let connection = client.clone();
    let job = Job::new(
        user,
        prepared.model,
        prepared.prompt,
        prepared.params,
        Box::new(move |event| tx.send(event).is_ok()),
    )
    .with_liveness(Box::new(move || {
        !watch.is_closed() && connection.is_connected()
    }));
    state
        .models
        .engine
        .submit_admitted(job, admission)
        .map_err(engine_error)?;
    Ok(rx)
}

/// Who to charge a request's tokens to, recorded when it finishes.
#[derive(Clone)]
struct Accounting {
    repo: Arc<dyn offgrid_domain::repo::UsageRepository>,
    user_id: Option<offgrid_domain::UserId>,
    api_key_id: Option<offgrid_domain::ApiKeyId>,
    model: String,
    endpoint: &'static str,
}

impl Accounting {
    fn new(state: &AppState, caller: &Caller, model: &str, endpoint: &'static str) -> Self {
        let api_key_id = match &caller.principal.credential {
            offgrid_domain::Credential::ApiKey { key_id } => Some(key_id.clone()),
            _ => None,
        };
        Accounting {
            repo: state.auth.repos().usage.clone(),
            user_id: caller.principal.user_id.clone(),
            api_key_id,
            model: model.to_owned(),
            endpoint,
        }
    }

    /// Records on the blocking pool; a failure is logged, not shown.
    fn record(
        &self,
        prompt_tokens: usize,
        completion_tokens: usize,
        duration: std::time::Duration,
    ) {
        let record = offgrid_domain::usage::NewUsage {
            at: offgrid_domain::Timestamp(now()),
            user_id: self.user_id.clone(),
            api_key_id: self.api_key_id.clone(),
            model: self.model.clone(),
            endpoint: self.endpoint.to_owned(),
            prompt_tokens: prompt_tokens as i64,
            completion_tokens: completion_tokens as i64,
            duration_ms: duration.as_millis() as i64,
        };
        let repo = self.repo.clone();
        actix_web::rt::task::spawn_blocking(move || {
            if let Err(e) = repo.record(record) {
                tracing::error!(error = %e, "cannot record usage");
            }
        });
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

/// A generated token's log-probabilities in OpenAI's shapes.
struct Logprobs<'a> {
    tokenizer: &'a offgrid_inference::TextTokenizer,
    entries: Vec<offgrid_inference::TokenLogprob>,
    /// With `echo`: the prompt's token ids and the scores of all but the
    /// first.
    prompt: Option<(Vec<u32>, Vec<offgrid_inference::TokenLogprob>)>,
}

impl Logprobs<'_> {
    fn text(&self, id: u32) -> String {
        self.tokenizer.decode(&[id]).unwrap_or_default()
    }

    /// Chat: `{"content": [{token, logprob, bytes, top_logprobs}]}`.
    fn chat(&self) -> Value {
        let entry = |id: u32, lp: f32| {
            let t = self.text(id);
            json!({"token": t, "logprob": lp, "bytes": t.as_bytes()})
        };
        let content: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut v = entry(e.id, e.logprob);
                v["top_logprobs"] = e.top.iter().map(|(id, lp)| entry(*id, *lp)).collect();
                v
            })
            .collect();
        json!({"content": content})
    }

    /// Text completions: parallel `tokens`, `token_logprobs`,
    /// `top_logprobs` (maps) and `text_offset` lists.
    fn text_completion(&self, start_offset: usize) -> Value {
        let mut offset = start_offset;
        let (mut tokens, mut lps, mut tops, mut offsets) = (vec![], vec![], vec![], vec![]);
        if let Some((ids, scores)) = &self.prompt {
            for (i, id) in ids.iter().enumerate() {
                let t = self.text(*id);
                offsets.push(offset);
                offset += t.len();
                tokens.push(t);
                // The first token has nothing before it to be predicted from.
                match i.checked_sub(1).and_then(|j| scores.get(j)) {
                    Some(e) => {
                        lps.push(json!(e.logprob));
                        let top: serde_json::Map<String, Value> = e
                            .top
                            .iter()
                            .map(|(id, lp)| (self.text(*id), json!(lp)))
                            .collect();
                        tops.push(Value::Object(top));
                    }
                    None => {
                        lps.push(Value::Null);
                        tops.push(Value::Null);
                    }
                }
            }
        }
        for e in &self.entries {
            let t = self.text(e.id);
            offsets.push(offset);
            offset += t.len();
            tokens.push(t);
            lps.push(json!(e.logprob));
            let top: serde_json::Map<String, Value> = e
                .top
                .iter()
                .map(|(id, lp)| (self.text(*id), json!(lp)))
                .collect();
            tops.push(Value::Object(top));
        }
        json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
    }
}

/// Everything a non-streaming request produced.
struct Collected {
    text: String,
    usage: Usage,
    logprobs: Vec<offgrid_inference::TokenLogprob>,
    prompt_logprobs: Vec<offgrid_inference::TokenLogprob>,
}

async fn collect(mut rx: mpsc::UnboundedReceiver<Event>) -> Result<Collected, ApiError> {
    let mut text = String::new();
    let mut logprobs = Vec::new();
    let mut prompt_logprobs = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Logprob(lp) => logprobs.push(lp),
            Event::PromptLogprobs(lps) => prompt_logprobs.extend(lps),
            Event::Done(usage) => {
                return Ok(Collected {
                    text,
                    usage,
                    logprobs,
                    prompt_logprobs,
                });
            }
            Event::Error(e) => return Err(ApiError::internal(e)),
        }
    }
    Err(ApiError::internal(
        "the engine ended the request without an answer",
    ))
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

struct StreamState {
    rx: mpsc::UnboundedReceiver<Event>,
    kind: Kind,
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    started: bool,
    pending: std::collections::VecDeque<Bytes>,
    finished: bool,
    accounting: Accounting,
    model_ref: Arc<ChatModel>,
    text_offset: usize,
    /// With `echo`: the prompt text and ids, sent as the first chunk (with
    /// the prompt's scores once they arrive, when log-probabilities were
    /// asked for).
    echo: Option<(String, Vec<u32>)>,
    wants_logprobs: bool,
    prompt_scores: Vec<offgrid_inference::TokenLogprob>,
}

impl StreamState {
    /// Queues the echoed prompt as a chunk of its own.
    fn flush_echo(&mut self) {
        let Some((text, ids)) = self.echo.take() else {
            return;
        };
        let mut c = self.chunk(json!({"content": text}), None);
        if self.wants_logprobs {
            let lps = Logprobs {
                tokenizer: &self.model_ref.tokenizer,
                entries: Vec::new(),
                prompt: Some((ids, std::mem::take(&mut self.prompt_scores))),
            };
            c["choices"][0]["logprobs"] = lps.text_completion(0);
        }
        self.text_offset = text.len();
        self.pending.push_back(sse(&c));
    }
}

impl StreamState {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        match self.kind {
            Kind::Chat => json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            }),
            Kind::Text => json!({
                "id": self.id, "object": "text_completion", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "text": delta.get("content").cloned().unwrap_or(json!("")),
                             "logprobs": null, "finish_reason": finish}],
            }),
        }
    }
}

fn stream_response(state: StreamState) -> HttpResponse {
    let body = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(bytes) = s.pending.pop_front() {
                return Some((Ok::<_, actix_web::Error>(bytes), s));
            }
            if s.finished {
                return None;
            }
            if !s.started && s.kind == Kind::Chat {
                s.started = true;
                let first = s.chunk(json!({"role": "assistant", "content": ""}), None);
                s.pending.push_back(sse(&first));
                continue;
            }
            if s.echo.is_some() && !s.wants_logprobs {
                s.flush_echo();
                continue;
            }
            let event = s.rx.recv().await;
            if s.echo.is_some() && !matches!(event, Some(Event::PromptLogprobs(_))) {
                // The prompt's scores are all in: echo it first.
                s.flush_echo();
            }
            match event {
                Some(Event::Text(t)) if t.is_empty() => {}
                Some(Event::Text(t)) => {
                    s.text_offset += t.len();
                    let c = s.chunk(json!({"content": t}), None);
                    s.pending.push_back(sse(&c));
                }
                Some(Event::PromptLogprobs(scores)) => s.prompt_scores.extend(scores),
                Some(Event::Logprob(lp)) => {
                    let lps = Logprobs {
                        tokenizer: &s.model_ref.tokenizer,
                        entries: vec![lp],
                        prompt: None,
                    };
                    let value = match s.kind {
                        Kind::Chat => lps.chat(),
                        Kind::Text => lps.text_completion(s.text_offset),
                    };
                    let mut c = s.chunk(json!({"content": ""}), None);
                    c["choices"][0]["logprobs"] = value;
                    s.pending.push_back(sse(&c));
                }
                Some(Event::Done(usage)) => {
                    s.accounting.record(
                        usage.prompt_tokens,
                        usage.completion_tokens,
                        usage.duration,
                    );
                    let last = s.chunk(json!({}), Some(usage.finish_reason.as_str()));
                    s.pending.push_back(sse(&last));
                    if s.include_usage {
                        let object = if s.kind == Kind::Chat {
                            "chat.completion.chunk"
                        } else {
                            "text_completion"
                        };
                        let u = json!({"id": s.id, "object": object, "created": s.created,
                                       "model": s.model, "choices": [], "usage": usage_json(&usage)});
                        s.pending.push_back(sse(&u));
                    }
                    s.pending.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
                    s.finished = true;
                }
                Some(Event::Error(e)) => {
                    tracing::error!(error = %e, "generation failed");
                    let err = json!({"error": {"message": "generation failed", "type": "server_error", "code": "internal_error"}});
                    s.pending.push_back(sse(&err));
                    s.pending.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
                    s.finished = true;
                }
                None => return None,
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

async fn run(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    kind: Kind,
    common: &Common,
    text: PromptText,
) -> Result<HttpResponse, ApiError> {
    let (params, explicit_max) = common.params(kind)?;
    let keep_alive = super::models::keep_alive(common.keep_alive.as_ref(), caller)?;
    let admission = admit_generation(state, caller, client)?;
    let model = super::models::chat(state, &common.model, keep_alive).await?;
    let wants_logprobs = params.logprobs.is_some();
    let echo_text = match (&text, common.echo) {
        (PromptText::Raw(p), Some(true)) => Some(p.clone()),
        _ => None,
    };
    let prepared = prepare(model.clone(), text, params, explicit_max).await?;
    let prompt_ids = echo_text.as_ref().map(|_| prepared.prompt.clone());
    let rx = submit(
        state,
        fairness_key(caller, client),
        client,
        admission,
        prepared,
    )?;
    let endpoint = if kind == Kind::Chat {
        "chat.completions"
    } else {
        "completions"
    };
    let accounting = Accounting::new(state, caller, &common.model, endpoint);
    let prefix = if kind == Kind::Chat {
        "chatcmpl"
    } else {
        "cmpl"
    };
    let id = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let created = now();
    if common.stream {
        return Ok(stream_response(StreamState {
            rx,
            kind,
            id,
            model: common.model.clone(),
            created,
            include_usage: common
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
            started: false,
            pending: Default::default(),
            finished: false,
            accounting,
            model_ref: model,
            text_offset: 0,
            echo: echo_text.zip(prompt_ids),
            wants_logprobs,
            prompt_scores: Vec::new(),
        }));
    }
    let Collected {
        text,
        usage,
        logprobs: entries,
        prompt_logprobs,
    } = collect(rx).await?;
    accounting.record(usage.prompt_tokens, usage.completion_tokens, usage.duration);
    let text = match echo_text {
        Some(prompt) => prompt + &text,
        None => text,
    };
    let lps = Logprobs {
        tokenizer: &model.tokenizer,
        entries,
        prompt: prompt_ids.map(|ids| (ids, prompt_logprobs)),
    };
    let choice = match kind {
        Kind::Chat => json!({"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": if wants_logprobs { lps.chat() } else { Value::Null },
                             "finish_reason": usage.finish_reason.as_str()}),
        Kind::Text => json!({"index": 0, "text": text,
                             "logprobs": if wants_logprobs { lps.text_completion(0) } else { Value::Null },
                             "finish_reason": usage.finish_reason.as_str()}),
    };
    let object = if kind == Kind::Chat {
        "chat.completion"
    } else {
        "text_completion"
    };
    Ok(HttpResponse::Ok().json(json!({
        "id": id, "object": object, "created": created, "model": common.model,
        "choices": [choice], "usage": usage_json(&usage),
    })))
}

/// `POST /v1/chat/completions`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "inference", request_body = ChatCompletionBody,
    responses((status = 200, description = "The answer; with `stream`, server-sent events of `chat.completion.chunk` objects ending with `data: [DONE]`",
        content((super::openapi::ChatCompletion = "application/json"), (String = "text/event-stream")))))]
pub(crate) async fn chat_completions(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let common: Common = parse(body.clone())?;
    let req: ChatRequest = parse(body)?;
    let msgs = messages(req.messages)?;
    run(
        &state,
        &caller,
        &client,
        Kind::Chat,
        &common,
        PromptText::Chat(msgs),
    )
    .await
}

/// `POST /v1/completions`.
#[utoipa::path(post, path = "/v1/completions", tag = "inference", request_body = CompletionBody,
    responses((status = 200, description = "The completion; with `stream`, server-sent events of `text_completion` objects ending with `data: [DONE]`",
        content((super::openapi::TextCompletion = "application/json"), (String = "text/event-stream")))))]
pub(crate) async fn completions(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let common: Common = parse(body.clone())?;
    let req: CompletionRequest = parse(body)?;
    let prompt = match req.prompt {
        PromptField::One(p) => p,
        PromptField::Many(mut v) if v.len() == 1 => v.remove(0),
        PromptField::Many(v) => {
            return Err(invalid(
                "prompt",
                format!("only one prompt per request is supported, got {}", v.len()),
            ));
        }
    };
    run(
        &state,
        &caller,
        &client,
        Kind::Text,
        &common,
        PromptText::Raw(prompt),
    )
    .await
}

/// One text, or up to 2,048.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

/// The body of `POST /v1/embeddings`.
#[derive(Deserialize, utoipa::ToSchema)]
struct EmbeddingRequest {
    /// An embedding model's id.
    #[schema(example = "all-minilm-l6-v2")]
    model: String,
    input: EmbeddingInput,
    /// `float` (default) or `base64`.
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<KeepAliveSchema>)]
    keep_alive: Option<Value>,
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// `POST /v1/embeddings`.
#[utoipa::path(post, path = "/v1/embeddings", tag = "inference", request_body = EmbeddingRequest,
    responses((status = 200, description = "One vector per input", body = super::openapi::EmbeddingList)))]
pub(crate) async fn embeddings(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let req: EmbeddingRequest = parse(body.into_inner())?;
    let as_base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(f) => {
            return Err(invalid(
                "encoding_format",
                format!("must be \"float\" or \"base64\", got {f:?}"),
            ));
        }
    };
    let keep_alive = super::models::keep_alive(req.keep_alive.as_ref(), &caller)?;
    let inputs = match req.input {
        EmbeddingInput::One(s) => vec![s],
        EmbeddingInput::Many(v) => v,
    };
    if inputs.is_empty() || inputs.len() > 2048 {
        return Err(invalid("input", "must hold 1 to 2048 strings"));
    }
    // Admitted before the model is loaded, and held (with the slot) by the
    // blocking work itself, so a client that leaves frees its place only
    // when the batch in progress is done.
    let admission = state
        .models
        .embeddings
        .admit(&fairness_key(&caller, &client))
        .map_err(|refusal| match refusal {
            EmbeddingRefusal::CallerBusy => {
                too_many("too many embedding requests in progress: wait for one to finish")
            }
            EmbeddingRefusal::ServerBusy => {
                server_busy("the server is busy with embeddings; try again shortly")
            }
        })?;
    let guest_share = match caller.principal.user_id {
        Some(_) => None,
        None => Some(
            state
                .models
                .guests
                .embeddings
                .try_admit("all")
                .ok_or_else(|| {
                    server_busy("too many guest requests in progress; try again shortly")
                })?,
        ),
    };
    let embedder = super::models::embedder(&state, &req.model, keep_alive).await?;
    let slot = admission.slot().await;
    // Set when this handler is dropped (the client left) or done: the
    // blocking work stops before its next batch.
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _on_drop = SetOnDrop(gone.clone());
    let connection = client.clone();
    let out = web::block(move || {
        let _held = (admission, guest_share, slot);
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        embedder.embed_while(&refs, &|| {
            !gone.load(std::sync::atomic::Ordering::Acquire) && connection.is_connected()
        })
    })
    .await?
    .map_err(ApiError::internal)?
    .ok_or_else(|| ApiError::internal("embedding stopped"))?;
    Accounting::new(&state, &caller, &req.model, "embeddings").record(
        out.tokens,
        0,
        started.elapsed(),
    );
    let data: Vec<Value> = out
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if as_base64 {
                // OpenAI's base64 form: little-endian f32s.
                use base64::Engine;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "object": "list", "data": data, "model": req.model,
        "usage": {"prompt_tokens": out.tokens, "total_tokens": out.tokens},
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    /// Look back this many days (default 30).
    #[serde(default = "default_days")]
    days: u32,
    /// Every user's totals (needs the view_metrics permission).
    #[serde(default)]
    all: bool,
}

fn default_days() -> u32 {
    30
}

/// `GET /v1/usage?days=&all=`: token totals per user and model.
#[utoipa::path(get, path = "/v1/usage", tag = "inference", params(UsageQuery),
    responses((status = 200, description = "Token totals per user and model", body = super::openapi::UsageList)))]
pub(crate) async fn usage(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    if !(1..=3650).contains(&q.days) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "days must be between 1 and 3650",
        ));
    }
    let me = caller
        .principal
        .user_id
        .clone()
        .ok_or_else(|| ApiError::unauthenticated("sign in to see usage"))?;
    let scope = if q.all {
        offgrid_policy::authorize(&caller.principal, offgrid_domain::Permission::ViewMetrics)
            .map_err(|_| {
                ApiError::forbidden(
                    "insufficient_permissions",
                    "all=true needs the view_metrics permission",
                )
            })?;
        offgrid_domain::Scope::everything_for(&caller.principal).ok_or_else(|| {
            ApiError::forbidden("insufficient_permissions", "all=true is for administrators")
        })?
    } else {
        offgrid_domain::Scope::owned_by(me)
    };
    let since = offgrid_domain::Timestamp(now() - i64::from(q.days) * 86_400);
    let repo = state.auth.repos().usage.clone();
    let totals = web::block(move || repo.totals(&scope, since))
        .await?
        .map_err(offgrid_auth::AuthError::from)?;
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": totals, "days": q.days})))
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
