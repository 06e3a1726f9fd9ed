//! `POST /api/embed` (unit-length vectors, several inputs, `dimensions`,
//! `truncate`) and the older `POST /api/embeddings` (one vector as the
//! model gives it), through the same embedding path, quota and usage
//! records as `/v1/embeddings`.

use std::time::Instant;

use actix_web::{HttpResponse, web};
use offgrid_inference::EmbedRequest;
use serde_json::Value;

use super::resolve;
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::routes::openai::{
    MAX_EMBEDDING_INPUTS, admit_quota, embed as run_embed, invalid, parse, record_embedding,
    with_rate,
};
use crate::state::AppState;
use crate::wire::{
    OllamaEmbedInput, OllamaEmbedRequest, OllamaEmbedResponse, OllamaEmbeddingsRequest,
    OllamaEmbeddingsResponse,
};

/// Loads the model (a no-op when it is in memory) and says how long that
/// took, for `load_duration`.
async fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
    keep_alive: Option<&Value>,
) -> Result<std::time::Duration, ApiError> {
    let keep = crate::routes::models::keep_alive(keep_alive, caller)?;
    let (models, id) = (state.models.clone(), id.to_owned());
    let started = Instant::now();
    crate::trace::block(move || models.load(&id, keep)).await??;
    Ok(started.elapsed())
}

/// The embedding model's vector length; a chat model is a 400.
fn vector_length(state: &AppState, id: &str) -> Result<usize, ApiError> {
    let entry = state.models.status(id).map(|s| s.entry).ok_or_else(|| {
        ApiError::from(offgrid_inference::ModelError::NotFound {
            id: id.to_owned(),
            none_installed: state.models.is_empty(),
        })
    })?;
    if entry.kind != offgrid_inference::ModelKind::Embedding {
        return Err(offgrid_inference::ModelError::WrongKind {
            id: id.to_owned(),
            wanted: "an embedding",
        }
        .into());
    }
    Ok(entry
        .dimensions
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(usize::MAX))
}

/// Scales `v` to unit length (a zero vector stays zero).
fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

/// With `truncate: false`, an input longer than the model's context is an
/// error instead of being cut.
async fn check_lengths(state: &AppState, id: &str, inputs: &[String]) -> Result<(), ApiError> {
    let limit = state
        .models
        .status(id)
        .and_then(|s| s.entry.context_length)
        .and_then(|c| usize::try_from(c).ok())
        .unwrap_or(usize::MAX);
    let (models, id, inputs) = (state.models.clone(), id.to_owned(), inputs.to_vec());
    let longest = crate::trace::block(move || -> Result<usize, ApiError> {
        let mut tokenizer = models.embedding_tokenizer(&id)?;
        // The model's own tokenizer cuts at its limit: count it all.
        tokenizer
            .with_truncation(None)
            .map_err(ApiError::internal)?;
        let mut longest = 0;
        for text in &inputs {
            let n = tokenizer
                .encode(text.as_str(), true)
                .map_err(ApiError::internal)?
                .len();
            longest = longest.max(n);
        }
        Ok(longest)
    })
    .await??;
    if longest > limit {
        return Err(invalid(
            "input",
            "the input length exceeds the context length",
        ));
    }
    Ok(())
}

/// `POST /api/embed`.
#[utoipa::path(post, path = "/api/embed", tag = "ollama", request_body = OllamaEmbedRequest,
    responses((status = 200, description = "One unit-length vector per input", body = OllamaEmbedResponse)))]
pub(crate) async fn embed(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let received = Instant::now();
    let req: OllamaEmbedRequest = parse(body.into_inner())?;
    let id = resolve(&state, &req.model)?;
    let inputs = match req.input {
        None => Vec::new(),
        Some(OllamaEmbedInput::One(s)) if s.is_empty() => Vec::new(),
        Some(OllamaEmbedInput::One(s)) => vec![s],
        Some(OllamaEmbedInput::Many(v)) => v,
    };
    if inputs.len() > MAX_EMBEDDING_INPUTS {
        return Err(invalid("input", "must hold at most 2048 strings"));
    }
    let length = vector_length(&state, &id)?;
    let dimensions = match req.dimensions {
        None => None,
        Some(d) if d >= 1 && usize::try_from(d).is_ok_and(|d| d <= length) => {
            usize::try_from(d).ok()
        }
        Some(d) => {
            return Err(invalid(
                "dimensions",
                format!("must be between 1 and {length}, got {d}"),
            ));
        }
    };
    // Counted before any work is done for the caller, a load included.
    let quota = admit_quota(&state, &caller, &client, false).await?;
    let load_duration = load(&state, &caller, &id, req.keep_alive.as_ref()).await?;
    let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let model = super::echoed(&req.model);
    if inputs.is_empty() {
        let res = HttpResponse::Ok().json(OllamaEmbedResponse {
            model,
            embeddings: Vec::new(),
            total_duration: ns(received.elapsed()),
            load_duration: ns(load_duration),
            prompt_eval_count: 0,
        });
        return Ok(with_rate(res, &quota));
    }
    if req.truncate == Some(false) {
        check_lengths(&state, &id, &inputs).await?;
    }
    let out = run_embed(
        &state,
        &caller,
        &client,
        EmbedRequest {
            model: id.clone(),
            inputs,
            keep_alive: None,
        },
    )
    .await?;
    record_embedding(
        &state,
        &caller,
        &client,
        &id,
        "ollama.embed",
        out.tokens,
        received.elapsed(),
    )
    .await;
    let mut embeddings = out.vectors;
    for v in &mut embeddings {
        if let Some(d) = dimensions {
            v.truncate(d);
        }
        normalize(v);
    }
    let res = HttpResponse::Ok().json(OllamaEmbedResponse {
        model,
        embeddings,
        total_duration: ns(received.elapsed()),
        load_duration: ns(load_duration),
        prompt_eval_count: out.tokens,
    });
    Ok(with_rate(res, &quota))
}

/// `POST /api/embeddings` (the older form).
#[utoipa::path(post, path = "/api/embeddings", tag = "ollama", request_body = OllamaEmbeddingsRequest,
    responses((status = 200, description = "The vector", body = OllamaEmbeddingsResponse)))]
pub(crate) async fn embeddings(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let received = Instant::now();
    let req: OllamaEmbeddingsRequest = parse(body.into_inner())?;
    let id = resolve(&state, &req.model)?;
    vector_length(&state, &id)?;
    let quota = admit_quota(&state, &caller, &client, false).await?;
    load(&state, &caller, &id, req.keep_alive.as_ref()).await?;
    if req.prompt.is_empty() {
        let res = HttpResponse::Ok().json(OllamaEmbeddingsResponse {
            embedding: Vec::new(),
        });
        return Ok(with_rate(res, &quota));
    }
    let out = run_embed(
        &state,
        &caller,
        &client,
        EmbedRequest {
            model: id.clone(),
            inputs: vec![req.prompt],
            keep_alive: None,
        },
    )
    .await?;
    record_embedding(
        &state,
        &caller,
        &client,
        &id,
        "ollama.embeddings",
        out.tokens,
        received.elapsed(),
    )
    .await;
    let embedding = out.vectors.into_iter().next().unwrap_or_default();
    Ok(with_rate(
        HttpResponse::Ok().json(OllamaEmbeddingsResponse { embedding }),
        &quota,
    ))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn vectors_come_out_unit_length_and_zero_stays_zero() {
        let mut v = vec![3.0f32, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0f32; 3];
        normalize(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }
}
