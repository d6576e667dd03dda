//! Point lookups.

use bdev::IoQueue;

use super::{child_slot, NodeAddr, NodeSource};
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
