//! Model import and removal with the real default models: what gets
//! installed, what is refused, and that a refusal leaves nothing behind.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use offgrid_inference::registry::{MANIFEST, sha256_file};
use offgrid_inference::{ChatModel, InferenceError, ModelKind, ModelRegistry};

const GGUF: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
const MINILM: &str = "all-minilm-l6-v2";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offgrid-import-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("unexpected error");
    dir
}

/// Everything under `dir`, hidden entries included.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn importing_the_default_gguf_records_what_it_is() {
    let dir = scratch("gguf");
    let reg = ModelRegistry::new(dir.join("models"));
    let src = common::installed(GGUF);
    let entry = reg.import(&src, None).expect("unexpected error");
    assert_eq!(entry.id, "smollm2-135m-instruct.q4_1");
    assert_eq!(entry.kind, ModelKind::Chat);
    assert_eq!(entry.format, "gguf");
    assert_eq!(entry.architecture, "llama");
    assert_eq!(entry.quantization, "Q4_1");
    assert_eq!(entry.context_length, Some(8192));
    assert!(
        (130_000_000..140_000_000).contains(&entry.parameters),
        "{}",
        entry.parameters
    );
    assert_eq!(
        entry.size_bytes,
        fs::metadata(&src).expect("unexpected error").len()
    );
    assert_eq!(entry.sha256, sha256_file(&src).expect("unexpected error"));

    // Listed from its manifest, and loadable from where it was put.
    let scan = reg.scan();
    assert_eq!(scan.models, vec![entry.clone()]);
    assert!(scan.broken.is_empty());
    assert!(dir.join("models").join(&entry.id).join(MANIFEST).is_file());
    ChatModel::load(&entry.id, &reg.weights_path(&entry)).expect("unexpected error");

    // A second import under the same name is refused, the first untouched.
    let again = reg.import(&src, Some(&entry.id)).expect_err("should fail");
    assert!(matches!(again, InferenceError::ModelExists(_)), "{again}");
    assert_eq!(entries(reg.dir()), vec![entry.id.clone()]);

    reg.remove(&entry.id).expect("unexpected error");
    assert!(entries(reg.dir()).is_empty());
    assert!(matches!(
        reg.get(&entry.id),
        Err(InferenceError::ModelNotFound(_))
    ));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn importing_the_embedding_folder_records_its_dimensions() {
    let dir = scratch("embedding");
    let reg = ModelRegistry::new(dir.join("models"));
    let entry = reg
        .import(&common::installed(MINILM), Some("minilm"))
        .expect("unexpected error");
    assert_eq!(entry.kind, ModelKind::Embedding);
    assert_eq!(entry.architecture, "bert");
    assert_eq!(entry.dimensions, Some(384));
    assert_eq!(entry.quantization, "F32");
    assert!((22_000_000..23_000_000).contains(&entry.parameters));
    assert_eq!(reg.get("minilm").expect("unexpected error"), entry);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_truncated_gguf_is_refused_and_nothing_is_installed() {
    let dir = scratch("truncated");
    let bytes = fs::read(common::installed(GGUF)).expect("unexpected error");
    let src = dir.join("half.gguf");
    fs::write(&src, &bytes[..bytes.len() / 2]).expect("unexpected error");
    let reg = ModelRegistry::new(dir.join("models"));
    let err = reg.import(&src, None).expect_err("should fail");
    assert!(
        matches!(err, InferenceError::InvalidGguf { .. }) && err.to_string().contains("truncated"),
        "{err}"
    );
    assert!(entries(reg.dir()).is_empty(), "{:?}", entries(reg.dir()));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_corrupt_header_is_refused() {
    let dir = scratch("corrupt");
    let mut bytes = fs::read(common::installed(GGUF)).expect("unexpected error");
    // The tensor count (u64 after magic and version) becomes absurd.
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let src = dir.join("corrupt.gguf");
    fs::write(&src, &bytes).expect("unexpected error");
    let reg = ModelRegistry::new(dir.join("models"));
    let err = reg.import(&src, None).expect_err("should fail");
    assert!(matches!(err, InferenceError::InvalidGguf { .. }), "{err}");
    assert!(entries(reg.dir()).is_empty());
    let _ = fs::remove_dir_all(dir);
}

/// A small valid GGUF file whose metadata says `architecture`.
fn tiny_gguf(path: &Path, architecture: &str) {
    let t =
        Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).expect("unexpected error");
    let q = QTensor::quantize(&t, GgmlDType::F32).expect("unexpected error");
    let arch = Value::String(architecture.into());
    let mut f = fs::File::create(path).expect("unexpected error");
    gguf_file::write(&mut f, &[("general.architecture", &arch)], &[("w", &q)])
        .expect("unexpected error");
}

#[test]
fn an_unsupported_architecture_is_refused_by_name() {
    let dir = scratch("arch");
    let src = dir.join("odd.gguf");
    tiny_gguf(&src, "mamba");
    let reg = ModelRegistry::new(dir.join("models"));
    let err = reg.import(&src, Some("odd")).expect_err("should fail");
    match &err {
        InferenceError::UnsupportedArchitecture(a) => assert_eq!(a, "mamba"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("supported are"), "{err}");
    assert!(entries(reg.dir()).is_empty());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_folder_dropped_in_by_hand_gets_a_manifest_on_first_scan() {
    let dir = scratch("byhand");
    let models = dir.join("models");
    fs::create_dir_all(models.join("hand")).expect("unexpected error");
    fs::copy(common::installed(GGUF), models.join("hand/model.gguf")).expect("unexpected error");
    fs::create_dir_all(models.join("junk")).expect("unexpected error");
    fs::write(models.join("junk/readme.txt"), "no model here").expect("unexpected error");
    let reg = ModelRegistry::new(&models);
    let scan = reg.scan();
    assert_eq!(scan.models.len(), 1);
    assert_eq!(scan.models[0].id, "hand");
    assert_eq!(scan.models[0].file, "model.gguf");
    assert!(models.join("hand").join(MANIFEST).is_file());
    assert_eq!(scan.broken.len(), 1);
    assert_eq!(scan.broken[0].id, "junk");
    let _ = fs::remove_dir_all(dir);
}
