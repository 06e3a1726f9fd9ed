//! AVX-512 VNNI kernels for batches of activation rows (a batched decode
//! step or a prompt chunk).
//!
//! The AVX2 kernel spends about nine instructions per block of 32
//! multiply-adds and activation row (`maddubs`, `madd`, a scalar scale,
//! a broadcast, the scalar minimum term...), which made each extra row of
//! a batch cost almost half a decode step. Here one 512-bit register holds
//! two activation rows' blocks side by side, `vpdpbusd` does the
//! unsigned × signed byte products and their sums by four in one
//! instruction, and the per-row scales and minimum terms of sixteen rows
//! are computed as one vector per weight block.
//!
//! The arithmetic is the AVX2 and portable kernels', in the same order:
//! each row's eight lanes hold the same exact integer sums, get the same
//! `fma(d·dx, Σ, acc)`, and are added up by [`super::hsum_lanes`]'s order;
//! the minimum term is the same sequence of separate multiplies and adds.
//! So the results are bit-identical (tested in `quant::tests`).

use std::arch::x86_64::*;

use super::{BlockQ41, BlockQ80, BlockQ81};

/// Activation rows per group: eight pairs, one pair per register.
pub(super) const GROUP: usize = 16;
const PAIRS: usize = GROUP / 2;

/// One block of two activation rows: row `2p` in bytes 0..32, `2p + 1` in
/// 32..64.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Pair([i8; 64]);

/// One float per row of a group.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Lanes([f32; GROUP]);

/// Quantized activation rows repacked for these kernels: per group of
/// [`GROUP`] rows and per block, the rows' bytes two by two, and their
/// scales and sums as one vector each. Rows past the end are zeros.
pub(super) struct Packed {
    per_row: usize,
    rows: usize,
    /// `[group][block][pair]`.
    qs: Vec<Pair>,
    /// `[group][block]`: each row's scale `dx`.
    d: Vec<Lanes>,
    /// `[group][block]`: each row's `dx · Σ p`.
    s: Vec<Lanes>,
}

impl Packed {
    /// Repacks `rows` rows of `per_row` blocks each.
    pub(super) fn new(xq: &[BlockQ81], per_row: usize, rows: usize) -> Self {
        let groups = rows.div_ceil(GROUP);
        let mut packed = Packed {
            per_row,
            rows,
            qs: vec![Pair([0; 64]); groups * per_row * PAIRS],
            d: vec![Lanes([0.0; GROUP]); groups * per_row],
            s: vec![Lanes([0.0; GROUP]); groups * per_row],
        };
        if per_row == 0 {
            return packed;
        }
        for (r, row) in xq.chunks_exact(per_row).take(rows).enumerate() {
            let (g, k) = (r / GROUP, r % GROUP);
            for (i, b) in row.iter().enumerate() {
                let gb = g * per_row + i;
                let half = (k % 2) * 32;
                packed.qs[gb * PAIRS + k / 2].0[half..half + 32].copy_from_slice(&b.qs);
                packed.d[gb].0[k] = b.d;
                packed.s[gb].0[k] = b.s;
            }
        }
        packed
    }

    /// Number of groups.
    pub(super) fn groups(&self) -> usize {
        self.rows.div_ceil(GROUP)
    }

    /// Rows in group `g`.
    pub(super) fn rows_in(&self, g: usize) -> usize {
        (self.rows - g * GROUP).min(GROUP)
    }

    /// Group `g`'s blocks, scales and sums.
    fn group(&self, g: usize) -> (&[Pair], &[Lanes], &[Lanes]) {
        let blocks = g * self.per_row..(g + 1) * self.per_row;
        (
            &self.qs[blocks.start * PAIRS..blocks.end * PAIRS],
            &self.d[blocks.clone()],
            &self.s[blocks],
        )
    }
}

/// For each pair `p`: the permutation that spreads lane `2p` over lanes
/// 0..8 and lane `2p + 1` over lanes 8..16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vnni")]
fn spread<const P: usize>() -> [__m512i; P] {
    let mut idx = [_mm512_setzero_si512(); P];
    for (p, v) in idx.iter_mut().enumerate() {
        let (a, b) = (2 * p as i32, 2 * p as i32 + 1);
        *v = _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
    }
    idx
}

/// Each row's total: its eight lanes summed in the AVX2 kernel's order
/// (`hsum_lanes`: lanes `i` and `i + 4`, then `(s0 + s2) + (s1 + s3)`),
/// both rows of a register at once, plus its minimum term.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vnni")]
fn finish<const P: usize>(acc: &[__m512; P], mins: __m512, out: &mut [f32]) {
    let mut m = [0f32; GROUP];
    // SAFETY: `m` is 16 writable floats; no alignment requirement.
    unsafe { _mm512_storeu_ps(m.as_mut_ptr(), mins) };
    for (p, acc) in acc.iter().enumerate() {
        // Swap the 128-bit halves of each row: lane i meets lane i + 4.
        let s = _mm512_add_ps(*acc, _mm512_shuffle_f32x4::<0b10_11_00_01>(*acc, *acc));
        // Lane 0 meets lane 2, lane 1 lane 3.
        let s = _mm512_add_ps(s, _mm512_permute_ps::<0b01_00_11_10>(s));
        // (s0 + s2) + (s1 + s3).
        let s = _mm512_add_ps(s, _mm512_permute_ps::<0b10_11_00_01>(s));
        let mut lanes = [0f32; GROUP];
        // SAFETY: `lanes` is 16 writable floats; no alignment requirement.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), s) };
        for k in 0..2 {
            if let Some(o) = out.get_mut(2 * p + k) {
                *o = lanes[8 * k] + m[2 * p + k];
            }
        }
    }
}

/// One Q4_1 weight row against the `2·P` rows of group `g`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vnni")]
fn q4_1_group<const P: usize>(w: &[BlockQ41], x: &Packed, g: usize, out: &mut [f32]) {
    let (qs, d, s) = x.group(g);
    let idx = spread::<P>();
    let low = _mm512_set1_epi8(0x0F);
    // Shift counts per 16-bit lane: 0 in the 128-bit lanes that take the
    // low nibbles (elements 0..16), 4 in those that take the high ones.
    let shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
    let shifts = _mm512_or_si512(shifts, _mm512_slli_epi64::<16>(shifts));
    let shifts = _mm512_or_si512(shifts, _mm512_slli_epi64::<32>(shifts));
    let mut acc = [_mm512_setzero_ps(); P];
    let mut mins = _mm512_setzero_ps();
    for ((b, pairs), (d, s)) in w.iter().zip(qs.chunks_exact(PAIRS)).zip(d.iter().zip(s)) {
        // The 16 bytes in all four 128-bit lanes, shifted to [low nibbles,
        // high nibbles] twice: the block's 32 weights for each row of a
        // pair.
        // SAFETY: `qs` is 16 readable bytes; no alignment requirement.
        let q = _mm512_broadcast_i32x4(unsafe { _mm_loadu_si128(b.qs.as_ptr().cast()) });
        let qx = _mm512_and_si512(_mm512_srlv_epi16(q, shifts), low);
        // SAFETY: `Lanes` is 64 bytes, 64-aligned.
        let (dv, sv) = unsafe { (_mm512_load_ps(d.0.as_ptr()), _mm512_load_ps(s.0.as_ptr())) };
        let scales = _mm512_mul_ps(_mm512_set1_ps(b.d), dv);
        mins = _mm512_add_ps(mins, _mm512_mul_ps(_mm512_set1_ps(b.m), sv));
        for p in 0..P {
            // SAFETY: `Pair` is 64 bytes, 64-aligned.
            let y = unsafe { _mm512_load_si512(pairs[p].0.as_ptr().cast()) };
            let dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), qx, y));
            let scale = _mm512_permutexvar_ps(idx[p], scales);
            acc[p] = _mm512_fmadd_ps(scale, dot, acc[p]);
        }
    }
    finish(&acc, mins, out);
}

/// One Q8_0 weight row against the `2·P` rows of group `g`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vnni")]
fn q8_0_group<const P: usize>(w: &[BlockQ80], x: &Packed, g: usize, out: &mut [f32]) {
    let (qs, d, _) = x.group(g);
    let idx = spread::<P>();
    let mut acc = [_mm512_setzero_ps(); P];
    for ((b, pairs), d) in w.iter().zip(qs.chunks_exact(PAIRS)).zip(d) {
        // SAFETY: `qs` is 32 readable bytes; no alignment requirement.
        let qw = _mm512_broadcast_i64x4(unsafe { _mm256_loadu_si256(b.qs.as_ptr().cast()) });
        // `vpdpbusd` wants unsigned weights: |w| times y with w's sign.
        let negative = _mm512_movepi8_mask(qw);
        let aw = _mm512_abs_epi8(qw);
        // SAFETY: `Lanes` is 64 bytes, 64-aligned.
        let scales = _mm512_mul_ps(_mm512_set1_ps(b.d), unsafe { _mm512_load_ps(d.0.as_ptr()) });
        for p in 0..P {
            // SAFETY: `Pair` is 64 bytes, 64-aligned.
            let y = unsafe { _mm512_load_si512(pairs[p].0.as_ptr().cast()) };
            let sy = _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y);
            let dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sy));
            let scale = _mm512_permutexvar_ps(idx[p], scales);
            acc[p] = _mm512_fmadd_ps(scale, dot, acc[p]);
        }
    }
    finish(&acc, _mm512_setzero_ps(), out);
}

/// Expands to a match on the number of pairs calling `$f::<P>`.
macro_rules! by_pairs {
    ($pairs:expr, $f:ident($($arg:expr),*)) => {
        match $pairs {
            0 => {}
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            7 => $f::<7>($($arg),*),
            _ => $f::<8>($($arg),*),
        }
    };
}

/// One Q4_1 weight row against every row of `x`: `out[j]` for row `j`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vnni")]
pub(super) fn dot_q4_1(w: &[BlockQ41], x: &Packed, out: &mut [f32]) {
    let w = &w[..x.per_row.min(w.len())];
    for (g, out) in (0..x.groups()).zip(out.chunks_mut(GROUP)) {
        by_pairs!(x.rows_in(g).div_ceil(2), q4_1_group(w, x, g, out));
    }
}

/// One Q8_0 weight row against every row of `x`: `out[j]` for row `j`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vnni")]
pub(super) fn dot_q8_0(w: &[BlockQ80], x: &Packed, out: &mut [f32]) {
    let w = &w[..x.per_row.min(w.len())];
    for (g, out) in (0..x.groups()).zip(out.chunks_mut(GROUP)) {
        by_pairs!(x.rows_in(g).div_ceil(2), q8_0_group(w, x, g, out));
    }
}
