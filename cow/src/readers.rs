//! [`Readers`]: the live readers and pins of a volume by the generation they see, kept in
//! per-thread shards so that a pin (every data I/O takes one) writes only a cache line its
//! own thread owns.
//!
//! One registry (a mutex over a `BTreeMap`) was a lock and a shared cache line written twice
//! per I/O by every I/O thread of the filesystem. Here each thread registers in the shard
//! the thread was given the first time it pinned (round-robin over [`SHARDS`]); the
//! allocator, which needs the oldest generation still seen, takes the minimum over the
//! shards in use. Epoch-based reclamation (crossbeam-epoch) was the other candidate: its
//! guards are per thread and cannot be held across the device wait of an I/O that moves
//! between futures, nor name the generation that must stay, which is what the allocator
//! asks; a count per generation per shard says exactly that.
//!
//! Invariants:
//! - the sum over the shards of the counts of a generation is the number of live readers
//!   and pins of it (a release on another thread than its pin takes it from any shard that
//!   counts the generation);
//! - a registration reads the generation it registers while it holds its shard's lock, and
//!   the allocator reads each shard under that shard's lock after the commit that freed
//!   the extents published its generation (`Transaction::finish` publishes, then hands the
//!   frees to `Space::pending`): so a registration the scan missed saw the newer generation,
//!   and the oldest generation the scan reports is never newer than a live reader's;
//! - the scan learns which shards are in use from `NEXT_SHARD` by a read-modify-write, as a
//!   thread takes its shard: an RMW reads the latest value, so either the scan counts the
//!   new thread's shard, or the thread's RMW comes after the scan's and acquires it, and
//!   its registrations then read the newer generation (a plain load could read a stale
//!   count while the new thread registered an old generation: a store-load race).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crossbeam_utils::CachePadded;

/// Shards per volume: more than the I/O threads of a machine this runs on are likely to be
/// (threads beyond share shards, which stays correct and costs only contention).
const SHARDS: usize = 64;

/// Shard indices handed to threads so far (process-wide: a thread keeps its index for
/// every volume).
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// A shard locked; poisoning is ignored (every critical section leaves the counts whole).
fn lock(m: &Mutex<BTreeMap<u64, usize>>) -> MutexGuard<'_, BTreeMap<u64, usize>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// This thread's shard index (below [`SHARDS`]).
fn my_shard() -> usize {
    SHARD.with(|s| match s.get() {
        Some(i) => i,
        None => {
            let i = NEXT_SHARD.fetch_add(1, Ordering::AcqRel) % SHARDS;
            s.set(Some(i));
            i
        }
    })
}

/// One shard: live registrations by generation.
type Shard = CachePadded<Mutex<BTreeMap<u64, usize>>>;

/// Live readers and pins by generation, in per-thread shards.
pub(crate) struct Readers {
    shards: Box<[Shard]>,
}

impl Readers {
    pub fn new() -> Readers {
        Readers {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
        }
    }

    /// Registers one reader of the generation `current` returns, read under this thread's
    /// shard lock (see the invariants); returns what `current` returned.
    pub fn register<T>(&self, current: impl FnOnce() -> (u64, T)) -> (u64, T) {
        let mut shard = lock(&self.shards[my_shard()]);
        let (generation, v) = current();
        *shard.entry(generation).or_default() += 1;
        (generation, v)
    }

    /// Ends one registration of `generation`, made on any thread.
    pub fn release(&self, generation: u64) {
        let mine = my_shard();
        let order = std::iter::once(mine).chain((0..SHARDS).filter(|&i| i != mine));
        for i in order {
            let mut shard = lock(&self.shards[i]);
            if let Some(n) = shard.get_mut(&generation) {
                *n -= 1;
                if *n == 0 {
                    shard.remove(&generation);
                }
                return;
            }
        }
    }

    /// The oldest generation a live reader or pin sees, if any.
    pub fn oldest(&self) -> Option<u64> {
        // Only shards some thread was given can hold anything (an RMW: see the invariants).
        let used = NEXT_SHARD.fetch_add(0, Ordering::AcqRel).min(SHARDS);
        self.shards[..used]
            .iter()
            .filter_map(|s| lock(s).keys().next().copied())
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_over_threads_and_releases_anywhere() {
        let r = Readers::new();
        assert_eq!(r.register(|| (5, ())).0, 5);
        assert_eq!(r.oldest(), Some(5));
        std::thread::scope(|s| {
            s.spawn(|| {
                r.register(|| (3, ()));
                r.register(|| (7, ()));
                // Released on this thread, registered on the other.
                r.release(5);
            });
        });
        assert_eq!(r.oldest(), Some(3));
        r.release(3);
        assert_eq!(r.oldest(), Some(7));
        r.release(7);
        assert_eq!(r.oldest(), None);
        // A release of a generation nobody holds changes nothing.
        r.release(9);
        assert_eq!(r.oldest(), None);
    }
}
