//! The model registry: what is installed under `$OFFGRID_HOME/models`.
//!
//! Each model is a folder named after its id. A chat model folder holds one
//! `.gguf` file; an embedding model folder holds `model.safetensors`,
//! `tokenizer.json` and `config.json`. Beside the weights sits a manifest,
//! `offgrid-model.json`, recording what the model is ([`ModelEntry`]: file,
//! format, architecture, parameter count, quantization, context length, size
//! and sha256), so listing never re-reads gigabytes. A folder put there by
//! hand (or by `cargo xtask models`) gets its manifest on the first scan.
//!
//! Import and removal are all-or-nothing: an import copies into a hidden
//! staging folder, validates the copy, and renames it into place in one
//! step; a removal renames the folder out of sight before deleting it. A
//! failed import leaves nothing behind, and a half-copied model is never
//! visible under its id.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{ChatModel, Embedder, GgufFile, InferenceError};

/// The manifest's file name inside a model folder.
pub const MANIFEST: &str = "offgrid-model.json";

/// Files an embedding model folder must hold.
const EMBEDDING_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// A GGUF causal language model (chat and completions).
    Chat,
    /// A sentence-embedding model (safetensors).
    Embedding,
}

impl ModelKind {
    /// `chat` or `embedding`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Chat => "chat",
            ModelKind::Embedding => "embedding",
        }
    }
}

/// One installed model, as recorded in its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The id clients use (the folder name).
    pub id: String,
    /// Chat or embedding.
    pub kind: ModelKind,
    /// `gguf` or `safetensors`.
    pub format: String,
    /// The weights file inside the folder.
    pub file: String,
    /// `general.architecture` for GGUF, `model_type` for embeddings.
    pub architecture: String,
    /// Number of parameters (elements of all weight tensors).
    pub parameters: u64,
    /// The dominant tensor type, e.g. `Q4_1` or `F32`.
    pub quantization: String,
    /// Longest input the model was trained for, in tokens.
    pub context_length: Option<u64>,
    /// Vector length (embedding models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u64>,
    /// Bytes on disk, all files of the folder but the manifest.
    pub size_bytes: u64,
    /// sha256 of the weights file, lowercase hex.
    pub sha256: String,
    /// Unix time the model was installed or first seen.
    pub added_at: i64,
}

/// A folder under the models directory that is not a usable model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokenModel {
    /// The folder name.
    pub id: String,
    /// Why it cannot be used.
    pub reason: String,
}

/// The result of scanning the models directory.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Usable models, sorted by id.
    pub models: Vec<ModelEntry>,
    /// Folders that are not usable models, sorted by id.
    pub broken: Vec<BrokenModel>,
}

/// The models directory. Cheap to clone; all methods block on the file
/// system (and on hashing, for imports and first scans).
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    dir: PathBuf,
}

/// Checks a model id: 1 to 64 characters from `[A-Za-z0-9._:-]`, not
/// starting with `.` (which hides staging folders), never `..`.
pub fn validate_id(id: &str) -> Result<(), InferenceError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(InferenceError::InvalidModelId(id.to_owned()))
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn not_a_model(path: &Path, reason: impl Into<String>) -> InferenceError {
    InferenceError::NotAModel {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Reads `path` to the end in 1 MiB pieces, handing each to `sink`;
/// returns the sha256 of what was read.
fn read_hashing(
    path: &Path,
    mut sink: impl FnMut(&[u8]) -> Result<(), InferenceError>,
) -> Result<String, InferenceError> {
    use sha2::{Digest, Sha256};
    let mut file = fs::File::open(path).map_err(|e| io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        sink(&buf[..n])?;
    }
    Ok(hex(&hasher.finalize()))
}

/// Copies `from` to `to` (created new), returning the sha256 of the bytes
/// copied. The copy is flushed to disk before returning.
fn copy_hashing(from: &Path, to: &Path) -> Result<String, InferenceError> {
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| io(to, e))?;
    let hash = read_hashing(from, |piece| dst.write_all(piece).map_err(|e| io(to, e)))?;
    dst.sync_all().map_err(|e| io(to, e))?;
    Ok(hash)
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, InferenceError> {
    read_hashing(path, |_| Ok(()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_gguf_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
}

/// The `.gguf` files directly inside `dir`, sorted.
fn gguf_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_gguf_name(p))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Sum of the sizes of the files in `dir`, the manifest excluded.
fn folder_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name() != MANIFEST)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Reads the first four bytes: GGUF files start with the ASCII magic `GGUF`.
fn has_gguf_magic(path: &Path) -> Result<bool, InferenceError> {
    let mut magic = [0u8; 4];
    let mut file = fs::File::open(path).map_err(|e| io(path, e))?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"GGUF"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(io(path, e)),
    }
}

/// Describes a GGUF file without loading its weights; fails unless it is a
/// chat model we can run. `sha256` is filled in by the caller.
fn inspect_gguf(path: &Path) -> Result<ModelEntry, InferenceError> {
    if !has_gguf_magic(path)? {
        return Err(not_a_model(
            path,
            "not a GGUF file (it does not start with the GGUF magic)",
        ));
    }
    let file = GgufFile::open(path)?;
    ChatModel::check(&file)?;
    Ok(ModelEntry {
        id: String::new(),
        kind: ModelKind::Chat,
        format: "gguf".into(),
        file: path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned(),
        architecture: file.architecture()?.to_owned(),
        parameters: file.parameter_count(),
        quantization: file.quantization(),
        context_length: file.context_length().map(|c| c as u64),
        dimensions: None,
        size_bytes: fs::metadata(path).map_err(|e| io(path, e))?.len(),
        sha256: String::new(),
        added_at: unix_now(),
    })
}

/// Describes an embedding model folder; `load` also loads it (the strict
/// check used on import). `sha256` is filled in by the caller.
fn inspect_embedding(dir: &Path, load: bool) -> Result<ModelEntry, InferenceError> {
    for name in EMBEDDING_FILES {
        if !dir.join(name).is_file() {
            return Err(not_a_model(
                dir,
                format!(
                    "an embedding model folder needs {}",
                    EMBEDDING_FILES.join(", ")
                ),
            ));
        }
    }
    let config_path = dir.join("config.json");
    let text = fs::read_to_string(&config_path).map_err(|e| io(&config_path, e))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| not_a_model(&config_path, format!("invalid JSON: {e}")))?;
    let architecture = config["model_type"].as_str().unwrap_or_default().to_owned();
    if architecture != "bert" {
        return Err(InferenceError::UnsupportedArchitecture(
            if architecture.is_empty() {
                "(no model_type in config.json)".into()
            } else {
                architecture
            },
        ));
    }
    let weights = dir.join("model.safetensors");
    let (parameters, quantization) = safetensors_summary(&weights)?;
    if load {
        Embedder::open(dir)?;
    }
    Ok(ModelEntry {
        id: String::new(),
        kind: ModelKind::Embedding,
        format: "safetensors".into(),
        file: "model.safetensors".into(),
        architecture,
        parameters,
        quantization,
        context_length: config["max_position_embeddings"].as_u64(),
        dimensions: config["hidden_size"].as_u64(),
        size_bytes: folder_size(dir),
        sha256: String::new(),
        added_at: unix_now(),
    })
}

/// Parameter count and dominant dtype from a safetensors header, with every
/// tensor's byte range checked against the file size.
fn safetensors_summary(path: &Path) -> Result<(u64, String), InferenceError> {
    let bad = |reason: String| not_a_model(path, reason);
    let len = fs::metadata(path).map_err(|e| io(path, e))?.len();
    let mut file = fs::File::open(path).map_err(|e| io(path, e))?;
    let mut n = [0u8; 8];
    file.read_exact(&mut n)
        .map_err(|_| bad("too short for a safetensors file".into()))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > 100 << 20 || 8 + header_len > len {
        return Err(bad("the safetensors header length is corrupt".into()));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|e| io(path, e))?;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("the safetensors header is not valid JSON: {e}")))?;
    let data_len = len - 8 - header_len;
    let mut params = 0u64;
    let mut by_dtype: BTreeMap<String, u64> = BTreeMap::new();
    for (name, t) in &header {
        if name == "__metadata__" {
            continue;
        }
        let elems = t["shape"]
            .as_array()
            .and_then(|dims| {
                dims.iter()
                    .try_fold(1u64, |n, d| d.as_u64().and_then(|d| n.checked_mul(d)))
            })
            .ok_or_else(|| bad(format!("tensor {name} has an invalid shape")))?;
        let end = t["data_offsets"][1].as_u64().unwrap_or(u64::MAX);
        if end > data_len {
            return Err(bad(format!(
                "tensor {name} ends past the end of the file (truncated or corrupt download?)"
            )));
        }
        params = params.saturating_add(elems);
        let count = by_dtype
            .entry(t["dtype"].as_str().unwrap_or("?").to_owned())
            .or_default();
        *count = count.saturating_add(elems);
    }
    if params == 0 {
        return Err(bad("it contains no tensors".into()));
    }
    let dtype = by_dtype
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(d, _)| d)
        .unwrap_or_default();
    Ok((params, dtype))
}

/// Removes a staging folder unless the import succeeded.
struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl ModelRegistry {
    /// The registry of models under `dir` (which need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModelRegistry { dir: dir.into() }
    }

    /// The models directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a model's weights: the `.gguf` file of a chat model, the
    /// folder of an embedding model.
    pub fn weights_path(&self, entry: &ModelEntry) -> PathBuf {
        match entry.kind {
            ModelKind::Chat => self.dir.join(&entry.id).join(&entry.file),
            ModelKind::Embedding => self.dir.join(&entry.id),
        }
    }

    /// Every model folder, described. A folder without an up-to-date
    /// manifest is inspected (and hashed) once and its manifest written, so
    /// later scans only read small JSON files.
    pub fn scan(&self) -> Scan {
        let mut scan = Scan::default();
        let mut dirs: Vec<(String, PathBuf)> = fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| Some((e.file_name().to_str()?.to_owned(), e.path())))
                    .filter(|(name, _)| !name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        for (id, path) in dirs {
            match self.describe(&id, &path) {
                Ok(entry) => scan.models.push(entry),
                Err(e) => scan.broken.push(BrokenModel {
                    id,
                    reason: e.to_string(),
                }),
            }
        }
        scan
    }

    /// One model by id.
    pub fn get(&self, id: &str) -> Result<ModelEntry, InferenceError> {
        validate_id(id)?;
        let path = self.dir.join(id);
        if !path.is_dir() {
            return Err(InferenceError::ModelNotFound(id.to_owned()));
        }
        self.describe(id, &path)
    }

    fn read_manifest(path: &Path) -> Option<ModelEntry> {
        let text = fs::read_to_string(path.join(MANIFEST)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_manifest(dir: &Path, entry: &ModelEntry) -> Result<(), InferenceError> {
        let text = serde_json::to_string_pretty(entry)
            .map_err(|e| InferenceError::Metadata(e.to_string()))?;
        let tmp = dir.join(format!(".{MANIFEST}.{}", unique_suffix()));
        fs::write(&tmp, text).map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, dir.join(MANIFEST)).map_err(|e| io(dir, e))
    }

    /// The manifest if it still matches the folder, else a fresh inspection
    /// (whose manifest is written when the folder is writable).
    fn describe(&self, id: &str, path: &Path) -> Result<ModelEntry, InferenceError> {
        if let Some(m) = Self::read_manifest(path)
            && m.id == id
            && folder_size(path) == m.size_bytes
            && path.join(&m.file).is_file()
        {
            return Ok(m);
        }
        let mut entry = if let Some(gguf) = gguf_files(path).into_iter().next() {
            inspect_gguf(&gguf)?
        } else if path.join("model.safetensors").is_file() {
            inspect_embedding(path, false)?
        } else {
            return Err(not_a_model(
                path,
                "no .gguf file and no model.safetensors inside",
            ));
        };
        entry.id = id.to_owned();
        entry.size_bytes = folder_size(path);
        entry.sha256 = sha256_file(&path.join(&entry.file))?;
        // A read-only models directory still lists; the hash is recomputed
        // next time.
        let _ = Self::write_manifest(path, &entry);
        Ok(entry)
    }

    /// Imports a local `.gguf` file or an embedding model folder under `id`
    /// (default: the file or folder name, lowercased, without `.gguf`).
    ///
    /// The source is validated first (GGUF magic, header and tensor bounds,
    /// a supported architecture, a tokenizer and chat template that build;
    /// for a folder, the three files, a BERT config and a model that
    /// loads), then copied into a staging folder while hashing, the copy
    /// checked again, and the staging folder renamed into place. On any
    /// failure nothing is left behind.
    pub fn import(&self, source: &Path, id: Option<&str>) -> Result<ModelEntry, InferenceError> {
        let id = match id {
            Some(id) => id.to_owned(),
            None => default_id(source)?,
        };
        validate_id(&id)?;
        let target = self.dir.join(&id);
        if target.exists() {
            return Err(InferenceError::ModelExists(id));
        }
        let meta = fs::metadata(source).map_err(|e| io(source, e))?;
        let mut entry = if meta.is_dir() {
            inspect_embedding(source, true)?
        } else {
            inspect_gguf(source)?
        };
        fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let mut staging = Staging {
            path: self.dir.join(format!(".import-{id}-{}", unique_suffix())),
            keep: false,
        };
        fs::create_dir(&staging.path).map_err(|e| io(&staging.path, e))?;
        let staged = staging.path.clone();
        if meta.is_dir() {
            for name in EMBEDDING_FILES {
                let hash = copy_hashing(&source.join(name), &staged.join(name))?;
                if name == entry.file {
                    entry.sha256 = hash;
                }
            }
            // The copy must describe the same model as the source did.
            let copy = inspect_embedding(&staged, false)?;
            if copy.parameters != entry.parameters {
                return Err(not_a_model(source, "the files changed while being copied"));
            }
        } else {
            entry.sha256 = copy_hashing(source, &staged.join(&entry.file))?;
            let copy = inspect_gguf(&staged.join(&entry.file))?;
            if copy.size_bytes != entry.size_bytes {
                return Err(not_a_model(source, "the file changed while being copied"));
            }
        }
        entry.id.clone_from(&id);
        entry.size_bytes = folder_size(&staged);
        entry.added_at = unix_now();
        Self::write_manifest(&staged, &entry)?;
        // rename(2) onto an existing non-empty folder fails, so two imports
        // racing for one id cannot both win.
        if target.exists() {
            return Err(InferenceError::ModelExists(id));
        }
        fs::rename(&staged, &target).map_err(|e| {
            if target.exists() {
                InferenceError::ModelExists(id.clone())
            } else {
                io(&target, e)
            }
        })?;
        staging.keep = true;
        Ok(entry)
    }

    /// Removes a model's folder. It disappears from listings at once (it is
    /// renamed away first), then its files are deleted.
    pub fn remove(&self, id: &str) -> Result<(), InferenceError> {
        validate_id(id)?;
        let path = self.dir.join(id);
        if !path.is_dir() {
            return Err(InferenceError::ModelNotFound(id.to_owned()));
        }
        let trash = self.dir.join(format!(".removing-{id}-{}", unique_suffix()));
        fs::rename(&path, &trash).map_err(|e| io(&path, e))?;
        fs::remove_dir_all(&trash).map_err(|e| io(&trash, e))
    }

    /// Deletes staging and removal folders a crashed process left behind.
    /// Call at start-up, before anything imports.
    pub fn clean_leftovers(&self) {
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.filter_map(Result::ok) {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".import-") || name.starts_with(".removing-") {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// The id an import gets without `--name`: the file name without `.gguf`
/// (or the folder name), lowercased.
pub fn default_id(source: &Path) -> Result<String, InferenceError> {
    let name = if is_gguf_name(source) {
        source.file_stem()
    } else {
        source.file_name()
    };
    let id = name
        .and_then(|n| n.to_str())
        .map(str::to_lowercase)
        .ok_or_else(|| InferenceError::InvalidModelId(source.display().to_string()))?;
    validate_id(&id)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_the_folder_are_refused() {
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a b", "é", "x\0",
        ] {
            assert!(
                matches!(validate_id(bad), Err(InferenceError::InvalidModelId(_))),
                "{bad:?}"
            );
        }
        assert!(validate_id(&"a".repeat(65)).is_err());
        for good in ["smollm2", "llama3.2:1b-q4_k_m", "A-b_c.d", &"a".repeat(64)] {
            assert!(validate_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn default_id_is_the_lowercased_stem() {
        assert_eq!(
            default_id(Path::new("/x/SmolLM2-135M-Instruct.Q4_1.gguf")).expect("unexpected error"),
            "smollm2-135m-instruct.q4_1"
        );
        assert_eq!(
            default_id(Path::new("/x/MiniLM")).expect("unexpected error"),
            "minilm"
        );
        assert!(default_id(Path::new("/x/bad name.gguf")).is_err());
    }

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("offgrid-registry-{}", unique_suffix()));
        fs::create_dir_all(&dir).expect("unexpected error");
        dir
    }

    #[test]
    fn a_non_gguf_file_is_refused_and_nothing_is_left_behind() {
        let dir = tmp();
        let src = dir.join("notes.gguf");
        fs::write(&src, "hello, this is not a model").expect("unexpected error");
        let reg = ModelRegistry::new(dir.join("models"));
        let err = reg.import(&src, None).expect_err("should fail");
        assert!(err.to_string().contains("not a GGUF file"), "{err}");
        assert!(
            fs::read_dir(reg.dir()).map_or(0, |rd| rd.count()) == 0,
            "the models folder must stay empty"
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_folder_without_the_embedding_files_is_refused() {
        let dir = tmp();
        fs::create_dir_all(dir.join("src")).expect("unexpected error");
        fs::write(dir.join("src/config.json"), "{}").expect("unexpected error");
        let reg = ModelRegistry::new(dir.join("models"));
        let err = reg
            .import(&dir.join("src"), Some("emb"))
            .expect_err("should fail");
        assert!(err.to_string().contains("model.safetensors"), "{err}");
        assert!(!dir.join("models/emb").exists());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn removing_an_unknown_model_is_not_found() {
        let dir = tmp();
        let reg = ModelRegistry::new(&dir);
        assert!(matches!(
            reg.remove("nope"),
            Err(InferenceError::ModelNotFound(_))
        ));
        assert!(matches!(
            reg.remove("../etc"),
            Err(InferenceError::InvalidModelId(_))
        ));
        let _ = fs::remove_dir_all(dir);
    }
}
