//! `POST /v1/chat/completions` and `POST /v1/completions`: requests,
//! answers and stream chunks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Usage;

/// Message content: a string, or OpenAI's list of `{type: "text", text}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Parts; only text parts are supported.
    Parts(Vec<Part>),
}

/// A content part; only `{"type": "text", "text"}` is supported.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Part {
    /// `text`.
    #[serde(rename = "type")]
    #[schema(pattern = "^text$")]
    pub kind: String,
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A chat message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatMessage {
    /// `system` (or `developer`), `user` or `assistant`.
    #[schema(value_type = ChatRole)]
    pub role: String,
    /// What is said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

impl ChatMessage {
    /// A message with plain text content.
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.to_owned(),
            content: Some(Content::Text(content.to_owned())),
        }
    }
}

/// Who says a message (`developer` is taken as `system`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum ChatRole {
    System,
    Developer,
    User,
    Assistant,
}

/// Stop sequences: one, or up to four.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Up to four.
    Many(Vec<String>),
}

/// Streaming options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with the token counts.
    #[serde(default)]
    pub include_usage: bool,
}

/// `logprobs`: a flag (chat) or a count (text completions).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum LogprobsSchema {
    Flag(bool),
    Count(i64),
}

/// `keep_alive`: seconds, or a duration string.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum KeepAliveSchema {
    Seconds(f64),
    Duration(String),
}

/// The fields chat and text completions share, borrowed from either
/// request for validation.
#[derive(Debug, Clone, Copy)]
pub struct CompletionOptions<'a> {
    /// A chat model's id.
    pub model: &'a str,
    /// Server-sent events instead of one answer.
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<&'a StreamOptions>,
    /// Tokens to generate at most.
    pub max_tokens: Option<i64>,
    /// The same, OpenAI's newer name (wins over `max_tokens`).
    pub max_completion_tokens: Option<i64>,
    /// Sampling temperature, 0–2.
    pub temperature: Option<f64>,
    /// Nucleus sampling, (0, 1].
    pub top_p: Option<f64>,
    /// Top-k sampling; 0 or absent: off.
    pub top_k: Option<i64>,
    /// Repetition penalty, (0, 10].
    pub repetition_penalty: Option<f64>,
    /// Seed for reproducible sampling.
    pub seed: Option<i64>,
    /// Stop sequences.
    pub stop: Option<&'a Stop>,
    /// Alternatives; only 1.
    pub n: Option<i64>,
    /// Chat: a flag; text: 0–5 alternatives.
    pub logprobs: Option<&'a Value>,
    /// Chat: alternatives per token, 0–20.
    pub top_logprobs: Option<i64>,
    /// Text: the prompt comes back before the completion.
    pub echo: Option<bool>,
    /// How long the model stays loaded.
    pub keep_alive: Option<&'a Value>,
    /// What the output must be (JSON, a JSON schema).
    pub response_format: Option<&'a ResponseFormat>,
}

/// `response_format`: free text (the default), a JSON object, or JSON
/// valid against a schema, enforced by constrained decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// A JSON object.
    JsonObject,
    /// JSON valid against `json_schema.schema`.
    JsonSchema {
        /// The schema and its name.
        json_schema: JsonSchemaFormat,
    },
}

/// A named JSON schema for `response_format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JsonSchemaFormat {
    /// The schema's name.
    #[serde(default)]
    pub name: String,
    /// What the schema is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON schema (absent: any JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    /// Accepted for OpenAI's clients: the schema is always enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

impl<'a> CompletionOptions<'a> {
    /// Options for `model` with every other option absent (the server's
    /// defaults).
    pub fn new(model: &'a str) -> Self {
        CompletionOptions {
            model,
            stream: false,
            stream_options: None,
            max_tokens: None,
            max_completion_tokens: None,
            temperature: None,
            top_p: None,
            top_k: None,
            repetition_penalty: None,
            seed: None,
            stop: None,
            n: None,
            logprobs: None,
            top_logprobs: None,
            echo: None,
            keep_alive: None,
            response_format: None,
        }
    }
}

/// Declares a completion request: the shared fields, then its own,
/// in one flat struct (parsed once, and without `#[serde(flatten)]`, which
/// would lose the field path in errors), with [`CompletionOptions`] as a
/// view of the shared part.
macro_rules! completion_request {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
        pub struct $name {
            /// A chat model's id (chat completions: may be left out when
            /// the session or preset names one).
            #[schema(example = "smollm2-135m-instruct")]
            #[serde(default)]
            pub model: String,
            /// Server-sent events instead of one answer.
            #[serde(default)]
            pub stream: bool,
            /// Streaming options.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stream_options: Option<StreamOptions>,
            /// Tokens to generate at most.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub max_tokens: Option<i64>,
            /// The same, OpenAI's newer name.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub max_completion_tokens: Option<i64>,
            /// Sampling temperature, 0–2 (default 0.7).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub temperature: Option<f64>,
            /// Nucleus sampling, (0, 1].
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub top_p: Option<f64>,
            /// Top-k sampling; 0: off.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub top_k: Option<i64>,
            /// Repetition penalty, (0, 10].
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub repetition_penalty: Option<f64>,
            /// Seed for reproducible sampling.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub seed: Option<i64>,
            /// Stop sequences.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stop: Option<Stop>,
            /// Alternatives; only 1 is supported.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub n: Option<i64>,
            /// Chat: `true` or `false`; text completions: 0 to 5 alternatives.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(value_type = Option<LogprobsSchema>)]
            pub logprobs: Option<Value>,
            /// Chat: alternatives per token, 0–20.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub top_logprobs: Option<i64>,
            /// Text completions: the prompt comes back before the completion.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub echo: Option<bool>,
            /// How long the model stays loaded: seconds, or a duration like
            /// `"5m"` (applied for callers who may manage models).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(value_type = Option<KeepAliveSchema>)]
            pub keep_alive: Option<Value>,
            /// What the output must be: `{"type": "json_object"}`, or
            /// `{"type": "json_schema", "json_schema": {"name": …,
            /// "schema": {…}}}`; enforced while sampling.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub response_format: Option<ResponseFormat>,
            // The request's own fields last: serde reports missing fields
            // in declaration order, and `model` comes first.
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            /// The fields chat and text completions share.
            pub fn options(&self) -> CompletionOptions<'_> {
                CompletionOptions {
                    model: &self.model,
                    stream: self.stream,
                    stream_options: self.stream_options.as_ref(),
                    max_tokens: self.max_tokens,
                    max_completion_tokens: self.max_completion_tokens,
                    temperature: self.temperature,
                    top_p: self.top_p,
                    top_k: self.top_k,
                    repetition_penalty: self.repetition_penalty,
                    seed: self.seed,
                    stop: self.stop.as_ref(),
                    n: self.n,
                    logprobs: self.logprobs.as_ref(),
                    top_logprobs: self.top_logprobs,
                    echo: self.echo,
                    keep_alive: self.keep_alive.as_ref(),
                    response_format: self.response_format.as_ref(),
                }
            }
        }
    };
}

completion_request!(
    /// The body of `POST /v1/chat/completions`.
    ChatCompletionRequest {
        /// The conversation so far (with `session_id`: the new messages,
        /// after the session's stored history).
        #[schema(min_items = 1)]
        messages: Vec<ChatMessage>,
        /// A chat session to continue: its history comes first, and the
        /// new messages and the answer are saved in it (write access).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        /// A preset: its system prompt comes first, and its model and
        /// sampling values apply where the request gives none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preset_id: Option<String>,
        /// Retrieval: the most relevant chunks of these RAG collections go
        /// into the prompt, and the answer cites them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rag: Option<RagOptions>,
        /// Retrieval from every collection the caller owns or was shared
        /// (the same as `"rag": {}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        use_knowledge_base: Option<bool>,
    }
);

/// Retrieval for a chat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RagOptions {
    /// Collections to search (default: every one the caller owns or was
    /// shared).
    #[serde(default)]
    pub collection_ids: Option<Vec<String>>,
    /// Chunks to give the model, 1 to 50 (default 4).
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Lowest similarity kept, -1 to 1 (default 0.15).
    #[serde(default)]
    pub min_score: Option<f32>,
}

completion_request!(
    /// The body of `POST /v1/completions`.
    CompletionRequest {
        /// The prompt (a list must hold exactly one).
        prompt: PromptField,
    }
);

impl ChatCompletionRequest {
    /// A request for `model` with `messages` and every option at its
    /// default.
    pub fn new(model: &str, messages: Vec<ChatMessage>) -> Self {
        ChatCompletionRequest {
            messages,
            model: model.to_owned(),
            stream: false,
            stream_options: None,
            max_tokens: None,
            max_completion_tokens: None,
            temperature: None,
            top_p: None,
            top_k: None,
            repetition_penalty: None,
            seed: None,
            stop: None,
            n: None,
            logprobs: None,
            top_logprobs: None,
            echo: None,
            keep_alive: None,
            response_format: None,
            session_id: None,
            preset_id: None,
            rag: None,
            use_knowledge_base: None,
        }
    }
}

/// One prompt (a list must hold exactly one).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PromptField {
    /// The prompt.
    One(String),
    /// A list holding the prompt.
    Many(Vec<String>),
}

/// The assistant's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssistantMessage {
    /// `assistant`.
    pub role: String,
    /// The answer.
    pub content: String,
}

/// A token's log-probability (an alternative: without its own
/// alternatives).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// The text's UTF-8 bytes.
    pub bytes: Vec<u8>,
}

/// A generated token's log-probability and the likeliest alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// The text's UTF-8 bytes.
    pub bytes: Vec<u8>,
    /// The alternatives, likeliest first.
    pub top_logprobs: Vec<TopLogprob>,
}

/// Chat log-probabilities: `{"content": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatLogprobs {
    /// One entry per generated token.
    pub content: Vec<TokenLogprob>,
}

/// Text-completion log-probabilities: parallel lists, one entry per token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TextLogprobs {
    /// Each token's text.
    pub tokens: Vec<String>,
    /// Each token's log-probability (null: the first prompt token).
    pub token_logprobs: Vec<Option<f32>>,
    /// Each token's alternatives, text to log-probability.
    pub top_logprobs: Vec<Option<BTreeMap<String, f32>>>,
    /// Each token's byte offset in the text.
    pub text_offset: Vec<usize>,
}

/// One chat answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatChoice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage,
    /// When asked for.
    pub logprobs: Option<ChatLogprobs>,
    /// `stop` or `length`.
    pub finish_reason: String,
}

/// `POST /v1/chat/completions` without `stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The model's id.
    pub model: String,
    /// One answer.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
    /// With retrieval: the chunks the model was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<super::Citation>>,
}

/// One text completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TextChoice {
    /// Always 0.
    pub index: u32,
    /// The completion (after the prompt, with `echo`).
    pub text: String,
    /// When asked for.
    pub logprobs: Option<TextLogprobs>,
    /// `stop` or `length`; in a stream, null until the last chunk.
    pub finish_reason: Option<String>,
}

/// `POST /v1/completions` without `stream`, and each of its stream chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TextCompletion {
    /// `cmpl-…`.
    pub id: String,
    /// `text_completion`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The model's id.
    pub model: String,
    /// One completion (none in a stream's usage chunk).
    pub choices: Vec<TextChoice>,
    /// Token counts (in a stream: only in the usage chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// What a chat stream chunk adds to the answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delta {
    /// `assistant`, in the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// More text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a chat stream chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What this chunk adds.
    pub delta: Delta,
    /// When asked for: this chunk's token.
    pub logprobs: Option<ChatLogprobs>,
    /// Null until the last chunk.
    pub finish_reason: Option<String>,
}

/// A chunk of a chat stream (`data: {...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletionChunk {
    /// The same for every chunk of an answer.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The model's id.
    pub model: String,
    /// One choice (none in the usage chunk).
    pub choices: Vec<ChunkChoice>,
    /// Token counts, in the usage chunk only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// With retrieval: the chunks the model was given, in one chunk of
    /// their own before `[DONE]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<super::Citation>>,
}
