//! Delayed references (btrfs's delayed refs): reference-count changes queued in memory during
//! a transaction and applied to the extent tree at commit.
//!
//! Why: copying a node changes reference counts, and recording that in the extent tree copies
//! extent-tree nodes, which changes more counts. Queuing breaks the recursion; commit applies
//! the queue in passes until a pass queues nothing new, which happens because a node already
//! copied in this transaction is changed in place.

use hashbrown::HashMap;

use crate::format::{DataBackref, TreeId};

/// What a reference points from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum RefTarget {
    /// A tree node at `level`, referenced by tree `root`.
    Tree { level: u8, root: TreeId },
    /// A data extent of `len` bytes, referenced by a file.
    Data { len: u64, backref: DataBackref },
}

/// A queued change's key: the extent's start and what refers to it.
type RefKey = (u64, RefTarget);

/// Queued reference-count changes, by extent start and target; opposite changes cancel.
/// A change stays queued until it is applied, so a node allocated and freed again before its
/// reference reached the extent tree cancels out instead of leaving a stale item.
///
/// Changes are applied additions first, so a count never drops to zero on the way, and
/// otherwise in key order (extent-tree items next to each other, so most changes land in
/// the leaf the previous one left the transaction's finger on). A fold queues two changes
/// per overwritten block: they are appended to a log, and when they are applied the log is
/// sorted, changes to the same key are summed (opposite ones cancel there), and the result
/// becomes the batch. (The log replaced a hash map summing them as they came, whose inserts
/// were a twentieth of a fold; the batch was sorted either way.) Changes queued while the
/// batch is applied (the node copies its changes make) go to a hash map, small enough to
/// stay in cache, and each entry of the batch is merged with it as it is taken; looking
/// each one up in a large map had been a tenth of a fold.
#[derive(Debug, Default)]
pub(crate) struct DelayedRefs {
    /// Changes queued while there is no batch, in the order queued, not yet summed.
    log: Vec<(RefKey, i64)>,
    /// Changes queued since the batch was taken.
    map: HashMap<RefKey, i64>,
    /// The changes being applied, sorted so that the next is last: `(removal, key, delta)`.
    /// A delta of 0 marks an entry already merged into a fresh addition.
    batch: Vec<(bool, RefKey, i64)>,
    /// Keys whose change in `map` became an addition while a batch was being applied:
    /// taken before the rest of the batch.
    fresh: Vec<RefKey>,
}

impl DelayedRefs {
    /// Queues `delta` references of `target` to the extent at `bytenr`.
    pub fn add(&mut self, bytenr: u64, target: RefTarget, delta: i64) {
        let k = (bytenr, target);
        if self.batch.is_empty() {
            self.log.push((k, delta));
            return;
        }
        let e = self.map.entry(k).or_insert(0);
        *e += delta;
        let v = *e;
        if v == 0 {
            self.map.remove(&k);
        } else if v > 0 && !self.batch.is_empty() {
            self.fresh.push(k);
        }
    }

    /// Makes room for `n` more queued changes at once instead of growing step by step.
    pub fn reserve(&mut self, n: usize) {
        self.log.reserve(n);
    }

    /// Where `k` is in the batch (sorted descending by removal flag and key).
    fn in_batch(&self, k: &RefKey) -> Option<usize> {
        [false, true].into_iter().find_map(|removal| {
            self.batch
                .binary_search_by(|(r, bk, _)| (removal, k).cmp(&(*r, bk)))
                .ok()
        })
    }

    /// The queued change for `bytenr` and `target` (0 if none).
    pub fn pending(&self, bytenr: u64, target: RefTarget) -> i64 {
        let k = (bytenr, target);
        let batched = self.in_batch(&k).map_or(0, |i| self.batch[i].2);
        let logged: i64 = self
            .log
            .iter()
            .filter(|(lk, _)| *lk == k)
            .map(|e| e.1)
            .sum();
        self.map.get(&k).copied().unwrap_or(0) + batched + logged
    }

    /// Whether nothing is queued. (Queued changes that cancel out count until a batch is
    /// taken.)
    pub fn is_empty(&self) -> bool {
        self.log.is_empty() && self.map.is_empty() && self.batch.is_empty()
    }

    /// Makes the next batch of everything queued: summed per key, without the changes that
    /// cancelled, sorted so that popping yields additions in key order, then removals in
    /// key order.
    fn take_batch(&mut self) {
        // The log's and the batch's allocations are kept for the next batch.
        let all = &mut self.log;
        all.extend(self.map.drain());
        all.sort_unstable_by_key(|a| a.0);
        all.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        let batch = &mut self.batch;
        batch.clear();
        let removals = all.iter().rev().filter(|e| e.1 < 0);
        batch.extend(removals.map(|&(k, d)| (true, k, d)));
        let additions = all.iter().rev().filter(|e| e.1 > 0);
        batch.extend(additions.map(|&(k, d)| (false, k, d)));
        all.clear();
    }

    /// Drops every queued change, keeping the allocations.
    pub fn clear(&mut self) {
        self.log.clear();
        self.map.clear();
        self.batch.clear();
        self.fresh.clear();
    }

    /// Takes the next change to apply: additions first.
    pub fn pop_next(&mut self) -> Option<(u64, RefTarget, i64)> {
        while let Some(k) = self.fresh.pop() {
            if self.map.get(&k).is_none_or(|&d| d <= 0) {
                continue;
            }
            let queued = self.map.remove(&k).expect("just seen");
            let batched = self
                .in_batch(&k)
                .map_or(0, |i| std::mem::take(&mut self.batch[i].2));
            match queued + batched {
                0 => {}
                d if d > 0 => return Some((k.0, k.1, d)),
                // A removal after all: left for the next batch, after the additions.
                d => {
                    self.map.insert(k, d);
                }
            }
        }
        loop {
            let Some((was_removal, k, batched)) = self.batch.pop() else {
                if self.map.is_empty() && self.log.is_empty() {
                    return None;
                }
                self.take_batch();
                if self.batch.is_empty() {
                    // Everything queued cancelled out.
                    return None;
                }
                continue;
            };
            if batched == 0 {
                continue;
            }
            // Merged with what was queued since the batch was taken: cancelled, still the
            // same kind of change, or a removal now while additions are still being applied
            // (left for the next batch, which sorts it with those).
            match batched + self.map.remove(&k).unwrap_or(0) {
                0 => {}
                d if d < 0 && !was_removal => {
                    self.map.insert(k, d);
                }
                d => return Some((k.0, k.1, d)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(level: u8) -> RefTarget {
        RefTarget::Tree {
            level,
            root: crate::format::TreeId(5),
        }
    }

    #[test]
    fn logged_changes_are_summed_per_key_when_the_batch_is_taken() {
        let mut d = DelayedRefs::default();
        for (bytenr, delta) in [(30, 1), (10, -1), (30, 1), (20, 1), (20, -1), (10, -1)] {
            d.add(bytenr, tree(0), delta);
        }
        d.add(30, tree(1), -1);
        assert!(!d.is_empty());
        assert_eq!(d.pop_next(), Some((30, tree(0), 2)));
        assert_eq!(d.pop_next(), Some((10, tree(0), -2)));
        assert_eq!(d.pop_next(), Some((30, tree(1), -1)));
        assert_eq!(d.pop_next(), None);
        // Changes that cancel out leave nothing to apply.
        d.add(40, tree(0), 1);
        d.add(40, tree(0), -1);
        assert_eq!(d.pop_next(), None);
        assert!(d.is_empty());
    }

    #[test]
    fn additions_come_first_even_when_queued_while_applying() {
        let mut d = DelayedRefs::default();
        d.add(300, tree(0), -1);
        d.add(100, tree(0), 1);
        d.add(200, tree(0), -1);
        d.add(400, tree(0), 2);
        d.add(500, tree(0), 1);
        d.add(500, tree(0), -1);
        assert_eq!(d.pending(500, tree(0)), 0, "opposite changes cancel");
        // Additions in key order, then removals in key order.
        assert_eq!(d.pop_next(), Some((100, tree(0), 1)));
        // Applying one change queues others: a new addition goes before the removals
        // still waiting; a removal that cancels a queued addition takes it away.
        d.add(50, tree(1), 1);
        d.add(400, tree(0), -2);
        assert_eq!(d.pop_next(), Some((50, tree(1), 1)));
        // A queued addition that became a removal waits until the additions are done.
        d.add(600, tree(0), 1);
        d.add(700, tree(0), 1);
        assert_eq!(d.pop_next(), Some((700, tree(0), 1)));
        d.add(600, tree(0), -3);
        assert_eq!(d.pop_next(), Some((200, tree(0), -1)));
        assert_eq!(d.pop_next(), Some((300, tree(0), -1)));
        assert_eq!(d.pop_next(), Some((600, tree(0), -2)));
        assert_eq!(d.pop_next(), None);
        assert!(d.is_empty());
    }
}
