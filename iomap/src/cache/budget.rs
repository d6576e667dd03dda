//! Memory and dirty accounting of the cache.
//!
//! Invariants:
//! - `cached` counts pages in the index, `dirty` those with a dirty block;
//! - `cached + free` (recycled buffers kept for reuse) stays within `limit`, except while
//!   one operation overshoots by the pages it is using at once (it asked for room first,
//!   but concurrent operations on the same thread may have taken it);
//! - writers that find `dirty > dirty_limit` write back before they continue.

/// Counters of the cache, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Pages in the index.
    pub cached: usize,
    /// Pages holding a dirty block.
    pub dirty: usize,
    /// Most pages ever in the index at once.
    pub peak_cached: usize,
    /// Pages evicted so far.
    pub evicted: u64,
    /// Page limit (the memory budget).
    pub limit: usize,
    /// Dirty page limit.
    pub dirty_limit: usize,
}

impl CacheStats {
    pub(crate) fn add_cached(&mut self, n: usize) {
        self.cached += n;
        self.peak_cached = self.peak_cached.max(self.cached);
    }

    /// Whether writers must help write back.
    pub fn over_dirty_limit(&self) -> bool {
        self.dirty > self.dirty_limit
    }

    /// Pages that must go before `n` more fit.
    pub fn excess_for(&self, n: usize) -> usize {
        (self.cached + n).saturating_sub(self.limit)
    }
}
