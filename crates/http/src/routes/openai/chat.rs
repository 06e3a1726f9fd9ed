//! `POST /v1/chat/completions`.

use actix_web::{HttpResponse, web};
use offgrid_inference::Prompt;
use serde_json::Value;

use super::generate::run;
use super::params::{Kind, messages, parse};
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::Client;
use crate::state::AppState;
use crate::wire::ChatCompletionRequest;

/// `POST /v1/chat/completions`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "inference", request_body = ChatCompletionRequest,
    responses((status = 200, description = "The answer; with `stream`, server-sent events of `chat.completion.chunk` objects ending with `data: [DONE]`",
        content((crate::wire::ChatCompletion = "application/json"), (String = "text/event-stream")))))]
pub(crate) async fn chat_completions(
    state: web::Data<AppState>,
    caller: Caller,
    client: Client,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let mut req: ChatCompletionRequest = parse(body.into_inner())?;
    let msgs = messages(std::mem::take(&mut req.messages))?;
    run(
        &state,
        &caller,
        &client,
        Kind::Chat,
        req.options(),
        Prompt::Chat(msgs),
    )
    .await
}
