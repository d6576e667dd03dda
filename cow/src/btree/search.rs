//! Point lookups.

use bdev::IoQueue;

use super::{child_slot, Direction, Iter, NodeAddr, NodeSource};
use crate::error::Result;
use crate::format::{ItemData, Key, TreeId};

/// The data of `key` in `tree`, if present.
pub(crate) fn get<S: NodeSource + ?Sized>(
    src: &S,
    io: &mut dyn IoQueue,
    tree: TreeId,
    key: Key,
) -> Result<Option<ItemData>> {
    if let Some((leaf, _)) = src.finger_leaf(tree, key) {
        let items = leaf.items();
        return Ok(items
            .binary_search_by(|i| i.key.cmp(&key))
            .ok()
            .map(|i| items[i].data.clone()));
    }
    let mut at = NodeAddr::root(src.root(tree)?);
    loop {
        let node = src.load(io, tree, &at)?;
        if node.level == 0 {
            let items = node.items();
            return Ok(items
                .binary_search_by(|i| i.key.cmp(&key))
                .ok()
                .map(|i| items[i].data.clone()));
        }
        let slot = child_slot(node.ptrs(), key);
        if slot == 0 && key < node.ptrs()[0].key {
            return Ok(None);
        }
        at = NodeAddr::child(&node, slot);
    }
}

/// The last item of `tree` with a key in `lo..=key`, handed to `f` where it lies in its
/// leaf: no iterator, no path, no copy or reference count of the data. A direct read makes
/// two such lookups (its extent, its block's checksum) per 4 KiB; an [`Iter`] for each
/// allocated its path and cloned the item's data (a reference count on a line of its own,
/// often a cache miss at QD 128). Starts at the source's cached leaf when it has one;
/// the rare item in an earlier leaf than `key`'s is left to a backward [`Iter`].
pub(crate) fn last_at_or_before<R>(
    src: &dyn NodeSource,
    io: &mut dyn IoQueue,
    tree: TreeId,
    lo: Key,
    key: Key,
    f: impl FnOnce(&Key, &[u8]) -> R,
) -> Result<Option<R>> {
    if lo > key {
        return Ok(None);
    }
    let leaf = match src.finger_leaf(tree, key) {
        Some((leaf, _)) => leaf,
        None => {
            let mut at = NodeAddr::root(src.root(tree)?);
            let mut hi: Option<Key> = None;
            loop {
                let node = src.load(io, tree, &at)?;
                if node.level == 0 {
                    src.note_leaf(tree, &node, hi);
                    break node;
                }
                let slot = child_slot(node.ptrs(), key);
                if let Some(next) = node.ptrs().get(slot + 1) {
                    hi = Some(next.key);
                }
                at = NodeAddr::child(&node, slot);
            }
        }
    };
    let items = leaf.items();
    let le_end = items.partition_point(|i| i.key <= key);
    let Some(item) = le_end.checked_sub(1).map(|i| &items[i]) else {
        // Everything in `key`'s leaf is above it: the answer, if any, is further left.
        let mut it = Iter::new(src, io, tree, lo, key, Direction::Backward);
        return it.next().transpose().map(|o| o.map(|(k, d)| f(&k, &d)));
    };
    Ok((item.key >= lo).then(|| f(&item.key, &item.data)))
}
