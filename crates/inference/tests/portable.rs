//! The portable kernels compute what the AVX2 ones do, in the same order:
//! the same logits to the bit, so the same tokens. Its own test binary: it
//! switches the process-wide kernel level.

mod common;

use offgrid_inference::model::argmax;
use offgrid_inference::simd::{Level, force_portable, level};
use offgrid_inference::{CausalLm, LlamaModel};

/// The logits after each step of a greedy run: the prompt, then `n`
/// generated tokens fed back one by one; and the tokens.
fn greedy(model: &mut LlamaModel, prompt: &[u32], n: usize) -> (Vec<Vec<f32>>, Vec<u32>) {
    model.reset();
    let mut logits = vec![model.forward(prompt, 0).expect("prompt")];
    let mut out = Vec::new();
    for step in 0..n {
        let next = argmax(logits.last().expect("logits"));
        out.push(next);
        logits.push(model.forward(&[next], prompt.len() + step).expect("step"));
    }
    (logits, out)
}

#[test]
fn the_portable_path_gives_the_same_tokens_as_simd() {
    let path = common::installed("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    let mut model = LlamaModel::open(&path).expect("load");
    // "<|im_start|>user\nExplain what a CPU does.<|im_end|>\n<|im_start|>assistant\n"
    let prompt = [
        1, 4093, 198, 36915, 392, 253, 13654, 1072, 30, 2, 198, 1, 520, 9531, 198,
    ];
    force_portable(false);
    let simd = level();
    let (simd_logits, simd_tokens) = greedy(&mut model, &prompt, 40);
    force_portable(true);
    assert_eq!(level(), Level::Portable);
    let (portable_logits, portable_tokens) = greedy(&mut model, &prompt, 40);
    force_portable(false);
    eprintln!(
        "{} and portable: {} tokens, logits compared at every step",
        simd.name(),
        simd_tokens.len()
    );
    assert_eq!(simd_tokens, portable_tokens);
    assert!(
        simd_logits == portable_logits,
        "the logits differ between {} and portable",
        simd.name()
    );
}
