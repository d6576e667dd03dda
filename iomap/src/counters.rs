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

/// Cells per counter that one thread each owns; the threads beyond share one more cell
/// (still exact, only contended).
const OWN_CELLS: usize = 16;
/// Every cell of a counter: the owned ones, then the shared one.
const CELLS: usize = OWN_CELLS + 1;

/// Cell indices handed to threads so far.
static NEXT_CELL: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CELL: Cell<Option<usize>> = const { Cell::new(None) };
}

/// This thread's cell: one of its own (never handed to another thread: indices are not
/// reused) or, past `OWN_CELLS` threads, the shared last one.
fn my_cell() -> usize {
    CELL.with(|c| match c.get() {
        Some(i) => i,
        None => {
            let i = NEXT_CELL.fetch_add(1, Ordering::Relaxed).min(OWN_CELLS);
            c.set(Some(i));
            i
        }
    })
}

/// A counter that many threads add to: one cell per thread (one shared cell beyond
/// `OWN_CELLS` threads), summed when read. A read is not a snapshot across cells: exact once the
/// threads adding have stopped, which is when tests and statistics read it.
pub struct Counter {
    cells: Box<[CachePadded<AtomicU64>]>,
}

impl Counter {
    /// Adds `n` (in this thread's cell). A cell with one writer needs no read-modify-write:
    /// a load and a store, where a locked add cost about as much as the rest of a counter
    /// bump (several per direct read).
    pub fn add(&self, n: u64) {
        let i = my_cell();
        let cell = &self.cells[i];
        if i < OWN_CELLS {
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        } else {
            cell.fetch_add(n, Ordering::Relaxed);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_with_more_threads_than_owned_cells() {
        let c = Counter::default();
        std::thread::scope(|s| {
            for _ in 0..2 * CELLS {
                s.spawn(|| (0..1000).for_each(|_| c.add(3)));
            }
        });
        assert_eq!(c.load(Ordering::Relaxed), (2 * CELLS * 1000 * 3) as u64);
    }
}
