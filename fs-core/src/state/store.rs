//! Access to the fs tree: [`Tx`] (a write transaction) and [`Rd`] (a snapshot with the
//! pending namespace changes over it), both with the I/O queue their reads and writes go
//! through, the [`Items`] reads they share, and [`ItemsMut`], the writes a namespace
//! operation makes through a transaction or an [`Ns`](super::Ns) view.

use cow::{Direction, Key, ReadTxn, Transaction, TreeId};

use bdev::IoQueue;

use crate::error::{Error, Result};
use crate::items::{kind, InodeItem};
use crate::state::pending::{merged, Ns, View};

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

/// The writes of a namespace operation.
pub(crate) trait ItemsMut: Items {
    fn put(&mut self, key: Key, data: &[u8]) -> Result<()>;
    fn del(&mut self, key: Key) -> Result<bool>;
    /// The generation a new inode is stamped with.
    fn generation(&self) -> u64;
    /// The largest item data the tree holds.
    fn max_item_size(&self) -> usize;
    /// `ino` has no name left and no open handle: deletes it, its data references with it.
    fn delete_inode(&mut self, ino: u64) -> Result<()>;
}

/// A snapshot with its queue, and the pending namespace changes reads see over it.
pub(crate) struct Rd<'a> {
    pub r: ReadTxn<'a>,
    pub io: &'a mut dyn IoQueue,
    pub pending: Option<View<'a>>,
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
        if let Some(p) = &self.pending {
            let (r, io) = (&self.r, &mut *self.io);
            if let Some(v) = p.get(key, || Ok(r.get(io, FS_TREE, key)?))? {
                return Ok(v);
            }
        }
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
        match &self.pending {
            Some(p) => merged(p.range(lo, hi, dir), it, dir, max),
            None => Ok(it.take(max).collect::<cow::Result<Vec<_>>>()?),
        }
    }
}

impl ItemsMut for Tx<'_> {
    fn put(&mut self, key: Key, data: &[u8]) -> Result<()> {
        Tx::put(self, key, data)
    }
    fn del(&mut self, key: Key) -> Result<bool> {
        Tx::del(self, key)
    }
    fn generation(&self) -> u64 {
        self.tx.generation()
    }
    fn max_item_size(&self) -> usize {
        self.tx.max_item_size()
    }
    fn delete_inode(&mut self, ino: u64) -> Result<()> {
        crate::namespace::delete_inode(self, ino)
    }
}

impl ItemsMut for Ns<'_> {
    fn put(&mut self, key: Key, data: &[u8]) -> Result<()> {
        Ns::put(self, key, data)
    }
    fn del(&mut self, key: Key) -> Result<bool> {
        Ns::del(self, key)
    }
    fn generation(&self) -> u64 {
        Ns::generation(self)
    }
    fn max_item_size(&self) -> usize {
        Ns::max_item_size(self)
    }
    fn delete_inode(&mut self, ino: u64) -> Result<()> {
        self.delete_inode_later(ino)
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
