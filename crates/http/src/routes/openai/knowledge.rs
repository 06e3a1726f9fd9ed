//! Retrieval for a chat (`"rag": {…}` or `"use_knowledge_base": true`):
//! the question (the request's last user message) is searched in the
//! collections the caller may read, checked on this request, and the best
//! chunks go into the prompt's leading system message (some models' chat
//! templates refuse a system message anywhere else), numbered so the
//! answer can cite them. The answer carries
//! the citations. When nothing matched because documents are still being
//! indexed, the chat answers so, without the model.

use std::fmt::Write as _;

use actix_web::HttpResponse;
use offgrid_inference::ChatMessage;

use super::sse::sse;
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::routes::rag::{Retrieve, retrieve, top_k};
use crate::state::AppState;
use crate::wire::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest,
    ChunkChoice, Citation, Delta, RagOptions, Usage,
};

/// Chunks given to the model when the request does not say.
const DEFAULT_TOP_K: i64 = 4;
/// Similarity below which a chunk is not given (all-MiniLM-L6-v2 scores
/// unrelated text around 0 to 0.15).
const DEFAULT_MIN_SCORE: f32 = 0.15;
/// Most bytes of excerpts in a prompt (about 3,000 tokens): the best
/// chunks that fit, so the question still fits a small model's context.
const MAX_EXCERPT_BYTES: usize = 12 * 1024;

/// What retrieval found for a chat.
pub(super) enum Knowledge {
    /// Chunks to put before the question, and their citations (none
    /// matched: an instruction to say so, and no citations).
    Found {
        /// The system message.
        excerpts: ChatMessage,
        /// What the answer cites.
        citations: Vec<Citation>,
    },
    /// Nothing searchable yet: documents are still being indexed.
    StillIndexing(String),
}

/// The retrieval a request asks for, if any.
pub(super) fn options(req: &ChatCompletionRequest) -> Option<RagOptions> {
    match (&req.rag, req.use_knowledge_base) {
        (Some(o), _) => Some(o.clone()),
        (None, Some(true)) => Some(RagOptions::default()),
        _ => None,
    }
}

/// Searches for the question in `messages` (their last user message).
pub(super) async fn gather(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    options: RagOptions,
    messages: &[ChatMessage],
) -> Result<Knowledge, ApiError> {
    // A long question is searched by its start: the query's limit is not
    // the chat's.
    let question = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| {
            let mut end = m.content.len().min(crate::routes::rag::MAX_QUERY_BYTES);
            while !m.content.is_char_boundary(end) {
                end -= 1;
            }
            m.content[..end].to_owned()
        })
        .ok_or_else(|| {
            super::params::invalid("messages", "retrieval needs a user message to search for")
        })?;
    let request = Retrieve {
        query: question,
        collection_ids: options.collection_ids,
        top_k: top_k(Some(options.top_k.unwrap_or(DEFAULT_TOP_K)), "rag.top_k")?,
        min_score: options.min_score.unwrap_or(DEFAULT_MIN_SCORE),
    };
    let (scope, hits) = retrieve(state, caller, client, request, "chat.rag").await?;
    let indexing = scope.status.indexing;
    if hits.is_empty() && indexing > 0 {
        return Ok(Knowledge::StillIndexing(format!(
            "Your documents are still being indexed ({indexing} not ready yet), so I cannot \
             answer from them yet. Ask again in a moment."
        )));
    }
    let mut text = String::from(
        "Answer the user's question from the excerpts of their documents below. Cite the \
         excerpts you use by number, like [1]. If the excerpts do not answer the question, \
         say that the documents do not say, rather than guessing.",
    );
    if indexing > 0 {
        let _ = write!(
            text,
            " ({indexing} more documents are still being indexed and were not searched.)"
        );
    }
    let mut citations = Vec::new();
    for hit in &hits {
        let entry = format!(
            "\n\n[{}] From \"{}\" (collection \"{}\"):\n{}",
            citations.len() + 1,
            hit.chunk.document_name,
            hit.chunk.collection_name,
            hit.chunk.text
        );
        if text.len() + entry.len() > MAX_EXCERPT_BYTES && !citations.is_empty() {
            break;
        }
        text.push_str(&entry);
        citations.push(Citation::from(hit));
    }
    if citations.is_empty() {
        text = "The user asked about their documents, but no passage of them matches the \
                question. Say that their documents do not seem to cover it."
            .to_owned();
    }
    Ok(Knowledge::Found {
        excerpts: ChatMessage::new("system", &text),
        citations,
    })
}

/// Adds `excerpts` to the prompt's leading system message, or puts them
/// first as one; `trimmable` (the stored history) moves with the messages.
pub(super) fn insert(
    prompt: &mut Vec<ChatMessage>,
    excerpts: ChatMessage,
    trimmable: &mut std::ops::Range<usize>,
) {
    match prompt.first_mut() {
        Some(first) if first.role == "system" => {
            first.content.push_str("\n\n");
            first.content.push_str(&excerpts.content);
        }
        _ => {
            prompt.insert(0, excerpts);
            *trimmable = trimmable.start + 1..trimmable.end + 1;
        }
    }
}

/// The answer `text`, without the model: one completion, or a stream of
/// the text, the end and `[DONE]`.
pub(super) fn answer(model: &str, stream: bool, text: String) -> HttpResponse {
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = super::now();
    if !stream {
        return HttpResponse::Ok().json(ChatCompletion {
            id,
            object: "chat.completion".to_owned(),
            created,
            model: model.to_owned(),
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant".to_owned(),
                    content: text,
                },
                logprobs: None,
                finish_reason: "stop".to_owned(),
            }],
            usage: Usage::new(0, 0),
            citations: Some(Vec::new()),
        });
    }
    let chunk = |delta: Delta, finish: Option<&str>| {
        sse(&ChatCompletionChunk {
            id: id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created,
            model: model.to_owned(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason: finish.map(str::to_owned),
            }],
            usage: None,
            citations: None,
        })
    };
    let mut body = Vec::new();
    body.extend_from_slice(&chunk(
        Delta {
            role: Some("assistant".to_owned()),
            content: Some(text),
        },
        None,
    ));
    body.extend_from_slice(&chunk(Delta::default(), Some("stop")));
    body.extend_from_slice(b"data: [DONE]\n\n");
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .body(body)
}
