//! `offgrid run MODEL [PROMPT]`: one prompt, the answer streamed.

use super::{Global, Outcome, connect};
use crate::client;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Model id.
    model: String,
    /// The prompt (read from stdin when absent).
    prompt: Option<String>,
    /// Server URL (default: from the host and port settings).
    #[arg(long)]
    url: Option<String>,
    /// Sampling temperature, 0 to 2 (0: greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
}

pub(crate) fn run(global: &Global, args: Args) -> Outcome {
    let loaded = global.load(Vec::new())?;
    let backend = connect(&loaded, args.url, &args.model, args.temperature)?;
    Ok(client::run(&backend, &args.model, args.prompt))
}
