//! Our decoder for GGUF llama-family, qwen2 and qwen3 models.
//!
//! The layer structure follows candle-transformers' `quantized_llama`,
//! `quantized_qwen2` and `quantized_qwen3` (MIT OR Apache-2.0), folded into
//! one implementation: qwen2 adds biases to the q/k/v projections, qwen3
//! normalises q and k per head, and both rotate pairs NEOX-style. What is
//! ours:
//!
//! - Q4_1 and Q8_0 weights go through [`crate::quant`] (SIMD, one thread
//!   pool) instead of candle's scalar Q4_1 path and its own Q8_0 pool;
//!   other types use candle's `QMatMul`.
//! - The token-embedding table stays quantized and rows are expanded on
//!   lookup, instead of a dequantized f32 copy (113 MB for SmolLM2, whose
//!   output layer shares the table).
//! - Llama 3.1+'s RoPE frequency factors (`rope_freqs.weight`) are
//!   applied, as llama.cpp does.
//! - The KV cache grows in place in steps of [`KV_STEP`] positions (candle
//!   concatenates the whole cache at every token).
//!
//! Weights are shared between forks; each fork owns its KV cache.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::kv_cache::KvCache;

use crate::quant::{QuantMatMul, QuantMatrix};

/// Longest context we precompute rotary tables for.
pub const MAX_CONTEXT: usize = 16_384;
/// KV cache growth step, in positions.
pub const KV_STEP: usize = 256;

/// The architectures this decoder runs.
pub const ARCHITECTURES: [&str; 3] = ["llama", "qwen2", "qwen3"];

/// A linear layer (no bias): ours for Q4_1 and Q8_0, candle's otherwise.
#[derive(Debug, Clone)]
enum Linear {
    Ours(QuantMatMul),
    Candle(QMatMul),
}

/// Our matrix for the types we have kernels for.
fn ours(t: &QTensor) -> Result<Option<QuantMatrix>> {
    let (rows, cols) = t.shape().dims2()?;
    let m = match t.dtype() {
        GgmlDType::Q4_1 => QuantMatrix::from_q4_1(rows, cols, &t.data()?),
        GgmlDType::Q8_0 => QuantMatrix::from_q8_0(rows, cols, &t.data()?),
        _ => return Ok(None),
    };
    m.map(Some)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))
}

impl Linear {
    fn new(t: QTensor) -> Result<Self> {
        Self::shared(Arc::new(t))
    }

    fn shared(t: Arc<QTensor>) -> Result<Self> {
        match ours(&t)? {
            Some(m) => Ok(Linear::Ours(QuantMatMul(Arc::new(m)))),
            None => Ok(Linear::Candle(QMatMul::from_arc(t)?)),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Ours(op) => x.contiguous()?.apply_op1_no_bwd(op),
            Linear::Candle(m) => m.forward(x),
        }
    }
}

/// The token-embedding table, kept quantized: rows are expanded on lookup
/// (a dequantized copy of SmolLM2's table would take 113 MB).
#[derive(Debug, Clone)]
enum Embeddings {
    /// A table in one of our types (shared with a tied output layer).
    Ours(Arc<QuantMatrix>),
    /// Any other type, through candle's quantized lookup.
    Quantized(Arc<QTensor>),
}

impl Embeddings {
    fn lookup(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        match self {
            Embeddings::Ours(m) => {
                let dim = m.cols();
                let mut out = vec![0f32; ids.len() * dim];
                for (id, row) in ids.iter().zip(out.chunks_exact_mut(dim)) {
                    let id = *id as usize;
                    if id >= m.rows() {
                        candle_core::bail!("token id {id} is outside the vocabulary");
                    }
                    m.dequantize_row(id, row);
                }
                Tensor::from_vec(out, (1, ids.len(), dim), device)
            }
            Embeddings::Quantized(table) => {
                let rows = table.shape().dims2()?.0;
                if let Some(bad) = ids.iter().find(|id| **id as usize >= rows) {
                    candle_core::bail!("token id {bad} is outside the vocabulary");
                }
                table.embedding(&Tensor::new(ids, device)?)?.unsqueeze(0)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Layer {
    attn_norm: Tensor,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    /// qwen2's projection biases.
    bias: Option<[Tensor; 3]>,
    /// qwen3's per-head q and k norms.
    qk_norm: Option<[Tensor; 2]>,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// Hyper-parameters from the GGUF metadata.
#[derive(Debug, Clone)]
struct Config {
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    eps: f64,
    neox: bool,
    context_length: usize,
}

/// The shared, read-only part of a loaded model.
#[derive(Debug)]
struct Weights {
    config: Config,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    norm: Tensor,
    output: Linear,
    cos: Tensor,
    sin: Tensor,
    neg_inf: Tensor,
}

/// A loaded decoder with its own KV cache. [`Transformer::fork`] gives
/// another sequence on the same weights.
#[derive(Debug)]
pub struct Transformer {
    weights: Arc<Weights>,
    cache: Vec<KvCache>,
    masks: HashMap<(usize, usize), Tensor>,
    device: Device,
}

fn meta<'a>(ct: &'a Content, key: &str) -> Result<&'a candle_core::quantized::gguf_file::Value> {
    ct.metadata
        .get(key)
        .ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata {key} is missing")))
}

fn meta_usize(ct: &Content, key: &str) -> Result<usize> {
    let v = meta(ct, key)?;
    let n = v
        .to_u32()
        .map(u64::from)
        .or_else(|_| v.to_u64())
        .map_err(|_| candle_core::Error::Msg(format!("GGUF metadata {key} is not an integer")))?;
    usize::try_from(n).map_err(|_| candle_core::Error::Msg(format!("{key} is too large")))
}

/// Rotary tables `(len, head_dim / 2)`. `factors` (Llama 3.1+'s
/// `rope_freqs.weight`) divide the frequencies, as llama.cpp applies them.
fn rope_tables(
    head_dim: usize,
    base: f32,
    len: usize,
    factors: Option<&[f32]>,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..head_dim)
        .step_by(2)
        .enumerate()
        .map(|(k, i)| {
            let f = factors.and_then(|f| f.get(k)).copied().unwrap_or(1.0);
            1f32 / base.powf(i as f32 / head_dim as f32) / f
        })
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let positions = Tensor::arange(0, len as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((len, 1))?;
    let angles = positions.matmul(&theta.reshape((1, theta.elem_count()))?)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// The largest attention head size we load (llama.cpp's models use 64 to
/// 256).
const MAX_HEAD_DIM: usize = 1024;
/// The most attention heads we load.
const MAX_HEADS: usize = 1024;

/// Checks the metadata's sizes against the tensors' shapes: the embedding
/// table's rows are `n_embd` wide, and the first block's query, key and
/// value projections map `n_embd` to `q_width`, `kv_width` and `kv_width`.
fn check_shapes(ct: &Content, n_embd: usize, q_width: usize, kv_width: usize) -> Result<()> {
    let dims = |name: &str| -> Result<Vec<usize>> {
        match ct.tensor_infos.get(name) {
            Some(info) => Ok(info.shape.dims().to_vec()),
            None => candle_core::bail!("missing tensor {name}"),
        }
    };
    let embd = dims("token_embd.weight")?;
    if embd.len() != 2 || embd[1] != n_embd {
        candle_core::bail!("token_embd.weight {embd:?} does not match embedding length {n_embd}");
    }
    for (name, width) in [
        ("blk.0.attn_q.weight", q_width),
        ("blk.0.attn_k.weight", kv_width),
        ("blk.0.attn_v.weight", kv_width),
    ] {
        let d = dims(name)?;
        if d != [width, n_embd] {
            candle_core::bail!(
                "{name} {d:?} does not match the attention sizes [{width}, {n_embd}] from the metadata"
            );
        }
    }
    Ok(())
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32)
}

impl Transformer {
    /// Loads the weights of an opened GGUF file (architecture `llama`,
    /// `qwen2` or `qwen3`; the caller has checked which).
    pub fn from_gguf<R: Read + Seek>(ct: Content, reader: &mut R, device: &Device) -> Result<Self> {
        let arch = meta(&ct, "general.architecture")?.to_string()?.clone();
        let key = |k: &str| format!("{arch}.{k}");
        let n_head = meta_usize(&ct, &key("attention.head_count"))?;
        let n_kv_head = meta_usize(&ct, &key("attention.head_count_kv"))?;
        let n_layer = meta_usize(&ct, &key("block_count"))?;
        let n_embd = meta_usize(&ct, &key("embedding_length"))?;
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 {
            candle_core::bail!("invalid head counts {n_head}/{n_kv_head}");
        }
        // Each layer has several tensors: a block count above the tensor
        // count is a lie (and would size allocations from the file).
        if n_layer == 0 || n_layer > ct.tensor_infos.len() {
            candle_core::bail!("invalid block count {n_layer}");
        }
        let head_dim = meta_usize(&ct, &key("attention.key_length")).unwrap_or(n_embd / n_head);
        if head_dim == 0
            || head_dim > MAX_HEAD_DIM
            || !head_dim.is_multiple_of(2)
            || n_head > MAX_HEADS
        {
            candle_core::bail!("invalid head size {head_dim} (embedding length {n_embd})");
        }
        // Sizes from the metadata allocate tables (RoPE, KV cache) before any
        // weight is read: they must agree with the tensors the file holds.
        check_shapes(&ct, n_embd, n_head * head_dim, n_kv_head * head_dim)?;
        let eps = f64::from(meta(&ct, &key("attention.layer_norm_rms_epsilon"))?.to_f32()?);
        if !(eps.is_finite() && eps > 0.0) {
            candle_core::bail!("invalid layer_norm_rms_epsilon {eps}");
        }
        let base = meta(&ct, &key("rope.freq_base"))
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        if !(base.is_finite() && base > 0.0) {
            candle_core::bail!("invalid rope.freq_base {base}");
        }
        let context_length = meta_usize(&ct, &key("context_length"))
            .unwrap_or(4096)
            .min(MAX_CONTEXT);
        if context_length == 0 {
            candle_core::bail!("invalid context length 0");
        }
        let config = Config {
            n_head,
            n_kv_head,
            head_dim,
            eps,
            // llama.cpp's rope types: qwen rotates halves, llama adjacent pairs.
            neox: arch != "llama",
            context_length,
        };

        let mut tensor = |name: &str| ct.tensor(reader, name, device);
        let factors = match tensor("rope_freqs.weight") {
            Ok(t) => Some(t.dequantize(device)?.flatten_all()?.to_vec1::<f32>()?),
            Err(_) => None,
        };
        let (cos, sin) = rope_tables(head_dim, base, context_length, factors.as_deref(), device)?;
        let embd = Arc::new(tensor("token_embd.weight")?);
        let (output, tied) = match tensor("output.weight") {
            Ok(t) => (Linear::new(t)?, false),
            // Tied: the output layer is the embedding table.
            Err(_) => (Linear::shared(embd.clone())?, true),
        };
        let embeddings = match &output {
            // Tied and converted: share our copy, drop candle's.
            Linear::Ours(op) if tied => Embeddings::Ours(op.0.clone()),
            _ => match ours(&embd)? {
                Some(m) => Embeddings::Ours(Arc::new(m)),
                None => Embeddings::Quantized(embd),
            },
        };
        let norm = tensor("output_norm.weight")?.dequantize(device)?;
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let p = format!("blk.{i}");
            let mut t = |n: &str| tensor(&format!("{p}.{n}"));
            let bias = if arch == "qwen2" {
                Some([
                    t("attn_q.bias")?.dequantize(device)?,
                    t("attn_k.bias")?.dequantize(device)?,
                    t("attn_v.bias")?.dequantize(device)?,
                ])
            } else {
                None
            };
            let qk_norm = if arch == "qwen3" {
                Some([
                    t("attn_q_norm.weight")?.dequantize(device)?,
                    t("attn_k_norm.weight")?.dequantize(device)?,
                ])
            } else {
                None
            };
            layers.push(Layer {
                attn_norm: t("attn_norm.weight")?.dequantize(device)?,
                wq: Linear::new(t("attn_q.weight")?)?,
                wk: Linear::new(t("attn_k.weight")?)?,
                wv: Linear::new(t("attn_v.weight")?)?,
                wo: Linear::new(t("attn_output.weight")?)?,
                bias,
                qk_norm,
                ffn_norm: t("ffn_norm.weight")?.dequantize(device)?,
                gate: Linear::new(t("ffn_gate.weight")?)?,
                up: Linear::new(t("ffn_up.weight")?)?,
                down: Linear::new(t("ffn_down.weight")?)?,
            });
        }
        let weights = Weights {
            config,
            embeddings,
            layers,
            norm,
            output,
            cos,
            sin,
            neg_inf: Tensor::new(f32::NEG_INFINITY, device)?,
        };
        Ok(Transformer {
            cache: Self::empty_cache(n_layer),
            weights: Arc::new(weights),
            masks: HashMap::new(),
            device: device.clone(),
        })
    }

    fn empty_cache(n_layer: usize) -> Vec<KvCache> {
        (0..n_layer).map(|_| KvCache::new(2, KV_STEP)).collect()
    }

    /// Another sequence on the same weights, with an empty cache.
    pub fn fork(&self) -> Self {
        Transformer {
            weights: self.weights.clone(),
            cache: Self::empty_cache(self.weights.layers.len()),
            masks: HashMap::new(),
            device: self.device.clone(),
        }
    }

    /// Longest sequence the model runs.
    pub fn context_length(&self) -> usize {
        self.weights.config.context_length
    }

    /// Forgets the KV cache.
    pub fn clear_kv_cache(&mut self) {
        for c in &mut self.cache {
            c.reset();
        }
    }

    /// Positions already in the cache.
    pub fn cached(&self) -> usize {
        self.cache.first().map_or(0, KvCache::current_seq_len)
    }

    fn mask(&mut self, len: usize, pos: usize) -> Result<Tensor> {
        if let Some(m) = self.masks.get(&(len, pos)) {
            return Ok(m.clone());
        }
        let m = candle_transformers::utils::build_causal_mask(len, pos, &self.device)?;
        self.masks.insert((len, pos), m.clone());
        Ok(m)
    }

    /// Feeds `tokens` at positions `pos..` (`pos` must equal the cached
    /// length, or 0 to start over) and returns the next-token logits
    /// `(vocab,)`.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        if pos == 0 {
            self.clear_kv_cache();
        } else if pos != self.cached() {
            candle_core::bail!(
                "position {pos} does not follow the {} cached positions",
                self.cached()
            );
        }
        let len = tokens.len();
        let mask = if len > 1 {
            Some(self.mask(len, pos)?)
        } else {
            None
        };
        let w = self.weights.clone();
        let c = &w.config;
        let mut x = w.embeddings.lookup(tokens, &self.device)?;
        let cos = w.cos.narrow(0, pos, len)?;
        let sin = w.sin.narrow(0, pos, len)?;
        for (layer, cache) in w.layers.iter().zip(self.cache.iter_mut()) {
            let h = rms_norm(&x, &layer.attn_norm, c.eps)?;
            let (mut q, mut k, mut v) = (
                layer.wq.forward(&h)?,
                layer.wk.forward(&h)?,
                layer.wv.forward(&h)?,
            );
            if let Some([bq, bk, bv]) = &layer.bias {
                q = q.broadcast_add(bq)?;
                k = k.broadcast_add(bk)?;
                v = v.broadcast_add(bv)?;
            }
            let q = q.reshape((1, len, c.n_head, c.head_dim))?.transpose(1, 2)?;
            let k = k
                .reshape((1, len, c.n_kv_head, c.head_dim))?
                .transpose(1, 2)?;
            let v = v
                .reshape((1, len, c.n_kv_head, c.head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let (q, k) = match &layer.qk_norm {
                Some([qn, kn]) => (rms_norm(&q, qn, c.eps)?, rms_norm(&k, kn, c.eps)?),
                None => (q.contiguous()?, k.contiguous()?),
            };
            let rope = if c.neox {
                candle_nn::rotary_emb::rope
            } else {
                candle_nn::rotary_emb::rope_i
            };
            let q = rope(&q, &cos, &sin)?;
            let k = rope(&k, &cos, &sin)?;
            let (k, v) = cache.append(&k, &v)?;
            if len == 1 {
                let y = decode_attention(&q, &k, &v, c)?;
                x = (x + layer.wo.forward(&y)?)?;
                let h = rms_norm(&x, &layer.ffn_norm, c.eps)?;
                let act =
                    (candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
                x = (x + layer.down.forward(&act)?)?;
                continue;
            }
            let rep = c.n_head / c.n_kv_head;
            let k = candle_transformers::utils::repeat_kv(k, rep)?.contiguous()?;
            let v = candle_transformers::utils::repeat_kv(v, rep)?.contiguous()?;
            let att = (q.matmul(&k.t()?)? / (c.head_dim as f64).sqrt())?;
            let att = match &mask {
                Some(m) => {
                    let m = m.broadcast_as(att.shape())?;
                    m.where_cond(&w.neg_inf.broadcast_as(att.shape().dims())?, &att)?
                }
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((1, len, c.n_head * c.head_dim))?;
            x = (x + layer.wo.forward(&y)?)?;
            let h = rms_norm(&x, &layer.ffn_norm, c.eps)?;
            let act = (candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&act)?)?;
        }
        let x = rms_norm(&x, &w.norm, c.eps)?;
        let last = x.narrow(1, len - 1, 1)?;
        w.output.forward(&last)?.flatten_all()
    }
}

/// A dot product written with eight independent sums, so it vectorizes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Borrows an f32 tensor's CPU storage with its layout.
fn with_f32<T>(t: &Tensor, f: impl FnOnce(&[f32], &candle_core::Layout) -> Result<T>) -> Result<T> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => f(cpu.as_slice::<f32>()?, layout),
        _ => candle_core::bail!("decode attention runs on the CPU"),
    }
}

/// Attention for one new token straight over the KV cache: per head,
/// scores against every cached key, softmax, weighted sum of values. For
/// a single query this is a few dot products per position; going through
/// candle's batched matmul instead costs two GEMM set-ups per layer (each
/// asking for the thread count, which reads /proc/cpuinfo) and copies of
/// the grouped keys and values. `q` is `(1, H, 1, d)`, `k`/`v` are
/// `(1, KVH, n, d)` views of the cache; returns `(1, 1, H·d)`.
fn decode_attention(q: &Tensor, k: &Tensor, v: &Tensor, c: &Config) -> Result<Tensor> {
    let d = c.head_dim;
    let rep = c.n_head / c.n_kv_head;
    let n = k.dim(2)?;
    let scale = 1.0 / (d as f32).sqrt();
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0f32; c.n_head * d];
    with_f32(k, |ks, kl| {
        with_f32(v, |vs, vl| {
            let (ko, kst) = (kl.start_offset(), kl.stride());
            let (vo, vst) = (vl.start_offset(), vl.stride());
            if kst[3] != 1 || vst[3] != 1 {
                candle_core::bail!("decode attention needs contiguous head rows");
            }
            let mut scores = vec![0f32; n];
            for (h, o) in out.chunks_exact_mut(d).enumerate() {
                let g = h / rep;
                let qh = &q[h * d..(h + 1) * d];
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    let at = ko + g * kst[1] + j * kst[2];
                    *s = dot(qh, &ks[at..at + d]) * scale;
                    max = max.max(*s);
                }
                let mut total = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    total += *s;
                }
                for (j, s) in scores.iter().enumerate() {
                    let at = vo + g * vst[1] + j * vst[2];
                    let p = s / total;
                    for (oi, vi) in o.iter_mut().zip(&vs[at..at + d]) {
                        *oi += p * vi;
                    }
                }
            }
            Ok(())
        })
    })?;
    Tensor::from_vec(out, (1, 1, c.n_head * d), k.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_frequency_factors_divide_the_frequencies() {
        let d = Device::Cpu;
        let angle = |factors: Option<&[f32]>| {
            let (cos, _) = rope_tables(4, 10_000.0, 8, factors, &d).expect("tables");
            cos.to_vec2::<f32>().expect("cos")
        };
        let plain = angle(None);
        let scaled = angle(Some(&[1.0, 8.0]));
        // Position 5: the first pair keeps its frequency (1), the second is
        // slowed eight-fold (theta = 1 / 10000^(2/4) = 0.01).
        assert_eq!(plain[5][0], scaled[5][0]);
        assert!((plain[5][1] - (5.0f32 * 0.01).cos()).abs() < 1e-6);
        assert!((scaled[5][1] - (5.0f32 * 0.01 / 8.0).cos()).abs() < 1e-6);
    }
}
