//! Streaming answers as server-sent events: one `data: {chunk}` per piece
//! of text (or token's log-probabilities), a last chunk with the finish
//! reason, optionally one with the token counts, then `data: [DONE]`. An
//! error mid-stream is a `data: {"error": …}` event before `[DONE]`.

use std::collections::VecDeque;

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use offgrid_inference::{Event, Generation};
use serde::Serialize;
use tokio::sync::mpsc;

use super::logprobs::Logprobs;
use super::params::Kind;
use super::transcript::Transcript;
use crate::wire::{
    ChatCompletionChunk, ChatLogprobs, ChunkChoice, Delta, ErrorBody, ErrorDetail, TextChoice,
    TextCompletion, TextLogprobs, Usage,
};

/// One event's bytes.
pub(super) fn sse(value: &impl Serialize) -> Bytes {
    match serde_json::to_string(value) {
        Ok(json) => Bytes::from(format!("data: {json}\n\n")),
        // Our own plain structs always serialize; never send half a frame.
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a stream chunk");
            Bytes::new()
        }
    }
}

const DONE: &[u8] = b"data: [DONE]\n\n";

/// A chunk's log-probabilities, in the shape of its kind.
enum ChunkLogprobs {
    Chat(ChatLogprobs),
    Text(TextLogprobs),
}

/// Where a stream is.
pub(super) struct StreamState {
    rx: mpsc::UnboundedReceiver<Event>,
    kind: Kind,
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    started: bool,
    pending: VecDeque<Bytes>,
    finished: bool,
    generation: Generation,
    text_offset: usize,
    /// With `echo`: the prompt text and ids, sent as the first chunk (with
    /// the prompt's scores once they arrive, when log-probabilities were
    /// asked for).
    echo: Option<(String, Vec<u32>)>,
    wants_logprobs: bool,
    prompt_scores: Vec<offgrid_inference::TokenLogprob>,
    /// Where the exchange is saved (chat in a session); dropped with the
    /// stream, it saves what was generated as interrupted.
    transcript: Option<Transcript>,
    /// Stored messages left out to fit the context (chat in a session).
    truncated: Option<usize>,
    /// The caller's generation place under their quota, freed when the
    /// stream ends.
    _place: Option<offgrid_workspace::quota::RunningGuard>,
    /// The usage record, waited for before the end is sent.
    recorded: super::RecordSlot,
    /// With retrieval: sent in a chunk of their own before `[DONE]`.
    citations: Option<Vec<crate::wire::Citation>>,
}

impl StreamState {
    /// A stream of `rx`'s events.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        rx: mpsc::UnboundedReceiver<Event>,
        kind: Kind,
        id: String,
        model: String,
        created: i64,
        include_usage: bool,
        generation: Generation,
        echo: Option<(String, Vec<u32>)>,
        wants_logprobs: bool,
        transcript: Option<Transcript>,
        truncated: Option<usize>,
        place: Option<offgrid_workspace::quota::RunningGuard>,
        recorded: super::RecordSlot,
    ) -> Self {
        StreamState {
            rx,
            kind,
            id,
            model,
            created,
            include_usage,
            started: false,
            pending: VecDeque::new(),
            finished: false,
            generation,
            text_offset: 0,
            echo,
            wants_logprobs,
            prompt_scores: Vec::new(),
            transcript,
            truncated,
            _place: place,
            recorded,
            citations: None,
        }
    }

    /// Sends `citations` before the end.
    pub(super) fn with_citations(mut self, citations: Option<Vec<crate::wire::Citation>>) -> Self {
        self.citations = citations;
        self
    }

    /// A chunk adding `delta` (and its log-probabilities), or the last one
    /// with `finish`.
    fn chunk(&self, delta: Delta, logprobs: Option<ChunkLogprobs>, finish: Option<&str>) -> Bytes {
        let finish_reason = finish.map(str::to_owned);
        match self.kind {
            Kind::Chat => sse(&ChatCompletionChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk".to_owned(),
                created: self.created,
                model: self.model.clone(),
                choices: vec![ChunkChoice {
                    index: 0,
                    delta,
                    logprobs: match logprobs {
                        Some(ChunkLogprobs::Chat(l)) => Some(l),
                        _ => None,
                    },
                    finish_reason,
                }],
                usage: None,
                citations: None,
            }),
            Kind::Text => sse(&TextCompletion {
                id: self.id.clone(),
                object: "text_completion".to_owned(),
                created: self.created,
                model: self.model.clone(),
                choices: vec![TextChoice {
                    index: 0,
                    text: delta.content.unwrap_or_default(),
                    logprobs: match logprobs {
                        Some(ChunkLogprobs::Text(l)) => Some(l),
                        _ => None,
                    },
                    finish_reason,
                }],
                usage: None,
            }),
        }
    }

    /// The chunk with the token counts (`stream_options.include_usage`).
    fn usage_chunk(&self, usage: Usage) -> Bytes {
        match self.kind {
            Kind::Chat => sse(&ChatCompletionChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk".to_owned(),
                created: self.created,
                model: self.model.clone(),
                choices: Vec::new(),
                usage: Some(usage),
                citations: None,
            }),
            Kind::Text => sse(&TextCompletion {
                id: self.id.clone(),
                object: "text_completion".to_owned(),
                created: self.created,
                model: self.model.clone(),
                choices: Vec::new(),
                usage: Some(usage),
            }),
        }
    }

    fn text(content: String) -> Delta {
        Delta {
            role: None,
            content: Some(content),
        }
    }

    /// Queues the echoed prompt as a chunk of its own.
    fn flush_echo(&mut self) {
        let Some((text, ids)) = self.echo.take() else {
            return;
        };
        let logprobs = self.wants_logprobs.then(|| {
            let lps = Logprobs {
                generation: &self.generation,
                entries: Vec::new(),
                prompt: Some((ids, std::mem::take(&mut self.prompt_scores))),
            };
            ChunkLogprobs::Text(lps.text_completion(0))
        });
        self.text_offset = text.len();
        let chunk = self.chunk(Self::text(text), logprobs, None);
        self.pending.push_back(chunk);
    }

    /// Turns one engine event into chunks.
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Text(t) if t.is_empty() => {}
            Event::Text(t) => {
                if let Some(transcript) = self.transcript.as_mut() {
                    transcript.push(&t);
                }
                self.text_offset += t.len();
                let chunk = self.chunk(Self::text(t), None, None);
                self.pending.push_back(chunk);
            }
            Event::PromptLogprobs(scores) => self.prompt_scores.extend(scores),
            Event::Logprob(lp) => {
                let lps = Logprobs {
                    generation: &self.generation,
                    entries: vec![lp],
                    prompt: None,
                };
                let value = match self.kind {
                    Kind::Chat => ChunkLogprobs::Chat(lps.chat()),
                    Kind::Text => ChunkLogprobs::Text(lps.text_completion(self.text_offset)),
                };
                let chunk = self.chunk(Self::text(String::new()), Some(value), None);
                self.pending.push_back(chunk);
            }
            Event::Done(usage) => {
                let last = self.chunk(Delta::default(), None, Some(usage.finish_reason.as_str()));
                self.pending.push_back(last);
                if self.include_usage {
                    let chunk = self.usage_chunk(Usage {
                        truncated_messages: self.truncated,
                        ..Usage::new(usage.prompt_tokens, usage.completion_tokens)
                    });
                    self.pending.push_back(chunk);
                }
                if let Some(citations) = self.citations.take() {
                    self.pending.push_back(sse(&ChatCompletionChunk {
                        id: self.id.clone(),
                        object: "chat.completion.chunk".to_owned(),
                        created: self.created,
                        model: self.model.clone(),
                        choices: Vec::new(),
                        usage: None,
                        citations: Some(citations),
                    }));
                }
                self.pending.push_back(Bytes::from_static(DONE));
                self.finished = true;
            }
            Event::Error(e) => {
                if let Some(transcript) = self.transcript.as_mut() {
                    transcript.discard();
                }
                tracing::error!(error = %e, "generation failed");
                let error = ErrorBody {
                    error: ErrorDetail {
                        message: "generation failed".to_owned(),
                        kind: "server_error".to_owned(),
                        code: crate::code::ErrorCode::InternalError.as_str().to_owned(),
                    },
                };
                self.pending.push_back(sse(&error));
                self.pending.push_back(Bytes::from_static(DONE));
                self.finished = true;
            }
        }
    }
}

/// The streaming response.
pub(super) fn stream_response(state: StreamState) -> HttpResponse {
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
                let first = s.chunk(
                    Delta {
                        role: Some("assistant".to_owned()),
                        content: Some(String::new()),
                    },
                    None,
                    None,
                );
                s.pending.push_back(first);
                continue;
            }
            if s.echo.is_some() && !s.wants_logprobs {
                s.flush_echo();
                continue;
            }
            let event = s.rx.recv().await?;
            if s.echo.is_some() && !matches!(event, Event::PromptLogprobs(_)) {
                // The prompt's scores are all in: echo it first.
                s.flush_echo();
            }
            if matches!(event, Event::Done(_)) {
                // Counted before the client hears the end.
                super::wait_recorded(&s.recorded).await;
            }
            if let (Event::Done(usage), Some(transcript)) = (&event, s.transcript.as_mut()) {
                // Stored before the client hears the end.
                transcript.finish(usage).await;
            }
            s.on_event(event);
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}
