//! A bounded cache of validated, committed nodes (CLOCK replacement).
//!
//! Entries are keyed by `(bytenr, generation)`: an address reused by a later transaction holds
//! a node of another generation, so a stale entry can never be returned for it; it simply
//! ages out.

use hashbrown::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::format::Node;

struct Slot {
    key: (u64, u64),
    /// `None` once the node was forgotten (the slot is in `vacant`).
    node: Option<Arc<Node>>,
    referenced: bool,
}

struct Clock {
    map: HashMap<(u64, u64), usize>,
    slots: Vec<Slot>,
    /// Slots whose node was forgotten, reused before the hand evicts anything.
    vacant: Vec<usize>,
    hand: usize,
}

/// The node cache, shared by all threads of a volume.
pub(crate) struct NodeCache {
    inner: Mutex<Clock>,
    capacity: AtomicUsize,
}

impl NodeCache {
    /// A cache of at most `capacity` nodes (at least 16).
    pub fn new(capacity: usize) -> NodeCache {
        NodeCache {
            inner: Mutex::new(Clock {
                map: HashMap::new(),
                slots: Vec::new(),
                vacant: Vec::new(),
                hand: 0,
            }),
            capacity: AtomicUsize::new(capacity.max(16)),
        }
    }

    /// Changes the most nodes kept (at least 16). Lowering it stops growth; it does not drop
    /// nodes already cached.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity.max(16), Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node of generation `generation` at `bytenr`, if cached.
    pub fn get(&self, bytenr: u64, generation: u64) -> Option<Arc<Node>> {
        let mut c = self.lock();
        let i = *c.map.get(&(bytenr, generation))?;
        c.slots[i].referenced = true;
        c.slots[i].node.clone()
    }

    /// Drops the node of generation `generation` at `bytenr` if it is cached: a commit
    /// replaced it, so the current trees no longer lead to it, and keeping it would push out
    /// nodes they do lead to. (A reader of an older snapshot that still wants it reads it
    /// again; its block stays pinned while such readers live.)
    pub fn forget(&self, bytenr: u64, generation: u64) {
        let mut c = self.lock();
        if let Some(i) = c.map.remove(&(bytenr, generation)) {
            c.slots[i].node = None;
            c.slots[i].referenced = false;
            c.vacant.push(i);
        }
    }

    /// Caches `node` (validated), evicting an unreferenced entry if full.
    pub fn insert(&self, node: Arc<Node>) {
        let key = (node.bytenr, node.generation);
        let mut c = self.lock();
        if let Some(&i) = c.map.get(&key) {
            c.slots[i].node = Some(node);
            return;
        }
        let slot = Slot {
            key,
            node: Some(node),
            referenced: false,
        };
        if let Some(i) = c.vacant.pop() {
            c.slots[i] = slot;
            c.map.insert(key, i);
            return;
        }
        if c.slots.len() < self.capacity.load(Ordering::Relaxed) {
            let i = c.slots.len();
            c.slots.push(slot);
            c.map.insert(key, i);
            return;
        }
        loop {
            let h = c.hand;
            c.hand = (h + 1) % c.slots.len();
            if c.slots[h].referenced {
                c.slots[h].referenced = false;
                continue;
            }
            let old = c.slots[h].key;
            c.map.remove(&old);
            c.slots[h] = slot;
            c.map.insert(key, h);
            return;
        }
    }

    /// Number of cached nodes.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let c = self.lock();
        c.slots.len() - c.vacant.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Body, TreeId};

    fn node(bytenr: u64) -> Arc<Node> {
        Arc::new(Node {
            bytenr,
            generation: 1,
            owner: TreeId(256),
            level: 0,
            body: Body::Leaf(Vec::new()),
        })
    }

    #[test]
    fn bounded_and_keeps_referenced_entries() {
        let c = NodeCache::new(16);
        for b in 0..16 {
            c.insert(node(b));
        }
        assert!(c.get(3, 1).is_some());
        for b in 100..110 {
            c.insert(node(b));
        }
        assert_eq!(c.len(), 16);
        assert!(
            c.get(3, 1).is_some(),
            "a referenced entry survives one sweep"
        );
        assert!(c.get(3, 2).is_none(), "another generation is another node");
    }

    #[test]
    fn forgotten_nodes_leave_and_their_slots_are_reused_first() {
        let c = NodeCache::new(16);
        for b in 0..16 {
            c.insert(node(b));
        }
        c.forget(5, 1);
        c.forget(5, 1);
        c.forget(99, 1);
        assert!(c.get(5, 1).is_none());
        assert_eq!(c.len(), 15);
        c.insert(node(200));
        assert_eq!(c.len(), 16);
        assert!(c.get(200, 1).is_some());
        for b in (0..16).filter(|&b| b != 5) {
            assert!(c.get(b, 1).is_some(), "{b} was evicted for a vacant slot");
        }
    }
}
