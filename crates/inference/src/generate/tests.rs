//! Unit tests of sampling settings, log-probabilities and stop-sequence
//! matching.

use super::*;

#[test]
fn logprobs_are_a_log_softmax_with_sorted_alternatives() {
    let lp = token_logprob(&[1.0, 3.0, 2.0, 0.0], 2, 2);
    let total: f32 = [1.0f32, 3.0, 2.0, 0.0].iter().map(|x| x.exp()).sum();
    assert!((lp.logprob - (2.0f32.exp() / total).ln()).abs() < 1e-5);
    assert_eq!(
        lp.top.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(lp.top[0].1 > lp.top[1].1);
    assert!(token_logprob(&[0.5, 0.5], 0, 0).top.is_empty());
}

#[test]
fn suffix_prefix_overlap() {
    let t = "hello wor";
    assert_eq!(longest_prefix_suffix(t, "world"), 3);
    assert_eq!(longest_prefix_suffix(t, "xyz"), 0);
    assert_eq!(
        longest_prefix_suffix(t, "o"),
        0,
        "a one-char stop is never held"
    );
    // Bytes, at character boundaries only.
    assert_eq!(longest_prefix_suffix("café é", "é!"), "é".len());
    assert_eq!(longest_prefix_suffix("ab\u{e9}", "\u{e8}x"), 0);
}

#[test]
fn greedy_when_temperature_is_zero() {
    assert!(matches!(
        sampling(&SamplingParams::default()),
        Sampling::ArgMax
    ));
    let p = SamplingParams {
        temperature: 0.7,
        top_p: Some(0.9),
        ..SamplingParams::default()
    };
    assert!(matches!(sampling(&p), Sampling::TopP { .. }));
}
