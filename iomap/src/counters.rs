//! [`IoCounters`]: what the layer counts (device requests, bounce bytes, and the calls into
//! the filesystem's ops, [`Upcalls`]).
//!
//! Every I/O bumps several of them, from whichever thread runs it: each is a [`Counter`]
//! of per-thread cache-padded cells, summed when read, so that threads on different cores
//! never write one cache line (one shared atomic per counter was six to eight contended
//! read-modify-writes per direct I/O).

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// Cells per counter: threads beyond share cells (still exact, only contended).
const CELLS: usize = 16;

/// Cell indices handed to threads so far.
static NEXT_CELL: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CELL: Cell<Option<usize>> = const { Cell::new(None) };
}

fn my_cell() -> usize {
    CELL.with(|c| match c.get() {
        Some(i) => i,
        None => {
            let i = NEXT_CELL.fetch_add(1, Ordering::Relaxed) % CELLS;
            c.set(Some(i));
            i
        }
    })
}

/// A counter that many threads add to: one cell per thread (shared beyond `CELLS`
/// threads), summed when read. A read is not a snapshot across cells: exact once the
/// threads adding have stopped, which is when tests and statistics read it.
pub struct Counter {
    cells: Box<[CachePadded<AtomicU64>]>,
}

impl Counter {
    /// Adds `n` (in this thread's cell).
    pub fn add(&self, n: u64) {
        self.cells[my_cell()].fetch_add(n, Ordering::Relaxed);
    }

    /// The sum of the cells (`_order` is accepted for the callers of the atomic it
    /// replaced; every cell is read relaxed).
    pub fn load(&self, _order: Ordering) -> u64 {
        self.cells.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl Default for Counter {
    fn default() -> Counter {
        Counter {
            cells: (0..CELLS)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        }
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.load(Ordering::Relaxed))
    }
}

/// Counters of device requests the layer issued.
#[derive(Debug, Default)]
pub struct IoCounters {
    /// Block reads from a source map to complete partly written blocks (buffered or direct).
    pub source_reads: Counter,
    /// Device reads filling the page cache.
    pub cache_reads: Counter,
    /// Device writes of writeback.
    pub writeback_writes: Counter,
    /// Device reads and writes of direct I/O.
    pub direct_ios: Counter,
    /// Bytes copied through bounce buffers by the synchronous slice API.
    pub bounce_bytes: Counter,
    /// Calls into the filesystem's ops, by kind.
    pub upcalls: Upcalls,
}

impl IoCounters {
    /// Adds one to `c`.
    pub(crate) fn bump(c: &Counter, n: u64) {
        c.add(n);
    }

    /// Reads `c`.
    pub fn get(c: &Counter) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Calls into the filesystem's [`IomapOps`](crate::IomapOps), by kind.
#[derive(Debug, Default)]
pub struct Upcalls {
    /// `begin`.
    pub begin: Counter,
    /// `end`.
    pub end: Counter,
    /// `submit_direct`.
    pub submit_direct: Counter,
    /// `complete`.
    pub complete: Counter,
    /// `verify_read`.
    pub verify_read: Counter,
    /// `size`, `set_size` and `grow_size`.
    pub size: Counter,
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
