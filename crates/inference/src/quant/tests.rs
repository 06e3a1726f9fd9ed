//! Unit tests of the quantized kernels: against candle's encoding and a
//! plain product, and every kernel level against the portable one.

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
    let w = Tensor::from_vec(noise(7, rows * cols), (rows, cols), &Device::Cpu).expect("tensor");
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
fn every_level_gives_the_same_products_for_any_batch_size() {
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let (rows, cols) = (20, 128);
        let (w, _) = matrix(rows, cols, dtype);
        let per_row = cols / BLOCK;
        for m in 1..=9 {
            let x = noise(m as u64, m * cols);
            let mut xq = vec![ZERO_Q81; m * per_row];
            for (row, q) in x.chunks_exact(cols).zip(xq.chunks_exact_mut(per_row)) {
                quantize_row_q8_1(row, q);
            }
            for r in 0..rows {
                let mut portable = vec![0f32; m];
                w.dot_rows(Level::Portable, r, &xq, &mut portable);
                let mut simd = vec![0f32; m];
                w.dot_rows(crate::simd::level(), r, &xq, &mut simd);
                assert_eq!(simd, portable, "{dtype:?} m={m} r={r}: bit-identical");
            }
        }
    }
}

#[test]
fn rounding_is_to_nearest_ties_to_even() {
    for i in -1300..=1300 {
        let x = i as f32 / 10.0;
        for v in [x, x + 0.05, -x - 0.05, x + 0.5] {
            assert_eq!(round_ties_even(v), v.round_ties_even(), "{v}");
        }
    }
    assert_eq!(round_ties_even(2.5), 2.0);
    assert_eq!(round_ties_even(-3.5), -4.0);
    assert_eq!(round_ties_even(126.99), 127.0);
}

#[test]
fn bad_shapes_are_errors() {
    assert!(QuantMatrix::from_q4_1(2, 33, &[0; 40]).is_err());
    assert!(QuantMatrix::from_q4_1(2, 32, &[0; 39]).is_err());
    assert!(QuantMatrix::from_q4_1(2, 32, &[0; 40]).is_ok());
    assert!(QuantMatrix::from_q8_0(2, 32, &[0; 67]).is_err());
    assert!(QuantMatrix::from_q8_0(2, 32, &[0; 68]).is_ok());
}

#[test]
fn every_level_gives_the_same_matmul_for_any_batch_size() {
    use crate::simd::Level;
    let best = crate::simd::level();
    eprintln!("best level here: {}", best.name());
    assert!(w_empty_is_empty(), "no rows in, no rows out");
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        // 160 columns: five blocks; 37 rows: uneven thread chunks.
        let (rows, cols) = (37, 160);
        let (w, _) = matrix(rows, cols, dtype);
        // Across group edges (16 rows), odd counts (half-filled pairs).
        for m in [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 40] {
            let x = noise(100 + m as u64, m * cols);
            let portable = w.matmul_at(Level::Portable, &x, m);
            assert_eq!(portable.len(), m * rows);
            for level in [Level::Avx2, Level::Avx512] {
                if level > best {
                    eprintln!("{}: not on this CPU, not compared", level.name());
                    continue;
                }
                let got = w.matmul_at(level, &x, m);
                assert!(
                    got == portable,
                    "{dtype:?} m={m}: {} differs from portable",
                    level.name()
                );
            }
        }
    }
}

/// A product with no activation rows is empty (it used to panic).
fn w_empty_is_empty() -> bool {
    let (w, _) = matrix(4, 32, GgmlDType::Q4_1);
    w.matmul(&[], 0).is_empty()
}
