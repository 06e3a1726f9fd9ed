//! `offgrid benchmark MODEL`: one standard prompt/decode measurement on a
//! running server (`POST /v1/benchmark`), with a spinner while it runs
//! (queued fairly like any generation) and the figures as lines or JSON.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use offgrid_cli::Failure;
use offgrid_http::wire::{Benchmark, BenchmarkRequest};

use super::api::Api;
use super::{Global, Outcome, server_url};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// A chat model (default: the server's default model).
    model: Option<String>,
    /// About how many prompt tokens to read (16 to 2048).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(i64).range(16..=2048))]
    prompt_tokens: i64,
    /// Tokens to generate (2 to 512).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(i64).range(2..=512))]
    max_tokens: i64,
    /// Print the run as JSON.
    #[arg(long)]
    json: bool,
    /// Server URL (default: from the host and port settings).
    #[arg(long)]
    url: Option<String>,
}

pub(crate) fn run(global: &Global, args: Args) -> Outcome {
    let loaded = global.load(Vec::new())?;
    let base = server_url(&loaded, args.url);
    // A benchmark waits its turn behind other generations.
    let api = Api::with_timeout(base.clone(), Duration::from_secs(900))?;
    let spinner = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!(
            "measuring {} on {base}",
            args.model.as_deref().unwrap_or("the default model")
        ));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let request = BenchmarkRequest {
        model: args.model.unwrap_or_default(),
        prompt_tokens: Some(args.prompt_tokens),
        max_tokens: Some(args.max_tokens),
    };
    let answer = api.send(
        api.request(reqwest::Method::POST, "/v1/benchmark")
            .json(&request),
    );
    if let Some(bar) = &spinner {
        bar.finish_and_clear();
    }
    let run: Benchmark = answer?
        .json()
        .map_err(|e| Failure::new(1, format!("unexpected answer: {e}")))?;
    if args.json {
        let text =
            serde_json::to_string_pretty(&run).map_err(|e| Failure::new(1, e.to_string()))?;
        println!("{text}");
    } else {
        println!("model        {}", run.model);
        println!(
            "prompt       {} tokens at {:.1} tokens/s",
            run.prompt_tokens, run.prompt_tps
        );
        println!(
            "decode       {} tokens at {:.1} tokens/s",
            run.generated_tokens, run.decode_tps
        );
        println!("first token  {:.1} ms", run.ttft_ms);
        println!(
            "machine      {} ({} threads, {})",
            run.cpu, run.threads, run.simd
        );
    }
    Ok(ExitCode::SUCCESS)
}
