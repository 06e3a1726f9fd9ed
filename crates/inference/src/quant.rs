//! Our own quantized matrix multiplication, for Q4_1 and Q8_0 weights.
//!
//! candle 0.11 has no SIMD kernel for Q4_1 (its `vec_dot` is scalar), and
//! Q4_1 is the default model's type: a profile of decoding showed 56 % of
//! the time in that scalar loop. This module keeps Q4_1 weights in their
//! 4-bit form and multiplies them with activations quantized to 8 bits per
//! block of 32 (the Q8_1 scheme llama.cpp uses), with an AVX2 kernel built
//! on `safe_arch` (safe wrappers over the intrinsics, enabled when the
//! build targets AVX2, as ours does with `-C target-cpu=native`) and a
//! portable fallback. Rows of the weight matrix are split across rayon's
//! threads.
//!
//! Per block of 32: `w = d·q + m` with 4-bit `q`, and `x ≈ dx·p` with 8-bit
//! `p`, so `Σ w·x = d·dx·Σ q·p + m·(dx·Σ p)`; the integer sum is the SIMD
//! part. Q8_0 (`w = d·q`, 8-bit signed `q`; SmolLM2's output layer) uses the
//! same activations and the same thread split, so every large matrix
//! product of a forward pass runs in one pool.

use candle_core::{CpuStorage, Layout, Shape};
use rayon::prelude::*;

/// Elements per block.
pub const BLOCK: usize = 32;
/// Bytes of one Q4_1 block in a GGUF file: f16 scale, f16 minimum, 16 bytes
/// of nibbles.
pub const GGUF_BLOCK_BYTES: usize = 20;

/// One Q4_1 block, scales widened to f32 at load.
#[derive(Debug, Clone, Copy)]
struct BlockQ41 {
    d: f32,
    m: f32,
    /// Element `j` in the low nibble of byte `j`, element `j + 16` in its
    /// high nibble.
    qs: [u8; 16],
}

/// Bytes of one Q8_0 block in a GGUF file: f16 scale, 32 signed bytes.
pub const GGUF_Q8_0_BLOCK_BYTES: usize = 34;

/// One Q8_0 block, scale widened to f32 at load.
#[derive(Debug, Clone, Copy)]
struct BlockQ80 {
    d: f32,
    qs: [i8; 32],
}

/// A block of 32 activations quantized to 8 bits.
#[derive(Debug, Clone, Copy)]
struct BlockQ81 {
    d: f32,
    /// `d · Σ qs`.
    s: f32,
    qs: [i8; 32],
}

const ZERO_Q81: BlockQ81 = BlockQ81 {
    d: 0.0,
    s: 0.0,
    qs: [0; 32],
};

/// The blocks of a matrix, by type.
#[derive(Debug, Clone)]
enum Blocks {
    Q41(Vec<BlockQ41>),
    Q80(Vec<BlockQ80>),
}

/// A `rows × cols` quantized weight matrix (row-major, as GGUF stores a
/// linear layer's weight: one row per output).
#[derive(Debug, Clone)]
pub struct QuantMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

/// Why a matrix could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantized matrix {rows}x{cols}: {reason}")]
pub struct QuantError {
    rows: usize,
    cols: usize,
    reason: &'static str,
}

fn f16_at(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

impl QuantMatrix {
    fn check(rows: usize, cols: usize, bytes: usize, block_bytes: usize) -> Result<(), QuantError> {
        let err = |reason| QuantError { rows, cols, reason };
        if cols == 0 || !cols.is_multiple_of(BLOCK) {
            return Err(err("columns must be a positive multiple of 32"));
        }
        if bytes != rows * cols / BLOCK * block_bytes {
            return Err(err("byte length does not match the shape"));
        }
        Ok(())
    }

    /// Builds the matrix from GGUF's Q4_1 bytes.
    pub fn from_q4_1(rows: usize, cols: usize, bytes: &[u8]) -> Result<Self, QuantError> {
        Self::check(rows, cols, bytes.len(), GGUF_BLOCK_BYTES)?;
        let blocks = bytes
            .chunks_exact(GGUF_BLOCK_BYTES)
            .map(|b| {
                let mut qs = [0u8; 16];
                qs.copy_from_slice(&b[4..20]);
                BlockQ41 {
                    d: f16_at(&b[0..2]),
                    m: f16_at(&b[2..4]),
                    qs,
                }
            })
            .collect();
        Ok(QuantMatrix {
            rows,
            cols,
            blocks: Blocks::Q41(blocks),
        })
    }

    /// Builds the matrix from GGUF's Q8_0 bytes.
    pub fn from_q8_0(rows: usize, cols: usize, bytes: &[u8]) -> Result<Self, QuantError> {
        Self::check(rows, cols, bytes.len(), GGUF_Q8_0_BLOCK_BYTES)?;
        let blocks = bytes
            .chunks_exact(GGUF_Q8_0_BLOCK_BYTES)
            .map(|b| {
                let mut qs = [0i8; 32];
                for (q, byte) in qs.iter_mut().zip(&b[2..34]) {
                    *q = i8::from_le_bytes([*byte]);
                }
                BlockQ80 {
                    d: f16_at(&b[0..2]),
                    qs,
                }
            })
            .collect();
        Ok(QuantMatrix {
            rows,
            cols,
            blocks: Blocks::Q80(blocks),
        })
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    fn per_row(&self) -> usize {
        self.cols / BLOCK
    }

    /// Row `r` as f32 (an embedding lookup). `out.len()` must be `cols`.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let range = r * self.per_row()..(r + 1) * self.per_row();
        match &self.blocks {
            Blocks::Q41(b) => {
                for (b, o) in b[range].iter().zip(out.chunks_exact_mut(BLOCK)) {
                    for j in 0..16 {
                        o[j] = b.d * f32::from(b.qs[j] & 0x0F) + b.m;
                        o[j + 16] = b.d * f32::from(b.qs[j] >> 4) + b.m;
                    }
                }
            }
            Blocks::Q80(b) => {
                for (b, o) in b[range].iter().zip(out.chunks_exact_mut(BLOCK)) {
                    for (o, q) in o.iter_mut().zip(b.qs) {
                        *o = b.d * f32::from(q);
                    }
                }
            }
        }
    }

    /// Dot products of row `r` with every quantized activation row.
    fn dot_rows(&self, r: usize, xq: &[BlockQ81], out: &mut [f32]) {
        let per_row = self.per_row();
        let range = r * per_row..(r + 1) * per_row;
        match &self.blocks {
            Blocks::Q41(b) => {
                for (o, x) in out.iter_mut().zip(xq.chunks_exact(per_row)) {
                    *o = dot_q4_1(&b[range.clone()], x);
                }
            }
            Blocks::Q80(b) => {
                for (o, x) in out.iter_mut().zip(xq.chunks_exact(per_row)) {
                    *o = dot_q8_0(&b[range.clone()], x);
                }
            }
        }
    }

    /// `x · Wᵀ` for `m` rows of `x` (`m × cols`, row-major); returns
    /// `m × rows`.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        let per_row = self.per_row();
        let mut xq = vec![ZERO_Q81; m * per_row];
        for (row, q) in x.chunks_exact(self.cols).zip(xq.chunks_exact_mut(per_row)) {
            quantize_row_q8_1(row, q);
        }
        // Output rows in chunks, enough for every thread to get several.
        let threads = rayon::current_num_threads().max(1);
        let chunk = self.rows.div_ceil(threads * 4).max(8);
        let mut out_t = vec![0f32; self.rows * m];
        out_t
            .par_chunks_mut(chunk * m)
            .enumerate()
            .for_each(|(c, dst)| {
                let first = c * chunk;
                for (j, out) in dst.chunks_exact_mut(m).enumerate() {
                    self.dot_rows(first + j, &xq, out);
                }
            });
        if m == 1 {
            return out_t;
        }
        // out_t is rows × m; transpose to m × rows.
        let mut out = vec![0f32; m * self.rows];
        for (j, col) in out_t.chunks_exact(m).enumerate() {
            for (i, v) in col.iter().enumerate() {
                out[i * self.rows + j] = *v;
            }
        }
        out
    }
}

/// Quantizes `x` (a multiple of 32 long) into Q8_1 blocks.
fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ81]) {
    for (xs, b) in x.chunks_exact(BLOCK).zip(out.iter_mut()) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in b.qs.iter_mut().zip(xs) {
            // |v·inv| ≤ 127, so the cast cannot saturate.
            *q = (v * inv).round() as i8;
            sum += i32::from(*q);
        }
        b.d = d;
        b.s = d * sum as f32;
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
fn dot_q4_1(w: &[BlockQ41], x: &[BlockQ81]) -> f32 {
    use safe_arch::*;
    let low = set_splat_i8_m256i(0x0F);
    let ones = set_splat_i16_m256i(1);
    let mut acc = zeroed_m256();
    let mut mins = 0f32;
    for (b, y) in w.iter().zip(x) {
        let q = load_unaligned_m128i(&b.qs);
        let hi = shr_imm_u16_m128i::<4>(q);
        let qx = bitand_m256i(set_m128i_m256i(hi, q), low);
        let qy = load_unaligned_m256i(&y.qs);
        // u8 × i8 pairs summed to i16 (|15·127·2| fits), then pairs to i32.
        let p16 = mul_u8i8_add_horizontal_saturating_m256i(qx, qy);
        let p32 = mul_i16_horizontal_add_m256i(p16, ones);
        acc = fused_mul_add_m256(
            set_splat_m256(b.d * y.d),
            convert_to_m256_from_i32_m256i(p32),
            acc,
        );
        mins += b.m * y.s;
    }
    acc.to_array().iter().sum::<f32>() + mins
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
)))]
fn dot_q4_1(w: &[BlockQ41], x: &[BlockQ81]) -> f32 {
    dot_q4_1_portable(w, x)
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
fn dot_q8_0(w: &[BlockQ80], x: &[BlockQ81]) -> f32 {
    use safe_arch::*;
    let ones = set_splat_i16_m256i(1);
    let mut acc = zeroed_m256();
    for (b, y) in w.iter().zip(x) {
        let qx = load_unaligned_m256i(&b.qs);
        let qy = load_unaligned_m256i(&y.qs);
        // maddubs wants one unsigned operand: |x| times y with x's sign.
        let p16 =
            mul_u8i8_add_horizontal_saturating_m256i(abs_i8_m256i(qx), sign_apply_i8_m256i(qy, qx));
        let p32 = mul_i16_horizontal_add_m256i(p16, ones);
        acc = fused_mul_add_m256(
            set_splat_m256(b.d * y.d),
            convert_to_m256_from_i32_m256i(p32),
            acc,
        );
    }
    acc.to_array().iter().sum::<f32>()
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
)))]
fn dot_q8_0(w: &[BlockQ80], x: &[BlockQ81]) -> f32 {
    dot_q8_0_portable(w, x)
}

/// The reference Q8_0 kernel (and the one used without AVX2).
#[cfg_attr(
    all(
        not(test),
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ),
    allow(dead_code)
)]
fn dot_q8_0_portable(w: &[BlockQ80], x: &[BlockQ81]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(b, y)| {
            let acc: i32 =
                b.qs.iter()
                    .zip(y.qs)
                    .map(|(a, c)| i32::from(*a) * i32::from(c))
                    .sum();
            b.d * y.d * acc as f32
        })
        .sum()
}

/// The reference Q4_1 kernel (and the one used without AVX2).
#[cfg_attr(
    all(
        not(test),
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ),
    allow(dead_code)
)]
fn dot_q4_1_portable(w: &[BlockQ41], x: &[BlockQ81]) -> f32 {
    let mut sum = 0f32;
    for (b, y) in w.iter().zip(x) {
        let mut acc = 0i32;
        for j in 0..16 {
            acc += i32::from(b.qs[j] & 0x0F) * i32::from(y.qs[j])
                + i32::from(b.qs[j] >> 4) * i32::from(y.qs[j + 16]);
        }
        sum += b.d * y.d * acc as f32 + b.m * y.s;
    }
    sum
}

/// `x · Wᵀ` as a candle op on the CPU: `(…, cols) → (…, rows)`.
#[derive(Debug, Clone)]
pub struct QuantMatMul(pub std::sync::Arc<QuantMatrix>);

impl candle_core::CustomOp1 for QuantMatMul {
    fn name(&self) -> &'static str {
        "quant-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("quant-matmul needs f32 input");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("quant-matmul needs contiguous input");
        };
        let dims = layout.shape().dims();
        let k = dims.last().copied().unwrap_or(0);
        if k != self.0.cols {
            candle_core::bail!(
                "quant-matmul: input has {k} features, the weight {}",
                self.0.cols
            );
        }
        let x = &data[start..end];
        let m = x.len() / k;
        let out = self.0.matmul(x, m);
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = self.0.rows;
        }
        Ok((CpuStorage::F32(out), Shape::from(out_dims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;

    /// A deterministic pseudo-random stream in [-1, 1).
    fn noise(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Quantizes with candle (the reference encoder) and returns our
    /// matrix plus candle's dequantized weights.
    fn matrix(rows: usize, cols: usize, dtype: GgmlDType) -> (QuantMatrix, Vec<f32>) {
        use candle_core::quantized::QTensor;
        use candle_core::{Device, Tensor};
        let w =
            Tensor::from_vec(noise(7, rows * cols), (rows, cols), &Device::Cpu).expect("tensor");
        let q = QTensor::quantize(&w, dtype).expect("quantize");
        let bytes = q.data().expect("bytes");
        let ours = match dtype {
            GgmlDType::Q4_1 => QuantMatrix::from_q4_1(rows, cols, &bytes),
            _ => QuantMatrix::from_q8_0(rows, cols, &bytes),
        }
        .expect("matrix");
        let deq = q
            .dequantize(&Device::Cpu)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("dequantize");
        (ours, deq)
    }

    #[test]
    fn rows_dequantize_like_candle() {
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let (m, deq) = matrix(3, 64, dtype);
            let mut row = vec![0f32; 64];
            m.dequantize_row(2, &mut row);
            assert_eq!(row, deq[128..192].to_vec(), "{dtype:?}");
        }
    }

    #[test]
    fn matmul_matches_the_dequantized_product() {
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
            product_matches(dtype);
        }
    }

    fn product_matches(dtype: GgmlDType) {
        let (rows, cols, m) = (40, 96, 3);
        let (w, deq) = matrix(rows, cols, dtype);
        let x = noise(11, m * cols);
        let out = w.matmul(&x, m);
        assert_eq!(out.len(), m * rows);
        for i in 0..m {
            for j in 0..rows {
                let exact: f32 = (0..cols).map(|c| x[i * cols + c] * deq[j * cols + c]).sum();
                let got = out[i * rows + j];
                // Rounding each activation to 8 bits moves it by at most
                // half a step (amax/254 of its block).
                let bound: f32 = (0..cols)
                    .map(|c| {
                        let block = &x[i * cols + c / BLOCK * BLOCK..][..BLOCK];
                        let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
                        deq[j * cols + c].abs() * amax / 254.0
                    })
                    .sum();
                assert!(
                    (got - exact).abs() <= bound * 1.01 + 1e-5,
                    "[{i},{j}] {got} vs {exact} (bound {bound})"
                );
                // And the SIMD kernel agrees with the portable one.
                let per_row = cols / BLOCK;
                let mut xq = vec![ZERO_Q81; per_row];
                quantize_row_q8_1(&x[i * cols..(i + 1) * cols], &mut xq);
                let range = j * per_row..(j + 1) * per_row;
                let portable = match &w.blocks {
                    Blocks::Q41(b) => dot_q4_1_portable(&b[range], &xq),
                    Blocks::Q80(b) => dot_q8_0_portable(&b[range], &xq),
                };
                assert!((got - portable).abs() <= 1e-4 * portable.abs().max(1.0));
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(QuantMatrix::from_q4_1(2, 33, &[0; 40]).is_err());
        assert!(QuantMatrix::from_q4_1(2, 32, &[0; 39]).is_err());
        assert!(QuantMatrix::from_q4_1(2, 32, &[0; 40]).is_ok());
        assert!(QuantMatrix::from_q8_0(2, 32, &[0; 67]).is_err());
        assert!(QuantMatrix::from_q8_0(2, 32, &[0; 68]).is_ok());
    }
}
