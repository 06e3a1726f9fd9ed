//! What constrained decoding costs, in one run on the default model:
//! indexing the vocabulary (once per loaded model), compiling a schema
//! (per request), and decoding with the mask beside the same decoding
//! without it (alternating rounds, medians), with the mask's own time per
//! token measured apart (the generated tokens replayed through a fresh
//! constraint). Prints JSON; `cargo xtask bench constrained` runs it.
//!
//! `constrained MODEL.gguf [--gen N] [--repeat N]`

use std::path::PathBuf;
use std::time::Instant;

use offgrid_inference::generate::stop_token_ids;
use offgrid_inference::{ChatMessage, ChatModel, OutputFormat, SamplingParams, Sequence, Step};
use serde_json::json;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One generation: the tokens and the decode time after the first token.
fn decode(
    model: &ChatModel,
    prompt: &[u32],
    format: Option<&OutputFormat>,
    tokens: usize,
    seed: u64,
) -> Result<(Vec<u32>, f64), String> {
    let params = SamplingParams {
        temperature: 0.8,
        seed,
        max_tokens: tokens,
        ..SamplingParams::default()
    };
    let mut seq = Sequence::new(
        model.model(),
        prompt.to_vec(),
        params,
        stop_token_ids(&model.tokenizer),
    )
    .map_err(|e| e.to_string())?;
    if let Some(format) = format {
        seq = seq.constrained(model.constraint(format).map_err(|e| e.to_string())?);
    }
    let mut ids = Vec::new();
    let mut first: Option<Instant> = None;
    loop {
        match seq
            .step(model.model(), &model.tokenizer)
            .map_err(|e| e.to_string())?
        {
            Step::Prefill => {}
            Step::Token { id, .. } => {
                ids.push(id);
                first.get_or_insert_with(Instant::now);
            }
            Step::Done { .. } => break,
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    Ok((ids, secs))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut model_path = PathBuf::new();
    let (mut generate, mut repeat) = (200usize, 5usize);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match a.as_str() {
            "--gen" => generate = num("--gen")?,
            "--repeat" => repeat = num("--repeat")?.max(1),
            _ => model_path = PathBuf::from(a),
        }
    }
    let model = ChatModel::load("bench", &model_path).map_err(|e| e.to_string())?;
    let rendered = model
        .template
        .render(
            &[ChatMessage::new(
                "user",
                "Describe three cats in detail as JSON.",
            )],
            true,
        )
        .map_err(|e| e.to_string())?;
    let prompt = model
        .tokenizer
        .encode(&rendered)
        .map_err(|e| e.to_string())?;
    let schema = OutputFormat::JsonSchema(json!({
        "type": "object",
        "properties": {
            "cats": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 40},
                    "age": {"type": "integer", "minimum": 0, "maximum": 30},
                    "description": {"type": "string"}
                },
                "required": ["name", "age", "description"]
            }}
        },
        "required": ["cats"]
    }));

    let t = Instant::now();
    model
        .constraint(&OutputFormat::Json)
        .map_err(|e| e.to_string())?;
    let index_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut compile = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        model.constraint(&schema).map_err(|e| e.to_string())?;
        compile.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    let (mut free, mut held, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    let mut held_tokens = Vec::new();
    for round in 0..repeat {
        let seed = 11 + round as u64;
        let (ids, secs) = decode(&model, &prompt, None, generate, seed)?;
        free.push(ids.len().saturating_sub(1) as f64 / secs.max(1e-9));
        let (ids, secs) = decode(&model, &prompt, Some(&schema), generate, seed)?;
        held.push(ids.len().saturating_sub(1) as f64 / secs.max(1e-9));
        held_tokens.push(ids.len() as f64);
        // The mask alone: the same tokens through a fresh constraint.
        let mut c = model.constraint(&schema).map_err(|e| e.to_string())?;
        let mut logits = vec![0f32; model.tokenizer.vocab_size()];
        let t = Instant::now();
        for id in &ids {
            c.mask(&mut logits).map_err(|e| e.to_string())?;
            c.advance(*id).map_err(|e| e.to_string())?;
        }
        mask.push(t.elapsed().as_secs_f64() * 1e6 / ids.len().max(1) as f64);
    }
    let (free, held) = (median(free), median(held));
    println!(
        "{}",
        json!({
            "generate": generate,
            "repeat": repeat,
            "vocabulary_index_ms": index_ms,
            "schema_compile_ms": median(compile),
            "unconstrained_decode_tps": free,
            "constrained_decode_tps": held,
            "constrained_tokens": median(held_tokens),
            "ratio": held / free,
            "mask_us_per_token": median(mask),
        })
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("constrained: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
