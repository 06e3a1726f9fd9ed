//! The OffGrid half of `cargo xtask bench inference`: prompt and decode
//! speed of the forward pass, time to first token through the engine,
//! aggregate decode speed with 1, 4 and 8 concurrent streams (continuous
//! batching), and a running stream's inter-token latency alone and while
//! another user's long prompt is read. Prints one JSON object. Run through
//! the xtask, which also runs llama.cpp on the same file and prints the
//! ratios.
//!
//! ```text
//! bench MODEL.gguf [--prompt-tokens 200] [--gen 128] [--ttft-tokens 20] [--repeat 3]
//!                  [--long-prompt 2000]
//! ```

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use offgrid_inference::model::argmax;
use offgrid_inference::{
    CausalLm, ChatModel, Engine, EngineConfig, Event, Job, LlamaModel, SamplingParams,
    TextTokenizer,
};

/// English prose, repeated until the prompt is long enough.
const TEXT: &str = "The history of computing is a story of people trying to make machines \
that think faster than they can. Early mechanical calculators used gears and levers to add \
and multiply numbers, and they were slow, noisy and expensive. In the twentieth century, \
vacuum tubes replaced the gears, and later the transistor replaced the tube, making \
computers smaller, cheaper and far more reliable. Today a single chip holds billions of \
transistors, and a phone in a pocket is more powerful than the machines that guided the \
first missions to the moon. Yet the basic idea has not changed: a processor reads an \
instruction, performs a simple operation on a few numbers, and writes the result back to \
memory, billions of times every second. ";

struct Args {
    model: PathBuf,
    prompt_tokens: usize,
    generate: usize,
    ttft_tokens: usize,
    repeat: usize,
    long_prompt: usize,
    /// Only run these numbers of concurrent streams (`--only-streams
    /// 1,4,8`), `repeat` rounds, and print each one's median aggregate
    /// decode tokens/s (for a profiler, or ratios measured side by side).
    only_streams: Option<Vec<usize>>,
    /// Only measure a running stream's gaps alone and while another
    /// user's long prompt is read (`--only-gaps`), `repeat` rounds.
    only_gaps: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        model: PathBuf::new(),
        prompt_tokens: 200,
        generate: 128,
        ttft_tokens: 20,
        repeat: 3,
        long_prompt: 2000,
        only_streams: None,
        only_gaps: false,
    };
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--prompt-tokens" => args.prompt_tokens = num("--prompt-tokens")?,
            "--gen" => args.generate = num("--gen")?,
            "--ttft-tokens" => args.ttft_tokens = num("--ttft-tokens")?,
            "--repeat" => args.repeat = num("--repeat")?.max(1),
            "--long-prompt" => args.long_prompt = num("--long-prompt")?.max(1),
            "--only-gaps" => args.only_gaps = true,
            "--only-streams" => {
                let list = it.next().ok_or("--only-streams needs numbers")?;
                let n: Result<Vec<usize>, _> = list.split(',').map(str::parse).collect();
                args.only_streams = Some(n.map_err(|e| format!("--only-streams: {e}"))?);
            }
            _ if args.model.as_os_str().is_empty() => args.model = PathBuf::from(a),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if args.model.as_os_str().is_empty() {
        return Err(
            "usage: bench MODEL.gguf [--prompt-tokens N] [--gen N] [--ttft-tokens N] [--repeat N]"
                .into(),
        );
    }
    Ok(args)
}

/// The first `n` token ids of the repeated text.
fn prompt_ids(tokenizer: &TextTokenizer, n: usize) -> Result<Vec<u32>, String> {
    let mut text = String::new();
    loop {
        text.push_str(TEXT);
        let ids = tokenizer.encode(&text).map_err(|e| e.to_string())?;
        if ids.len() >= n {
            return Ok(ids[..n].to_vec());
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident set size of this process, in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Prompt tokens/s and decode tokens/s on the bare forward pass (greedy,
/// never stopping early).
fn forward_speed(
    base: &LlamaModel,
    ids: &[u32],
    generate: usize,
) -> Result<(f64, f64), offgrid_inference::InferenceError> {
    let mut m = base.fork();
    let t = Instant::now();
    let mut logits = m.forward(ids, 0)?;
    let prompt = t.elapsed();
    let t = Instant::now();
    for i in 0..generate {
        let next = argmax(&logits);
        logits = m.forward(&[next], ids.len() + i)?;
    }
    let decode = t.elapsed();
    Ok((
        ids.len() as f64 / prompt.as_secs_f64(),
        generate as f64 / decode.as_secs_f64(),
    ))
}

/// What `streams` concurrent requests measured.
struct StreamsRun {
    /// All generated tokens over the whole run (prompts included).
    total_tps: f64,
    /// Decode only, as llama-batched-bench's S_TG: the tokens after each
    /// stream's first, over the time from the first first token to the
    /// last token.
    decode_tps: f64,
    /// The earliest time to first token.
    ttft: Duration,
}

/// `streams` concurrent requests of `generate` tokens on `prompt`, each
/// from its own user, sampled at temperature 0.8 with their own seeds.
fn engine_run(
    engine: &Engine,
    model: &Arc<ChatModel>,
    prompt: &[u32],
    streams: usize,
    generate: usize,
) -> Result<StreamsRun, String> {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    for s in 0..streams {
        let tx = tx.clone();
        engine
            .submit(Job {
                user: format!("bench-{s}"),
                model: model.clone(),
                prompt: prompt.to_vec(),
                params: SamplingParams {
                    temperature: 0.8,
                    seed: 7 + s as u64,
                    max_tokens: generate,
                    ..SamplingParams::default()
                },
                sink: Box::new(move |e| tx.send((Instant::now(), e)).is_ok()),
                alive: None,
                id: None,
                constraint: None,
            })
            .map_err(|e| e.to_string())?;
    }
    drop(tx);
    let mut tokens = 0usize;
    let mut decoded = 0usize;
    let mut ttft = Duration::MAX;
    let mut first: Option<Instant> = None;
    let mut last = started;
    for (at, e) in rx {
        match e {
            Event::Text(_) => {
                first.get_or_insert(at);
                last = last.max(at);
            }
            Event::Done(u) => {
                tokens += u.completion_tokens;
                decoded += u.completion_tokens.saturating_sub(1);
                last = last.max(at);
                if let Some(t) = u.time_to_first_token {
                    ttft = ttft.min(t);
                }
            }
            Event::Error(e) => return Err(e),
            _ => {}
        }
    }
    let total = started.elapsed().as_secs_f64();
    let decode_time = first.map_or(f64::NAN, |f| (last - f).as_secs_f64());
    eprintln!(
        "bench: {streams} streams: {tokens} tokens in {total:.2} s, decode {decode_time:.2} s"
    );
    Ok(StreamsRun {
        total_tps: tokens as f64 / total,
        decode_tps: decoded as f64 / decode_time,
        ttft,
    })
}

/// The `q` quantile (0..=1) of `v` (nearest rank).
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// A running stream's inter-token gaps.
struct Gaps {
    /// Every gap in ms, in order (gap `i` is between tokens `i` and `i + 1`).
    all: Vec<f64>,
    /// The gaps while the other user's prompt was read: `all[window]`.
    window: std::ops::Range<usize>,
    /// How long that prompt took to its first token.
    long_ttft: Option<Duration>,
}

impl Gaps {
    fn during(&self, window: &std::ops::Range<usize>) -> Vec<f64> {
        let end = window.end.min(self.all.len());
        self.all[window.start.min(end)..end].to_vec()
    }
}

/// A greedy stream of `generate` tokens on `prompt` (prose, so it does not
/// stop early); when `long` is given, another user's request with that
/// prompt is submitted after the stream's fifth token.
fn stream_gaps(
    engine: &Engine,
    model: &Arc<ChatModel>,
    prompt: &[u32],
    generate: usize,
    long: Option<&[u32]>,
) -> Result<Gaps, String> {
    let (tx, rx) = mpsc::channel();
    let stream_tx = tx.clone();
    engine
        .submit(Job::new(
            "stream",
            model.clone(),
            prompt.to_vec(),
            SamplingParams {
                max_tokens: generate,
                ..SamplingParams::default()
            },
            Box::new(move |e| stream_tx.send((0, Instant::now(), e)).is_ok()),
        ))
        .map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    let mut long_window: Option<(Instant, Option<Instant>)> = None;
    let mut long_ttft = None;
    let mut open = 1;
    while open > 0 {
        let (who, at, event) = rx
            .recv_timeout(Duration::from_secs(600))
            .map_err(|e| e.to_string())?;
        match (who, event) {
            (0, Event::Text(_)) => {
                times.push(at);
                if times.len() == 5
                    && let Some(long) = long
                {
                    let long_tx = tx.clone();
                    engine
                        .submit(Job::new(
                            "long-prompt",
                            model.clone(),
                            long.to_vec(),
                            SamplingParams {
                                max_tokens: 1,
                                ..SamplingParams::default()
                            },
                            Box::new(move |e| long_tx.send((1, Instant::now(), e)).is_ok()),
                        ))
                        .map_err(|e| e.to_string())?;
                    long_window = Some((Instant::now(), None));
                    open += 1;
                }
            }
            (1, Event::Done(u)) => {
                long_ttft = u.time_to_first_token;
                if let Some((_, end)) = long_window.as_mut() {
                    *end = Some(at);
                }
                open -= 1;
            }
            (0, Event::Done(_)) => open -= 1,
            (_, Event::Error(e)) => return Err(e),
            _ => {}
        }
    }
    let all: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    let window = match long_window {
        Some((start, Some(end))) => {
            let inside = |w: &[Instant]| w[0] >= start && w[1] <= end;
            let first = times.windows(2).position(inside).unwrap_or(all.len());
            let count = times
                .windows(2)
                .skip(first)
                .take_while(|w| inside(w))
                .count();
            first..first + count
        }
        Some((_, None)) => 0..0,
        None => 0..all.len(),
    };
    Ok(Gaps {
        all,
        window,
        long_ttft,
    })
}

/// Gaps of a running stream alone and while another user's `long` prompt
/// is read, as the bench reports them.
fn gap_figures(
    engine: &Engine,
    model: &Arc<ChatModel>,
    prompt: &[u32],
    long: &[u32],
) -> Result<serde_json::Value, String> {
    const GENERATE: usize = 2000;
    // The same stream alone, for the same number of tokens: its gaps grow
    // with its own context, so the contended gaps are compared with the
    // gaps of the same tokens alone, and (as before) with the first 200.
    let alone = stream_gaps(engine, model, prompt, GENERATE, None)?;
    let contended = stream_gaps(engine, model, prompt, GENERATE, Some(long))?;
    let during = contended.during(&contended.window);
    let alone_same = alone.during(&contended.window);
    let alone_first = alone.during(&(0..199));
    let p99 = quantile(during.clone(), 0.99);
    Ok(serde_json::json!({
        "itl_alone_p50_ms": quantile(alone_first.clone(), 0.5),
        "itl_alone_p99_ms": quantile(alone_first, 0.99),
        "itl_alone_same_p50_ms": quantile(alone_same.clone(), 0.5),
        "itl_alone_same_p99_ms": quantile(alone_same.clone(), 0.99),
        "itl_contended_p50_ms": quantile(during.clone(), 0.5),
        "itl_contended_p99_ms": p99,
        "itl_contended_max_ms": quantile(during.clone(), 1.0),
        "itl_contended_samples": during.len(),
        "itl_window": [contended.window.start, contended.window.end],
        "long_prompt_tokens": long.len(),
        "long_prompt_ttft_ms": contended.long_ttft.map_or(f64::NAN, |t| t.as_secs_f64() * 1000.0),
    }))
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let t = Instant::now();
    let chat = Arc::new(ChatModel::load("bench", &args.model).map_err(|e| e.to_string())?);
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let base = chat.model();
    let ids = prompt_ids(&chat.tokenizer, args.prompt_tokens)?;
    if let Some(counts) = &args.only_streams {
        let most = counts.iter().copied().max().unwrap_or(1).max(1);
        let engine = Engine::start(EngineConfig {
            max_active: most,
            max_queued: most,
            ..EngineConfig::default()
        })
        .map_err(|e| e.to_string())?;
        let short = &ids[..args.ttft_tokens.min(ids.len())];
        let mut tps = vec![Vec::new(); counts.len()];
        for _ in 0..args.repeat {
            for (n, runs) in counts.iter().zip(&mut tps) {
                let run = engine_run(&engine, &chat, short, (*n).max(1), args.generate)?;
                runs.push(run.decode_tps);
            }
        }
        let medians: Vec<f64> = tps.into_iter().map(median).collect();
        println!(
            "{}",
            serde_json::json!({ "streams": counts, "tps": medians })
        );
        return Ok(());
    }

    if args.only_gaps {
        let engine = Engine::start(EngineConfig::default()).map_err(|e| e.to_string())?;
        let long = prompt_ids(&chat.tokenizer, args.long_prompt)?;
        for _ in 0..args.repeat {
            println!("{}", gap_figures(&engine, &chat, &ids[..64], &long)?);
        }
        return Ok(());
    }

    // Warm-up (page faults, thread pools).
    forward_speed(base, &ids[..16], 4).map_err(|e| e.to_string())?;
    let mut prompt = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..args.repeat {
        let (p, d) = forward_speed(base, &ids, args.generate).map_err(|e| e.to_string())?;
        prompt.push(p);
        decode.push(d);
    }

    let engine = Engine::start(EngineConfig {
        max_active: 8,
        max_queued: 16,
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let short = &ids[..args.ttft_tokens.min(ids.len())];
    let mut ttft = Vec::new();
    for _ in 0..args.repeat {
        let run = engine_run(&engine, &chat, short, 1, 1)?;
        ttft.push(run.ttft.as_secs_f64() * 1000.0);
    }
    let one = engine_run(&engine, &chat, short, 1, args.generate)?;
    let four = engine_run(&engine, &chat, short, 4, args.generate)?;
    let eight = engine_run(&engine, &chat, short, 8, args.generate)?;

    // Inter-token latency of a running stream, alone and while another
    // user's long prompt is read.
    let long = prompt_ids(&chat.tokenizer, args.long_prompt)?;
    let gaps = gap_figures(&engine, &chat, &ids[..64], &long)?;

    let threads = candle_core::utils::get_num_threads();
    let mut report = serde_json::json!({
            "engine": "offgrid",
            "threads": threads,
            "prompt_tokens": ids.len(),
            "gen_tokens": args.generate,
            "load_ms": load_ms,
            "prompt_tps": median(prompt),
            "decode_tps": median(decode),
            "ttft_ms": median(ttft),
            "ttft_tokens": short.len(),
            "stream1_tps": one.decode_tps,
            "stream4_tps": four.decode_tps,
            "stream8_tps": eight.decode_tps,
            "stream1_total_tps": one.total_tps,
            "stream4_total_tps": four.total_tps,
            "stream8_total_tps": eight.total_tps,
            "simd": offgrid_inference::simd::level().name(),
            "peak_rss_mb": peak_rss_mb(),
            "prompt_ids": ids,
    });
    if let (Some(report), serde_json::Value::Object(gaps)) = (report.as_object_mut(), gaps) {
        report.extend(gaps);
    }
    println!("{report}");
    Ok(())
}
