//! The key/value cache: fixed-size blocks of positions under one memory
//! budget per engine.
//!
//! Each sequence owns a list of blocks of [`BLOCK_POSITIONS`] positions
//! (every layer's keys and values for those positions, in f16 as
//! llama.cpp keeps them). Blocks are allocated as the sequence grows, so
//! sequences of different lengths never fragment one big buffer, and are
//! freed when it ends. What bounds memory is the [`KvBudget`]: a sequence
//! first *reserves* the bytes it may need (prompt plus the tokens it may
//! generate), and the engine starts a sequence only when its reservation
//! fits; otherwise it waits in the queue. Nothing is allocated beyond a
//! reservation, so the cache can never take more than the budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use half::f16;

/// Positions per block.
pub const BLOCK_POSITIONS: usize = 16;

/// The shape of one model's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLayout {
    /// Transformer layers.
    pub layers: usize,
    /// Key/value heads per layer.
    pub kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
}

impl KvLayout {
    /// f16 values in one block: keys and values of every layer and head
    /// for [`BLOCK_POSITIONS`] positions.
    pub fn block_values(&self) -> usize {
        self.layers * 2 * self.kv_heads * BLOCK_POSITIONS * self.head_dim
    }

    /// Bytes of one block.
    pub fn block_bytes(&self) -> usize {
        self.block_values() * std::mem::size_of::<f16>()
    }

    /// Bytes the cache takes per position (all layers, keys and values).
    pub fn bytes_per_position(&self) -> usize {
        self.block_bytes() / BLOCK_POSITIONS
    }

    /// Blocks that hold `positions` positions.
    pub fn blocks_for(positions: usize) -> usize {
        positions.div_ceil(BLOCK_POSITIONS)
    }

    /// Offset of `(layer, keys or values, head)`'s first position within
    /// a block; positions follow each other `head_dim` apart.
    fn offset(&self, layer: usize, value: bool, head: usize) -> usize {
        ((layer * 2 + usize::from(value)) * self.kv_heads + head) * BLOCK_POSITIONS * self.head_dim
    }
}

#[derive(Debug)]
struct BudgetInner {
    /// `None`: unlimited (a model used on its own, outside an engine).
    limit: Option<usize>,
    reserved: Mutex<usize>,
    /// Bytes actually allocated (at most `reserved`).
    allocated: AtomicUsize,
}

/// Bytes of KV cache the sequences of one engine may reserve, all models
/// together. Cheap to clone; clones share the budget.
#[derive(Debug, Clone)]
pub struct KvBudget(Arc<BudgetInner>);

impl KvBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self::with_limit(Some(bytes))
    }

    /// No limit: for a model driven directly, one sequence at a time.
    pub fn unlimited() -> Self {
        Self::with_limit(None)
    }

    fn with_limit(limit: Option<usize>) -> Self {
        KvBudget(Arc::new(BudgetInner {
            limit,
            reserved: Mutex::new(0),
            allocated: AtomicUsize::new(0),
        }))
    }

    /// The limit in bytes (`None`: unlimited).
    pub fn limit(&self) -> Option<usize> {
        self.0.limit
    }

    /// Bytes reserved by live sequences.
    pub fn reserved(&self) -> usize {
        *self.lock()
    }

    /// Bytes allocated by live sequences (at most [`KvBudget::reserved`]).
    pub fn allocated(&self) -> usize {
        self.0.allocated.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        // A plain count: usable whatever a panicking holder left.
        self.0
            .reserved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `bytes` more, all or nothing.
    fn take(&self, bytes: usize) -> bool {
        let mut reserved = self.lock();
        let Some(total) = reserved.checked_add(bytes) else {
            return false;
        };
        if self.0.limit.is_some_and(|limit| total > limit) {
            return false;
        }
        *reserved = total;
        true
    }

    fn give_back(&self, bytes: usize) {
        let mut reserved = self.lock();
        *reserved = reserved.saturating_sub(bytes);
    }

    /// Whether a sequence of `positions` positions of `layout` could ever
    /// fit (the whole budget, with nothing else reserved).
    pub fn could_fit(&self, layout: &KvLayout, positions: usize) -> bool {
        let bytes = KvLayout::blocks_for(positions).saturating_mul(layout.block_bytes());
        self.0.limit.is_none_or(|limit| bytes <= limit)
    }

    /// Reserves room for `positions` positions of `layout`; `None` when the
    /// budget cannot hold them now.
    pub fn reserve(&self, layout: KvLayout, positions: usize) -> Option<KvSeq> {
        let blocks = KvLayout::blocks_for(positions);
        let bytes = blocks.checked_mul(layout.block_bytes())?;
        if !self.take(bytes) {
            return None;
        }
        Some(KvSeq {
            budget: self.clone(),
            layout,
            reserved_blocks: blocks,
            blocks: Vec::with_capacity(blocks),
            len: 0,
        })
    }
}

/// The cache was asked to grow beyond what its budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the key/value cache is full: {positions} positions do not fit its budget")]
pub struct KvFull {
    /// Positions asked for.
    pub positions: usize,
}

/// One sequence's cache: its blocks and how many positions they hold.
/// Gives its reservation back to the budget when dropped.
#[derive(Debug)]
pub struct KvSeq {
    budget: KvBudget,
    layout: KvLayout,
    reserved_blocks: usize,
    blocks: Vec<Box<[f16]>>,
    len: usize,
}

impl KvSeq {
    /// Positions written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions it may hold without reserving more.
    pub fn capacity(&self) -> usize {
        self.reserved_blocks * BLOCK_POSITIONS
    }

    /// Its layout.
    pub fn layout(&self) -> &KvLayout {
        &self.layout
    }

    /// Forgets every position (keeps the blocks and the reservation).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Makes room for positions up to `positions`, reserving more from the
    /// budget when needed (which only an unlimited or roomy budget grants).
    pub fn grow(&mut self, positions: usize) -> Result<(), KvFull> {
        let blocks = KvLayout::blocks_for(positions);
        if blocks > self.reserved_blocks {
            let more = (blocks - self.reserved_blocks)
                .checked_mul(self.layout.block_bytes())
                .ok_or(KvFull { positions })?;
            if !self.budget.take(more) {
                return Err(KvFull { positions });
            }
            self.reserved_blocks = blocks;
        }
        while self.blocks.len() < blocks {
            self.blocks
                .push(vec![f16::ZERO; self.layout.block_values()].into_boxed_slice());
            self.budget
                .0
                .allocated
                .fetch_add(self.layout.block_bytes(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Marks positions `..len` as written (after [`KvSeq::grow`] and the
    /// writes of every layer).
    pub(crate) fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.blocks.len() * BLOCK_POSITIONS);
        self.len = len;
    }

    /// Writes one position's key and value for `(layer, head)`.
    pub(crate) fn write(&mut self, layer: usize, head: usize, pos: usize, k: &[f32], v: &[f32]) {
        let d = self.layout.head_dim;
        let (b, p) = (pos / BLOCK_POSITIONS, pos % BLOCK_POSITIONS);
        let ko = self.layout.offset(layer, false, head) + p * d;
        let vo = self.layout.offset(layer, true, head) + p * d;
        let block = &mut self.blocks[b];
        for (dst, src) in block[ko..ko + d].iter_mut().zip(k) {
            *dst = f16::from_f32(*src);
        }
        for (dst, src) in block[vo..vo + d].iter_mut().zip(v) {
            *dst = f16::from_f32(*src);
        }
    }

    /// The keys (`value == false`) or values of `(layer, head)` for the
    /// positions of block `b`: `BLOCK_POSITIONS × head_dim`, row per
    /// position.
    pub(crate) fn block_rows(&self, b: usize, layer: usize, value: bool, head: usize) -> &[f16] {
        let o = self.layout.offset(layer, value, head);
        &self.blocks[b][o..o + BLOCK_POSITIONS * self.layout.head_dim]
    }
}

impl Drop for KvSeq {
    fn drop(&mut self) {
        let block = self.layout.block_bytes();
        self.budget
            .0
            .allocated
            .fetch_sub(self.blocks.len() * block, Ordering::Relaxed);
        self.budget.give_back(self.reserved_blocks * block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: KvLayout = KvLayout {
        layers: 2,
        kv_heads: 3,
        head_dim: 4,
    };

    #[test]
    fn reservations_are_bounded_by_the_budget_and_given_back() {
        let block = LAYOUT.block_bytes();
        assert_eq!(block, 2 * 2 * 3 * 16 * 4 * 2);
        let budget = KvBudget::new(3 * block);
        let a = budget.reserve(LAYOUT, 17).expect("two blocks fit");
        assert_eq!(a.capacity(), 32);
        assert_eq!(budget.reserved(), 2 * block);
        assert!(budget.reserve(LAYOUT, 17).is_none(), "two more do not");
        let b = budget.reserve(LAYOUT, 16).expect("one more fits");
        assert!(budget.reserve(LAYOUT, 1).is_none());
        drop(a);
        assert_eq!(budget.reserved(), block);
        assert!(budget.reserve(LAYOUT, 32).is_some(), "freed room is reused");
        drop(b);
        assert_eq!(budget.reserved(), 0);
        assert!(!budget.could_fit(&LAYOUT, 49));
        assert!(budget.could_fit(&LAYOUT, 48));
        // Sizes at the limits are refused, never wrapped.
        assert!(budget.reserve(LAYOUT, usize::MAX).is_none());
    }

    #[test]
    fn blocks_are_allocated_as_the_sequence_grows_within_its_reservation() {
        let block = LAYOUT.block_bytes();
        let budget = KvBudget::new(4 * block);
        let mut s = budget.reserve(LAYOUT, 40).expect("fits");
        assert_eq!(budget.allocated(), 0, "nothing allocated up front");
        s.grow(5).expect("within");
        assert_eq!(budget.allocated(), block);
        s.grow(48).expect("within the reservation");
        assert_eq!(budget.allocated(), 3 * block);
        s.grow(64).expect("one more block is still in the budget");
        assert_eq!(budget.reserved(), 4 * block);
        assert_eq!(s.grow(65), Err(KvFull { positions: 65 }));
        drop(s);
        assert_eq!((budget.reserved(), budget.allocated()), (0, 0));
    }

    #[test]
    fn writes_land_in_their_own_rows() {
        let budget = KvBudget::unlimited();
        let mut s = budget.reserve(LAYOUT, 0).expect("unlimited");
        s.grow(20).expect("unlimited grows");
        s.write(1, 2, 17, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]);
        s.set_len(18);
        let k = s.block_rows(1, 1, false, 2);
        assert_eq!(
            k[4..8].iter().map(|x| x.to_f32()).collect::<Vec<_>>(),
            [1.0, 2.0, 3.0, 4.0]
        );
        assert!(k[..4].iter().all(|x| x.to_f32() == 0.0));
        let v = s.block_rows(1, 1, true, 2);
        assert_eq!(v[4].to_f32(), 5.0);
        assert!(
            s.block_rows(1, 1, true, 1)
                .iter()
                .all(|x| x.to_f32() == 0.0)
        );
    }
}
