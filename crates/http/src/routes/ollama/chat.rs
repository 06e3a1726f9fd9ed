//! `POST /api/generate` and `POST /api/chat`: Ollama's requests onto one
//! generation through [`crate::routes::openai::start`] (admission, quota,
//! the fair scheduler, usage records), answered as NDJSON chunks (the
//! default) or one object. An empty prompt (or no messages) loads the
//! model, or unloads it with `keep_alive: 0`, and answers at once.

use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use offgrid_config::KeepAlive;
use offgrid_inference::engine::Usage as EngineUsage;
use offgrid_inference::{ChatMessage, Event, Prompt};
use serde_json::Value;

use super::options::{self, Sampling};
use super::stream::{NDJSON, line};
use super::{echoed, now_rfc3339, resolve};
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::routes::openai::{
    Kind, Started, Submit, admit_quota, invalid, parse, requester, start, wait_recorded, with_rate,
};
use crate::state::AppState;
use crate::wire::{
    CompletionOptions, OllamaChatRequest, OllamaChatResponse, OllamaError, OllamaGenerateRequest,
    OllamaGenerateResponse, OllamaMetrics, OllamaReply,
};

/// Which of the two routes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Generate,
    Chat,
}

/// One chunk or answer of either route.
fn chunk(
    api: Api,
    model: &str,
    text: String,
    done_reason: Option<String>,
    metrics: Option<OllamaMetrics>,
) -> Value {
    let done = done_reason.is_some();
    let value = match api {
        Api::Generate => serde_json::to_value(OllamaGenerateResponse {
            model: model.to_owned(),
            created_at: now_rfc3339(),
            response: text,
            done,
            done_reason,
            metrics: metrics.unwrap_or_default(),
        }),
        Api::Chat => serde_json::to_value(OllamaChatResponse {
            model: model.to_owned(),
            created_at: now_rfc3339(),
            message: OllamaReply {
                role: "assistant".to_owned(),
                content: text,
            },
            done,
            done_reason,
            metrics: metrics.unwrap_or_default(),
        }),
    };
    value.unwrap_or(Value::Null)
}

/// Nanoseconds, saturating.
fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The final chunk's figures, measured: from arrival (`received`), until
/// the engine had the request (`load`), and the engine's own times.
fn metrics(received: Instant, load: Duration, u: &EngineUsage) -> OllamaMetrics {
    let first = u.time_to_first_token.unwrap_or(u.duration);
    OllamaMetrics {
        total_duration: Some(ns(received.elapsed())),
        load_duration: Some(ns(load)),
        prompt_eval_count: Some(u.prompt_tokens),
        prompt_eval_duration: Some(ns(first.saturating_sub(u.queued))),
        eval_count: Some(u.completion_tokens),
        eval_duration: Some(ns(u.duration.saturating_sub(first))),
    }
}

/// An empty prompt: load the model, or unload it when `keep_alive` is 0
/// (which only callers who may manage models can ask for; anyone else's
/// `keep_alive` is the server's), and say which. Counted against the
/// caller's quota and holding one of their generation places while the
/// model loads, like a generation.
async fn load_or_unload(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    api: Api,
    requested: &str,
    id: String,
    keep_alive: Option<&Value>,
) -> Result<HttpResponse, ApiError> {
    let keep = crate::routes::models::keep_alive(keep_alive, caller)?;
    let kind = state.models.status(&id).map(|s| s.entry.kind);
    if kind != Some(offgrid_inference::ModelKind::Chat) {
        return Err(offgrid_inference::ModelError::WrongKind {
            id,
            wanted: "a chat",
        }
        .into());
    }
    let quota = admit_quota(state, caller, client, false).await?;
    let ticket = state.models.admit_generation(&requester(caller, client))?;
    let models = state.models.clone();
    let reason = if matches!(keep, Some(KeepAlive::For(d)) if d.is_zero()) {
        crate::trace::block(move || models.unload(&id)).await??;
        "unload"
    } else {
        crate::trace::block(move || {
            let loaded = models.load(&id, keep);
            drop(ticket);
            loaded
        })
        .await??;
        "load"
    };
    let res = HttpResponse::Ok().json(chunk(
        api,
        requested,
        String::new(),
        Some(reason.to_owned()),
        None,
    ));
    Ok(with_rate(res, &quota))
}

/// Runs one generation and answers it.
#[allow(clippy::too_many_arguments)]
async fn answer(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    api: Api,
    requested: String,
    id: &str,
    prompt: Prompt,
    sampling: Sampling,
    keep_alive: Option<&Value>,
    streaming: bool,
    received: Instant,
) -> Result<HttpResponse, ApiError> {
    let Sampling {
        temperature,
        top_p,
        top_k,
        seed,
        max_tokens,
        stop,
        repeat_penalty,
        format,
    } = sampling;
    let options = CompletionOptions {
        stream: streaming,
        max_tokens,
        temperature: Some(temperature),
        top_p: Some(top_p),
        top_k: Some(top_k),
        repetition_penalty: repeat_penalty,
        seed,
        keep_alive,
        ..CompletionOptions::new(id)
    };
    let (kind, endpoint) = match (&prompt, api) {
        (Prompt::Text(_), _) => (Kind::Text, "ollama.generate"),
        (_, Api::Generate) => (Kind::Chat, "ollama.generate"),
        (_, Api::Chat) => (Kind::Chat, "ollama.chat"),
    };
    let Started {
        mut rx,
        mut quota,
        recorded,
        ..
    } = start(
        state,
        caller,
        client,
        &options,
        Submit {
            kind,
            prompt,
            trimmable: 0..0,
            quota: None,
            endpoint,
            prefix: "ollama",
            stop,
            format,
        },
    )
    .await?;
    let load = received.elapsed();
    if streaming {
        // The generation place is held until the stream ends.
        let place = quota.guard.take();
        let body =
            futures_util::stream::unfold((rx, false, place), move |(mut rx, finished, place)| {
                let (requested, recorded) = (requested.clone(), recorded.clone());
                async move {
                    if finished {
                        return None;
                    }
                    loop {
                        let event = rx.recv().await?;
                        let (bytes, done) = match event {
                            Event::Text(t) if t.is_empty() => continue,
                            Event::Text(t) => (line(&chunk(api, &requested, t, None, None)), false),
                            Event::Done(u) => {
                                // Counted before the client hears the end.
                                wait_recorded(&recorded).await;
                                let last = chunk(
                                    api,
                                    &requested,
                                    String::new(),
                                    Some(u.finish_reason.as_str().to_owned()),
                                    Some(metrics(received, load, &u)),
                                );
                                (line(&last), true)
                            }
                            Event::Error(e) => {
                                tracing::error!(error = %e, "generation failed");
                                (
                                    line(&OllamaError {
                                        error: "generation failed".to_owned(),
                                    }),
                                    true,
                                )
                            }
                            Event::Logprob(_) | Event::PromptLogprobs(_) => continue,
                        };
                        return Some((Ok::<Bytes, actix_web::Error>(bytes), (rx, done, place)));
                    }
                }
            });
        let res = HttpResponse::Ok()
            .content_type(NDJSON)
            .insert_header(("Cache-Control", "no-cache"))
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(body);
        return Ok(with_rate(res, &quota));
    }
    let mut text = String::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done(u) => {
                wait_recorded(&recorded).await;
                let whole = chunk(
                    api,
                    &requested,
                    text,
                    Some(u.finish_reason.as_str().to_owned()),
                    Some(metrics(received, load, &u)),
                );
                return Ok(with_rate(HttpResponse::Ok().json(whole), &quota));
            }
            Event::Error(e) => return Err(ApiError::internal(e)),
            Event::Logprob(_) | Event::PromptLogprobs(_) => {}
        }
    }
    Err(offgrid_inference::ModelError::ClientLeft.into())
}

/// `POST /api/generate`: a prompt (the model's chat template around it,
/// with `system` before it; `raw`: as given).
#[utoipa::path(post, path = "/api/generate", tag = "ollama", request_body = OllamaGenerateRequest,
    responses((status = 200, description = "NDJSON chunks (the default), or one object with `stream: false`",
        content((OllamaGenerateResponse = "application/json"), (String = "application/x-ndjson")))))]
pub(crate) async fn generate(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let received = Instant::now();
    let req: OllamaGenerateRequest = parse(body.into_inner())?;
    let id = resolve(&state, &req.model)?;
    let format = options::output_format(req.format.as_ref())?;
    options::check_think(&req.model, req.think.as_ref())?;
    options::check_images("images", &req.model, req.images.as_ref())?;
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid(
            "suffix",
            format!("\"{}\" does not support insert", req.model),
        ));
    }
    if req.template.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid(
            "template",
            "is not supported: the model's own chat template is used (or `raw`)",
        ));
    }
    if req.context.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(invalid(
            "context",
            "is not supported: send the conversation to /api/chat",
        ));
    }
    if req.raw && req.system.is_some() {
        return Err(invalid(
            "raw",
            "raw mode does not support template, system, or context",
        ));
    }
    if req.prompt.is_empty() {
        return load_or_unload(
            &state,
            &caller,
            &client,
            Api::Generate,
            &echoed(&req.model),
            id,
            req.keep_alive.as_ref(),
        )
        .await;
    }
    let mut sampling = options::sampling(req.options.as_ref())?;
    sampling.format = format;
    let prompt = if req.raw {
        Prompt::Text(req.prompt)
    } else {
        let mut messages = Vec::new();
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(ChatMessage::new("system", system));
        }
        messages.push(ChatMessage::new("user", &req.prompt));
        Prompt::Chat(messages)
    };
    answer(
        &state,
        &caller,
        &client,
        Api::Generate,
        echoed(&req.model),
        &id,
        prompt,
        sampling,
        req.keep_alive.as_ref(),
        req.stream.unwrap_or(true),
        received,
    )
    .await
}

/// `POST /api/chat`: a conversation.
#[utoipa::path(post, path = "/api/chat", tag = "ollama", request_body = OllamaChatRequest,
    responses((status = 200, description = "NDJSON chunks (the default), or one object with `stream: false`",
        content((OllamaChatResponse = "application/json"), (String = "application/x-ndjson")))))]
pub(crate) async fn chat(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let received = Instant::now();
    let req: OllamaChatRequest = parse(body.into_inner())?;
    let id = resolve(&state, &req.model)?;
    let format = options::output_format(req.format.as_ref())?;
    options::check_think(&req.model, req.think.as_ref())?;
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(invalid(
            "tools",
            format!("\"{}\" does not support tools", req.model),
        ));
    }
    if req.messages.is_empty() {
        return load_or_unload(
            &state,
            &caller,
            &client,
            Api::Chat,
            &echoed(&req.model),
            id,
            req.keep_alive.as_ref(),
        )
        .await;
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        options::check_images(
            &format!("messages[{i}].images"),
            &req.model,
            m.images.as_ref(),
        )?;
        let role = m.role.to_ascii_lowercase();
        if !matches!(role.as_str(), "system" | "user" | "assistant") {
            return Err(invalid(
                &format!("messages[{i}].role"),
                format!("must be system, user or assistant, got {:?}", m.role),
            ));
        }
        messages.push(ChatMessage::new(&role, &m.content));
    }
    let mut sampling = options::sampling(req.options.as_ref())?;
    sampling.format = format;
    answer(
        &state,
        &caller,
        &client,
        Api::Chat,
        echoed(&req.model),
        &id,
        Prompt::Chat(messages),
        sampling,
        req.keep_alive.as_ref(),
        req.stream.unwrap_or(true),
        received,
    )
    .await
}
