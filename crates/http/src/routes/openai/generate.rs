//! What chat and text completions share: admission, one blocking call into
//! the inference crate's [`Models::generate`](offgrid_inference::Models),
//! then either the whole answer or a stream ([`super::sse`]).

use actix_web::HttpResponse;
use offgrid_inference::engine::Usage as EngineUsage;
use offgrid_inference::{Event, GenerateRequest, Generation, Prompt};
use tokio::sync::mpsc;

use super::logprobs::Logprobs;
use super::params::{Kind, sampling};
use super::sse::{StreamState, stream_response};
use super::{Accounting, now, requester};
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::state::AppState;
use crate::wire::{
    AssistantMessage, ChatChoice, ChatCompletion, CompletionOptions, TextChoice, TextCompletion,
    Usage,
};

/// Everything a non-streaming request produced.
struct Collected {
    text: String,
    usage: EngineUsage,
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

/// Runs one chat or text completion for `caller`.
pub(super) async fn run(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    kind: Kind,
    options: CompletionOptions<'_>,
    prompt: Prompt,
) -> Result<HttpResponse, ApiError> {
    let (params, explicit_max) = sampling(&options, kind)?;
    let keep_alive = crate::routes::models::keep_alive(options.keep_alive, caller)?;
    // The caller's place first, before any costly work is done for them.
    let ticket = state.models.admit_generation(&requester(caller, client))?;
    let echo_text = match (&prompt, options.echo) {
        (Prompt::Text(p), Some(true)) => Some(p.clone()),
        _ => None,
    };
    let wants_logprobs = params.logprobs.is_some();
    let request = GenerateRequest {
        model: options.model.to_owned(),
        prompt,
        params,
        explicit_max,
        keep_alive,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    // The engine stops at its next step once the receiver is dropped (the
    // response body or the handler's future is dropped) or the client's
    // connection is closed (a plain request's handler keeps running).
    let watch = tx.clone();
    let connection = client.clone();
    let models = state.models.clone();
    let generation: Generation = crate::trace::block(move || {
        models.generate(
            ticket,
            request,
            Box::new(move |event| tx.send(event).is_ok()),
            Some(Box::new(move || {
                !watch.is_closed() && connection.is_connected()
            })),
        )
    })
    .await??;
    let (endpoint, prefix) = match kind {
        Kind::Chat => ("chat.completions", "chatcmpl"),
        Kind::Text => ("completions", "cmpl"),
    };
    let accounting = Accounting::new(state, caller, options.model, endpoint);
    let id = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let created = now();
    if options.stream {
        let echo = echo_text.map(|text| (text, generation.prompt_tokens().to_vec()));
        return Ok(stream_response(StreamState::new(
            rx,
            kind,
            id,
            options.model.to_owned(),
            created,
            options.stream_options.is_some_and(|o| o.include_usage),
            accounting,
            generation,
            echo,
            wants_logprobs,
        )));
    }
    let Collected {
        text,
        usage,
        logprobs: entries,
        prompt_logprobs,
    } = collect(rx).await?;
    accounting.record(usage.prompt_tokens, usage.completion_tokens, usage.duration);
    let lps = Logprobs {
        generation: &generation,
        entries,
        prompt: echo_text
            .as_ref()
            .map(|_| (generation.prompt_tokens().to_vec(), prompt_logprobs)),
    };
    let text = match echo_text {
        Some(prompt) => prompt + &text,
        None => text,
    };
    let finish_reason = usage.finish_reason.as_str().to_owned();
    let counts = Usage::new(usage.prompt_tokens, usage.completion_tokens);
    let model = options.model.to_owned();
    Ok(match kind {
        Kind::Chat => HttpResponse::Ok().json(ChatCompletion {
            id,
            object: "chat.completion".to_owned(),
            created,
            model,
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant".to_owned(),
                    content: text,
                },
                logprobs: wants_logprobs.then(|| lps.chat()),
                finish_reason,
            }],
            usage: counts,
        }),
        Kind::Text => HttpResponse::Ok().json(TextCompletion {
            id,
            object: "text_completion".to_owned(),
            created,
            model,
            choices: vec![TextChoice {
                index: 0,
                text,
                logprobs: wants_logprobs.then(|| lps.text_completion(0)),
                finish_reason: Some(finish_reason),
            }],
            usage: Some(counts),
        }),
    })
}
