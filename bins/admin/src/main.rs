//! `offgrid-admin`: operator tasks on OffGrid's database. Works whether or
//! not the server is running (SQLite WAL + busy timeout + immediate
//! transactions make the two safe side by side). Passwords come from a
//! prompt or `--password-stdin`, never from argv.
//!
//! This file only parses the command line and dispatches: each command is
//! one file under `commands/`, with its options and its `run`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

use commands::{Ctx, audit, db, invite, keys, quota, setup, users};

/// OffGrid administration on the server's database.
#[derive(Parser, Debug)]
#[command(name = "offgrid-admin", version, about)]
struct Cli {
    /// Data directory (default: $OFFGRID_HOME or ~/.offgrid-llm).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Config file (default: $OFFGRID_CONFIG or $OFFGRID_HOME/config.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage user accounts.
    #[command(subcommand)]
    Users(users::Command),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Show or change a user's quota.
    #[command(subcommand)]
    Quota(quota::Command),
    /// Invite people to make their own accounts.
    #[command(subcommand)]
    Invite(invite::Command),
    /// Create the first administrator.
    Setup(setup::Args),
    /// Database maintenance.
    #[command(subcommand)]
    Db(db::Command),
    /// Show the audit log, newest first (or `audit prune`).
    #[command(args_conflicts_with_subcommands = true)]
    Audit(audit::Args),
}

fn main() -> ExitCode {
    let cli = match offgrid_cli::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = Ctx::load(cli.home, cli.config, cli.json).and_then(|ctx| match cli.command {
        Command::Users(cmd) => users::run(&ctx, cmd),
        Command::Keys(cmd) => keys::run(&ctx, cmd),
        Command::Quota(cmd) => quota::run(&ctx, cmd),
        Command::Invite(cmd) => invite::run(&ctx, cmd),
        Command::Setup(args) => setup::run(&ctx, args),
        Command::Db(cmd) => db::run(&ctx, cmd),
        Command::Audit(args) => audit::run(&ctx, args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report("offgrid-admin"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
