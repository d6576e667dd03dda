//! Copy-on-write B+trees over [`Node`]s: lookup, range iteration, insert / update / delete with
//! split, merge and rebalance, and the bounded node cache.
//!
//! The algorithms are written against two traits, so the same code serves readers of a
//! committed snapshot ([`NodeSource`]) and the writer transaction ([`NodeWriter`]).
//!
//! Invariants of every tree:
//! - an internal node's pointer `i` carries the first key of child `i` and the child's
//!   generation; children are one level below their parent and owned by the same tree;
//! - only a root may be empty (a leaf with no items) and only a root may have one pointer
//!   (transiently: `delete` collapses such roots before returning);
//! - a node whose generation is the running transaction's has been copied in this transaction
//!   and lives in the transaction's dirty set; every other node is immutable.

mod cache;
mod delete;
mod insert;
mod iter;
mod leaves;
mod search;

use std::sync::Arc;

use bdev::IoQueue;

use crate::error::{Error, Result};
use crate::format::{Key, KeyPtr, Node, RootPtr, TreeId};

pub(crate) use cache::NodeCache;
pub(crate) use delete::{delete, delete_present};
pub(crate) use insert::{put, PutMode};
pub use iter::{Direction, Iter};
pub use leaves::LeafCache;
pub(crate) use search::{get, last_at_or_before};

/// Where a node is expected and what it must look like there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeAddr {
    pub bytenr: u64,
    pub generation: u64,
    pub level: u8,
    /// The parent's key for this child (`None` for a root).
    pub first_key: Option<Key>,
}

impl NodeAddr {
    pub fn root(r: RootPtr) -> NodeAddr {
        NodeAddr {
            bytenr: r.bytenr,
            generation: r.generation,
            level: r.level,
            first_key: None,
        }
    }

    pub fn child(parent: &Node, slot: usize) -> NodeAddr {
        let p: &KeyPtr = &parent.ptrs()[slot];
        NodeAddr {
            bytenr: p.bytenr,
            generation: p.generation,
            level: parent.level - 1,
            first_key: Some(p.key),
        }
    }
}

/// Checks a node against what its parent (or the root pointer) says about it.
pub(crate) fn check_context(node: &Node, tree: TreeId, at: &NodeAddr) -> Result<()> {
    let fail = |problem: String| Err(Error::node(node.what(), at.bytenr, tree, problem));
    if node.owner != tree {
        return fail(format!("owned by tree {}", node.owner));
    }
    if node.level != at.level {
        return fail(format!("level {}, expected {}", node.level, at.level));
    }
    if node.generation != at.generation {
        return fail(format!(
            "generation {}, expected {} (lost or stale write)",
            node.generation, at.generation
        ));
    }
    if let Some(k) = at.first_key {
        if node.first_key() != Some(k) {
            return fail(match node.first_key() {
                Some(f) => format!("first key {f}, parent says {k}"),
                None => "empty non-root node".into(),
            });
        }
    }
    Ok(())
}

/// Where nodes come from: a committed snapshot (cache, then device) or a transaction (its own
/// dirty nodes first).
pub(crate) trait NodeSource {
    /// The node at `at`, validated (by parsing and by [`check_context`]).
    fn load(&self, io: &mut dyn IoQueue, tree: TreeId, at: &NodeAddr) -> Result<Arc<Node>>;

    /// The current root of `tree`.
    fn root(&self, tree: TreeId) -> Result<RootPtr>;

    /// The leaf of `tree` that `key` belongs in and the finger's upper bound, if a
    /// [`Finger`] knows them without a descent.
    fn finger_leaf(&self, _tree: TreeId, _key: Key) -> Option<(Arc<Node>, Option<Key>)> {
        None
    }

    /// A descent from the root reached `leaf` of `tree`, which holds the keys from its
    /// first key up to `hi`: a source with a [`LeafCache`] remembers it.
    fn note_leaf(&self, _tree: TreeId, _leaf: &Arc<Node>, _hi: Option<Key>) {}
}

/// Where the last change to a tree in this transaction left off: a dirty leaf and the upper
/// bound of the keys that belong in it. The next change or lookup whose key falls inside
/// (from the leaf's first key up to `hi`) goes straight to the leaf instead of descending
/// from the root, as long as it changes neither the leaf's first key nor whether it needs
/// a split or a merge. A fold applies thousands of changes in key order, most of them to
/// the leaf the previous one touched.
///
/// The bound is taken on the way down (the first key of the next subtree on the path), so a
/// finger is only set when the change left the shape of the tree alone, and every change that
/// does reshape a tree (a split, merge, rebalance, new or collapsed root, freed node) drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Finger {
    /// The dirty leaf.
    pub leaf: u64,
    /// The first key of the leaf's right neighbour; `None` for the rightmost leaf.
    pub hi: Option<Key>,
    /// The leaf's [`Node::used_bytes`], kept up to date by every change through the finger
    /// (summing a full leaf's items on every change cost more than the change).
    pub used: usize,
}

impl Finger {
    /// Whether `key` belongs in a leaf with first key `first` under this finger.
    pub fn holds(&self, first: Key, key: Key) -> bool {
        first <= key && self.hi.is_none_or(|h| key < h)
    }
}

/// The upper bound of child `slot`'s keys under a node whose own bound is `hi`.
fn child_hi(ptrs: &[KeyPtr], slot: usize, hi: Option<Key>) -> Option<Key> {
    ptrs.get(slot + 1).map(|p| p.key).or(hi)
}

/// What tree modifications need from the running transaction.
pub(crate) trait NodeWriter: NodeSource {
    /// The running transaction's generation.
    fn generation(&self) -> u64;
    /// The node size of the volume.
    fn nodesize(&self) -> u32;
    /// Takes a dirty node out of the dirty set to modify it.
    fn take(&mut self, bytenr: u64) -> Result<Node>;
    /// Puts a (new or modified) dirty node into the dirty set.
    fn put(&mut self, node: Node);
    /// Allocates the address of a new node of `tree` at `level`.
    fn alloc_node(&mut self, tree: TreeId, level: u8) -> Result<u64>;
    /// Drops the reference of `tree` to the node at `bytenr` (removing it from the dirty set if
    /// it is there).
    fn free_node(&mut self, tree: TreeId, bytenr: u64, level: u8, generation: u64);
    /// Points `tree` at a new root.
    fn set_root(&mut self, tree: TreeId, root: RootPtr);
    /// The finger of `tree`, if one is set.
    fn finger(&self, tree: TreeId) -> Option<Finger>;
    /// Sets or drops the finger of `tree`.
    fn set_finger(&mut self, tree: TreeId, finger: Option<Finger>);
    /// A dirty node to modify in place (`None` if `bytenr` is not dirty).
    fn dirty_mut(&mut self, bytenr: u64) -> Option<&mut Node>;
}

/// The finger of `tree` and its leaf, in place, if `key` belongs in the leaf.
fn finger_leaf_mut<W: NodeWriter + ?Sized>(
    w: &mut W,
    tree: TreeId,
    key: Key,
) -> Option<(Finger, &mut Vec<crate::format::Item>)> {
    let f = w.finger(tree)?;
    let leaf = w.dirty_mut(f.leaf)?;
    match &mut leaf.body {
        crate::format::Body::Leaf(items) if items.first().is_some_and(|i| f.holds(i.key, key)) => {
            debug_assert_eq!(
                f.used,
                items
                    .iter()
                    .map(|i| crate::format::ITEM_HEADER_SIZE + i.data.len())
                    .sum::<usize>(),
                "finger's used bytes are stale"
            );
            Some((f, items))
        }
        _ => None,
    }
}

/// The slot of the child of `ptrs` whose subtree holds `key` (the first child if `key` is
/// smaller than every key).
pub(crate) fn child_slot(ptrs: &[KeyPtr], key: Key) -> usize {
    ptrs.partition_point(|p| p.key <= key).saturating_sub(1)
}

/// Copies the root of `tree` into this transaction if it is not already; returns its address.
pub(crate) fn cow_root<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
) -> Result<u64> {
    let r = w.root(tree)?;
    if r.generation == w.generation() {
        return Ok(r.bytenr);
    }
    let new = cow_node(w, io, tree, &NodeAddr::root(r))?;
    w.set_root(
        tree,
        RootPtr {
            bytenr: new,
            generation: w.generation(),
            level: r.level,
        },
    );
    Ok(new)
}

/// Copies child `slot` of the dirty node `parent` into this transaction if it is not already,
/// updating the parent's pointer; returns the child's (new) address.
pub(crate) fn cow_child<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    parent: &mut Node,
    slot: usize,
) -> Result<u64> {
    let at = NodeAddr::child(parent, slot);
    if at.generation == w.generation() {
        return Ok(at.bytenr);
    }
    let new = cow_node(w, io, tree, &at)?;
    let gen = w.generation();
    if let crate::format::Body::Internal(ptrs) = &mut parent.body {
        ptrs[slot].bytenr = new;
        ptrs[slot].generation = gen;
    }
    Ok(new)
}

fn cow_node<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    at: &NodeAddr,
) -> Result<u64> {
    let old = w.load(io, tree, at)?;
    let new = w.alloc_node(tree, at.level)?;
    let mut node = old.copy_for_write();
    node.bytenr = new;
    node.generation = w.generation();
    w.free_node(tree, at.bytenr, at.level, at.generation);
    w.put(node);
    Ok(new)
}
