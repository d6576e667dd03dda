//! Insert and update: copy the path down to the leaf, change the leaf, split what overflows on
//! the way back up, and grow a new root when the old one split.

use bdev::IoQueue;

use super::{child_hi, child_slot, cow_child, cow_root, finger_leaf_mut, get, Finger, NodeWriter};
use crate::error::{Error, Result};
use crate::format::{
    max_item_size, Body, Item, Key, KeyPtr, Node, RootPtr, TreeId, ITEM_HEADER_SIZE,
};

/// What `put` may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PutMode {
    /// The key must not exist.
    Insert,
    /// The key must exist.
    Update,
    /// Either.
    Upsert,
}

/// A subtree after a change: its first key, and a new right sibling if it split.
struct Outcome {
    first_key: Key,
    split: Option<KeyPtr>,
}

/// Stores `data` under `key` in `tree`.
pub(crate) fn put<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    key: Key,
    data: &[u8],
    mode: PutMode,
) -> Result<()> {
    let max = max_item_size(w.nodesize());
    if data.len() > max {
        return Err(Error::Invalid(format!(
            "item {key} of {} bytes is larger than the {max} bytes a node of {} holds",
            data.len(),
            w.nodesize()
        )));
    }
    if put_at_finger(w, tree, key, data, mode)? {
        return Ok(());
    }
    w.set_finger(tree, None);
    if mode != PutMode::Upsert {
        let exists = get(w, io, tree, key)?.is_some();
        match (mode, exists) {
            (PutMode::Insert, true) => return Err(Error::KeyExists { tree, key }),
            (PutMode::Update, false) => return Err(Error::NotFound { tree, key }),
            _ => {}
        }
    }
    let root = cow_root(w, io, tree)?;
    let out = put_rec(w, io, tree, root, None, key, data)?;
    if let Some(sibling) = out.split {
        grow_root(w, tree, out.first_key, sibling)?;
    }
    Ok(())
}

/// Stores `data` under `key` directly in the finger's leaf when the key belongs there, is
/// not a new first key, and the leaf still fits afterwards: what the descent would do, minus
/// the descent. Returns whether it did; errors as `put` for the mode.
fn put_at_finger<W: NodeWriter + ?Sized>(
    w: &mut W,
    tree: TreeId,
    key: Key,
    data: &[u8],
    mode: PutMode,
) -> Result<bool> {
    let room = Node::capacity(w.nodesize());
    let Some((f, items)) = finger_leaf_mut(w, tree, key) else {
        return Ok(false);
    };
    let used = match items.binary_search_by(|i| i.key.cmp(&key)) {
        Ok(_) if mode == PutMode::Insert => return Err(Error::KeyExists { tree, key }),
        Ok(i) if f.used - items[i].data.len() + data.len() <= room => {
            let used = f.used - items[i].data.len() + data.len();
            items[i].data = data.into();
            used
        }
        Err(_) if mode == PutMode::Update => return Err(Error::NotFound { tree, key }),
        Err(i) if f.used + ITEM_HEADER_SIZE + data.len() <= room => {
            items.insert(
                i,
                Item {
                    key,
                    data: data.into(),
                },
            );
            f.used + ITEM_HEADER_SIZE + data.len()
        }
        _ => return Ok(false),
    };
    w.set_finger(tree, Some(Finger { used, ..f }));
    Ok(true)
}

/// `hi`: the first key of the subtree to the right of `bytenr`'s (`None`: rightmost).
fn put_rec<W: NodeWriter + ?Sized>(
    w: &mut W,
    io: &mut dyn IoQueue,
    tree: TreeId,
    bytenr: u64,
    hi: Option<Key>,
    key: Key,
    data: &[u8],
) -> Result<Outcome> {
    let mut node = w.take(bytenr)?;
    if node.level == 0 {
        if let Body::Leaf(items) = &mut node.body {
            match items.binary_search_by(|i| i.key.cmp(&key)) {
                Ok(i) => items[i].data = data.into(),
                Err(i) => items.insert(
                    i,
                    Item {
                        key,
                        data: data.into(),
                    },
                ),
            }
        }
    } else {
        let slot = child_slot(node.ptrs(), key);
        let child = cow_child(w, io, tree, &mut node, slot)?;
        let child_hi = child_hi(node.ptrs(), slot, hi);
        let out = put_rec(w, io, tree, child, child_hi, key, data)?;
        if let Body::Internal(ptrs) = &mut node.body {
            ptrs[slot].key = out.first_key;
            if let Some(s) = out.split {
                ptrs.insert(slot + 1, s);
            }
        }
    }
    let used = node.used_bytes();
    let split = if used <= Node::capacity(w.nodesize()) {
        if node.level == 0 {
            w.set_finger(
                tree,
                Some(Finger {
                    leaf: bytenr,
                    hi,
                    used,
                }),
            );
        }
        None
    } else {
        Some(split_node(w, tree, &mut node)?)
    };
    let first_key = node
        .first_key()
        .expect("a node just inserted into is not empty");
    w.put(node);
    Ok(Outcome { first_key, split })
}

/// Where to cut `node` so both halves are about equally full (both non-empty).
pub(super) fn split_point(node: &Node) -> usize {
    match &node.body {
        Body::Internal(ptrs) => ptrs.len() / 2,
        Body::Leaf(items) => {
            let sizes: Vec<usize> = items
                .iter()
                .map(|i| crate::format::ITEM_HEADER_SIZE + i.data.len())
                .collect();
            let total: usize = sizes.iter().sum();
            let mut acc = 0;
            let mut best = (usize::MAX, 1);
            for (k, s) in sizes.iter().enumerate().take(sizes.len() - 1) {
                acc += s;
                let diff = acc.abs_diff(total - acc);
                if diff < best.0 {
                    best = (diff, k + 1);
                }
            }
            best.1
        }
    }
}

/// Moves the upper half of `node` into a new right sibling; returns the pointer to it.
fn split_node<W: NodeWriter + ?Sized>(w: &mut W, tree: TreeId, node: &mut Node) -> Result<KeyPtr> {
    let at = split_point(node);
    let body = match &mut node.body {
        Body::Leaf(items) => Body::Leaf(items.split_off(at)),
        Body::Internal(ptrs) => Body::Internal(ptrs.split_off(at)),
    };
    let bytenr = w.alloc_node(tree, node.level)?;
    let right = Node {
        bytenr,
        generation: w.generation(),
        owner: tree,
        level: node.level,
        body,
    };
    let ptr = KeyPtr {
        key: right.first_key().expect("split halves are not empty"),
        bytenr,
        generation: right.generation,
    };
    w.put(right);
    Ok(ptr)
}

/// The root split: a new root one level up points to both halves.
fn grow_root<W: NodeWriter + ?Sized>(
    w: &mut W,
    tree: TreeId,
    first_key: Key,
    sibling: KeyPtr,
) -> Result<()> {
    let old = w.root(tree)?;
    let level = old.level + 1;
    if usize::from(level) >= crate::format::MAX_LEVEL {
        return Err(Error::Invalid(format!(
            "tree {tree} would exceed the maximum height"
        )));
    }
    let bytenr = w.alloc_node(tree, level)?;
    let gen = w.generation();
    w.put(Node {
        bytenr,
        generation: gen,
        owner: tree,
        level,
        body: Body::Internal(vec![
            KeyPtr {
                key: first_key,
                bytenr: old.bytenr,
                generation: old.generation,
            },
            sibling,
        ]),
    });
    w.set_root(
        tree,
        RootPtr {
            bytenr,
            generation: gen,
            level,
        },
    );
    Ok(())
}
