//! Access to the fs tree: [`Tx`] (a write transaction) and [`Rd`] (a snapshot), both with
//! the I/O queue their reads and writes go through, and the [`Items`] reads they share.

use cow::{Direction, Key, ReadTxn, Transaction, TreeId};

use bdev::IoQueue;

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
}

/// A write transaction with its queue.
pub(crate) struct Tx<'a> {
    pub tx: Transaction<'a>,
    pub io: &'a mut dyn IoQueue,
}

/// A snapshot with its queue.
pub(crate) struct Rd<'a> {
    pub r: ReadTxn<'a>,
    pub io: &'a mut dyn IoQueue,
}

impl Items for Tx<'_> {
    fn get(&mut self, key: Key) -> Result<Option<cow::ItemData>> {
        Ok(self.tx.get(self.io, FS_TREE, key)?)
    }
    fn range(
        &mut self,
        lo: Key,
        hi: Key,
        dir: Direction,
        max: usize,
    ) -> Result<Vec<(Key, cow::ItemData)>> {
        let it = self.tx.iter(self.io, FS_TREE, lo, hi, dir);
        Ok(it.take(max).collect::<cow::Result<Vec<_>>>()?)
    }
}

impl Items for Rd<'_> {
    fn get(&mut self, key: Key) -> Result<Option<cow::ItemData>> {
        Ok(self.r.get(self.io, FS_TREE, key)?)
    }
    fn range(
        &mut self,
        lo: Key,
        hi: Key,
        dir: Direction,
        max: usize,
    ) -> Result<Vec<(Key, cow::ItemData)>> {
        let it = self.r.iter(self.io, FS_TREE, lo, hi, dir);
        Ok(it.take(max).collect::<cow::Result<Vec<_>>>()?)
    }
}

impl Tx<'_> {
    pub fn put(&mut self, key: Key, data: &[u8]) -> Result<()> {
        Ok(self.tx.upsert(self.io, FS_TREE, key, data)?)
    }
    pub fn del(&mut self, key: Key) -> Result<bool> {
        Ok(self.tx.delete(self.io, FS_TREE, key)?)
    }
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
