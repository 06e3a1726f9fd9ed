//! `POST /v1/rag/search`, and the retrieval chat uses: the collections are
//! checked for the caller first (a collection they may not read is 404
//! before anything is computed), then the query is embedded in the
//! caller's place in the embedding line and searched.

use actix_web::{HttpResponse, web};
use offgrid_domain::CollectionId;
use offgrid_inference::EmbedRequest;
use offgrid_workspace::retrieval::MAX_TOP_K;
use offgrid_workspace::{RagScope, SearchHit};

use crate::access::Caller;
use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::extract::{Client, JsonObject};
use crate::routes::openai::{admit_quota, embed, record_embedding, with_rate};
use crate::state::AppState;
use crate::wire;

/// Longest query, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Results when the request does not say.
pub(crate) const DEFAULT_TOP_K: usize = 5;

/// What to retrieve.
pub(crate) struct Retrieve {
    /// The text to look for.
    pub query: String,
    /// The collections (none: every one the caller owns or was shared).
    pub collection_ids: Option<Vec<String>>,
    /// Results.
    pub top_k: usize,
    /// Lowest score kept.
    pub min_score: f32,
}

/// `top_k` from a request: 1 to [`MAX_TOP_K`].
pub(crate) fn top_k(value: Option<i64>, field: &str) -> Result<usize, ApiError> {
    match value {
        None => Ok(DEFAULT_TOP_K),
        Some(k) if (1..=MAX_TOP_K as i64).contains(&k) => Ok(usize::try_from(k).unwrap_or(1)),
        Some(_) => Err(ApiError::bad_request(
            ErrorCode::InvalidValue,
            format!("{field} must be between 1 and {MAX_TOP_K}"),
        )),
    }
}

/// Collection ids from a request: each a plausible id (anything else
/// cannot exist: 404 like any unknown one).
fn collection_ids(ids: Option<Vec<String>>) -> Result<Option<Vec<CollectionId>>, ApiError> {
    let Some(ids) = ids else { return Ok(None) };
    if ids.len() > offgrid_workspace::retrieval::MAX_COLLECTIONS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidValue,
            format!(
                "collection_ids: at most {} collections",
                offgrid_workspace::retrieval::MAX_COLLECTIONS
            ),
        ));
    }
    if ids.iter().any(|id| id.is_empty() || id.len() > 64) {
        return Err(ApiError::not_found("not found"));
    }
    Ok(Some(
        ids.into_iter().map(CollectionId::from_string).collect(),
    ))
}

/// Checks the collections, embeds the query and searches: the scope (with
/// how many documents are still indexing) and the hits, best first.
pub(crate) async fn retrieve(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    request: Retrieve,
    endpoint: &'static str,
) -> Result<(RagScope, Vec<SearchHit>), ApiError> {
    if request.query.trim().is_empty() || request.query.len() > MAX_QUERY_BYTES {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidValue,
            format!("the query must have some text and at most {MAX_QUERY_BYTES} bytes"),
        ));
    }
    if !request.min_score.is_finite() || !(-1.0..=1.0).contains(&request.min_score) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidValue,
            "min_score must be between -1 and 1",
        ));
    }
    let ids = collection_ids(request.collection_ids)?;
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(caller));
    let scope = crate::trace::block(move || ws.rag_scope(&actor, ids.as_deref())).await??;
    if scope.collections.is_empty() || scope.status.ready == 0 {
        return Ok((scope, Vec::new()));
    }
    let started = std::time::Instant::now();
    let model = state.settings.embedding_model.clone();
    let out = embed(
        state,
        caller,
        client,
        EmbedRequest {
            model: model.clone(),
            inputs: vec![request.query],
            keep_alive: None,
        },
    )
    .await?;
    record_embedding(
        state,
        caller,
        client,
        &model,
        endpoint,
        out.tokens,
        started.elapsed(),
    )
    .await;
    let Some(vector) = out.vectors.into_iter().next() else {
        return Err(ApiError::internal("the embedding model gave no vector"));
    };
    let (ws, (top_k, min_score)) = (state.workspace.clone(), (request.top_k, request.min_score));
    let (scope, hits) = crate::trace::block(move || {
        let hits = ws.rag_search(&scope, &vector, top_k, min_score)?;
        Ok::<_, offgrid_workspace::WorkspaceError>((scope, hits))
    })
    .await??;
    Ok((scope, hits))
}

/// `POST /v1/rag/search`.
#[utoipa::path(post, path = "/v1/rag/search", tag = "rag", request_body = wire::SearchRequest,
    responses((status = 200, description = "The most similar chunks, best first", body = wire::SearchResults)))]
pub(crate) async fn search(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: JsonObject<wire::SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = Retrieve {
        query: body.query,
        collection_ids: body.collection_ids,
        top_k: top_k(body.top_k, "top_k")?,
        min_score: body.min_score.unwrap_or(-1.0),
    };
    let quota = admit_quota(&state, &caller, &client, false).await?;
    let (_, hits) = retrieve(&state, &caller, &client, request, "rag.search").await?;
    let res = HttpResponse::Ok().json(wire::SearchResults {
        object: wire::LIST.to_owned(),
        data: hits.into_iter().map(wire::SearchResult::from).collect(),
    });
    Ok(with_rate(res, &quota))
}
