//! Delete: copy the path down to the leaf, remove the item, and on the way back up merge or
//! rebalance children that fell under a quarter full; collapse roots with a single child.

use bdev::IoQueue;

use super::insert::split_point;
use super::{
    child_hi, child_slot, cow_child, cow_root, finger_leaf_mut, get, Finger, NodeAddr, NodeWriter,
};
use crate::error::Result;
use crate::format::{Body, Key, Node, RootPtr, TreeId, ITEM_HEADER_SIZE};

/// A subtree after a change: its first key (`None` if it became empty) and its fill.
struct Shape {
    first_key: Option<Key>,
    used: usize,
}

/// Removes `key` from `tree`; returns whether it was there.
pub(crate) fn delete<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    key: Key,
) -> Result<bool> {
    if let Some(found) = delete_at_finger(w, tree, key) {
        return Ok(found);
    }
    if get(w, io, tree, key)?.is_none() {
        return Ok(false);
    }
    delete_by_descent(w, io, tree, key)?;
    Ok(true)
}

/// Removes `key`, which the caller knows is in `tree`, without looking it up first. (Were it
/// missing, the only effect would be a path copied for nothing.)
pub(crate) fn delete_present<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    key: Key,
) -> Result<()> {
    match delete_at_finger(w, tree, key) {
        Some(_) => Ok(()),
        None => delete_by_descent(w, io, tree, key),
    }
}

fn delete_by_descent<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    key: Key,
) -> Result<()> {
    w.set_finger(tree, None);
    let root = cow_root(w, io, tree)?;
    del_rec(w, io, tree, root, None, key)?;
    shrink_root(w, io, tree)
}

/// Removes `key` directly from the finger's leaf when the key belongs there, is not the
/// leaf's first key, and the leaf stays full enough to need no merge: what the descent
/// would do, minus the descent. `None` when the descent is needed.
fn delete_at_finger<W: NodeWriter + ?Sized>(w: &mut W, tree: TreeId, key: Key) -> Option<bool> {
    let low = Node::capacity(w.nodesize()) / 4;
    let (f, items) = finger_leaf_mut(w, tree, key)?;
    match items.binary_search_by(|i| i.key.cmp(&key)) {
        Err(_) => Some(false),
        Ok(0) => None,
        Ok(i) => {
            let used = f.used - ITEM_HEADER_SIZE - items[i].data.len();
            if used < low {
                return None;
            }
            items.remove(i);
            w.set_finger(tree, Some(Finger { used, ..f }));
            Some(true)
        }
    }
}

/// `hi`: the first key of the subtree to the right of `bytenr`'s (`None`: rightmost).
fn del_rec<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    bytenr: u64,
    hi: Option<Key>,
    key: Key,
) -> Result<Shape> {
    let mut node = w.take(bytenr)?;
    if let Body::Leaf(items) = &mut node.body {
        if let Ok(i) = items.binary_search_by(|i| i.key.cmp(&key)) {
            items.remove(i);
        }
        let used = node.used_bytes();
        if used >= Node::capacity(w.nodesize()) / 4 {
            w.set_finger(
                tree,
                Some(Finger {
                    leaf: bytenr,
                    hi,
                    used,
                }),
            );
        }
    } else {
        let slot = child_slot(node.ptrs(), key);
        let child = cow_child(w, io, tree, &mut node, slot)?;
        let child_hi = child_hi(node.ptrs(), slot, hi);
        let shape = del_rec(w, io, tree, child, child_hi, key)?;
        if let (Some(k), Body::Internal(ptrs)) = (shape.first_key, &mut node.body) {
            ptrs[slot].key = k;
        }
        if shape.used < Node::capacity(w.nodesize()) / 4 {
            rebalance(w, io, tree, &mut node, slot)?;
        }
    }
    let shape = Shape {
        first_key: node.first_key(),
        used: node.used_bytes(),
    };
    w.put(node);
    Ok(shape)
}

/// Merges child `slot` of `parent` with a neighbour, or evens the two out if they do not fit
/// in one node.
fn rebalance<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    parent: &mut Node,
    slot: usize,
) -> Result<()> {
    w.set_finger(tree, None);
    let n = parent.ptrs().len();
    if n < 2 {
        return Ok(());
    }
    let (l, r) = if slot + 1 < n {
        (slot, slot + 1)
    } else {
        (slot - 1, slot)
    };
    let lb = cow_child(w, io, tree, parent, l)?;
    let rb = cow_child(w, io, tree, parent, r)?;
    let mut left = w.take(lb)?;
    let right = w.take(rb)?;
    let Body::Internal(ptrs) = &mut parent.body else {
        unreachable!("rebalance is only called on internal nodes")
    };
    match (&mut left.body, right.body) {
        (Body::Leaf(a), Body::Leaf(b)) => a.extend(b),
        (Body::Internal(a), Body::Internal(b)) => a.extend(b),
        _ => unreachable!("siblings have the same level"),
    }
    if left.fits(w.nodesize()) {
        w.free_node(tree, rb, right.level, right.generation);
        ptrs.remove(r);
    } else {
        let at = split_point(&left);
        let body = match &mut left.body {
            Body::Leaf(items) => Body::Leaf(items.split_off(at)),
            Body::Internal(p) => Body::Internal(p.split_off(at)),
        };
        let right = Node {
            bytenr: rb,
            generation: right.generation,
            owner: right.owner,
            level: right.level,
            body,
        };
        ptrs[r].key = right.first_key().expect("rebalanced halves are not empty");
        w.put(right);
    }
    ptrs[l].key = left.first_key().expect("a merged node is not empty");
    w.put(left);
    Ok(())
}

/// Replaces a root that has a single child by that child, as often as needed.
fn shrink_root<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
) -> Result<()> {
    loop {
        let r = w.root(tree)?;
        if r.level == 0 {
            return Ok(());
        }
        let node = w.load(io, tree, &NodeAddr::root(r))?;
        if node.ptrs().len() != 1 {
            return Ok(());
        }
        let child = node.ptrs()[0];
        w.set_root(
            tree,
            RootPtr {
                bytenr: child.bytenr,
                generation: child.generation,
                level: r.level - 1,
            },
        );
        w.free_node(tree, r.bytenr, r.level, r.generation);
    }
}
