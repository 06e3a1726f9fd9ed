//! `POST /v1/chat/completions`, on its own or in a session and with a
//! preset: the preset's system prompt, then the session's stored history
//! (which may be trimmed, oldest turns first, to fit the context), then
//! the request's messages; the exchange is saved in the session. With
//! retrieval, the best chunks of the caller's collections come right
//! before the question (see [`super::knowledge`]).

use actix_web::{HttpResponse, web};
use offgrid_domain::workspace::{MessageRole, NewChatMessage};
use offgrid_inference::{ChatMessage, Prompt};
use serde_json::Value;

use super::generate::{Input, run};
use super::knowledge::{self, Knowledge};
use super::params::{Kind, messages, parse};
use super::transcript::Transcript;
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
    let rag = knowledge::options(&req);
    let mut input = if req.session_id.is_some() || req.preset_id.is_some() {
        in_workspace(&state, &caller, &client, &mut req, msgs).await?
    } else {
        let mut input = Input::from(Prompt::Chat(msgs));
        if rag.is_some() {
            // Admitted before the search: a caller over their quota costs
            // no embedding.
            input.quota = Some(super::admit_quota(&state, &caller, &client, true).await?);
        }
        input
    };
    if req.model.is_empty() {
        req.model = state.settings.default_model.clone();
    }
    if let (Some(options), Prompt::Chat(prompt)) = (rag, &mut input.prompt) {
        match knowledge::gather(&state, &caller, &client, options, prompt).await? {
            Knowledge::StillIndexing(text) => {
                if let Some(t) = input.transcript.as_mut() {
                    t.arm();
                    t.push(&text);
                    t.finish_plain().await;
                }
                let res = knowledge::answer(&req.model, req.stream, text);
                return Ok(match &input.quota {
                    Some(pass) => super::with_rate(res, pass),
                    None => res,
                });
            }
            Knowledge::Found {
                excerpts,
                citations,
            } => {
                knowledge::insert(prompt, excerpts, &mut input.trimmable);
                if let Some(t) = input.transcript.as_mut() {
                    t.cite(Some(&citations));
                }
                input.citations = Some(citations);
            }
        }
    }
    run(&state, &caller, &client, Kind::Chat, req.options(), input).await
}

/// The prompt of a chat that names a session or a preset, with the
/// preset's values filled in where the request gives none.
async fn in_workspace(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    req: &mut ChatCompletionRequest,
    msgs: Vec<ChatMessage>,
) -> Result<Input, ApiError> {
    // Admitted before the history is read: a caller over their quota costs
    // no database work.
    let quota = super::admit_quota(state, caller, client, true).await?;
    let new: Vec<NewChatMessage> = msgs
        .iter()
        .map(|m| NewChatMessage {
            // `messages` allowed only these three names.
            role: m.role.parse().unwrap_or(MessageRole::User),
            content: m.content.clone(),
            model: None,
            usage: None,
            citations: None,
            interrupted: false,
        })
        .collect();
    let (ws, actor) = (state.workspace.clone(), client.workspace_actor(caller));
    let (session, preset) = (req.session_id.clone(), req.preset_id.clone());
    let context = {
        let (ws, actor, new) = (ws.clone(), actor.clone(), new.clone());
        crate::trace::block(move || {
            ws.chat_context(&actor, session.as_deref(), preset.as_deref(), &new)
        })
        .await??
    };
    if let Some(p) = &context.preset {
        req.temperature = req.temperature.or(p.fields.temperature);
        req.top_p = req.top_p.or(p.fields.top_p);
        if req.max_tokens.is_none() && req.max_completion_tokens.is_none() {
            req.max_tokens = p.fields.max_tokens;
        }
    }
    if req.model.is_empty() {
        let session_model = context
            .session
            .as_ref()
            .and_then(|v| v.session.model.clone());
        let preset_model = context.preset.as_ref().and_then(|p| p.fields.model.clone());
        req.model = session_model.or(preset_model).unwrap_or_default();
    }
    let mut prompt = Vec::with_capacity(context.history.len() + msgs.len() + 1);
    if let Some(p) = context
        .preset
        .as_ref()
        .filter(|p| !p.fields.system_prompt.is_empty())
    {
        prompt.push(ChatMessage::new("system", &p.fields.system_prompt));
    }
    let start = prompt.len();
    prompt.extend(
        context
            .history
            .iter()
            .map(|m| ChatMessage::new(m.role.as_str(), &m.content)),
    );
    let trimmable = start..prompt.len();
    prompt.extend(msgs);
    let transcript = context
        .session
        .map(|v| Transcript::new(ws, actor, v.session.id, new, req.model.clone()));
    Ok(Input {
        prompt: Prompt::Chat(prompt),
        trimmable,
        omitted: context.omitted,
        transcript,
        quota: Some(quota),
        citations: None,
    })
}
