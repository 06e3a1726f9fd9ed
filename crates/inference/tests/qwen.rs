//! qwen2 and qwen3 GGUFs: no such model can be downloaded here, so these
//! tests write small ones with random weights (Q4_1 matrices, as in the
//! default model) and check our decoder against candle-transformers'
//! reference implementations of the same architectures on the same file,
//! for a prefill and for token-by-token decoding.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_qwen2, quantized_qwen3};
use offgrid_inference::{CausalLm, GgufFile, LlamaModel};

const VOCAB: usize = 96;
const DIM: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 16;
const FF: usize = 128;
const LAYERS: usize = 2;

/// Deterministic values in [-scale, scale).
fn noise(seed: u64, shape: (usize, usize), scale: f32) -> Tensor {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor::from_vec(data, shape, &Device::Cpu).expect("tensor")
}

fn q(t: &Tensor, dtype: GgmlDType) -> QTensor {
    QTensor::quantize(t, dtype).expect("quantize")
}

/// Writes a two-layer model of `arch` with random weights.
fn write_model(path: &Path, arch: &str) {
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut seed = 1u64;
    let mut next = |shape: (usize, usize), scale: f32| {
        seed += 1;
        noise(seed, shape, scale)
    };
    let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).expect("ones");
    tensors.push((
        "token_embd.weight".into(),
        q(&next((VOCAB, DIM), 1.0), GgmlDType::Q4_1),
    ));
    tensors.push(("output_norm.weight".into(), q(&ones(DIM), GgmlDType::F32)));
    for l in 0..LAYERS {
        let p = format!("blk.{l}");
        let mut w = |name: &str, rows: usize, cols: usize| {
            let t = q(&next((rows, cols), 0.2), GgmlDType::Q4_1);
            tensors.push((format!("{p}.{name}.weight"), t));
        };
        w("attn_q", HEADS * HEAD_DIM, DIM);
        w("attn_k", KV_HEADS * HEAD_DIM, DIM);
        w("attn_v", KV_HEADS * HEAD_DIM, DIM);
        w("attn_output", DIM, HEADS * HEAD_DIM);
        w("ffn_gate", FF, DIM);
        w("ffn_up", FF, DIM);
        w("ffn_down", DIM, FF);
        tensors.push((
            format!("{p}.attn_norm.weight"),
            q(&ones(DIM), GgmlDType::F32),
        ));
        tensors.push((
            format!("{p}.ffn_norm.weight"),
            q(&ones(DIM), GgmlDType::F32),
        ));
        if arch == "qwen2" {
            for (name, n) in [
                ("attn_q", HEADS),
                ("attn_k", KV_HEADS),
                ("attn_v", KV_HEADS),
            ] {
                let b = next((1, n * HEAD_DIM), 0.5).flatten_all().expect("bias");
                tensors.push((format!("{p}.{name}.bias"), q(&b, GgmlDType::F32)));
            }
        }
        if arch == "qwen3" {
            for name in ["attn_q_norm", "attn_k_norm"] {
                let n = (next((1, HEAD_DIM), 0.3) + 1.0)
                    .and_then(|t| t.flatten_all())
                    .expect("norm");
                tensors.push((format!("{p}.{name}.weight"), q(&n, GgmlDType::F32)));
            }
        }
    }
    let u32v = |v: usize| Value::U32(v as u32);
    let metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        (format!("{arch}.attention.head_count"), u32v(HEADS)),
        (format!("{arch}.attention.head_count_kv"), u32v(KV_HEADS)),
        (format!("{arch}.attention.key_length"), u32v(HEAD_DIM)),
        (format!("{arch}.attention.value_length"), u32v(HEAD_DIM)),
        (format!("{arch}.block_count"), u32v(LAYERS)),
        (format!("{arch}.embedding_length"), u32v(DIM)),
        (format!("{arch}.feed_forward_length"), u32v(FF)),
        (format!("{arch}.context_length"), u32v(256)),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(1e-6),
        ),
        (format!("{arch}.rope.freq_base"), Value::F32(1_000_000.0)),
    ];
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = File::create(path).expect("create gguf");
    gguf_file::write(&mut f, &md, &ts).expect("write gguf");
}

fn scratch(arch: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offgrid-{arch}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join(format!("{arch}.gguf"))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The reference model's next-token logits.
trait Reference {
    fn logits(&mut self, tokens: &[u32], pos: usize) -> Vec<f32>;
}

/// Runs a reference forward pass on `tokens` and flattens its logits.
fn reference_logits(
    tokens: &[u32],
    forward: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
) -> Vec<f32> {
    Tensor::new(tokens, &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .and_then(|x| forward(&x))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .expect("reference forward")
}

impl Reference for quantized_qwen2::ModelWeights {
    fn logits(&mut self, tokens: &[u32], pos: usize) -> Vec<f32> {
        reference_logits(tokens, |x| self.forward(x, pos))
    }
}

impl Reference for quantized_qwen3::ModelWeights {
    fn logits(&mut self, tokens: &[u32], pos: usize) -> Vec<f32> {
        reference_logits(tokens, |x| self.forward(x, pos))
    }
}

fn compare(path: &Path, reference: &mut dyn Reference) {
    let mut ours = LlamaModel::open(path).expect("our decoder loads it");
    let prompt = [3u32, 17, 42, 5, 77, 8, 60];
    let a = ours.forward(&prompt, 0).expect("our prefill");
    let b = reference.logits(&prompt, 0);
    assert_eq!(a.len(), VOCAB);
    let c = cosine(&a, &b);
    assert!(c > 0.99, "prefill logits cosine {c}");
    for (i, t) in [11u32, 29, 90].iter().enumerate() {
        let pos = prompt.len() + i;
        let a = ours.forward(&[*t], pos).expect("our step");
        let b = reference.logits(&[*t], pos);
        let c = cosine(&a, &b);
        assert!(c > 0.99, "step {i} logits cosine {c}");
    }
}

#[test]
fn qwen2_matches_candles_reference() {
    let path = scratch("qwen2");
    write_model(&path, "qwen2");
    let file = GgufFile::open(&path).expect("valid gguf");
    assert_eq!(file.architecture().expect("arch"), "qwen2");
    let mut reader = BufReader::new(File::open(&path).expect("open"));
    let mut reference =
        quantized_qwen2::ModelWeights::from_gguf(file.into_content(), &mut reader, &Device::Cpu)
            .expect("candle's qwen2");
    compare(&path, &mut reference);
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn qwen3_matches_candles_reference() {
    let path = scratch("qwen3");
    write_model(&path, "qwen3");
    let file = GgufFile::open(&path).expect("valid gguf");
    let mut reader = BufReader::new(File::open(&path).expect("open"));
    let mut reference =
        quantized_qwen3::ModelWeights::from_gguf(file.into_content(), &mut reader, &Device::Cpu)
            .expect("candle's qwen3");
    compare(&path, &mut reference);
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}
