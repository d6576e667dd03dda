//! A cache of validated, committed nodes within a byte budget (CLOCK replacement).
//!
//! Entries are keyed by `(bytenr, generation)`: an address reused by a later transaction holds
//! a node of another generation, so a stale entry can never be returned for it; it simply
//! ages out.
//!
//! Invariants (`docs/decisions/memory-budgets.md`):
//! - the cached nodes' memory ([`node_bytes`], counted as decoded, not as on the device)
//!   never exceeds the budget less the running transaction's dirty nodes
//!   ([`NodeCache::set_dirty_bytes`]), of which at most 7/8 of the budget is counted: so
//!   clean and dirty nodes together stay within the budget until dirty nodes alone pass 7/8
//!   of it; past that, only the dirty nodes exceed it, until their commit (a transaction's
//!   dirty nodes cannot be dropped before it);
//! - lowering the budget evicts at once; a node larger than the whole room is not cached.

use hashbrown::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::format::{Body, Item, ItemData, KeyPtr, Node};

struct Slot {
    key: (u64, u64),
    /// `None` once the node was forgotten or evicted (the slot is in `vacant`).
    node: Option<Arc<Node>>,
    /// [`node_bytes`] of `node`.
    bytes: u64,
    referenced: bool,
}

struct Clock {
    map: HashMap<(u64, u64), usize>,
    slots: Vec<Slot>,
    /// Slots without a node, reused before new ones are added.
    vacant: Vec<usize>,
    hand: usize,
    /// Sum of the cached nodes' `bytes`.
    bytes: u64,
}

impl Clock {
    fn vacate(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.node.take().is_some() {
            self.bytes -= slot.bytes;
            slot.bytes = 0;
            slot.referenced = false;
            self.vacant.push(i);
        }
    }

    /// Evicts unreferenced nodes (clearing the referenced bits it passes) until the cached
    /// bytes are at most `target`.
    fn evict_to(&mut self, target: u64) {
        // Each pass of the hand over all slots either evicts or clears every referenced bit,
        // so two passes per eviction suffice.
        while self.bytes > target && !self.map.is_empty() {
            let h = self.hand;
            self.hand = (h + 1) % self.slots.len();
            let slot = &mut self.slots[h];
            if slot.node.is_none() {
                continue;
            }
            if std::mem::take(&mut slot.referenced) {
                continue;
            }
            let key = slot.key;
            self.map.remove(&key);
            self.vacate(h);
        }
    }
}

/// The memory a decoded node takes: the node, its item or pointer array (as allocated) and
/// the data of items too large to be held inline.
pub(crate) fn node_bytes(node: &Node) -> u64 {
    let body = match &node.body {
        Body::Leaf(items) => {
            let shared: usize = items
                .iter()
                .map(|i| match &i.data {
                    ItemData::Shared(d) => d.len() + 2 * size_of::<usize>(),
                    ItemData::Inline { .. } => 0,
                })
                .sum();
            items.capacity() * size_of::<Item>() + shared
        }
        Body::Internal(ptrs) => ptrs.capacity() * size_of::<KeyPtr>(),
    };
    (size_of::<Node>() + 2 * size_of::<usize>() + body) as u64
}

/// The node cache, shared by all threads of a volume.
pub(crate) struct NodeCache {
    inner: Mutex<Clock>,
    /// The budget, in bytes of memory.
    budget: AtomicU64,
    /// The running transaction's dirty nodes, in bytes of memory (an estimate).
    dirty: AtomicU64,
}

impl NodeCache {
    /// A cache of nodes taking at most `budget` bytes of memory.
    pub fn new(budget: u64) -> NodeCache {
        NodeCache {
            inner: Mutex::new(Clock {
                map: HashMap::new(),
                slots: Vec::new(),
                vacant: Vec::new(),
                hand: 0,
                bytes: 0,
            }),
            budget: AtomicU64::new(budget),
            dirty: AtomicU64::new(0),
        }
    }

    /// What cached nodes may take now: the budget less the dirty nodes, of which at most
    /// 7/8 of the budget counts.
    fn room(&self) -> u64 {
        let budget = self.budget.load(Ordering::Relaxed);
        let dirty = self.dirty.load(Ordering::Relaxed);
        budget - dirty.min(budget - budget / 8)
    }

    /// Changes the budget; lowering it evicts at once.
    pub fn set_budget(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::Relaxed);
        let room = self.room();
        self.lock().evict_to(room);
    }

    /// Tells the cache how much memory the running transaction's dirty nodes take, so that
    /// cached nodes make room for them; evicts if the room shrank.
    pub fn set_dirty_bytes(&self, bytes: u64) {
        let old = self.dirty.swap(bytes, Ordering::Relaxed);
        if bytes > old {
            let room = self.room();
            self.lock().evict_to(room);
        }
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
            c.vacate(i);
        }
    }

    /// Caches `node` (validated), evicting unreferenced entries to make room.
    pub fn insert(&self, node: Arc<Node>) {
        let key = (node.bytenr, node.generation);
        let bytes = node_bytes(&node);
        let room = self.room();
        let mut c = self.lock();
        if let Some(i) = c.map.remove(&key) {
            c.vacate(i);
        }
        if bytes > room {
            return;
        }
        c.evict_to(room - bytes);
        let slot = Slot {
            key,
            node: Some(node),
            bytes,
            referenced: false,
        };
        let i = match c.vacant.pop() {
            Some(i) => {
                c.slots[i] = slot;
                i
            }
            None => {
                c.slots.push(slot);
                c.slots.len() - 1
            }
        };
        c.map.insert(key, i);
        c.bytes += bytes;
    }

    /// Memory the cached nodes take.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Number of cached nodes.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Key, TreeId};

    fn node(bytenr: u64) -> Arc<Node> {
        Arc::new(Node {
            bytenr,
            generation: 1,
            owner: TreeId(256),
            level: 0,
            body: Body::Leaf(Vec::new()),
        })
    }

    /// The budget of `n` nodes like [`node`]'s.
    fn nodes(n: u64) -> u64 {
        n * node_bytes(&node(0))
    }

    #[test]
    fn bounded_and_keeps_referenced_entries() {
        let c = NodeCache::new(nodes(16));
        for b in 0..16 {
            c.insert(node(b));
        }
        assert!(c.get(3, 1).is_some());
        for b in 100..110 {
            c.insert(node(b));
        }
        assert_eq!((c.len(), c.bytes()), (16, nodes(16)));
        assert!(
            c.get(3, 1).is_some(),
            "a referenced entry survives one sweep"
        );
        assert!(c.get(3, 2).is_none(), "another generation is another node");
    }

    #[test]
    fn forgotten_nodes_leave_and_their_slots_are_reused_first() {
        let c = NodeCache::new(nodes(16));
        for b in 0..16 {
            c.insert(node(b));
        }
        c.forget(5, 1);
        c.forget(5, 1);
        c.forget(99, 1);
        assert!(c.get(5, 1).is_none());
        assert_eq!((c.len(), c.bytes()), (15, nodes(15)));
        c.insert(node(200));
        assert_eq!(c.len(), 16);
        assert!(c.get(200, 1).is_some());
        for b in (0..16).filter(|&b| b != 5) {
            assert!(c.get(b, 1).is_some(), "{b} was evicted for a vacant slot");
        }
    }

    /// Nodes are counted by the memory they take, the budget holds whatever is inserted,
    /// lowering it evicts at once, and dirty nodes push clean ones out down to 1/8 of it.
    #[test]
    fn the_budget_holds_in_bytes_and_makes_room_for_dirty_nodes() {
        let big = |bytenr: u64| {
            let item = Item {
                key: Key::new(bytenr, 1, 0),
                data: ItemData::Shared(Arc::from(vec![7u8; 1000])),
            };
            Arc::new(Node {
                body: Body::Leaf(vec![item; 4]),
                ..(*node(bytenr)).clone()
            })
        };
        let big_bytes = node_bytes(&big(0));
        assert!(
            big_bytes > 4 * 1000 + 4 * size_of::<Item>() as u64,
            "{big_bytes}"
        );
        let budget = 10 * big_bytes;
        let c = NodeCache::new(budget);
        for b in 0..100 {
            c.insert(if b % 3 == 0 { big(b) } else { node(b) });
            assert!(c.bytes() <= budget, "{} bytes cached after {b}", c.bytes());
        }
        assert!(
            c.bytes() > budget - big_bytes,
            "the cache is used: {}",
            c.bytes()
        );
        c.set_budget(budget / 2);
        assert!(c.bytes() <= budget / 2);
        c.set_dirty_bytes(budget / 4);
        assert!(c.bytes() <= budget / 4);
        // Dirty nodes beyond 7/8 of the budget leave the clean ones 1/8.
        c.set_dirty_bytes(budget * 10);
        assert!(c.bytes() <= budget / 2 / 8);
        for b in 1000..1100 {
            c.insert(node(b));
        }
        assert!(c.bytes() <= budget / 2 / 8 && c.len() > 0);
        c.set_dirty_bytes(0);
        c.insert(big(5000));
        assert!(
            c.get(5000, 1).is_some(),
            "room again once the dirty nodes are gone"
        );
        // A node larger than all the room is not cached.
        c.set_budget(big_bytes - 1);
        c.insert(big(6000));
        assert!(c.get(6000, 1).is_none() && c.bytes() < big_bytes);
    }
}
