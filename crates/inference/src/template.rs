//! Chat templates: the model's own `tokenizer.chat_template` (Jinja),
//! rendered with minijinja plus Python-compatible string methods
//! (`.strip()`, `.startswith()`…) that Hugging Face templates use.
//!
//! Fallback when a model has no template: ChatML (`<|im_start|>role\n…
//! <|im_end|>\n`), the format most small instruct models are trained on.

use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;

use crate::InferenceError;
use crate::error::catch_panics;

/// The template used when a model carries none.
pub const CHATML_FALLBACK: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message with this role and content.
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.to_owned(),
            content: content.to_owned(),
        }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Whether this is the built-in fallback.
    pub is_fallback: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("is_fallback", &self.is_fallback)
            .finish_non_exhaustive()
    }
}

fn template_err(e: minijinja::Error) -> InferenceError {
    InferenceError::Template(format!("{e:#}"))
}

/// The messages as Jinja values: a list of `{role, content}` maps.
fn messages_value(messages: &[ChatMessage]) -> minijinja::Value {
    let list: Vec<minijinja::Value> = messages
        .iter()
        .map(|m| {
            minijinja::Value::from_pairs([
                ("role", minijinja::Value::from(m.role.as_str())),
                ("content", minijinja::Value::from(m.content.as_str())),
            ])
        })
        .collect();
    minijinja::Value::from(list)
}

impl ChatTemplate {
    /// Compiles `source` (or the ChatML fallback when `None`).
    pub fn new(
        source: Option<&str>,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<Self, InferenceError> {
        // The source comes from a model file: a panic while compiling it
        // fails the load, not the thread.
        catch_panics("compiling the chat template", || {
            Self::compile(source, bos_token, eos_token)
        })
    }

    fn compile(
        source: Option<&str>,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<Self, InferenceError> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        let is_fallback = source.is_none();
        env.add_template_owned("chat", source.unwrap_or(CHATML_FALLBACK).to_owned())
            .map_err(template_err)?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            is_fallback,
        })
    }

    /// Renders a conversation; with `add_generation_prompt` the text ends
    /// where the assistant's reply begins.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, InferenceError> {
        let template = self.env.get_template("chat").map_err(template_err)?;
        template
            .render(context! {
                messages => messages_value(messages),
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(template_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_is_chatml() {
        let t = ChatTemplate::new(None, "<s>", "</s>").expect("template");
        let text = t
            .render(&[ChatMessage::new("user", "Hi")], true)
            .expect("render");
        assert_eq!(
            text,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(t.is_fallback);
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let src = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}{{ messages[0]['content'].strip().upper() }}";
        let t = ChatTemplate::new(Some(src), "", "").expect("template");
        assert_eq!(
            t.render(&[ChatMessage::new("user", "  hi ")], false)
                .expect("render"),
            "HI"
        );
        let err = t
            .render(&[ChatMessage::new("system", "x")], false)
            .expect_err("raise");
        assert!(err.to_string().contains("first must be user"));
    }

    #[test]
    fn a_broken_template_is_an_error_not_a_panic() {
        assert!(ChatTemplate::new(Some("{% for %}"), "", "").is_err());
    }
}
