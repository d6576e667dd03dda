//! [`IoCounters`]: what the layer counts (device requests, bounce bytes, and the calls into
//! the filesystem's ops, [`Upcalls`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of device requests the layer issued.
#[derive(Debug, Default)]
pub struct IoCounters {
    /// Block reads from a source map to complete partly written blocks (buffered or direct).
    pub source_reads: AtomicU64,
    /// Device reads filling the page cache.
    pub cache_reads: AtomicU64,
    /// Device writes of writeback.
    pub writeback_writes: AtomicU64,
    /// Device reads and writes of direct I/O.
    pub direct_ios: AtomicU64,
    /// Bytes copied through bounce buffers by the synchronous slice API.
    pub bounce_bytes: AtomicU64,
    /// Calls into the filesystem's ops, by kind.
    pub upcalls: Upcalls,
}

impl IoCounters {
    /// Adds one to `c`.
    pub(crate) fn bump(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads `c`.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Calls into the filesystem's [`IomapOps`](crate::IomapOps), by kind.
#[derive(Debug, Default)]
pub struct Upcalls {
    /// `begin`.
    pub begin: AtomicU64,
    /// `end`.
    pub end: AtomicU64,
    /// `submit_direct`.
    pub submit_direct: AtomicU64,
    /// `complete`.
    pub complete: AtomicU64,
    /// `verify_read`.
    pub verify_read: AtomicU64,
    /// `size`, `set_size` and `grow_size`.
    pub size: AtomicU64,
}

impl Upcalls {
    /// All calls so far.
    pub fn total(&self) -> u64 {
        [
            &self.begin,
            &self.end,
            &self.submit_direct,
            &self.complete,
            &self.verify_read,
            &self.size,
        ]
        .into_iter()
        .map(IoCounters::get)
        .sum()
    }
}
