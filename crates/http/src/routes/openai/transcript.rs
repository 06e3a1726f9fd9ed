//! Saving a chat completion in its session: the request's new messages and
//! the answer, in one append, when the answer is done. An answer cut off
//! (the client left, or the handler was dropped) is saved with what was
//! generated, marked as interrupted; a failed generation saves nothing, so
//! a retry does not store the question twice.

use offgrid_domain::ChatSessionId;
use offgrid_domain::workspace::{MessageRole, MessageUsage, NewChatMessage};
use offgrid_workspace::{Actor, Workspace};

/// The exchange to save, filled as the answer arrives.
pub(super) struct Transcript {
    workspace: Workspace,
    actor: Actor,
    session: ChatSessionId,
    messages: Vec<NewChatMessage>,
    model: String,
    answer: String,
    settled: bool,
    /// The answer's sources, as JSON.
    citations: Option<String>,
}

impl Transcript {
    /// A transcript of `messages` (the request's) and the answer to come.
    pub(super) fn new(
        workspace: Workspace,
        actor: Actor,
        session: ChatSessionId,
        messages: Vec<NewChatMessage>,
        model: String,
    ) -> Self {
        Transcript {
            workspace,
            actor,
            session,
            messages,
            model,
            answer: String::new(),
            // Nothing to save until the generation is under way.
            settled: true,
            citations: None,
        }
    }

    /// Saves the answer with the sources it was given.
    pub(super) fn cite(&mut self, citations: Option<&[crate::wire::Citation]>) {
        self.citations = citations.and_then(|c| serde_json::to_string(c).ok());
    }

    /// The generation is queued: from now on the exchange is saved,
    /// finished or cut off.
    pub(super) fn arm(&mut self) {
        self.settled = false;
    }

    /// More of the answer.
    pub(super) fn push(&mut self, text: &str) {
        self.answer.push_str(text);
    }

    /// The answer is complete: saves it with its token counts, and
    /// returns once it is stored (so a client that reads the session after
    /// the answer finds it there).
    /// A cancelled answer is saved as interrupted.
    pub(super) async fn finish(&mut self, usage: &offgrid_inference::Usage) {
        let cut = usage.finish_reason == offgrid_inference::FinishReason::Cancelled;
        let usage = MessageUsage {
            prompt_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
            completion_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
        };
        let Some(save) = self.take(Some(usage), cut) else {
            return;
        };
        match crate::trace::block(save).await {
            Ok(()) => {}
            Err(e) => tracing::error!(error = %e, "cannot save the exchange in its session"),
        }
    }

    /// The answer came without the model (retrieval's "still indexing"):
    /// saves it without token counts.
    pub(super) async fn finish_plain(&mut self) {
        if let Some(save) = self.take(None, false)
            && let Err(e) = crate::trace::block(save).await
        {
            tracing::error!(error = %e, "cannot save the exchange in its session");
        }
    }

    /// Generation failed: nothing is saved.
    pub(super) fn discard(&mut self) {
        self.settled = true;
    }

    /// The save to run, once.
    fn take(
        &mut self,
        usage: Option<MessageUsage>,
        interrupted: bool,
    ) -> Option<impl FnOnce() + Send + 'static> {
        if self.settled {
            return None;
        }
        self.settled = true;
        let mut messages = std::mem::take(&mut self.messages);
        messages.push(NewChatMessage {
            role: MessageRole::Assistant,
            content: std::mem::take(&mut self.answer),
            model: Some(self.model.clone()),
            usage,
            citations: self.citations.take(),
            interrupted,
        });
        let (workspace, actor, session) = (
            self.workspace.clone(),
            self.actor.clone(),
            self.session.clone(),
        );
        Some(move || {
            // Write access may have been revoked meanwhile: then nothing
            // is saved, as for any write.
            if let Err(e) = workspace.save_exchange(&actor, &session, &messages) {
                tracing::warn!(session = %session, error = %e, "cannot save the exchange in its session");
            }
        })
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        // Cut off before the end: keep what was generated.
        if let Some(save) = self.take(None, true) {
            // Dropped with the server's runtime (shutdown): save here.
            if tokio::runtime::Handle::try_current().is_ok() {
                crate::trace::spawn_blocking(save);
            } else {
                save();
            }
        }
    }
}
