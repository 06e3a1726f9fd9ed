//! `offgrid models list|show|import|remove`: the model registry under
//! `$OFFGRID_HOME/models`. A running server notices the change within a
//! few seconds.

use std::path::Path;
use std::process::ExitCode;

use offgrid_inference::{InferenceError, ModelEntry, ModelRegistry};
use serde_json::json;

use crate::ModelsCommand;

fn fail(e: &InferenceError) -> ExitCode {
    eprintln!("offgrid: {e}");
    match e {
        InferenceError::ModelNotFound(_) => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
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

pub(crate) fn run(models: &Path, cmd: ModelsCommand) -> ExitCode {
    let registry = ModelRegistry::new(models);
    match cmd {
        ModelsCommand::List { json: as_json } => {
            let scan = registry.scan();
            if as_json {
                println!("{}", json!({"data": scan.models, "broken": scan.broken}));
                return ExitCode::SUCCESS;
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
                eprintln!("offgrid: skipping {}: {}", b.id, b.reason);
            }
            ExitCode::SUCCESS
        }
        ModelsCommand::Show { id, json: as_json } => match registry.get(&id) {
            Ok(e) if as_json => {
                println!("{}", json!(e));
                ExitCode::SUCCESS
            }
            Ok(e) => {
                print_entry(&e);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        ModelsCommand::Import {
            path,
            name,
            json: as_json,
        } => match registry.import(&path, name.as_deref()) {
            Ok(e) if as_json => {
                println!("{}", json!(e));
                ExitCode::SUCCESS
            }
            Ok(e) => {
                println!("imported {} ({} MB)", e.id, e.size_bytes / 1_000_000);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        ModelsCommand::Remove { id } => match registry.remove(&id) {
            Ok(()) => {
                println!("removed {id}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}
