//! `offgrid`: the OffGrid server and its local commands.
//!
//! This file only parses the command line and dispatches: each command is
//! one file under `commands/`, with its options and its `run`. `client.rs`
//! is the terminal client behind `run` and `chat`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod client;
mod commands;

use commands::{Global, benchmark, chat, config, models, run, serve, session, users};

/// OffGrid: a self-hosted, offline LLM server.
#[derive(Parser, Debug)]
#[command(name = "offgrid", version, about)]
struct Cli {
    /// Data directory (default: $OFFGRID_HOME or ~/.offgrid-llm).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Config file (default: $OFFGRID_CONFIG or $OFFGRID_HOME/config.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server.
    Serve(serve::Args),
    /// Show or check the configuration.
    #[command(subcommand)]
    Config(config::Command),
    /// Installed models.
    #[command(subcommand)]
    Models(models::Command),
    /// Send one prompt and stream the answer, from a running server or,
    /// when none answers, from the model loaded in this process (Ctrl-C
    /// stops the generation).
    Run(run::Args),
    /// Chat with a model on a running server, or in this process when none
    /// answers (Ctrl-C stops the current answer; Ctrl-D or /exit quits).
    Chat(chat::Args),
    /// List user accounts (multi-user mode).
    Users(users::Args),
    /// Chat sessions on a running server (`OFFGRID_API_KEY` in multi-user
    /// mode).
    #[command(subcommand)]
    Session(session::Command),
    /// Measure a model's prompt and decode speed on a running server, as
    /// `POST /v1/benchmark` does (administrators; `OFFGRID_API_KEY` in
    /// multi-user mode); the run is kept in the server's history.
    Benchmark(benchmark::Args),
}

fn main() -> ExitCode {
    let cli = match offgrid_cli::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let global = Global {
        home: cli.home,
        config: cli.config,
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(&global, args),
        Command::Config(cmd) => config::run(&global, cmd),
        Command::Models(cmd) => models::run(&global, cmd),
        Command::Run(args) => run::run(&global, args),
        Command::Chat(args) => chat::run(&global, args),
        Command::Users(args) => users::run(&global, args),
        Command::Session(cmd) => session::run(&global, cmd),
        Command::Benchmark(args) => benchmark::run(&global, args),
    };
    result.unwrap_or_else(|failure| failure.report(commands::BIN))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
