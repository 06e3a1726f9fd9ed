//! `offgrid config show|validate`: the effective settings and where each
//! came from; checking a config file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use offgrid_cli::Failure;
use offgrid_config::{Loaded, validate_file};

use super::{Global, Outcome};

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Print the effective settings and where each value came from.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a config file (default: the one `serve` would read).
    Validate {
        /// The file to check.
        file: Option<PathBuf>,
    },
}

pub(crate) fn run(global: &Global, cmd: Command) -> Outcome {
    // An explicit file is checked on its own, before anything is loaded.
    if let Command::Validate { file: Some(file) } = &cmd {
        validate_file(file).map_err(|e| Failure::usage(e.to_string()))?;
        println!("{}: ok", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let loaded = global.load(Vec::new())?;
    match cmd {
        Command::Show { json } => show(&loaded, json),
        Command::Validate { .. } => match &loaded.config_file {
            Some(path) => println!("{}: ok", path.display()),
            None => println!("no config file; defaults and environment are valid"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn show(loaded: &Loaded, json: bool) {
    let rows = loaded.rows();
    if json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v, s)| {
                (
                    (*k).to_owned(),
                    serde_json::json!({"value": v, "source": s.to_string()}),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(map));
        return;
    }
    let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (key, value, source) in rows {
        println!("{key:width$}  {value:<30}  ({source})");
    }
}
