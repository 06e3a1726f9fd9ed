//! Embedding vectors as stored: little-endian `f32` blobs (what SQLite
//! keeps), their decoding with a length check, normalization to unit
//! length and the dot product the search ranks by.

use thiserror::Error;

/// Bytes per stored component.
const F32_BYTES: usize = std::mem::size_of::<f32>();

/// A stored blob that is not the vector it should be: a sign of a corrupt
/// row or of vectors from another model, never of user input. Not meant
/// for users' eyes; the server logs it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlobError {
    /// The blob's length is not a whole number of `f32`s.
    #[error("embedding blob of {0} bytes is not a whole number of 4-byte floats")]
    Length(usize),
    /// The blob holds a vector of another dimension than expected.
    #[error("embedding blob has {found} dimensions, expected {expected}")]
    Dimension {
        /// The dimension asked for.
        expected: usize,
        /// The dimension the blob holds.
        found: usize,
    },
}

/// The blob of `vector`: each component's 4 little-endian bytes, in order.
pub fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The vector of a blob made by [`encode`], of whatever dimension it holds.
///
/// # Errors
/// [`BlobError::Length`] when the length is not a multiple of 4.
pub fn decode(blob: &[u8]) -> Result<Vec<f32>, BlobError> {
    let mut out = Vec::with_capacity(blob.len() / F32_BYTES);
    append(blob, &mut out)?;
    Ok(out)
}

/// Appends the vector of `blob`, which must have exactly `dim` components,
/// to `out`: builds the contiguous `n × dim` matrix [`crate::search_slice`]
/// reads, one row per blob, without a vector per row. On error `out` is
/// unchanged, so the rows stay aligned.
///
/// # Errors
/// [`BlobError::Length`] or [`BlobError::Dimension`].
pub fn decode_into(blob: &[u8], dim: usize, out: &mut Vec<f32>) -> Result<(), BlobError> {
    let found = components(blob)?;
    if found != dim {
        return Err(BlobError::Dimension {
            expected: dim,
            found,
        });
    }
    append(blob, out)
}

/// How many `f32`s `blob` holds.
fn components(blob: &[u8]) -> Result<usize, BlobError> {
    if blob.len().is_multiple_of(F32_BYTES) {
        Ok(blob.len() / F32_BYTES)
    } else {
        Err(BlobError::Length(blob.len()))
    }
}

/// Appends every component of `blob` to `out` (checked first).
fn append(blob: &[u8], out: &mut Vec<f32>) -> Result<(), BlobError> {
    components(blob)?;
    out.extend(
        blob.chunks_exact(F32_BYTES)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    Ok(())
}

/// Scales `vector` to unit length, so a dot product is the cosine
/// similarity. Returns `false`, leaving it unchanged, when it cannot be:
/// all zeros, or a non-finite length (a NaN or infinite component).
pub fn normalize(vector: &mut [f32]) -> bool {
    let norm = dot(vector, vector).sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return false;
    }
    let inverse = 1.0 / norm;
    for x in vector.iter_mut() {
        *x *= inverse;
    }
    true
}

/// Lanes of the dot product's accumulator: independent sums the compiler
/// turns into SIMD registers (two AVX registers of 8).
const LANES: usize = 16;

/// The dot product of two vectors of the same length (components past the
/// shorter one's end are ignored). Summed in 16 independent partial
/// sums, so it vectorizes; the result is deterministic for given inputs.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0;
    for (x, y) in a_rest.iter().zip(b_rest) {
        tail += x * y;
    }
    // Pairwise, in a fixed order.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0] + tail
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn decode_inverts_encode_bit_for_bit(bits in prop::collection::vec(any::<u32>(), 0..100)) {
            let v: Vec<f32> = bits.iter().copied().map(f32::from_bits).collect();
            let blob = encode(&v);
            prop_assert_eq!(blob.len(), 4 * v.len());
            let back = decode(&blob).map(|d| d.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            prop_assert_eq!(back, Ok(bits.clone()));
            let mut out = Vec::new();
            prop_assert_eq!(decode_into(&blob, v.len(), &mut out), Ok(()));
            prop_assert_eq!(out.len(), v.len());
        }

        #[test]
        fn only_multiples_of_four_bytes_decode(blob in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode(&blob).is_ok(), blob.len().is_multiple_of(4));
        }
    }

    #[test]
    fn encode_is_little_endian_and_decode_inverts_it() {
        let v = [1.0f32, -2.5, 0.0];
        let blob = encode(&v);
        assert_eq!(&blob[..4], &1.0f32.to_le_bytes());
        assert_eq!(&blob[4..8], &[0x00, 0x00, 0x20, 0xc0]);
        assert_eq!(blob.len(), 12);
        assert_eq!(decode(&blob), Ok(v.to_vec()));
        assert_eq!(decode(&[]), Ok(vec![]));
    }

    #[test]
    fn a_blob_of_the_wrong_length_is_refused() {
        assert_eq!(decode(&[0; 7]), Err(BlobError::Length(7)));
        let mut out = vec![9.0];
        let blob = encode(&[1.0, 2.0]);
        assert_eq!(
            decode_into(&blob, 3, &mut out),
            Err(BlobError::Dimension {
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            decode_into(&blob[..5], 2, &mut out),
            Err(BlobError::Length(5))
        );
        assert_eq!(out, vec![9.0], "unchanged on error");
        assert_eq!(decode_into(&blob, 2, &mut out), Ok(()));
        assert_eq!(out, vec![9.0, 1.0, 2.0]);
    }

    #[test]
    fn normalize_gives_unit_length_and_refuses_zero_and_nan() {
        let mut v = [3.0f32, 4.0];
        assert!(normalize(&mut v));
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = [0.0f32; 4];
        assert!(!normalize(&mut zero));
        assert_eq!(zero, [0.0; 4]);
        let mut nan = [f32::NAN, 1.0];
        assert!(!normalize(&mut nan));
        assert!(nan[0].is_nan() && nan[1] == 1.0);
    }

    #[test]
    fn dot_matches_the_plain_sum_for_every_length() {
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-4, "n = {n}");
        }
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[1.0]), 1.0);
    }
}
