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

/// Queued reference-count changes, by extent start and target; opposite changes cancel.
/// A change stays queued until it is applied, so a node allocated and freed again before its
/// reference reached the extent tree cancels out instead of leaving a stale item.
///
/// Changes are applied additions first, so a count never drops to zero on the way, and
/// otherwise in key order (extent-tree items next to each other, so most changes land in
/// the leaf the previous one left the transaction's finger on). A fold queues two changes
/// per overwritten block: they accumulate in a hash map and are sorted once per batch,
/// where an ordered map and an ordered set of additions cost two B-tree inserts each.
#[derive(Debug, Default)]
pub(crate) struct DelayedRefs {
    map: HashMap<(u64, RefTarget), i64>,
    /// Keys to apply, sorted: additions first, each part in key order, the next one last.
    batch: Vec<(bool, (u64, RefTarget))>,
    /// Keys that became additions after `batch` was sorted (applying changes queues new
    /// ones): taken before the rest of the batch.
    fresh: Vec<(u64, RefTarget)>,
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
        } else if v > 0 && !self.batch.is_empty() {
            self.fresh.push(k);
        }
    }

    /// Makes room for `n` more queued changes at once instead of growing step by step.
    pub fn reserve(&mut self, n: usize) {
        self.map.reserve(n);
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
        while let Some(k) = self.fresh.pop() {
            if self.map.get(&k).is_some_and(|&d| d > 0) {
                let d = self.map.remove(&k).expect("just seen");
                return Some((k.0, k.1, d));
            }
        }
        loop {
            if self.batch.is_empty() {
                if self.map.is_empty() {
                    return None;
                }
                // Sorted descending, so the first to apply is popped off the end.
                self.batch = self.map.iter().map(|(&k, &d)| (d < 0, k)).collect();
                self.batch.sort_unstable_by(|a, b| b.cmp(a));
            }
            let (was_negative, k) = self.batch.pop().expect("filled above");
            // Changed since the batch was sorted: cancelled (gone), an addition now (then
            // `fresh` had it, and it is gone too), or a removal now while additions are
            // still being applied (left for the next batch, which sorts it with those).
            // One lookup in the usual case (the change is still what was sorted).
            match self.map.remove(&k) {
                None => {}
                Some(d) if d < 0 && !was_negative => {
                    self.map.insert(k, d);
                }
                Some(d) => return Some((k.0, k.1, d)),
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
