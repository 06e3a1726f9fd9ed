//! Log-probabilities of tokens, as the OpenAI API reports them.

/// A generated token's log-probability under the model (before sampling
/// adjustments), with the most likely alternatives.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The generated token.
    pub id: u32,
    /// Its natural-log probability.
    pub logprob: f32,
    /// The most likely tokens at this position with their log-probabilities,
    /// most likely first.
    pub top: Vec<(u32, f32)>,
}

/// Log-softmax of `logits` for `id`, and the `k` most likely tokens.
pub fn token_logprob(logits: &[f32], id: u32, k: usize) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits.iter().map(|x| (x - max).exp()).sum::<f32>().ln() + max;
    let lp = |i: usize| logits.get(i).map_or(f32::NEG_INFINITY, |x| x - log_sum);
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k);
    if k > 0 {
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        let k = k.min(idx.len());
        idx.select_nth_unstable_by(k.saturating_sub(1), |a, b| {
            logits[*b].total_cmp(&logits[*a])
        });
        idx.truncate(k);
        idx.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
        top = idx.into_iter().map(|i| (i as u32, lp(i))).collect();
    }
    TokenLogprob {
        id,
        logprob: lp(id as usize),
        top,
    }
}
