//! Our decoder for GGUF llama-family, qwen2 and qwen3 models, with a
//! batched forward pass.
//!
//! The layer structure follows candle-transformers' `quantized_llama`,
//! `quantized_qwen2` and `quantized_qwen3` (MIT OR Apache-2.0), folded into
//! one implementation: qwen2 adds biases to the q/k/v projections, qwen3
//! normalises q and k per head, and both rotate pairs NEOX-style. What is
//! ours:
//!
//! - [`Transformer::forward_batch`] runs one step for several sequences at
//!   once: every sequence's new tokens (one for a decode, a chunk for a
//!   prompt) become rows of one activation matrix, so each weight row is
//!   read once per step for all of them; attention stays per sequence,
//!   over its own [`KvSeq`] (f16 blocks, see [`crate::kv`]).
//! - Q4_1 and Q8_0 weights go through [`crate::quant`] (SIMD chosen at run
//!   time, one thread pool); other types use candle's `QMatMul`.
//! - The token-embedding table stays quantized and rows are expanded on
//!   lookup, instead of a dequantized f32 copy (113 MB for SmolLM2, whose
//!   output layer shares the table).
//! - Llama 3.1+'s RoPE frequency factors (`rope_freqs.weight`) are
//!   applied, as llama.cpp does.
//!
//! Activations are plain `Vec<f32>` rows; candle is used to read the file
//! and for weight types we have no kernel for.

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use half::f16;
use rayon::prelude::*;

use crate::kv::{BLOCK_POSITIONS, KvLayout, KvSeq};
use crate::quant::QuantMatrix;

/// Longest context we precompute rotary tables for.
pub const MAX_CONTEXT: usize = 16_384;

/// The architectures this decoder runs.
pub const ARCHITECTURES: [&str; 3] = ["llama", "qwen2", "qwen3"];

/// A linear layer (no bias): ours for Q4_1 and Q8_0, candle's otherwise.
#[derive(Debug, Clone)]
enum Linear {
    Ours(Arc<QuantMatrix>),
    Candle { m: QMatMul, cols: usize },
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
            Some(m) => Ok(Linear::Ours(Arc::new(m))),
            None => {
                let cols = t.shape().dims2()?.1;
                Ok(Linear::Candle {
                    m: QMatMul::from_arc(t)?,
                    cols,
                })
            }
        }
    }

    /// `x · Wᵀ` for `m` rows of `x`.
    fn apply(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        match self {
            Linear::Ours(w) => Ok(w.matmul(x, m)),
            Linear::Candle { m: w, cols } => {
                let t = Tensor::from_slice(x, (m, *cols), &Device::Cpu)?;
                w.forward(&t)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()
            }
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
    /// The rows of `ids`, one after the other.
    fn lookup(&self, ids: &[u32]) -> Result<Vec<f32>> {
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
                Ok(out)
            }
            Embeddings::Quantized(table) => {
                let rows = table.shape().dims2()?.0;
                if let Some(bad) = ids.iter().find(|id| **id as usize >= rows) {
                    candle_core::bail!("token id {bad} is outside the vocabulary");
                }
                table
                    .embedding(&Tensor::new(ids, &Device::Cpu)?)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Layer {
    attn_norm: Vec<f32>,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    /// qwen2's projection biases.
    bias: Option<[Vec<f32>; 3]>,
    /// qwen3's per-head q and k norms.
    qk_norm: Option<[Vec<f32>; 2]>,
    ffn_norm: Vec<f32>,
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
    /// Embedding width.
    dim: usize,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    output: Linear,
    /// Rotary tables, `context_length × head_dim / 2`.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// A loaded decoder: the weights, shared by every sequence (cheap to
/// clone). Each sequence brings its own [`KvSeq`].
#[derive(Debug, Clone)]
pub struct Transformer {
    weights: Arc<Weights>,
}

/// One sequence's part of a batched step.
#[derive(Debug)]
pub struct BatchItem<'a> {
    /// Its cache; the tokens go at positions `kv.len()..`.
    pub kv: &'a mut KvSeq,
    /// The tokens to feed (at least one).
    pub tokens: &'a [u32],
    /// Logits after every token (prompt scoring) instead of the last only.
    pub all_logits: bool,
}

/// A tensor's values as one f32 vector.
fn flat(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
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

/// Normalises each `w.len()`-wide row of `x` in place (RMS norm, then
/// the weight), as llama.cpp does: the sum of squares in f64, then
/// `(x · scale) · w`.
fn rms_norm_rows(x: &mut [f32], w: &[f32], eps: f64) {
    let n = w.len();
    for row in x.chunks_exact_mut(n) {
        let sum: f64 = row.iter().map(|v| f64::from(v * v)).sum();
        let mean = (sum / n as f64) as f32;
        let scale = 1.0 / (mean + eps as f32).sqrt();
        for (v, g) in row.iter_mut().zip(w) {
            *v = (*v * scale) * g;
        }
    }
}

/// Rotates one head's vector `x` (`head_dim` long) for a position whose
/// tables are `cos`/`sin` (`head_dim / 2` each): NEOX pairs `(i, i + d/2)`,
/// or llama's adjacent pairs `(2i, 2i + 1)`.
fn rope(x: &mut [f32], cos: &[f32], sin: &[f32], neox: bool) {
    let half = x.len() / 2;
    for i in 0..half {
        let (a, b) = if neox {
            (i, i + half)
        } else {
            (2 * i, 2 * i + 1)
        };
        let (x0, x1) = (x[a], x[b]);
        x[a] = x0 * cos[i] - x1 * sin[i];
        x[b] = x0 * sin[i] + x1 * cos[i];
    }
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
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
        let (cos, sin) = (flat(&cos)?, flat(&sin)?);
        let embd = Arc::new(tensor("token_embd.weight")?);
        let (output, tied) = match tensor("output.weight") {
            Ok(t) => (Linear::new(t)?, false),
            // Tied: the output layer is the embedding table.
            Err(_) => (Linear::shared(embd.clone())?, true),
        };
        let embeddings = match &output {
            // Tied and converted: share our copy, drop candle's.
            Linear::Ours(m) if tied => Embeddings::Ours(m.clone()),
            _ => match ours(&embd)? {
                Some(m) => Embeddings::Ours(Arc::new(m)),
                None => Embeddings::Quantized(embd),
            },
        };
        let norm = flat(&tensor("output_norm.weight")?.dequantize(device)?)?;
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let p = format!("blk.{i}");
            let mut t = |n: &str| tensor(&format!("{p}.{n}"));
            let bias = if arch == "qwen2" {
                Some([
                    flat(&t("attn_q.bias")?.dequantize(device)?)?,
                    flat(&t("attn_k.bias")?.dequantize(device)?)?,
                    flat(&t("attn_v.bias")?.dequantize(device)?)?,
                ])
            } else {
                None
            };
            let qk_norm = if arch == "qwen3" {
                Some([
                    flat(&t("attn_q_norm.weight")?.dequantize(device)?)?,
                    flat(&t("attn_k_norm.weight")?.dequantize(device)?)?,
                ])
            } else {
                None
            };
            layers.push(Layer {
                attn_norm: flat(&t("attn_norm.weight")?.dequantize(device)?)?,
                wq: Linear::new(t("attn_q.weight")?)?,
                wk: Linear::new(t("attn_k.weight")?)?,
                wv: Linear::new(t("attn_v.weight")?)?,
                wo: Linear::new(t("attn_output.weight")?)?,
                bias,
                qk_norm,
                ffn_norm: flat(&t("ffn_norm.weight")?.dequantize(device)?)?,
                gate: Linear::new(t("ffn_gate.weight")?)?,
                up: Linear::new(t("ffn_up.weight")?)?,
                down: Linear::new(t("ffn_down.weight")?)?,
            });
        }
        let dim = n_embd;
        let weights = Weights {
            config,
            dim,
            embeddings,
            layers,
            norm,
            output,
            cos,
            sin,
        };
        Ok(Transformer {
            weights: Arc::new(weights),
        })
    }

    /// Longest sequence the model runs.
    pub fn context_length(&self) -> usize {
        self.weights.config.context_length
    }

    /// The shape of this model's key/value cache.
    pub fn kv_layout(&self) -> KvLayout {
        let c = &self.weights.config;
        KvLayout {
            layers: self.weights.layers.len(),
            kv_heads: c.n_kv_head,
            head_dim: c.head_dim,
        }
    }

    /// Vocabulary size (the width of a logits row).
    pub fn vocab(&self) -> usize {
        match &self.weights.output {
            Linear::Ours(m) => m.rows(),
            Linear::Candle { m, .. } => match m {
                QMatMul::QTensor(t) => t.shape().dims().first().copied().unwrap_or(0),
                QMatMul::Tensor(t) | QMatMul::TensorF16(t) => {
                    t.dims().first().copied().unwrap_or(0)
                }
            },
        }
    }

    /// One step for several sequences: feeds each item's tokens after its
    /// cached positions and returns, per item, the logits after its last
    /// token (`vocab` values) or after each of its tokens (`all_logits`,
    /// `tokens.len() × vocab`). The caches grow by the tokens fed; an item
    /// whose cache cannot grow (context or budget) fails the whole step
    /// before anything is written.
    pub fn forward_batch(&self, items: &mut [BatchItem<'_>]) -> Result<Vec<Vec<f32>>> {
        let w = &*self.weights;
        let c = &w.config;
        let (d, dim) = (c.head_dim, w.dim);
        let (q_width, kv_width) = (c.n_head * d, c.n_kv_head * d);
        // Rows: (item, position) of every token fed.
        let mut rows: Vec<(usize, usize)> = Vec::new();
        let mut ids: Vec<u32> = Vec::new();
        for (i, item) in items.iter_mut().enumerate() {
            let start = item.kv.len();
            let end = start
                .checked_add(item.tokens.len())
                .filter(|e| *e <= c.context_length && !item.tokens.is_empty())
                .ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "{} tokens after {start} positions do not fit the context of {}",
                        item.tokens.len(),
                        c.context_length
                    ))
                })?;
            item.kv
                .grow(end)
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            rows.extend((start..end).map(|p| (i, p)));
            ids.extend_from_slice(item.tokens);
        }
        let t = rows.len();
        if t == 0 {
            return Ok(Vec::new());
        }
        let half = d / 2;
        let mut x = w.embeddings.lookup(&ids)?;
        for (l, layer) in w.layers.iter().enumerate() {
            let mut h = x.clone();
            rms_norm_rows(&mut h, &layer.attn_norm, c.eps);
            let mut q = layer.wq.apply(&h, t)?;
            let mut k = layer.wk.apply(&h, t)?;
            let v = {
                let mut v = layer.wv.apply(&h, t)?;
                if let Some([bq, bk, bv]) = &layer.bias {
                    for (m, b) in [(&mut q, bq), (&mut k, bk), (&mut v, bv)] {
                        for row in m.chunks_exact_mut(b.len()) {
                            row.iter_mut().zip(b).for_each(|(x, b)| *x += b);
                        }
                    }
                }
                v
            };
            if let Some([qn, kn]) = &layer.qk_norm {
                rms_norm_rows(&mut q, qn, c.eps);
                rms_norm_rows(&mut k, kn, c.eps);
            }
            for (r, &(_, pos)) in rows.iter().enumerate() {
                let (cos, sin) = (&w.cos[pos * half..][..half], &w.sin[pos * half..][..half]);
                for head in q[r * q_width..(r + 1) * q_width].chunks_exact_mut(d) {
                    rope(head, cos, sin, c.neox);
                }
                for head in k[r * kv_width..(r + 1) * kv_width].chunks_exact_mut(d) {
                    rope(head, cos, sin, c.neox);
                }
            }
            for (r, &(i, pos)) in rows.iter().enumerate() {
                let kv = &mut *items[i].kv;
                for g in 0..c.n_kv_head {
                    let at = r * kv_width + g * d;
                    kv.write(l, g, pos, &k[at..at + d], &v[at..at + d]);
                }
            }
            let caches: Vec<&KvSeq> = items.iter().map(|it| &*it.kv).collect();
            let y = attention(&q, &rows, &caches, l, c);
            let o = layer.wo.apply(&y, t)?;
            x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
            let mut h = x.clone();
            rms_norm_rows(&mut h, &layer.ffn_norm, c.eps);
            let gate = layer.gate.apply(&h, t)?;
            let up = layer.up.apply(&h, t)?;
            let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| silu(*g) * u).collect();
            let down = layer.down.apply(&act, t)?;
            x.iter_mut().zip(&down).for_each(|(x, o)| *x += o);
        }
        // Which rows need logits, per item.
        let mut wanted: Vec<usize> = Vec::new();
        let mut counts = Vec::with_capacity(items.len());
        let mut first = 0;
        for item in items.iter() {
            let n = item.tokens.len();
            if item.all_logits {
                wanted.extend(first..first + n);
                counts.push(n);
            } else {
                wanted.push(first + n - 1);
                counts.push(1);
            }
            first += n;
        }
        let mut last = Vec::with_capacity(wanted.len() * dim);
        for r in &wanted {
            last.extend_from_slice(&x[r * dim..(r + 1) * dim]);
        }
        rms_norm_rows(&mut last, &w.norm, c.eps);
        let logits = w.output.apply(&last, wanted.len())?;
        let vocab = logits.len() / wanted.len();
        let mut out = Vec::with_capacity(items.len());
        let mut at = 0;
        for (item, n) in items.iter_mut().zip(counts) {
            out.push(logits[at * vocab..(at + n) * vocab].to_vec());
            at += n;
            let len = item.kv.len() + item.tokens.len();
            item.kv.set_len(len);
        }
        Ok(out)
    }
}

/// Positions `start..end` of a cache (`start` a multiple of
/// [`BLOCK_POSITIONS`]): the part of a sequence one attention task reads.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn len(self) -> usize {
        self.end - self.start
    }

    /// The cache blocks it covers.
    fn blocks(self) -> std::ops::Range<usize> {
        self.start / BLOCK_POSITIONS..self.end.div_ceil(BLOCK_POSITIONS)
    }
}

/// Positions per attention task: a row that sees more is split into parts
/// of this many, attended separately (on different threads) and merged,
/// so one long sequence uses every thread. A multiple of
/// [`BLOCK_POSITIONS`]; fixed, so the result does not depend on the
/// thread count.
const SPLIT: usize = 512;
const _: () = assert!(
    SPLIT.is_multiple_of(BLOCK_POSITIONS),
    "parts start at a block"
);

/// Attention of every row's query over its own sequence's cache, causal
/// (a row at position `p` sees positions `..=p`), for layer `l`. `q` is
/// `rows × (n_head · d)`; returns the same shape. Each task is one row's
/// group of query heads sharing a key/value head (each key and value is
/// read and widened once for the group) over up to [`SPLIT`] positions;
/// tasks are spread over the thread pool, then a row's parts are merged.
fn attention(
    q: &[f32],
    rows: &[(usize, usize)],
    caches: &[&KvSeq],
    l: usize,
    c: &Config,
) -> Vec<f32> {
    let d = c.head_dim;
    let rep = c.n_head / c.n_kv_head;
    let scale = 1.0 / (d as f32).sqrt();
    let level = crate::simd::level();
    // Queries rounded to f16, as llama.cpp multiplies them with its f16
    // keys.
    let q: Vec<f32> = q.iter().map(|v| f16::from_f32(*v).to_f32()).collect();
    let group = rep * d;
    // Each part's output (`group` floats), then its heads' (max, total).
    let stride = group + 2 * rep;
    let spans = |task: usize| {
        let n = rows[task / c.n_kv_head].1 + 1;
        (0..n).step_by(SPLIT).map(move |start| Span {
            start,
            end: (start + SPLIT).min(n),
        })
    };
    let part = |task: usize, span: Span, scores: &mut Vec<f32>, buf: &mut [f32]| {
        let (r, g) = (task / c.n_kv_head, task % c.n_kv_head);
        let qg = &q[task * group..(task + 1) * group];
        let (out, stats) = buf.split_at_mut(group);
        let kv = caches[rows[r].0];
        group_attention(level, qg, kv, l, g, span, scale, scores, out, stats);
    };
    let mut y = vec![0f32; q.len()];
    let row_groups = rows.len() * c.n_kv_head;
    if row_groups >= 4 * rayon::current_num_threads().max(1) {
        // Enough row-groups to keep every thread busy: each task reads its
        // parts in turn into a small buffer of its own and merges them.
        y.par_chunks_mut(group).enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(scores, parts): &mut (Vec<f32>, Vec<f32>), (task, out)| {
                parts.clear();
                for span in spans(task) {
                    let at = parts.len();
                    parts.resize(at + stride, 0.0);
                    part(task, span, scores, &mut parts[at..]);
                }
                merge(parts, group, rep, out);
            },
        );
        return y;
    }
    // Few row-groups (one long prompt row, a few streams): every part is a
    // task of its own, so a long row uses every thread.
    let tasks: Vec<(usize, Span)> = (0..row_groups)
        .flat_map(|task| spans(task).map(move |span| (task, span)))
        .collect();
    let mut parts = vec![0f32; tasks.len() * stride];
    parts.par_chunks_mut(stride).zip(&tasks).for_each_init(
        Vec::new,
        |scores: &mut Vec<f32>, (buf, &(task, span))| {
            part(task, span, scores, buf);
        },
    );
    // Where each row-group's parts begin (they are consecutive).
    let mut starts = Vec::with_capacity(row_groups + 1);
    starts.push(0);
    for task in 0..row_groups {
        starts.push(starts[task] + spans(task).count());
    }
    y.par_chunks_mut(group).enumerate().for_each(|(task, out)| {
        let range = starts[task] * stride..starts[task + 1] * stride;
        merge(&parts[range], group, rep, out);
    });
    y
}

/// Merges the parts of one row-group's attention (each `group` outputs
/// normalized by its own softmax, then each head's max score and total
/// weight) into `out`: each part's outputs weighted by its share of the
/// whole softmax. One part is copied as it is; a part whose weights are
/// all zero (its scores NaN) adds nothing, as its positions would unsplit.
fn merge(parts: &[f32], group: usize, heads: usize, out: &mut [f32]) {
    let stride = group + 2 * heads;
    if parts.len() == stride {
        out.copy_from_slice(&parts[..group]);
        return;
    }
    let d = group / heads;
    out.fill(0.0);
    for h in 0..heads {
        let stat = |p: &[f32], k: usize| p[group + 2 * h + k];
        let max = parts
            .chunks_exact(stride)
            .fold(f32::NEG_INFINITY, |m, p| m.max(stat(p, 0)));
        let mut total = 0f32;
        for p in parts.chunks_exact(stride).filter(|p| stat(p, 1) != 0.0) {
            total += stat(p, 1) * exp_softmax(stat(p, 0) - max);
        }
        let inv = 1.0 / total;
        let o = &mut out[h * d..(h + 1) * d];
        for p in parts.chunks_exact(stride).filter(|p| stat(p, 1) != 0.0) {
            let share = stat(p, 1) * exp_softmax(stat(p, 0) - max) * inv;
            for (o, x) in o.iter_mut().zip(&p[h * d..(h + 1) * d]) {
                *o = share.mul_add(*x, *o);
            }
        }
    }
}

/// The attention of the query heads `q` (each `out.len() / heads` long,
/// one after the other) sharing key/value head `g`, over the positions of
/// `span`; each head's max score and total weight go to `stats`.
#[allow(clippy::too_many_arguments, unsafe_code)]
fn group_attention(
    level: crate::simd::Level,
    q: &[f32],
    kv: &KvSeq,
    l: usize,
    g: usize,
    span: Span,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
    stats: &mut [f32],
) {
    let d = kv.layout().head_dim;
    #[cfg(target_arch = "x86_64")]
    if level >= crate::simd::Level::Avx2 && q.len() / d <= avx2::MAX_GROUP {
        // SAFETY: the level is Avx2 or above only when the CPU has AVX2, FMA
        // and F16C.
        unsafe { avx2::group_attention(q, kv, l, g, span, scale, scores, out, stats) };
        return;
    }
    for ((qh, o), st) in q
        .chunks_exact(d)
        .zip(out.chunks_exact_mut(d))
        .zip(stats.chunks_exact_mut(2))
    {
        head_attention(level, qh, kv, l, g, span, scale, scores, o, st);
    }
}

/// One head's attention over the positions of `span` of group `g`.
#[allow(clippy::too_many_arguments, unsafe_code)]
fn head_attention(
    level: crate::simd::Level,
    q: &[f32],
    kv: &KvSeq,
    l: usize,
    g: usize,
    span: Span,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
    stats: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if level >= crate::simd::Level::Avx2 {
        // SAFETY: the level is Avx2 or above only when the CPU has AVX2, FMA and F16C.
        unsafe { avx2::head_attention(q, kv, l, g, span, scale, scores, out, stats) };
        return;
    }
    let _ = level;
    head_attention_with(
        q, kv, l, g, span, scale, scores, out, stats, dot_f16, axpy_f16,
    );
}

/// The body of [`head_attention`] over given dot and `out += p·v` kernels
/// (inlined into each instruction set's entry point).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn head_attention_with(
    q: &[f32],
    kv: &KvSeq,
    l: usize,
    g: usize,
    span: Span,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
    stats: &mut [f32],
    dot: impl Fn(&[f32], &[f16]) -> f32,
    axpy: impl Fn(&mut [f32], f32, &[f16]),
) {
    let d = q.len();
    let first = span.start / BLOCK_POSITIONS;
    scores.clear();
    scores.resize(span.len(), 0.0);
    let mut max = f32::NEG_INFINITY;
    for (b, chunk) in scores.chunks_mut(BLOCK_POSITIONS).enumerate() {
        let keys = kv.block_rows(first + b, l, false, g);
        for (s, key) in chunk.iter_mut().zip(keys.chunks_exact(d)) {
            *s = dot(q, key) * scale;
            max = max.max(*s);
        }
    }
    let mut total = 0f32;
    for s in scores.iter_mut() {
        *s = exp_softmax(*s - max);
        total += *s;
    }
    stats[0] = max;
    stats[1] = total;
    let inv = 1.0 / total;
    out.fill(0.0);
    for (b, chunk) in scores.chunks(BLOCK_POSITIONS).enumerate() {
        let values = kv.block_rows(first + b, l, true, g);
        for (s, value) in chunk.iter().zip(values.chunks_exact(d)) {
            axpy(out, s * inv, value);
        }
    }
}

/// `e^x` for the softmax's `x ≤ 0`, by IEEE operations only (fused
/// multiply-adds, products, integer bit arithmetic), so the portable and
/// vector forms ([`avx2::exp8`]) give the same bits. libm's `expf` is a
/// call per score: 6 % of a step at 2,000 cached positions in `perf`.
///
/// `x = n·ln 2 + r` with `n` rounded to nearest (|r| ≤ ln 2 / 2), `e^r`
/// by its Taylor series to `r⁷/7!` (relative error under 2⁻²⁴ there), times
/// `2ⁿ` built in the exponent bits. `x` below -88 (and NaN) gives 0: `e^x`
/// is under 2⁻¹²⁶ there.
pub(crate) fn exp_softmax(x: f32) -> f32 {
    let x = x.max(EXP_MIN);
    let z = x.mul_add(std::f32::consts::LOG2_E, EXP_ROUND);
    let n = z - EXP_ROUND;
    let r = n.mul_add(-LN2_HI, x);
    let r = n.mul_add(-LN2_LO, r);
    let mut p = EXP_TAYLOR[0];
    for c in &EXP_TAYLOR[1..] {
        p = p.mul_add(r, *c);
    }
    // z's low mantissa bits hold n (two's complement); shifted into the
    // exponent field and added to 1.0's bits: 2ⁿ (0.0 for n = -127).
    let two_n = f32::from_bits((z.to_bits() << 23).wrapping_add(1f32.to_bits()));
    p * two_n
}

/// Below this, [`exp_softmax`] is 0.
const EXP_MIN: f32 = -88.0;
/// 1.5·2²³: adding it rounds to an integer (ties to even).
const EXP_ROUND: f32 = 12_582_912.0;
/// ln 2 in two parts: the high one has few enough bits that `n·LN2_HI` is
/// exact for |n| < 2⁹.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1/7!, 1/6!, ... 1/1!, 1/0!: Horner's order.
const EXP_TAYLOR: [f32; 8] = [
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// `Σ q·k` with f16 keys, portable: eight lanes of fused multiply-adds
/// summed as the AVX2 kernel sums them, so both round alike.
fn dot_f16(q: &[f32], k: &[f16]) -> f32 {
    let mut acc = [0f32; 8];
    let n = q.len().min(k.len()) / 8 * 8;
    for (qs, ks) in q[..n].chunks_exact(8).zip(k[..n].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] = qs[i].mul_add(ks[i].to_f32(), acc[i]);
        }
    }
    let tail: f32 = q[n..]
        .iter()
        .zip(&k[n..])
        .map(|(a, b)| a * b.to_f32())
        .sum();
    crate::quant::hsum_lanes(acc) + tail
}

/// `out += p · v` with f16 values, portable (fused, as the AVX2 kernel).
fn axpy_f16(out: &mut [f32], p: f32, v: &[f16]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o = p.mul_add(x.to_f32(), *o);
    }
}

/// The attention kernels for AVX2 + FMA + F16C.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{BLOCK_POSITIONS, KvSeq, Span, f16, head_attention_with};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma,f16c")]
    fn load_f16(v: &[f16]) -> __m256 {
        assert!(v.len() >= 8);
        // SAFETY: eight f16 (16 bytes) are readable (checked above); no
        // alignment requirement.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(v.as_ptr().cast()) })
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn load_f32(v: &[f32]) -> __m256 {
        assert!(v.len() >= 8);
        // SAFETY: eight f32 are readable (checked above).
        unsafe { _mm256_loadu_ps(v.as_ptr()) }
    }

    /// [`super::exp_softmax`] of eight lanes, the same operations in the
    /// same order.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn exp8(x: __m256) -> __m256 {
        use super::{EXP_MIN, EXP_ROUND, EXP_TAYLOR, LN2_HI, LN2_LO};
        // max(x, min) returns `min` for a NaN x, as f32::max does.
        let x = _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN));
        let round = _mm256_set1_ps(EXP_ROUND);
        let z = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), round);
        let n = _mm256_sub_ps(z, round);
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
        let mut p = _mm256_set1_ps(EXP_TAYLOR[0]);
        for c in &EXP_TAYLOR[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
        }
        let bits = _mm256_add_epi32(
            _mm256_slli_epi32::<23>(_mm256_castps_si256(z)),
            _mm256_set1_epi32(1f32.to_bits() as i32),
        );
        _mm256_mul_ps(p, _mm256_castsi256_ps(bits))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot(q: &[f32], k: &[f16]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let n = q.len().min(k.len()) / 8 * 8;
        for i in (0..n).step_by(8) {
            acc = _mm256_fmadd_ps(load_f32(&q[i..]), load_f16(&k[i..]), acc);
        }
        let tail: f32 = q[n..]
            .iter()
            .zip(&k[n..])
            .map(|(a, b)| a * b.to_f32())
            .sum();
        crate::quant::hsum_avx2(acc) + tail
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn axpy(out: &mut [f32], p: f32, v: &[f16]) {
        let n = out.len().min(v.len()) / 8 * 8;
        let pv = _mm256_set1_ps(p);
        for i in (0..n).step_by(8) {
            let o = _mm256_fmadd_ps(pv, load_f16(&v[i..]), load_f32(&out[i..]));
            // SAFETY: eight f32 from `i` are writable (`i + 8 <= n`).
            unsafe { _mm256_storeu_ps(out[i..].as_mut_ptr(), o) };
        }
        for (o, x) in out[n..].iter_mut().zip(&v[n..]) {
            *o = p.mul_add(x.to_f32(), *o);
        }
    }

    /// The most query heads per key/value head the grouped kernel takes.
    pub(super) const MAX_GROUP: usize = 8;

    /// [`super::head_attention_with`] for up to [`MAX_GROUP`] query heads
    /// at once: each key and value row is loaded and widened once for all
    /// of them. Per head, the arithmetic and its order are the same as the
    /// one-head kernel's (and so the portable one's).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn group_attention(
        q: &[f32],
        kv: &KvSeq,
        l: usize,
        g: usize,
        span: Span,
        scale: f32,
        scores: &mut Vec<f32>,
        out: &mut [f32],
        stats: &mut [f32],
    ) {
        let heads = q.len() / kv.layout().head_dim;
        macro_rules! go {
            ($($h:literal)*) => {
                match heads {
                    $($h => group_of::<$h>(q, kv, l, g, span, scale, scores, out, stats),)*
                    _ => {}
                }
            };
        }
        go!(1 2 3 4 5 6 7 8);
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn group_of<const H: usize>(
        q: &[f32],
        kv: &KvSeq,
        l: usize,
        g: usize,
        span: Span,
        scale: f32,
        scores: &mut Vec<f32>,
        out: &mut [f32],
        stats: &mut [f32],
    ) {
        let d = kv.layout().head_dim;
        let heads = H;
        let body = d / 8 * 8;
        let len = span.len();
        scores.clear();
        scores.resize(heads * len, 0.0);
        let mut max = [f32::NEG_INFINITY; H];
        for b in span.blocks() {
            let keys = kv.block_rows(b, l, false, g);
            let first = b * BLOCK_POSITIONS;
            for (p, key) in keys.chunks_exact(d).take(span.end - first).enumerate() {
                let mut acc = [_mm256_setzero_ps(); H];
                for c in (0..body).step_by(8) {
                    let k = load_f16(&key[c..]);
                    for h in 0..heads {
                        acc[h] = _mm256_fmadd_ps(load_f32(&q[h * d + c..]), k, acc[h]);
                    }
                }
                for h in 0..heads {
                    let qh = &q[h * d..(h + 1) * d];
                    let tail: f32 = qh[body..]
                        .iter()
                        .zip(&key[body..])
                        .map(|(a, b)| a * b.to_f32())
                        .sum();
                    let s = (crate::quant::hsum_avx2(acc[h]) + tail) * scale;
                    scores[h * len + first - span.start + p] = s;
                    max[h] = max[h].max(s);
                }
            }
        }
        for h in 0..heads {
            let row = &mut scores[h * len..(h + 1) * len];
            let mut chunks = row.chunks_exact_mut(8);
            let m = _mm256_set1_ps(max[h]);
            for c in chunks.by_ref() {
                // SAFETY: `c` is eight readable and writable f32.
                unsafe {
                    let x = _mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), m);
                    _mm256_storeu_ps(c.as_mut_ptr(), exp8(x));
                }
            }
            for s in chunks.into_remainder() {
                *s = super::exp_softmax(*s - max[h]);
            }
            let mut total = 0f32;
            for s in row.iter() {
                total += *s;
            }
            stats[2 * h] = max[h];
            stats[2 * h + 1] = total;
            // Each weight as the one-head kernel computes it: `s · (1/total)`.
            let inv = 1.0 / total;
            for s in &mut scores[h * len..(h + 1) * len] {
                *s *= inv;
            }
        }
        // out = Σ_p w_p·v_p, each element summed over the positions in
        // order (as the one-head kernel), a tile of columns at a time with
        // the tile's sums in registers.
        // `H·C` sums, `C` values and a weight in 16 registers.
        let mut c = 0;
        if H <= 4 {
            while c + 16 <= body {
                values_tile::<H, 2>(kv, l, g, span, scores, c, out);
                c += 16;
            }
        }
        while c < body {
            values_tile::<H, 1>(kv, l, g, span, scores, c, out);
            c += 8;
        }
        for h in 0..heads {
            let o = &mut out[h * d + body..(h + 1) * d];
            o.fill(0.0);
            for b in span.blocks() {
                let values = kv.block_rows(b, l, true, g);
                let first = b * BLOCK_POSITIONS;
                for (p, value) in values.chunks_exact(d).take(span.end - first).enumerate() {
                    let w = scores[h * len + first - span.start + p];
                    for (o, x) in o.iter_mut().zip(&value[body..]) {
                        *o = w.mul_add(x.to_f32(), *o);
                    }
                }
            }
        }
    }

    /// Columns `c..c + 8·C` of every head's output, `Σ_p w_p·v_p` over
    /// the positions of `span`, with the `H × C` sums in registers.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn values_tile<const H: usize, const C: usize>(
        kv: &KvSeq,
        l: usize,
        g: usize,
        span: Span,
        weights: &[f32],
        c: usize,
        out: &mut [f32],
    ) {
        let d = kv.layout().head_dim;
        let len = span.len();
        let mut acc = [[_mm256_setzero_ps(); C]; H];
        for b in span.blocks() {
            let values = kv.block_rows(b, l, true, g);
            let first = b * BLOCK_POSITIONS;
            for (p, value) in values.chunks_exact(d).take(span.end - first).enumerate() {
                let mut v = [_mm256_setzero_ps(); C];
                for (k, v) in v.iter_mut().enumerate() {
                    *v = load_f16(&value[c + 8 * k..]);
                }
                for (h, acc) in acc.iter_mut().enumerate() {
                    let w = _mm256_set1_ps(weights[h * len + first - span.start + p]);
                    for k in 0..C {
                        acc[k] = _mm256_fmadd_ps(w, v[k], acc[k]);
                    }
                }
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            for (k, acc) in acc.iter().enumerate() {
                let o = &mut out[h * d + c + 8 * k..][..8];
                // SAFETY: `o` is eight writable f32.
                unsafe { _mm256_storeu_ps(o.as_mut_ptr(), *acc) };
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn head_attention(
        q: &[f32],
        kv: &KvSeq,
        l: usize,
        g: usize,
        span: Span,
        scale: f32,
        scores: &mut Vec<f32>,
        out: &mut [f32],
        stats: &mut [f32],
    ) {
        head_attention_with(
            q,
            kv,
            l,
            g,
            span,
            scale,
            scores,
            out,
            stats,
            |a, b| dot(a, b),
            |o, p, v| axpy(o, p, v),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_is_the_same_at_every_level() {
        use crate::kv::KvBudget;
        // 64 wide (SmolLM2), 40 (a column tile and a single chunk), 36 (a
        // tail after the 8-wide chunks); query heads per group: 1 to 3 (the
        // widest tiles), 5 and 8 (narrower ones), 12 (head by head); 37
        // positions (one part) and 1,100 (three parts, merged).
        for (d, heads, n) in [
            (64, 3, 37),
            (40, 3, 37),
            (36, 3, 37),
            (64, 1, 37),
            (64, 5, 37),
            (48, 8, 37),
            (64, 12, 37),
            (64, 3, 1100),
            (36, 12, 1100),
        ] {
            let layout = KvLayout {
                layers: 2,
                kv_heads: 2,
                head_dim: d,
            };
            let mut kv = KvBudget::unlimited().reserve(layout, 0).expect("cache");
            kv.grow(n).expect("grow");
            let mut seed = 1u32;
            let mut next = || {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            };
            for pos in 0..n {
                for g in 0..2 {
                    let k: Vec<f32> = (0..d).map(|_| next()).collect();
                    let v: Vec<f32> = (0..d).map(|_| next()).collect();
                    kv.write(1, g, pos, &k, &v);
                }
            }
            kv.set_len(n);
            let q: Vec<f32> = (0..heads * d).map(|_| next() * 4.0).collect();
            // What `attention` does for one row-group: parts, then merge.
            let attend = |level: crate::simd::Level| {
                let (group, mut scores) = (heads * d, Vec::new());
                let mut parts = Vec::new();
                for start in (0..n).step_by(SPLIT) {
                    let span = Span {
                        start,
                        end: (start + SPLIT).min(n),
                    };
                    let mut buf = vec![0f32; group + 2 * heads];
                    let (out, stats) = buf.split_at_mut(group);
                    group_attention(level, &q, &kv, 1, 1, span, 0.125, &mut scores, out, stats);
                    parts.extend(buf);
                }
                let mut out = vec![0f32; group];
                merge(&parts, group, heads, &mut out);
                out
            };
            let portable = attend(crate::simd::Level::Portable);
            let level = crate::simd::level();
            let simd = attend(level);
            assert_eq!(
                simd,
                portable,
                "{} d={d} heads={heads} n={n}: bit-identical",
                level.name()
            );
            // And a plain softmax-weighted sum in f64, to a float tolerance.
            let key = |p: usize, value: bool| {
                kv.block_rows(p / BLOCK_POSITIONS, 1, value, 1)[p % BLOCK_POSITIONS * d..][..d]
                    .iter()
                    .map(|x| f64::from(x.to_f32()))
                    .collect::<Vec<f64>>()
            };
            for (h, qh) in q.chunks_exact(d).enumerate() {
                let s: Vec<f64> = (0..n)
                    .map(|p| {
                        key(p, false)
                            .iter()
                            .zip(qh)
                            .map(|(a, b)| a * f64::from(*b))
                            .sum::<f64>()
                            * 0.125
                    })
                    .collect();
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
                let total: f64 = e.iter().sum();
                for i in 0..d {
                    let want: f64 = (0..n).map(|p| e[p] / total * key(p, true)[i]).sum();
                    let got = f64::from(simd[h * d + i]);
                    assert!((got - want).abs() < 1e-4, "n={n}: {want} vs {got}");
                }
            }
        }
    }

    #[test]
    fn attention_splits_long_rows_and_merges_them_the_same_on_every_path() {
        use crate::kv::KvBudget;
        let (d, n_kv, rep) = (64, 2, 3);
        let config = Config {
            n_head: n_kv * rep,
            n_kv_head: n_kv,
            head_dim: d,
            eps: 1e-5,
            neox: false,
            context_length: 4096,
        };
        let layout = KvLayout {
            layers: 1,
            kv_heads: n_kv,
            head_dim: d,
        };
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let mut caches = Vec::new();
        for n in [1100, 40] {
            let mut kv = KvBudget::unlimited().reserve(layout, 0).expect("cache");
            kv.grow(n).expect("grow");
            for pos in 0..n {
                for g in 0..n_kv {
                    let k: Vec<f32> = (0..d).map(|_| next()).collect();
                    let v: Vec<f32> = (0..d).map(|_| next()).collect();
                    kv.write(0, g, pos, &k, &v);
                }
            }
            kv.set_len(n);
            caches.push(kv);
        }
        let refs: Vec<&KvSeq> = caches.iter().collect();
        // Rows ending at, just past and well past a part boundary.
        let all_rows = [
            (0, 1099),
            (0, 511),
            (0, 512),
            (0, 1023),
            (1, 39),
            (0, 700),
            (0, 0),
            (0, 1024),
        ];
        let width = config.n_head * d;
        let q: Vec<f32> = (0..all_rows.len() * width).map(|_| next() * 4.0).collect();
        // Each row-group alone, parts and merge by hand, portable kernels.
        let expected = |r: usize| -> Vec<f32> {
            let (i, pos) = all_rows[r];
            let mut row = Vec::new();
            for g in 0..n_kv {
                let qg: Vec<f32> = q[r * width + g * rep * d..][..rep * d]
                    .iter()
                    .map(|v| f16::from_f32(*v).to_f32())
                    .collect();
                let mut parts = Vec::new();
                for start in (0..=pos).step_by(SPLIT) {
                    let span = Span {
                        start,
                        end: (start + SPLIT).min(pos + 1),
                    };
                    let mut buf = vec![0f32; rep * d + 2 * rep];
                    let (out, stats) = buf.split_at_mut(rep * d);
                    let level = crate::simd::Level::Portable;
                    let scale = 1.0 / (d as f32).sqrt();
                    group_attention(
                        level,
                        &qg,
                        refs[i],
                        0,
                        g,
                        span,
                        scale,
                        &mut Vec::new(),
                        out,
                        stats,
                    );
                    parts.extend(buf);
                }
                let mut out = vec![0f32; rep * d];
                merge(&parts, rep * d, rep, &mut out);
                row.extend(out);
            }
            row
        };
        // Two rows: few row-groups, every part a task. Eight: one task per
        // row-group (with two threads or fewer).
        for rows in [&all_rows[..2], &all_rows[..]] {
            let y = attention(&q[..rows.len() * width], rows, &refs, 0, &config);
            for r in 0..rows.len() {
                assert!(
                    y[r * width..(r + 1) * width] == expected(r)[..],
                    "row {r} of {}: differs from its parts merged by hand",
                    rows.len()
                );
            }
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_softmax_exponential_is_accurate_and_the_same_at_every_level() {
        let mut xs: Vec<f32> = (0..=200_000).map(|i| -(i as f32) / 2000.0).collect();
        xs.extend([
            0.0,
            -0.0,
            -87.0,
            -87.5,
            -88.0,
            -89.0,
            -1e9,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        for &x in &xs {
            let got = exp_softmax(x);
            if x > -87.0 {
                let want = f64::from(x).exp();
                let err = (f64::from(got) - want).abs() / want;
                assert!(
                    err < 2.5e-7,
                    "exp({x}) = {got}, want {want}: relative error {err}"
                );
            } else if x.is_nan() || x < -88.0 {
                assert_eq!(got, 0.0, "exp({x})");
            } else {
                assert!((0.0..1e-37).contains(&got), "exp({x}) = {got}");
            }
        }
        assert_eq!(exp_softmax(0.0), 1.0);
        #[cfg(target_arch = "x86_64")]
        if crate::simd::level() >= crate::simd::Level::Avx2 {
            for chunk in xs.chunks(8) {
                let mut lanes = [0f32; 8];
                lanes[..chunk.len()].copy_from_slice(chunk);
                let mut got = [0f32; 8];
                // SAFETY: the level says the CPU has AVX2, FMA and F16C;
                // both arrays are eight f32.
                unsafe {
                    use std::arch::x86_64::{_mm256_loadu_ps, _mm256_storeu_ps};
                    let v = avx2::exp8(_mm256_loadu_ps(lanes.as_ptr()));
                    _mm256_storeu_ps(got.as_mut_ptr(), v);
                }
                for (g, x) in got.iter().zip(lanes) {
                    assert_eq!(g.to_bits(), exp_softmax(x).to_bits(), "exp8({x})");
                }
            }
        }
    }

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
