//! `POST /v1/completions`.

use actix_web::{HttpResponse, web};
use offgrid_inference::Prompt;
use serde_json::Value;

use super::generate::run;
use super::params::{Kind, parse, prompt};
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::state::AppState;
use crate::wire::{CompletionRequest, PromptField};

/// `POST /v1/completions`.
#[utoipa::path(post, path = "/v1/completions", tag = "inference", request_body = CompletionRequest,
    responses((status = 200, description = "The completion; with `stream`, server-sent events of `text_completion` objects ending with `data: [DONE]`",
        content((crate::wire::TextCompletion = "application/json"), (String = "text/event-stream")))))]
pub(crate) async fn completions(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let mut req: CompletionRequest = parse(body.into_inner())?;
    let text = prompt(std::mem::replace(
        &mut req.prompt,
        PromptField::Many(Vec::new()),
    ))?;
    run(
        &state,
        &caller,
        &client,
        Kind::Text,
        req.options(),
        Prompt::Text(text).into(),
    )
    .await
}
