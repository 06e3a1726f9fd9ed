//! What chat and text completions share: admission, one blocking call into
//! the inference crate's [`Models::generate`](offgrid_inference::Models),
//! then either the whole answer or a stream ([`super::sse`]).

use actix_web::HttpResponse;
use offgrid_inference::engine::Usage as EngineUsage;
use offgrid_inference::{Event, GenerateRequest, Generation, OutputFormat, Prompt};
use tokio::sync::mpsc;

use super::logprobs::Logprobs;
use super::params::{Kind, sampling};
use super::sse::{StreamState, stream_response};
use super::transcript::Transcript;
use super::{Accounting, RecordSlot, now, requester, wait_recorded};
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::state::AppState;
use crate::wire::{
    AssistantMessage, ChatChoice, ChatCompletion, CompletionOptions, ResponseFormat, TextChoice,
    TextCompletion, Usage,
};

/// Everything a non-streaming request produced.
struct Collected {
    text: String,
    usage: EngineUsage,
    logprobs: Vec<offgrid_inference::TokenLogprob>,
    prompt_logprobs: Vec<offgrid_inference::TokenLogprob>,
}

/// What to generate from, and the session it is part of.
pub(super) struct Input {
    /// The prompt.
    pub prompt: Prompt,
    /// Stored history the model may do without (see
    /// [`GenerateRequest::trimmable`]).
    pub trimmable: std::ops::Range<usize>,
    /// Stored messages already left out before the prompt was built.
    pub omitted: usize,
    /// Where to save the exchange.
    pub transcript: Option<Transcript>,
    /// The caller's quota, when it was already admitted (a chat in a
    /// session is admitted before its history is read).
    pub quota: Option<offgrid_workspace::quota::QuotaPass>,
    /// With retrieval: the chunks in the prompt, for the answer to cite.
    pub citations: Option<Vec<crate::wire::Citation>>,
}

impl From<Prompt> for Input {
    fn from(prompt: Prompt) -> Self {
        Input {
            prompt,
            trimmable: 0..0,
            omitted: 0,
            transcript: None,
            quota: None,
            citations: None,
        }
    }
}

async fn collect(
    mut rx: mpsc::UnboundedReceiver<Event>,
    mut transcript: Option<&mut Transcript>,
    recorded: &RecordSlot,
) -> Result<Collected, ApiError> {
    let mut text = String::new();
    let mut logprobs = Vec::new();
    let mut prompt_logprobs = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Text(t) => {
                if let Some(t2) = transcript.as_deref_mut() {
                    t2.push(&t);
                }
                text.push_str(&t);
            }
            Event::Logprob(lp) => logprobs.push(lp),
            Event::PromptLogprobs(lps) => prompt_logprobs.extend(lps),
            Event::Done(usage) => {
                wait_recorded(recorded).await;
                if let Some(t) = transcript {
                    t.finish(&usage).await;
                }
                return Ok(Collected {
                    text,
                    usage,
                    logprobs,
                    prompt_logprobs,
                });
            }
            Event::Error(e) => {
                if let Some(t) = transcript {
                    t.discard();
                }
                return Err(ApiError::internal(e));
            }
        }
    }
    // Every request the engine ran ends with `Done` or `Error`: one that
    // ends without either never ran, because its client left while it
    // waited. Nobody reads this answer.
    Err(offgrid_inference::ModelError::ClientLeft.into())
}

/// A generation the engine has taken: its events, and what the answer
/// needs to report on it.
pub(crate) struct Started {
    /// The engine's events, ending with `Done` or `Error`.
    pub rx: mpsc::UnboundedReceiver<Event>,
    /// The prompt as tokenized, and what the model did to fit it.
    pub generation: Generation,
    /// The request's id (also its id on the queue board).
    pub id: String,
    /// The caller's quota pass; it holds their generation place.
    pub quota: offgrid_workspace::quota::QuotaPass,
    /// The usage record, to wait on before the answer ends.
    pub recorded: RecordSlot,
    /// Whether the request asked for log-probabilities.
    pub logprobs: bool,
}

/// What to generate, besides the options.
pub(crate) struct Submit {
    /// Chat or text (which checks apply to the options).
    pub kind: Kind,
    /// The prompt.
    pub prompt: Prompt,
    /// Stored history the model may do without.
    pub trimmable: std::ops::Range<usize>,
    /// The caller's quota, when it was already admitted.
    pub quota: Option<offgrid_workspace::quota::QuotaPass>,
    /// The route's name in usage records (`chat.completions`,
    /// `ollama.chat`, …).
    pub endpoint: &'static str,
    /// The request id's prefix.
    pub prefix: &'static str,
    /// Stop sequences the caller checked itself, instead of the options'
    /// (Ollama allows more than OpenAI's four).
    pub stop: Option<Vec<String>>,
    /// What the output must be (JSON, a JSON schema), enforced while
    /// sampling.
    pub format: Option<offgrid_inference::OutputFormat>,
}

/// The output format `response_format` asks for (`None`: free text).
fn output_format(format: Option<&ResponseFormat>) -> Option<OutputFormat> {
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(OutputFormat::Json),
        ResponseFormat::JsonSchema { json_schema } => Some(match &json_schema.schema {
            Some(schema) => OutputFormat::JsonSchema(schema.clone()),
            None => OutputFormat::Json,
        }),
    }
}

/// Admits `caller` and hands one generation to the engine: the part of a
/// completion every API shares (OpenAI's here, Ollama's in
/// `routes::ollama`).
pub(crate) async fn start(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    options: &CompletionOptions<'_>,
    submit: Submit,
) -> Result<Started, ApiError> {
    let Submit {
        kind,
        prompt,
        trimmable,
        quota,
        endpoint,
        prefix,
        stop,
        format,
    } = submit;
    let received = std::time::Instant::now();
    let (mut params, explicit_max) = sampling(options, kind)?;
    if let Some(stop) = stop {
        params.stop = stop.into_iter().filter(|s| !s.is_empty()).collect();
    }
    let logprobs = params.logprobs.is_some();
    let keep_alive = crate::routes::models::keep_alive(options.keep_alive, caller)?;
    // The caller's quota and place first, before any costly work is done
    // for them.
    let quota = match quota {
        Some(pass) => pass,
        None => super::admit_quota(state, caller, client, true).await?,
    };
    let ticket = state.models.admit_generation(&requester(caller, client))?;
    let id = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let request = GenerateRequest {
        model: options.model.to_owned(),
        prompt,
        params,
        explicit_max,
        keep_alive,
        trimmable,
        id: Some(id.clone()),
        format,
    };
    // Usage is recorded where the engine reports it, whether or not the
    // client is still there to read the answer (a client that hangs up
    // has its tokens counted too).
    let accounting = Accounting::new(state, caller, client, options.model, endpoint);
    // The engine's thread starts the usage write before it reports `Done`;
    // the answer waits for it.
    let recorded = RecordSlot::default();
    let slot = recorded.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    // The engine stops at its next step once the receiver is dropped (the
    // response body or the handler's future is dropped) or the client's
    // connection is closed (a plain request's handler keeps running).
    let watch = tx.clone();
    let connection = client.clone();
    let models = state.models.clone();
    let (metrics, model) = (state.metrics.clone(), options.model.to_owned());
    let gaps = metrics.gaps_of(&model);
    let mut last_token: Option<std::time::Instant> = None;
    let generation: Generation = crate::trace::block(move || {
        models.generate(
            ticket,
            request,
            Box::new(move |event| {
                if let Event::Text(_) = &event {
                    let now = std::time::Instant::now();
                    if let Some(last) = last_token.replace(now) {
                        gaps.observe((now - last).as_secs_f64());
                    }
                }
                if let Event::Error(_) = &event {
                    metrics.generation(&model, endpoint, "error", None);
                }
                if let Event::Done(u) = &event {
                    metrics.generation(
                        &model,
                        endpoint,
                        u.finish_reason.as_str(),
                        Some(&crate::metrics::GenerationTimings {
                            first_token: u.time_to_first_token,
                            queued: u.queued,
                            total: received.elapsed(),
                        }),
                    );
                    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
                    let ttft = u.time_to_first_token.unwrap_or(u.duration);
                    // Until the engine had it: admission, a blocking
                    // thread, the model lookup, the template, the tokenizer.
                    let submitted = received.elapsed().saturating_sub(u.duration);
                    tracing::debug!(
                        prompt_tokens = u.prompt_tokens,
                        completion_tokens = u.completion_tokens,
                        submit_ms = ms(submitted),
                        queued_ms = ms(u.queued),
                        prompt_ms = ms(ttft.saturating_sub(u.queued)),
                        decode_ms = ms(u.duration.saturating_sub(ttft)),
                        "generation timings"
                    );
                    let write = accounting.record(u.prompt_tokens, u.completion_tokens, u.duration);
                    match slot.lock() {
                        Ok(mut s) => *s = write,
                        Err(poisoned) => *poisoned.into_inner() = write,
                    }
                }
                tx.send(event).is_ok()
            }),
            Some(Box::new(move || {
                !watch.is_closed() && connection.is_connected()
            })),
        )
    })
    .await?
    .map_err(|e| match e {
        // Named the way the route's API names it.
        offgrid_inference::ModelError::InvalidFormat(message) => {
            let field = if prefix == "ollama" {
                "format"
            } else {
                "response_format"
            };
            super::invalid(field, message)
        }
        other => other.into(),
    })?;
    Ok(Started {
        rx,
        generation,
        id,
        quota,
        recorded,
        logprobs,
    })
}

/// Runs one chat or text completion for `caller`.
pub(super) async fn run(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    kind: Kind,
    options: CompletionOptions<'_>,
    input: Input,
) -> Result<HttpResponse, ApiError> {
    let Input {
        prompt,
        trimmable,
        omitted,
        mut transcript,
        quota,
        citations,
    } = input;
    if options.model.is_empty() {
        return Err(super::params::invalid(
            "model",
            "is required (or a session or preset that names one)",
        ));
    }
    let echo_text = match (&prompt, options.echo) {
        (Prompt::Text(p), Some(true)) => Some(p.clone()),
        _ => None,
    };
    let (endpoint, prefix) = match kind {
        Kind::Chat => ("chat.completions", "chatcmpl"),
        Kind::Text => ("completions", "cmpl"),
    };
    let Started {
        rx,
        generation,
        id,
        mut quota,
        recorded,
        logprobs: wants_logprobs,
    } = start(
        state,
        caller,
        client,
        &options,
        Submit {
            kind,
            prompt,
            trimmable,
            quota,
            endpoint,
            prefix,
            stop: None,
            format: output_format(options.response_format),
        },
    )
    .await?;
    if let Some(t) = transcript.as_mut() {
        t.arm();
    }
    // In a session, the trim is always reported (0 when nothing was left
    // out).
    let truncated = transcript
        .as_ref()
        .map(|_| omitted.saturating_add(generation.truncated_messages()));
    let created = now();
    if options.stream {
        let echo = echo_text.map(|text| (text, generation.prompt_tokens().to_vec()));
        // The generation place is held until the stream ends.
        let place = quota.guard.take();
        let res = stream_response(
            StreamState::new(
                rx,
                kind,
                id,
                options.model.to_owned(),
                created,
                options.stream_options.is_some_and(|o| o.include_usage),
                generation,
                echo,
                wants_logprobs,
                transcript,
                truncated,
                place,
                recorded,
            )
            .with_citations(citations),
        );
        return Ok(super::with_rate(res, &quota));
    }
    let Collected {
        text,
        usage,
        logprobs: entries,
        prompt_logprobs,
    } = collect(rx, transcript.as_mut(), &recorded).await?;
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
    let counts = Usage {
        truncated_messages: truncated,
        ..Usage::new(usage.prompt_tokens, usage.completion_tokens)
    };
    let model = options.model.to_owned();
    let res = match kind {
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
            citations,
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
    };
    Ok(super::with_rate(res, &quota))
}
