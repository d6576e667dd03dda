//! Delayed references (btrfs's delayed refs): reference-count changes queued in memory during
//! a transaction and applied to the extent tree at commit.
//!
//! Why: copying a node changes reference counts, and recording that in the extent tree copies
//! extent-tree nodes, which changes more counts. Queuing breaks the recursion; commit applies
//! the queue in passes until a pass queues nothing new, which happens because a node already
//! copied in this transaction is changed in place.

use std::collections::{BTreeMap, BTreeSet};

use crate::format::{DataBackref, TreeId};

/// What a reference points from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RefTarget {
    /// A tree node at `level`, referenced by tree `root`.
    Tree { level: u8, root: TreeId },
    /// A data extent of `len` bytes, referenced by a file.
    Data { len: u64, backref: DataBackref },
}

/// Queued reference-count changes, by extent start and target; opposite changes cancel.
/// A change stays queued until it is applied, so a node allocated and freed again before its
/// reference reached the extent tree cancels out instead of leaving a stale item.
#[derive(Debug, Default)]
pub(crate) struct DelayedRefs {
    map: BTreeMap<(u64, RefTarget), i64>,
    /// The keys of `map` with a positive change: applied first, so a count never drops to
    /// zero on the way.
    positive: BTreeSet<(u64, RefTarget)>,
}

impl DelayedRefs {
    /// Queues `delta` references of `target` to the extent at `bytenr`.
    pub fn add(&mut self, bytenr: u64, target: RefTarget, delta: i64) {
        let k = (bytenr, target);
        let e = self.map.entry(k).or_insert(0);
        *e += delta;
        let v = *e;
        if v == 0 {
            self.map.remove(&k);
        }
        if v > 0 {
            self.positive.insert(k);
        } else {
            self.positive.remove(&k);
        }
    }

    /// The queued change for `bytenr` and `target` (0 if none).
    pub fn pending(&self, bytenr: u64, target: RefTarget) -> i64 {
        self.map.get(&(bytenr, target)).copied().unwrap_or(0)
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Takes the next change to apply: additions first.
    pub fn pop_next(&mut self) -> Option<(u64, RefTarget, i64)> {
        let k = match self.positive.pop_first() {
            Some(k) => k,
            None => *self.map.keys().next()?,
        };
        let d = self.map.remove(&k).expect("indexed key is queued");
        Some((k.0, k.1, d))
    }
}
