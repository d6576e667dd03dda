//! [`LeafCache`]: leaves of one committed snapshot that a thread found, with the keys each
//! covers, so that its next lookups in them start at the leaf instead of descending from
//! the root (a direct read looks up its extent and its block's checksum: two descents,
//! each a node-cache lookup per level, per 4 KiB read otherwise).
//!
//! Invariants:
//! - the cache holds leaves of exactly one generation; a snapshot of another generation
//!   never gets a leaf from it (committed nodes are immutable, so a leaf reached in the
//!   snapshot of generation `G` is what every snapshot of `G` reaches);
//! - an entry `(leaf, hi)` says the keys from the leaf's first key up to `hi` (excluded;
//!   `None`: no bound) belong in that leaf in that generation: `hi` is the first key of the
//!   next subtree on the path the descent took, as a transaction's [`Finger`](super::Finger)
//!   has it.

use std::sync::Arc;

use crate::committed::Committed;
use crate::format::{Key, Node, TreeId};

/// Most leaves kept (about 4 MiB of 16 KiB nodes, shared with the node cache): past it,
/// further leaves are not added until the generation changes.
const MAX_LEAVES: usize = 256;

/// Leaves of one snapshot generation, by tree and first key. Owned by one thread (each
/// I/O thread keeps its own) and handed to [`Volume::pinned_reader`](crate::Volume).
/// A sorted `Vec`, not a map: a lookup is one binary search over a few KiB (a `BTreeMap`'s
/// two-ended range search was 4.5 % of a direct randread's samples), and inserts are
/// rare (a leaf once per generation).
#[derive(Debug, Default)]
pub struct LeafCache {
    generation: u64,
    leaves: Vec<Cached>,
    /// This thread's own copy of the last committed state it read: its reference count is
    /// written by this thread only (`Volume::pinned_reader`).
    snap: Option<Arc<Committed>>,
}

#[derive(Debug)]
struct Cached {
    tree: TreeId,
    first: Key,
    hi: Option<Key>,
    leaf: Arc<Node>,
}

impl Cached {
    fn at(&self) -> (TreeId, Key) {
        (self.tree, self.first)
    }
}

impl LeafCache {
    /// An empty cache.
    pub fn new() -> LeafCache {
        LeafCache::default()
    }

    /// The leaf of `tree` in generation `generation` that holds `key`'s place, with its
    /// upper bound, if cached and its first key is at most `key`.
    pub(crate) fn find(
        &self,
        generation: u64,
        tree: TreeId,
        key: Key,
    ) -> Option<(Arc<Node>, Option<Key>)> {
        if generation != self.generation {
            return None;
        }
        let n = self.leaves.partition_point(|c| c.at() <= (tree, key));
        let c = &self.leaves[n.checked_sub(1)?];
        let inside = c.tree == tree && c.hi.is_none_or(|h| key < h);
        inside.then(|| (Arc::clone(&c.leaf), c.hi))
    }

    /// Remembers that `leaf` of `tree` holds the keys from its first key up to `hi` in
    /// generation `generation` (forgetting every leaf of another generation).
    pub(crate) fn note(
        &mut self,
        generation: u64,
        tree: TreeId,
        leaf: &Arc<Node>,
        hi: Option<Key>,
    ) {
        if generation != self.generation {
            self.leaves.clear();
            self.generation = generation;
        }
        let Some(first) = leaf.first_key() else {
            return;
        };
        if leaf.level != 0 {
            return;
        }
        let c = Cached {
            tree,
            first,
            hi,
            leaf: Arc::clone(leaf),
        };
        let at = self.leaves.partition_point(|x| x.at() < (tree, first));
        if self.leaves.get(at).is_some_and(|x| x.at() == (tree, first)) {
            self.leaves[at] = c;
        } else if self.leaves.len() < MAX_LEAVES {
            self.leaves.insert(at, c);
        }
    }

    /// The thread's copy of the committed state of generation `generation`, if it has it.
    pub(crate) fn snapshot(&self, generation: u64) -> Option<Arc<Committed>> {
        self.snap
            .as_ref()
            .filter(|s| s.generation == generation)
            .map(Arc::clone)
    }

    /// Keeps a copy of `snap` of this thread's own (a commit's roots: a few dozen bytes).
    pub(crate) fn keep_snapshot(&mut self, snap: &Committed) {
        if self
            .snap
            .as_ref()
            .is_none_or(|s| s.generation != snap.generation)
        {
            self.snap = Some(Arc::new(snap.clone()));
        }
    }

    /// Leaves cached.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether no leaf is cached.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }
}
