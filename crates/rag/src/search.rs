//! Brute-force nearest neighbours by cosine similarity: every candidate
//! is scored, a bounded min-heap keeps the best `top_k`. Two entry points:
//! [`search`] over any iterator of `(id, vector)` and [`search_slice`] over
//! a contiguous `n × dim` matrix, split across threads with rayon when it
//! is large.
//!
//! Both rank by the dot product of the query (normalized here) with each
//! candidate, which must already be normalized ([`crate::normalize`] before
//! [`crate::encode`]), so the score is the cosine similarity. Results come
//! best first; equal scores are ordered by id (smaller first), so the
//! answer does not depend on the order candidates come in. A NaN score
//! never ranks, and nothing ranks below `min_score` (a NaN `min_score`
//! lets nothing through).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::vector::{dot, normalize};

/// Rows from which [`search_slice`] splits the work across threads.
const PARALLEL_ROWS: usize = 8192;

/// Rows per parallel task: large enough to amortise a heap per task.
const ROWS_PER_TASK: usize = 4096;

/// The capacity a heap starts with, however large `top_k` is.
const INITIAL_HEAP: usize = 256;

/// A scored candidate, ordered from worst to best: by score, then by id
/// reversed (the smaller id is the better of two equal scores).
#[derive(Debug, Clone, Copy)]
struct Ranked<Id> {
    score: f32,
    id: Id,
}

impl<Id: Ord> Ord for Ranked<Id> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl<Id: Ord> PartialOrd for Ranked<Id> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<Id: Ord> PartialEq for Ranked<Id> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<Id: Ord> Eq for Ranked<Id> {}

/// The best `k` candidates offered so far: a min-heap whose top is the
/// worst one kept.
struct TopK<Id> {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked<Id>>>,
    min_score: f32,
}

impl<Id: Ord> TopK<Id> {
    fn new(k: usize, min_score: f32, expected: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(expected).min(INITIAL_HEAP)),
            min_score,
        }
    }

    /// Keeps `id` if it scores at least `min_score` (so never when NaN)
    /// and among the best `k`.
    fn offer(&mut self, id: Id, score: f32) {
        let passes = matches!(
            score.partial_cmp(&self.min_score),
            Some(Ordering::Greater | Ordering::Equal)
        );
        if self.k == 0 || !passes {
            return;
        }
        let candidate = Ranked { score, id };
        if self.heap.len() < self.k {
            self.heap.push(Reverse(candidate));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && candidate > worst.0
        {
            *worst = Reverse(candidate);
        }
    }

    fn merge(mut self, other: TopK<Id>) -> Self {
        for Reverse(r) in other.heap {
            self.offer(r.id, r.score);
        }
        self
    }

    /// Best first.
    fn into_sorted(self) -> Vec<(Id, f32)> {
        let mut all: Vec<Ranked<Id>> = self.heap.into_iter().map(|Reverse(r)| r).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.into_iter().map(|r| (r.id, r.score)).collect()
    }
}

/// The unit-length copy of `query`, or `None` when it has no direction
/// (empty, all zeros, not finite): such a query matches nothing.
fn unit_query(query: &[f32]) -> Option<Vec<f32>> {
    let mut q = query.to_vec();
    (!q.is_empty() && normalize(&mut q)).then_some(q)
}

/// The `top_k` candidates most similar to `query` scoring at least
/// `min_score`, best first, as `(id, cosine similarity)`.
///
/// A candidate whose dimension differs from the query's is skipped: it
/// cannot be compared, and one bad row should not fail a search (storage
/// checks the dimension when it writes, with [`crate::decode_into`]). A
/// query without a direction (empty, zero, NaN) matches nothing. Any
/// `top_k` is safe; memory grows with the results kept, not with `top_k`.
pub fn search<'a, Id, I>(
    query: &[f32],
    candidates: I,
    top_k: usize,
    min_score: f32,
) -> Vec<(Id, f32)>
where
    Id: Ord,
    I: IntoIterator<Item = (Id, &'a [f32])>,
{
    let Some(q) = unit_query(query) else {
        return Vec::new();
    };
    let mut top = TopK::new(top_k, min_score, INITIAL_HEAP);
    for (id, vector) in candidates {
        if vector.len() == q.len() {
            top.offer(id, dot(&q, vector));
        }
    }
    top.into_sorted()
}

/// [`search`] over a contiguous row-major matrix of `n` rows of
/// `query.len()` components each; the ids are row indices. Large matrices
/// are scored on rayon's pool. A trailing partial row (when
/// `matrix.len()` is not a multiple of the dimension) is ignored.
pub fn search_slice(
    query: &[f32],
    matrix: &[f32],
    top_k: usize,
    min_score: f32,
) -> Vec<(usize, f32)> {
    search_rows(query, matrix, top_k, min_score, PARALLEL_ROWS)
}

/// [`search_slice`], going parallel from `parallel_rows` rows (tests
/// lower it to cover the parallel path on small inputs).
fn search_rows(
    query: &[f32],
    matrix: &[f32],
    top_k: usize,
    min_score: f32,
    parallel_rows: usize,
) -> Vec<(usize, f32)> {
    let Some(q) = unit_query(query) else {
        return Vec::new();
    };
    let dim = q.len();
    let rows = matrix.len() / dim;
    let matrix = &matrix[..rows * dim];
    let score_rows = |first_row: usize, block: &[f32]| {
        let mut top = TopK::new(top_k, min_score, block.len() / dim);
        for (i, row) in block.chunks_exact(dim).enumerate() {
            top.offer(first_row + i, dot(&q, row));
        }
        top
    };
    let top = if rows < parallel_rows {
        score_rows(0, matrix)
    } else {
        let per_task = ROWS_PER_TASK.min(parallel_rows).max(1);
        matrix
            .par_chunks(per_task * dim)
            .enumerate()
            .map(|(task, block)| score_rows(task * per_task, block))
            .reduce(|| TopK::new(top_k, min_score, 0), TopK::merge)
    };
    top.into_sorted()
}

#[cfg(test)]
mod tests;
