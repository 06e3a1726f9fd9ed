//! `offgrid models list|show`: what is installed under
//! `$OFFGRID_HOME/models`, read from the files themselves.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use offgrid_inference::GgufFile;
use serde_json::{Value, json};

use crate::ModelsCommand;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// One model's description; `with_hash` adds the sha256 of its files.
fn describe(dir: &Path, with_hash: bool) -> Option<Value> {
    let id = dir.file_name()?.to_str()?.to_owned();
    let files = files(dir);
    let size: u64 = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let hashes = || -> Value {
        files
            .iter()
            .map(|f| {
                let name = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("?")
                    .to_owned();
                (
                    name,
                    json!(sha256(f).unwrap_or_else(|e| format!("unreadable: {e}"))),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let gguf = files.iter().find(|f| {
        f.extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
    });
    let mut v = if let Some(path) = gguf {
        match GgufFile::open(path) {
            Ok(g) => json!({
                "id": id, "kind": "chat", "format": "gguf",
                "file": path.file_name().and_then(|n| n.to_str()),
                "architecture": g.architecture().ok(),
                "parameters": g.parameter_count(),
                "quantization": g.quantization(),
                "context_length": g.context_length(),
                "size_bytes": size,
            }),
            Err(e) => {
                json!({"id": id, "kind": "chat", "format": "gguf", "error": e.to_string(), "size_bytes": size})
            }
        }
    } else if dir.join("model.safetensors").exists() {
        let config: Value = std::fs::read_to_string(dir.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        json!({
            "id": id, "kind": "embedding", "format": "safetensors",
            "architecture": config["model_type"], "dimensions": config["hidden_size"],
            "context_length": config["max_position_embeddings"], "size_bytes": size,
        })
    } else {
        return None;
    };
    if with_hash {
        v["sha256"] = hashes();
    }
    Some(v)
}

fn sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn installed(models: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(models)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

pub(crate) fn run(models: &Path, cmd: ModelsCommand) -> ExitCode {
    match cmd {
        ModelsCommand::List { json: as_json } => {
            let list: Vec<Value> = installed(models)
                .iter()
                .filter_map(|d| describe(d, false))
                .collect();
            if as_json {
                println!("{}", json!({"data": list}));
            } else if list.is_empty() {
                println!(
                    "no models in {}; run `cargo xtask models` to install the defaults",
                    models.display()
                );
            } else {
                println!(
                    "{:<28} {:<10} {:<8} {:<8} {:>10}",
                    "ID", "KIND", "ARCH", "QUANT", "SIZE"
                );
                for m in &list {
                    println!(
                        "{:<28} {:<10} {:<8} {:<8} {:>7} MB",
                        m["id"].as_str().unwrap_or("?"),
                        m["kind"].as_str().unwrap_or("?"),
                        m["architecture"].as_str().unwrap_or("-"),
                        m["quantization"].as_str().unwrap_or("-"),
                        m["size_bytes"].as_u64().unwrap_or(0) / 1_000_000
                    );
                }
            }
            ExitCode::SUCCESS
        }
        ModelsCommand::Show { id, json: as_json } => {
            if id.contains(['/', '\\']) || id.starts_with('.') {
                eprintln!("offgrid: invalid model id {id:?}");
                return ExitCode::from(2);
            }
            match describe(&models.join(&id), true) {
                Some(v) if as_json => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Some(v) => {
                    if let Some(map) = v.as_object() {
                        for (k, val) in map {
                            println!("{k:<16} {val}");
                        }
                    }
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("offgrid: no model {id:?} in {}", models.display());
                    ExitCode::from(1)
                }
            }
        }
    }
}
