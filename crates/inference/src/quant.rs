//! Our own quantized matrix multiplication, for Q4_1 and Q8_0 weights.
//!
//! candle 0.11 has no SIMD kernel for Q4_1 (its `vec_dot` is scalar), and
//! Q4_1 is the default model's type: a profile of decoding showed 56 % of
//! the time in that scalar loop. This module keeps Q4_1 weights in their
//! 4-bit form and multiplies them with activations quantized to 8 bits per
//! block of 32 (the Q8_1 scheme llama.cpp uses). The AVX2 kernels are
//! chosen at run time ([`crate::simd`]); a portable form runs elsewhere.
//! Each weight block is loaded and unpacked once for up to four
//! activation rows (a batch of sequences, or a prompt chunk), so a batched
//! step reads the weights once. Rows of the weight matrix are split across
//! rayon's threads.
//!
//! Per block of 32: `w = d·q + m` with 4-bit `q`, and `x ≈ dx·p` with 8-bit
//! `p`, so `Σ w·x = d·dx·Σ q·p + m·(dx·Σ p)`; the integer sum is the SIMD
//! part. Q8_0 (`w = d·q`, 8-bit signed `q`; SmolLM2's output layer) uses the
//! same activations and the same thread split, so every large matrix
//! product of a forward pass runs in one pool.

use candle_core::{CpuStorage, Layout, Shape};
use rayon::prelude::*;

use crate::simd::Level;

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

    /// Dot products of row `r` with every quantized activation row, by
    /// the kernels of `level`.
    #[allow(unsafe_code)]
    fn dot_rows(&self, level: Level, r: usize, xq: &[BlockQ81], out: &mut [f32]) {
        let per_row = self.per_row();
        let range = r * per_row..(r + 1) * per_row;
        #[cfg(target_arch = "x86_64")]
        if level >= Level::Avx2 {
            let mut xs: [&[BlockQ81]; 4] = [&[]; 4];
            for (k, out) in out.chunks_mut(4).enumerate() {
                for (j, x) in xs.iter_mut().enumerate().take(out.len()) {
                    *x = &xq[(k * 4 + j) * per_row..(k * 4 + j + 1) * per_row];
                }
                let xs = &xs[..out.len()];
                // SAFETY: `level` is Avx2 or above only when the CPU has AVX2
                // and FMA.
                unsafe {
                    match &self.blocks {
                        Blocks::Q41(b) => avx2::dot_q4_1_x4(&b[range.clone()], xs, out),
                        Blocks::Q80(b) => avx2::dot_q8_0_x4(&b[range.clone()], xs, out),
                    }
                }
            }
            return;
        }
        let _ = level;
        match &self.blocks {
            Blocks::Q41(b) => {
                for (o, x) in out.iter_mut().zip(xq.chunks_exact(per_row)) {
                    *o = dot_q4_1_portable(&b[range.clone()], x);
                }
            }
            Blocks::Q80(b) => {
                for (o, x) in out.iter_mut().zip(xq.chunks_exact(per_row)) {
                    *o = dot_q8_0_portable(&b[range.clone()], x);
                }
            }
        }
    }

    /// `x · Wᵀ` for `m` rows of `x` (`m × cols`, row-major); returns
    /// `m × rows`.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_at(crate::simd::level(), x, m)
    }

    /// [`Self::matmul`] by the kernels of `level` (which must be at most
    /// [`crate::simd::level`]).
    fn matmul_at(&self, level: Level, x: &[f32], m: usize) -> Vec<f32> {
        if m == 0 {
            return Vec::new();
        }
        let per_row = self.per_row();
        let mut xq = vec![ZERO_Q81; m * per_row];
        for (row, q) in x.chunks_exact(self.cols).zip(xq.chunks_exact_mut(per_row)) {
            quantize_row_q8_1(row, q);
        }
        // Output rows in chunks, enough for every thread to get several.
        let threads = rayon::current_num_threads().max(1);
        let chunk = self.rows.div_ceil(threads * 4).max(8);
        let mut out_t = vec![0f32; self.rows * m];
        // Below four rows the AVX2 kernel is as fast or faster (one or two
        // pairs do not pay for the per-block vector work: a step of two
        // rows took 7.3 ms against AVX2's 6.3 in `examples/step_cost.rs`).
        #[cfg(target_arch = "x86_64")]
        if level == Level::Avx512 && m >= 4 {
            let packed = avx512::Packed::new(&xq, per_row, m);
            out_t
                .par_chunks_mut(chunk * m)
                .enumerate()
                .for_each(|(c, dst)| {
                    for (j, out) in dst.chunks_exact_mut(m).enumerate() {
                        self.dot_rows_avx512(c * chunk + j, &packed, out);
                    }
                });
            return transpose(out_t, self.rows, m);
        }
        out_t
            .par_chunks_mut(chunk * m)
            .enumerate()
            .for_each(|(c, dst)| {
                let first = c * chunk;
                for (j, out) in dst.chunks_exact_mut(m).enumerate() {
                    self.dot_rows(level, first + j, &xq, out);
                }
            });
        transpose(out_t, self.rows, m)
    }

    /// Row `r` against every packed activation row, by the AVX-512 kernels.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn dot_rows_avx512(&self, r: usize, x: &avx512::Packed, out: &mut [f32]) {
        let range = r * self.per_row()..(r + 1) * self.per_row();
        // SAFETY: only called at Level::Avx512, which `simd` chooses only
        // when the CPU has AVX2, FMA, F16C, AVX-512 F, BW and VNNI.
        unsafe {
            match &self.blocks {
                Blocks::Q41(b) => avx512::dot_q4_1(&b[range], x, out),
                Blocks::Q80(b) => avx512::dot_q8_0(&b[range], x, out),
            }
        }
    }
}

/// `rows × m` (one output row's products with every activation row) to
/// `m × rows`.
fn transpose(out_t: Vec<f32>, rows: usize, m: usize) -> Vec<f32> {
    if m == 1 {
        return out_t;
    }
    let mut out = vec![0f32; m * rows];
    for (j, col) in out_t.chunks_exact(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            out[i * rows + j] = *v;
        }
    }
    out
}

/// `x` rounded to the nearest integer, ties to even, for |x| < 2^22:
/// adding and subtracting 1.5·2^23 leaves no fraction bits, so the FPU's
/// default rounding (to nearest, ties to even) does it. `f32::round_ties_even`
/// is a libm call on baseline x86-64 (8 % of a prompt's time in `perf`).
fn round_ties_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// Quantizes `x` (a multiple of 32 long) into Q8_1 blocks.
fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ81]) {
    // As llama.cpp's AVX2 `quantize_row_q8_1`: scale by 127/amax, round
    // half to even, keep the scale and the sum rounded to f16 (its block
    // stores them in f16), so our dot products equal llama.cpp's.
    for (xs, b) in x.chunks_exact(BLOCK).zip(out.iter_mut()) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let inv = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in b.qs.iter_mut().zip(xs) {
            // |v·inv| ≤ 127 (up to rounding), so the cast cannot wrap.
            *q = round_ties_even(v * inv) as i8;
            sum += i32::from(*q);
        }
        b.d = half::f16::from_f32(d).to_f32();
        b.s = half::f16::from_f32(d * sum as f32).to_f32();
    }
}

/// The sum of eight lanes in the order the AVX2 kernels add them, so both
/// paths round alike.
pub(crate) fn hsum_lanes(a: [f32; 8]) -> f32 {
    let s = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (s[0] + s[2]) + (s[1] + s[3])
}

/// A block's integer products summed by fours, as eight lanes: what
/// `maddubs` then `madd` leave in an AVX2 register (exact in i32).
fn lanes_of(product: impl Fn(usize) -> i32) -> [f32; 8] {
    let mut lanes = [0f32; 8];
    for (i, lane) in lanes.iter_mut().enumerate() {
        *lane = (4 * i..4 * i + 4).map(&product).sum::<i32>() as f32;
    }
    lanes
}

/// The portable Q8_0 kernel: the same arithmetic as the AVX2 one, in the
/// same order (fused multiply-adds per lane, the same final sum), so the
/// two give bit-identical results and the same tokens.
fn dot_q8_0_portable(w: &[BlockQ80], x: &[BlockQ81]) -> f32 {
    let mut acc = [0f32; 8];
    for (b, y) in w.iter().zip(x) {
        let lanes = lanes_of(|e| i32::from(b.qs[e]) * i32::from(y.qs[e]));
        let scale = b.d * y.d;
        for (a, l) in acc.iter_mut().zip(lanes) {
            *a = scale.mul_add(l, *a);
        }
    }
    hsum_lanes(acc)
}

/// Element `e` (0..32) of a Q4_1 block: low nibbles first.
fn nibble(b: &BlockQ41, e: usize) -> i32 {
    if e < 16 {
        i32::from(b.qs[e] & 0x0F)
    } else {
        i32::from(b.qs[e - 16] >> 4)
    }
}

/// The portable Q4_1 kernel, arithmetic ordered as the AVX2 one.
fn dot_q4_1_portable(w: &[BlockQ41], x: &[BlockQ81]) -> f32 {
    let mut acc = [0f32; 8];
    let mut mins = 0f32;
    for (b, y) in w.iter().zip(x) {
        let lanes = lanes_of(|e| nibble(b, e) * i32::from(y.qs[e]));
        let scale = b.d * y.d;
        for (a, l) in acc.iter_mut().zip(lanes) {
            *a = scale.mul_add(l, *a);
        }
        mins += b.m * y.s;
    }
    hsum_lanes(acc) + mins
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::hsum as hsum_avx2;

/// The AVX2 kernels: compiled for AVX2 + FMA whatever the build targets,
/// called only after [`crate::simd::level`] found the CPU has them.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{BlockQ41, BlockQ80, BlockQ81};
    use std::arch::x86_64::*;

    /// Sum of the eight lanes.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// The 32 signed activations of a block.
    #[target_feature(enable = "avx2,fma")]
    fn load_q8(y: &BlockQ81) -> __m256i {
        // SAFETY: `qs` is 32 readable bytes; the load has no alignment
        // requirement.
        unsafe { _mm256_loadu_si256(y.qs.as_ptr().cast()) }
    }

    /// The 32 unsigned 4-bit weights of a Q4_1 block, one per byte, in
    /// element order (low nibbles are elements 0..16).
    #[target_feature(enable = "avx2,fma")]
    fn unpack_q4(b: &BlockQ41) -> __m256i {
        // SAFETY: `qs` is 16 readable bytes; no alignment requirement.
        let q = unsafe { _mm_loadu_si128(b.qs.as_ptr().cast()) };
        let hi = _mm_srli_epi16::<4>(q);
        _mm256_and_si256(_mm256_set_m128i(hi, q), _mm256_set1_epi8(0x0F))
    }

    /// `Σ qx·qy` of one block as eight i32 lanes, as f32: unsigned × signed
    /// bytes summed in pairs to i16 (|15·127·2| and |128·127·2| fit), then
    /// pairs to i32.
    #[target_feature(enable = "avx2,fma")]
    fn block_dot(qx: __m256i, qy: __m256i) -> __m256 {
        let p16 = _mm256_maddubs_epi16(qx, qy);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)))
    }

    /// One Q4_1 row against `N` activation rows: each weight block is
    /// loaded and unpacked once for all of them. `N` is a constant so the
    /// accumulators live in registers.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn q4_1_rows<const N: usize>(w: &[BlockQ41], xs: &[&[BlockQ81]], out: &mut [f32]) {
        let mut rows: [&[BlockQ81]; N] = [&[]; N];
        for (row, x) in rows.iter_mut().zip(xs) {
            *row = &x[..w.len()];
        }
        let xs = rows;
        let mut acc = [_mm256_setzero_ps(); N];
        let mut mins = [0f32; N];
        for (i, b) in w.iter().enumerate() {
            let qx = unpack_q4(b);
            for j in 0..N {
                let y = &xs[j][i];
                acc[j] =
                    _mm256_fmadd_ps(_mm256_set1_ps(b.d * y.d), block_dot(qx, load_q8(y)), acc[j]);
                mins[j] += b.m * y.s;
            }
        }
        for j in 0..N {
            out[j] = hsum(acc[j]) + mins[j];
        }
    }

    /// One Q4_1 row against up to four activation rows.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_q4_1_x4(w: &[BlockQ41], xs: &[&[BlockQ81]], out: &mut [f32]) {
        match xs.len().min(out.len()) {
            0 => {}
            1 => q4_1_rows::<1>(w, xs, out),
            2 => q4_1_rows::<2>(w, xs, out),
            3 => q4_1_rows::<3>(w, xs, out),
            _ => q4_1_rows::<4>(w, xs, out),
        }
    }

    /// One Q8_0 row against `N` activation rows.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn q8_0_rows<const N: usize>(w: &[BlockQ80], xs: &[&[BlockQ81]], out: &mut [f32]) {
        let mut rows: [&[BlockQ81]; N] = [&[]; N];
        for (row, x) in rows.iter_mut().zip(xs) {
            *row = &x[..w.len()];
        }
        let xs = rows;
        let mut acc = [_mm256_setzero_ps(); N];
        for (i, b) in w.iter().enumerate() {
            // SAFETY: `qs` is 32 readable bytes; no alignment requirement.
            let qw = unsafe { _mm256_loadu_si256(b.qs.as_ptr().cast()) };
            // maddubs wants one unsigned operand: |w| times y with w's sign.
            let aw = _mm256_abs_epi8(qw);
            for j in 0..N {
                let y = &xs[j][i];
                let sy = _mm256_sign_epi8(load_q8(y), qw);
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(b.d * y.d), block_dot(aw, sy), acc[j]);
            }
        }
        for j in 0..N {
            out[j] = hsum(acc[j]);
        }
    }

    /// One Q8_0 row against up to four activation rows.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_q8_0_x4(w: &[BlockQ80], xs: &[&[BlockQ81]], out: &mut [f32]) {
        match xs.len().min(out.len()) {
            0 => {}
            1 => q8_0_rows::<1>(w, xs, out),
            2 => q8_0_rows::<2>(w, xs, out),
            3 => q8_0_rows::<3>(w, xs, out),
            _ => q8_0_rows::<4>(w, xs, out),
        }
    }
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

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512;

#[cfg(test)]
mod tests;
