//! `offgrid models list|show|import|remove`: the model registry under
//! `$OFFGRID_HOME/models`. A running server notices the change within a
//! few seconds.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use offgrid_cli::{EXIT_USAGE, Failure};
use offgrid_inference::{InferenceError, ModelEntry, ModelRegistry};
use serde_json::json;

use super::{BIN, Global, Outcome};

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// List installed models.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one model's details.
    Show {
        /// Model id (its folder name under $OFFGRID_HOME/models).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a local .gguf file (or an embedding model folder with
    /// model.safetensors, tokenizer.json and config.json) into the models
    /// folder, after checking it is a model OffGrid can run.
    Import {
        /// The .gguf file or the embedding model folder.
        path: PathBuf,
        /// The model id (default: the file name without .gguf, lowercased).
        #[arg(long)]
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an installed model and its files.
    Remove {
        /// Model id.
        id: String,
    },
}

/// A registry error: exit code 1 for an unknown model, 2 for anything
/// wrong with what was asked.
fn failure(e: InferenceError) -> Failure {
    let code = match e {
        InferenceError::ModelNotFound(_) => 1,
        _ => EXIT_USAGE,
    };
    Failure::new(code, e.to_string())
}

fn print_entry(e: &ModelEntry) {
    let rows: [(&str, String); 11] = [
        ("id", e.id.clone()),
        ("type", e.kind.as_str().to_owned()),
        ("format", e.format.clone()),
        ("file", e.file.clone()),
        ("architecture", e.architecture.clone()),
        ("parameters", e.parameters.to_string()),
        ("quantization", e.quantization.clone()),
        (
            "context_length",
            e.context_length.map_or("-".into(), |c| c.to_string()),
        ),
        (
            "dimensions",
            e.dimensions.map_or("-".into(), |d| d.to_string()),
        ),
        ("size_bytes", e.size_bytes.to_string()),
        ("sha256", e.sha256.clone()),
    ];
    for (k, v) in rows {
        println!("{k:<16} {v}");
    }
}

fn human_params(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.1}B", n as f64 / 1e9)
    } else {
        format!("{}M", n / 1_000_000)
    }
}

pub(crate) fn run(global: &Global, cmd: Command) -> Outcome {
    let loaded = global.load(Vec::new())?;
    let models = loaded.settings.home.join("models");
    let registry = ModelRegistry::new(&models);
    match cmd {
        Command::List { json: as_json } => {
            let scan = registry.scan();
            if as_json {
                println!("{}", json!({"data": scan.models, "broken": scan.broken}));
                return Ok(ExitCode::SUCCESS);
            }
            if scan.models.is_empty() {
                println!(
                    "no models in {}; run `cargo xtask models` to install the defaults",
                    models.display()
                );
            } else {
                println!(
                    "{:<28} {:<10} {:<8} {:>7} {:<8} {:>8}",
                    "ID", "TYPE", "ARCH", "PARAMS", "QUANT", "SIZE"
                );
                for m in &scan.models {
                    println!(
                        "{:<28} {:<10} {:<8} {:>7} {:<8} {:>5} MB",
                        m.id,
                        m.kind.as_str(),
                        m.architecture,
                        human_params(m.parameters),
                        m.quantization,
                        m.size_bytes / 1_000_000
                    );
                }
            }
            for b in &scan.broken {
                eprintln!("{BIN}: skipping {}: {}", b.id, b.reason);
            }
        }
        Command::Show { id, json: as_json } => {
            let e = registry.get(&id).map_err(failure)?;
            if as_json {
                println!("{}", json!(e));
            } else {
                print_entry(&e);
            }
        }
        Command::Import {
            path,
            name,
            json: as_json,
        } => {
            let e = registry.import(&path, name.as_deref()).map_err(failure)?;
            if as_json {
                println!("{}", json!(e));
            } else {
                println!("imported {} ({} MB)", e.id, e.size_bytes / 1_000_000);
            }
        }
        Command::Remove { id } => {
            registry.remove(&id).map_err(failure)?;
            println!("removed {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
