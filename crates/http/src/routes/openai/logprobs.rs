//! Log-probabilities in OpenAI's two shapes: chat's list of tokens with
//! alternatives, and text completions' parallel lists (with the prompt's
//! own scores under `echo`).

use std::collections::BTreeMap;

use offgrid_inference::Generation;

use crate::wire::{ChatLogprobs, TextLogprobs, TokenLogprob, TopLogprob};

/// Generated tokens' log-probabilities, and with `echo` the prompt's.
pub(super) struct Logprobs<'a> {
    pub(super) generation: &'a Generation,
    pub(super) entries: Vec<offgrid_inference::TokenLogprob>,
    /// With `echo`: the prompt's token ids and the scores of all but the
    /// first.
    pub(super) prompt: Option<(Vec<u32>, Vec<offgrid_inference::TokenLogprob>)>,
}

impl Logprobs<'_> {
    fn text(&self, id: u32) -> String {
        self.generation.token_text(id)
    }

    fn top(&self, e: &offgrid_inference::TokenLogprob) -> BTreeMap<String, f32> {
        e.top.iter().map(|(id, lp)| (self.text(*id), *lp)).collect()
    }

    /// Chat: `{"content": [{token, logprob, bytes, top_logprobs}]}`.
    pub(super) fn chat(&self) -> ChatLogprobs {
        let content = self
            .entries
            .iter()
            .map(|e| {
                let token = self.text(e.id);
                TokenLogprob {
                    bytes: token.as_bytes().to_vec(),
                    token,
                    logprob: e.logprob,
                    top_logprobs: e
                        .top
                        .iter()
                        .map(|(id, lp)| {
                            let token = self.text(*id);
                            TopLogprob {
                                bytes: token.as_bytes().to_vec(),
                                token,
                                logprob: *lp,
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        ChatLogprobs { content }
    }

    /// Text completions: parallel `tokens`, `token_logprobs`,
    /// `top_logprobs` and `text_offset` lists, offsets counted from
    /// `start_offset`.
    pub(super) fn text_completion(&self, start_offset: usize) -> TextLogprobs {
        let mut out = TextLogprobs {
            tokens: Vec::new(),
            token_logprobs: Vec::new(),
            top_logprobs: Vec::new(),
            text_offset: Vec::new(),
        };
        let mut offset = start_offset;
        let mut push = |out: &mut TextLogprobs,
                        token: String,
                        scored: Option<(f32, BTreeMap<String, f32>)>| {
            out.text_offset.push(offset);
            offset += token.len();
            out.tokens.push(token);
            let (lp, top) = scored.unzip();
            out.token_logprobs.push(lp);
            out.top_logprobs.push(top);
        };
        if let Some((ids, scores)) = &self.prompt {
            for (i, id) in ids.iter().enumerate() {
                // The first token has nothing before it to be predicted from.
                let scored = i
                    .checked_sub(1)
                    .and_then(|j| scores.get(j))
                    .map(|e| (e.logprob, self.top(e)));
                push(&mut out, self.text(*id), scored);
            }
        }
        for e in &self.entries {
            push(&mut out, self.text(e.id), Some((e.logprob, self.top(e))));
        }
        out
    }
}
