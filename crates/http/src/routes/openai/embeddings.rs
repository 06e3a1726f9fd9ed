//! `POST /v1/embeddings`: admitted before the model is loaded, embedded on
//! the blocking pool in one call into the inference crate, stopped before
//! the next batch when the client leaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpResponse, web};
use offgrid_inference::{EmbedRequest, ModelError};
use serde_json::Value;

use super::params::{as_base64, embedding_inputs, parse};
use super::{Accounting, requester};
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::state::AppState;
use crate::wire::{Embedding, EmbeddingList, EmbeddingRequest, EmbeddingUsage, EmbeddingVector};

/// How often a request waiting for an embedding slot looks again.
const SLOT_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Embeds `request` for the caller: takes their place (refused when they
/// or the server are at the limit), waits in line for a slot without
/// holding a thread, then embeds on the blocking pool, stopping before the
/// next batch once the client leaves.
pub(crate) async fn embed(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    request: EmbedRequest,
) -> Result<offgrid_inference::Embeddings, ApiError> {
    // Admitted before the model is loaded, and held (with the slot) by the
    // blocking work itself, so a client that leaves frees its place only
    // when the batch in progress is done.
    let admission = state.models.admit_embedding(&requester(caller, client))?;
    // Set when this future is dropped (the client left) or done: the
    // blocking work stops before its next batch.
    let gone = Arc::new(AtomicBool::new(false));
    let _on_drop = SetOnDrop(gone.clone());
    let waiter = admission.join_line();
    let slot = loop {
        if let Some(slot) = waiter.try_take() {
            break slot;
        }
        if !client.is_connected() {
            return Err(ModelError::ClientLeft.into());
        }
        actix_web::rt::time::sleep(SLOT_POLL).await;
    };
    drop(waiter);
    let connection = client.clone();
    let models = state.models.clone();
    Ok(crate::trace::block(move || {
        models.embed(admission, slot, request, &|| {
            !gone.load(Ordering::Acquire) && connection.is_connected()
        })
    })
    .await??)
}

/// `POST /v1/embeddings`.
#[utoipa::path(post, path = "/v1/embeddings", tag = "inference", request_body = EmbeddingRequest,
    responses((status = 200, description = "One vector per input", body = EmbeddingList)))]
pub(crate) async fn embeddings(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let req: EmbeddingRequest = parse(body.into_inner())?;
    let base64 = as_base64(req.encoding_format.as_deref())?;
    let keep_alive = crate::routes::models::keep_alive(req.keep_alive.as_ref(), &caller)?;
    let inputs = embedding_inputs(req.input)?;
    let quota = super::admit_quota(&state, &caller, &client, false).await?;
    let request = EmbedRequest {
        model: req.model.clone(),
        inputs,
        keep_alive,
    };
    let out = embed(&state, &caller, &client, request).await?;
    // Written before the answer is sent: an acknowledged request is counted.
    Accounting::new(&state, &caller, &client, &req.model, "embeddings")
        .record(out.tokens, 0, started.elapsed())
        .done()
        .await;
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                // OpenAI's base64 form: little-endian f32s.
                use base64::Engine;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingVector::Float(v)
            };
            Embedding {
                object: "embedding".to_owned(),
                index,
                embedding,
            }
        })
        .collect();
    let res = HttpResponse::Ok().json(EmbeddingList {
        object: "list".to_owned(),
        data,
        model: req.model,
        usage: EmbeddingUsage {
            prompt_tokens: out.tokens,
            total_tokens: out.tokens,
        },
    });
    Ok(super::with_rate(res, &quota))
}
