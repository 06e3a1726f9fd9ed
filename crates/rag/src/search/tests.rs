//! Tests of the search: the examples that pin its contract, properties
//! against a naive sort of every score, and an ignored timing of
//! 100,000 × 384.

use proptest::prelude::*;

use super::*;

/// The obvious implementation: score all, sort all, keep `top_k`.
fn naive(query: &[f32], rows: &[Vec<f32>], top_k: usize, min_score: f32) -> Vec<(usize, f32)> {
    let Some(q) = unit_query(query) else {
        return Vec::new();
    };
    let mut all: Vec<(usize, f32)> = rows
        .iter()
        .enumerate()
        .filter(|(_, v)| v.len() == q.len())
        .map(|(i, v)| (i, dot(&q, v)))
        .filter(|(_, s)| !s.is_nan() && *s >= min_score)
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(top_k);
    all
}

fn unit(v: &[f32]) -> Vec<f32> {
    let mut v = v.to_vec();
    normalize(&mut v);
    v
}

#[test]
fn best_first_with_cosine_scores() {
    let rows = [
        unit(&[1.0, 0.0]),
        unit(&[1.0, 1.0]),
        unit(&[0.0, 1.0]),
        unit(&[-1.0, 0.0]),
    ];
    let found = search(
        &[2.0, 0.0],
        rows.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
        3,
        -1.0,
    );
    let ids: Vec<usize> = found.iter().map(|r| r.0).collect();
    assert_eq!(ids, [0, 1, 2]);
    assert!((found[0].1 - 1.0).abs() < 1e-6, "the query is normalized");
    assert!((found[1].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
}

#[test]
fn min_score_and_top_k_bound_the_answer() {
    let rows = [unit(&[1.0, 0.0]), unit(&[1.0, 1.0]), unit(&[0.0, 1.0])];
    let iter = || rows.iter().enumerate().map(|(i, v)| (i, v.as_slice()));
    assert_eq!(search(&[1.0, 0.0], iter(), 10, 0.5).len(), 2);
    assert_eq!(search(&[1.0, 0.0], iter(), 1, -1.0).len(), 1);
    assert!(search(&[1.0, 0.0], iter(), 0, -1.0).is_empty());
    assert!(search(&[1.0, 0.0], iter(), usize::MAX, f32::NAN).is_empty());
    assert_eq!(
        search(&[1.0, 0.0], iter(), usize::MAX, f32::NEG_INFINITY).len(),
        3
    );
}

#[test]
fn equal_scores_are_ordered_by_id_whatever_the_input_order() {
    let v = unit(&[1.0, 1.0]);
    let candidates = [(7u32, v.as_slice()), (3, v.as_slice()), (5, v.as_slice())];
    let found = search(&[1.0, 1.0], candidates, 2, 0.0);
    assert_eq!(found.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 5]);
    let reversed = candidates.into_iter().rev();
    assert_eq!(search(&[1.0, 1.0], reversed, 2, 0.0), found);
}

#[test]
fn nan_rows_and_other_dimensions_never_rank() {
    let good = unit(&[0.0, 1.0]);
    let nan = [f32::NAN, 1.0];
    let long = [1.0, 0.0, 0.0];
    let candidates = [
        (0, nan.as_slice()),
        (1, long.as_slice()),
        (2, good.as_slice()),
    ];
    let found = search(&[0.0, 1.0], candidates, 5, f32::NEG_INFINITY);
    assert_eq!(found.iter().map(|r| r.0).collect::<Vec<_>>(), [2]);
}

#[test]
fn a_query_without_direction_matches_nothing() {
    let row = unit(&[1.0, 0.0]);
    for q in [&[][..], &[0.0, 0.0], &[f32::NAN, 1.0]] {
        assert!(search(q, [(0, row.as_slice())], 5, -1.0).is_empty());
        assert!(search_slice(q, &row, 5, -1.0).is_empty());
    }
}

#[test]
fn search_slice_ignores_a_trailing_partial_row_and_goes_parallel() {
    let matrix = [1.0, 0.0, 0.0, 1.0, 1.0];
    assert_eq!(search_slice(&[1.0, 0.0], &matrix, 5, -1.0).len(), 2);
    let rows: Vec<Vec<f32>> = (0..100).map(|i| unit(&[i as f32, 1.0])).collect();
    let flat: Vec<f32> = rows.concat();
    let parallel = search_rows(&[3.0, 1.0], &flat, 7, -1.0, 1);
    assert_eq!(parallel, naive(&[3.0, 1.0], &rows, 7, -1.0));
    assert_eq!(parallel[0].0, 3);
}

/// Components from a small set, so equal scores happen; some rows NaN.
fn row(dim: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(
        prop_oneof![
            20 => (-2i8..=2).prop_map(f32::from),
            1 => Just(f32::NAN),
        ],
        dim,
    )
}

fn case() -> impl Strategy<Value = (Vec<f32>, Vec<Vec<f32>>)> {
    (1usize..6).prop_flat_map(|dim| (row(dim), prop::collection::vec(row(dim), 0..120)))
}

proptest! {
    #[test]
    fn search_is_the_naive_top_k(
        (query, rows) in case(),
        top_k in 0usize..20,
        min_score in prop_oneof![Just(f32::NEG_INFINITY), -1.0f32..1.0],
    ) {
        let expected = naive(&query, &rows, top_k, min_score);
        let by_iter = search(&query, rows.iter().enumerate().map(|(i, v)| (i, v.as_slice())), top_k, min_score);
        prop_assert_eq!(&by_iter, &expected);
        let flat = rows.concat();
        for parallel_rows in [1, 7, usize::MAX] {
            prop_assert_eq!(&search_rows(&query, &flat, top_k, min_score, parallel_rows), &expected);
        }
    }
}

/// A cheap deterministic generator (no `rand` needed for a timing).
fn pseudo_random(n: usize, mut state: u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// `cargo test -p offgrid-rag --release -- --ignored --nocapture
/// search_slice_timing`: the best of five searches of 100,000 normalized
/// 384-dimension rows.
#[test]
#[ignore = "a timing, not a check: run it by hand"]
fn search_slice_timing() {
    const ROWS: usize = 100_000;
    const DIM: usize = 384;
    let mut matrix = pseudo_random(ROWS * DIM, 0x9e37_79b9_7f4a_7c15);
    for row in matrix.chunks_exact_mut(DIM) {
        normalize(row);
    }
    let query = pseudo_random(DIM, 42);
    let mut best = std::time::Duration::MAX;
    let mut found = Vec::new();
    for _ in 0..5 {
        let start = std::time::Instant::now();
        found = search_slice(&query, &matrix, 50, -1.0);
        best = best.min(start.elapsed());
    }
    println!(
        "search_slice: {ROWS} x {DIM}, top 50: best of 5 {:.2} ms on {} threads",
        best.as_secs_f64() * 1e3,
        rayon::current_num_threads()
    );
    assert_eq!(found.len(), 50);
}
