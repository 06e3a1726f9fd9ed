//! Crafted GGUF files: every bad header is an `InvalidGguf` error, never a
//! panic, whether the file is opened, imported, found in the models folder
//! by a scan or loaded. Small files are written by hand here (so each field
//! can be set to what an attacker would put there); one test edits the real
//! SmolLM2 header in a copy.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use offgrid_inference::{ChatModel, GgufFile, InferenceError, ModelRegistry};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offgrid-gguf-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// GGUF value type ids.
const U8: u32 = 0;
const U32: u32 = 4;
const I32: u32 = 5;
const BOOL: u32 = 7;
const STRING: u32 = 8;
const ARRAY: u32 = 9;
const U64: u32 = 10;
/// GGML type ids.
const F32: u32 = 0;
const Q4_1: u32 = 3;

/// A GGUF file written field by field.
#[derive(Default)]
struct Gguf {
    bytes: Vec<u8>,
}

impl Gguf {
    /// Magic, version 3 and the two counts.
    fn header(tensors: u64, kvs: u64) -> Self {
        let mut g = Gguf::default();
        g.bytes.extend_from_slice(b"GGUF");
        g.u32(3).u64(tensors).u64(kvs);
        g
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.bytes.extend_from_slice(s.as_bytes());
        self
    }

    /// A key and its value type; the value follows.
    fn key(&mut self, key: &str, ty: u32) -> &mut Self {
        self.str(key).u32(ty)
    }

    fn arch(&mut self) -> &mut Self {
        self.key("general.architecture", STRING).str("llama")
    }

    /// A tensor info: name, dims (GGUF order, fastest first), type, offset.
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for d in dims {
            self.u64(*d);
        }
        self.u32(ty).u64(offset)
    }

    /// Pads to 32 bytes and appends `n` bytes of tensor data.
    fn data(&mut self, n: usize) -> &mut Self {
        while !self.bytes.len().is_multiple_of(32) {
            self.bytes.push(0);
        }
        self.bytes.extend(std::iter::repeat_n(0u8, n));
        self
    }

    fn write(&self, path: &Path) {
        fs::write(path, &self.bytes).expect("write gguf");
    }
}

/// A well-formed file: architecture, one 32-float tensor.
fn valid() -> Gguf {
    let mut g = Gguf::header(1, 1);
    g.arch().tensor("w", &[32], F32, 0).data(128);
    g
}

/// Opens `g` (written to `dir/name.gguf`) and returns the error, which
/// must be `InvalidGguf` (or `Io` for nothing at all).
fn refused(dir: &Path, name: &str, g: &Gguf) -> String {
    let path = dir.join(format!("{name}.gguf"));
    g.write(&path);
    match GgufFile::open(&path) {
        Ok(_) => panic!("{name}: a crafted file was accepted"),
        Err(e @ InferenceError::InvalidGguf { .. }) => e.to_string(),
        Err(other) => panic!("{name}: expected InvalidGguf, got {other}"),
    }
}

#[test]
fn a_hand_written_file_opens() {
    let dir = scratch("valid");
    let path = dir.join("ok.gguf");
    valid().write(&path);
    let file = GgufFile::open(&path).expect("valid file");
    assert_eq!(file.architecture().expect("arch"), "llama");
    assert_eq!(file.parameter_count(), 32);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn bad_alignments_are_refused_before_candle_divides_by_them() {
    let dir = scratch("align");
    for (name, ty, value) in [
        ("zero", U32, 0u64),
        ("three", U32, 3),
        ("huge", U32, 1 << 31),
        ("negative", I32, u64::from(u32::MAX)),
    ] {
        let mut g = Gguf::header(1, 2);
        g.arch().key("general.alignment", ty).u32(value as u32);
        g.tensor("w", &[32], F32, 0).data(128);
        let msg = refused(&dir, name, &g);
        assert!(msg.contains("alignment"), "{name}: {msg}");
    }
    // The spec says uint32; another type would be ignored by candle and
    // the tensors read from the wrong place.
    let mut g = Gguf::header(1, 2);
    g.arch().key("general.alignment", U64).u64(64);
    g.tensor("w", &[32], F32, 0).data(128);
    assert!(refused(&dir, "u64", &g).contains("alignment"));
    // A valid non-default alignment is honoured.
    let mut g = Gguf::header(1, 2);
    g.arch().key("general.alignment", U32).u32(64);
    g.tensor("w", &[32], F32, 0);
    while !g.bytes.len().is_multiple_of(64) {
        g.bytes.push(0);
    }
    g.data(128);
    let path = dir.join("align64.gguf");
    g.write(&path);
    let file = GgufFile::open(&path).expect("alignment 64");
    assert!(file.content().tensor_data_offset.is_multiple_of(64));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn tensor_shapes_that_overflow_or_lie_are_refused() {
    let dir = scratch("shapes");
    let cases: Vec<(&str, Vec<u64>, u32, u64)> = vec![
        // 2^32 · 2^32 elements overflows a u64 product.
        ("overflow", vec![1 << 32, 1 << 32, 2], F32, 0),
        ("near-max", vec![u64::MAX, 1], F32, 0),
        // More dimensions than ggml has.
        ("five-dims", vec![32, 1, 1, 1, 1], F32, 0),
        ("no-dims", vec![], F32, 0),
        ("zero-dim", vec![32, 0], F32, 0),
        // Not a whole number of Q4_1 blocks (32 elements each).
        ("partial-block", vec![31], Q4_1, 0),
        // Offsets outside the file, misaligned, or overflowing.
        ("past-end", vec![32], F32, 1 << 20),
        ("misaligned", vec![32], F32, 4),
        ("offset-overflow", vec![32], F32, u64::MAX - 31),
        // An unknown tensor type.
        ("bad-type", vec![32], 99, 0),
    ];
    for (name, dims, ty, offset) in cases {
        let mut g = Gguf::header(1, 1);
        g.arch().tensor("w", &dims, ty, offset).data(128);
        refused(&dir, name, &g);
    }
    // The same tensor name twice.
    let mut g = Gguf::header(2, 1);
    g.arch()
        .tensor("w", &[32], F32, 0)
        .tensor("w", &[32], F32, 128)
        .data(256);
    assert!(refused(&dir, "duplicate", &g).contains("twice"));
    // No tensors at all.
    let mut g = Gguf::header(0, 1);
    g.arch();
    refused(&dir, "empty", &g);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn lengths_and_counts_beyond_the_file_are_refused() {
    let dir = scratch("lengths");
    // Counts that cannot fit in the file.
    refused(&dir, "tensor-count", &Gguf::header(u64::MAX, 0));
    refused(&dir, "kv-count", &Gguf::header(1, u64::MAX));
    // A string longer than the file.
    let mut g = Gguf::header(1, 1);
    g.str("general.architecture").u32(STRING).u64(u64::MAX);
    refused(&dir, "string", &g);
    // A key longer than the file.
    let mut g = Gguf::header(1, 1);
    g.u64(1 << 40);
    refused(&dir, "key", &g);
    // An array longer than the file.
    let mut g = Gguf::header(1, 2);
    g.arch()
        .key("tokenizer.ggml.tokens", ARRAY)
        .u32(STRING)
        .u64(u64::MAX / 2);
    refused(&dir, "array", &g);
    // Arrays of arrays (never written by llama.cpp) are refused, so no
    // reader recurses on a crafted file.
    let mut g = Gguf::header(1, 2);
    g.arch().key("nested", ARRAY).u32(ARRAY).u64(1);
    for _ in 0..10_000 {
        g.u32(ARRAY).u64(1);
    }
    refused(&dir, "nested", &g);
    // Unknown value types, bad booleans, a key twice.
    let mut g = Gguf::header(1, 2);
    g.arch().key("x", 77).u32(0);
    refused(&dir, "value-type", &g);
    let mut g = Gguf::header(1, 2);
    g.arch().key("flag", BOOL).bytes.push(2);
    refused(&dir, "bool", &g);
    let mut g = Gguf::header(1, 3);
    g.arch().key("n", U8).bytes.push(1);
    g.key("n", U8).bytes.push(2);
    assert!(refused(&dir, "duplicate-key", &g).contains("twice"));
    // The file ends inside a tensor info.
    let mut g = Gguf::header(1, 1);
    g.arch().str("w").u32(2).u64(32);
    refused(&dir, "short", &g);
    // A version we do not know.
    let mut g = valid();
    g.bytes[4..8].copy_from_slice(&9u32.to_le_bytes());
    refused(&dir, "version", &g);
    let _ = fs::remove_dir_all(dir);
}

/// Renames the real file's `llama.block_count` (a u32 key of the same
/// length) to `general.alignment` with the value 0: the exact file that
/// made candle divide by zero.
fn smollm2_with_zero_alignment(dir: &Path) -> PathBuf {
    let mut bytes = fs::read(common::installed(
        "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
    ))
    .expect("read real model");
    let key = b"llama.block_count";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the real file has llama.block_count");
    bytes[at..at + key.len()].copy_from_slice(b"general.alignment");
    let value_type = at + key.len();
    assert_eq!(bytes[value_type..value_type + 4], U32.to_le_bytes());
    bytes[value_type + 4..value_type + 8].copy_from_slice(&0u32.to_le_bytes());
    let path = dir.join("zero-alignment.gguf");
    fs::write(&path, bytes).expect("write crafted copy");
    path
}

#[test]
fn the_real_model_with_alignment_zero_fails_everywhere_without_a_panic() {
    let dir = scratch("real");
    let crafted = smollm2_with_zero_alignment(&dir);
    let err = GgufFile::open(&crafted).expect_err("alignment 0");
    assert!(matches!(err, InferenceError::InvalidGguf { .. }), "{err}");
    assert!(ChatModel::load("x", &crafted).is_err());

    // Imported: refused, nothing installed.
    let reg = ModelRegistry::new(dir.join("models"));
    assert!(reg.import(&crafted, Some("crafted")).is_err());
    assert!(!dir.join("models/crafted").exists());

    // Dropped into the models folder by hand: the scan lists it as broken.
    fs::create_dir_all(dir.join("models/dropped")).expect("model folder");
    fs::copy(&crafted, dir.join("models/dropped/model.gguf")).expect("copy");
    let scan = reg.scan();
    assert!(scan.models.is_empty());
    assert_eq!(scan.broken.len(), 1);
    assert!(
        scan.broken[0].reason.contains("alignment"),
        "{:?}",
        scan.broken
    );
    let _ = fs::remove_dir_all(dir);
}

/// The tokenizer and decoder read sizes from the metadata: a file whose
/// header is sound but whose hyper-parameters are absurd fails to load
/// with an error.
#[test]
fn absurd_hyper_parameters_fail_to_load_without_a_panic() {
    let dir = scratch("hparams");
    let bytes = fs::read(common::installed(
        "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
    ))
    .expect("read real model");
    for (key, value) in [
        (&b"llama.block_count"[..], u32::MAX),
        (&b"llama.attention.head_count"[..], 0),
        (&b"llama.embedding_length"[..], 0),
        (&b"llama.context_length"[..], 0),
        // Sizes the RoPE table and the KV cache: once a multi-terabyte
        // allocation that aborted the process (no panic to catch).
        (&b"llama.embedding_length"[..], u32::MAX),
        (&b"llama.embedding_length"[..], 1 << 24),
        // Plausible, but not what the tensors hold.
        (&b"llama.embedding_length"[..], 1152),
        (&b"llama.attention.head_count"[..], 3),
        (&b"llama.attention.head_count_kv"[..], 1),
    ] {
        let mut bytes = bytes.clone();
        let at = bytes
            .windows(key.len())
            .position(|w| w == key)
            .expect("key present")
            + key.len();
        assert_eq!(bytes[at..at + 4], U32.to_le_bytes());
        bytes[at + 4..at + 8].copy_from_slice(&value.to_le_bytes());
        let path = dir.join("hparams.gguf");
        fs::write(&path, bytes).expect("write");
        let err = ChatModel::load("x", &path).expect_err("absurd hyper-parameters");
        assert!(
            !err.to_string().is_empty(),
            "{}",
            String::from_utf8_lossy(key)
        );
    }
    let _ = fs::remove_dir_all(dir);
}
