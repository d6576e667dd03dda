//! The fs tree as the layers above see it, whatever serves it: its id, the [`Items`] reads
//! and [`ItemsMut`] writes (implemented by `store.rs`'s transaction and snapshot, the
//! pending set's `Ns` view, and, for `Tx`'s writes, the namespace layer), and inode lookups
//! on them. Below both `store.rs` and `pending.rs`, which use it.

use cow::{Direction, Key, TreeId};

use crate::error::{Error, Result};
use crate::items::{kind, InodeItem};

/// The fs tree.
pub(crate) const FS_TREE: TreeId = TreeId::FS;

/// Read access to the fs tree, through a transaction or a snapshot.
pub(crate) trait Items {
    fn get(&mut self, key: Key) -> Result<Option<cow::ItemData>>;
    fn range(
        &mut self,
        lo: Key,
        hi: Key,
        dir: Direction,
        max: usize,
    ) -> Result<Vec<(Key, cow::ItemData)>>;
    /// The last item with a key in `lo..=hi`, handed to `f`; a snapshot with no pending
    /// changes over it reads it in place (the direct read path's extent lookup).
    fn last_in<R>(
        &mut self,
        lo: Key,
        hi: Key,
        f: impl FnOnce(&Key, &[u8]) -> R,
    ) -> Result<Option<R>> {
        let found = self.range(lo, hi, Direction::Backward, 1)?;
        Ok(found.first().map(|(k, d)| f(k, d)))
    }
}

/// The writes of a namespace operation.
pub(crate) trait ItemsMut: Items {
    fn put(&mut self, key: Key, data: &[u8]) -> Result<()>;
    /// Deletes `key` if it exists.
    fn del(&mut self, key: Key) -> Result<()>;
    /// The generation a new inode is stamped with.
    fn generation(&self) -> u64;
    /// The largest item data the tree holds.
    fn max_item_size(&self) -> usize;
    /// `ino` has no name left and no open handle: deletes it, its data references with it.
    fn delete_inode(&mut self, ino: u64) -> Result<()>;
}

/// The key of `ino`'s inode item.
pub(crate) fn inode_key(ino: u64) -> Key {
    Key::new(ino, kind::INODE_ITEM, 0)
}

/// The inode item of `ino`, if it exists.
pub(crate) fn try_inode(it: &mut impl Items, ino: u64) -> Result<Option<InodeItem>> {
    it.get(inode_key(ino))?
        .map(|d| InodeItem::parse(&d).map_err(|e| Error::Corrupt(format!("inode {ino}: {e}"))))
        .transpose()
}

/// The inode item of `ino`; `NotFound` if it does not exist.
pub(crate) fn load_inode(it: &mut impl Items, ino: u64) -> Result<InodeItem> {
    try_inode(it, ino)?.ok_or_else(|| Error::NotFound(format!("inode {ino}")))
}
