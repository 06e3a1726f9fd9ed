//! `offgrid chat`: a conversation in the terminal.

use super::{Global, Outcome, connect};
use crate::client;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Model id.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    model: String,
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
    Ok(client::chat(&backend, &args.model))
}
