//! Access to the fs tree: [`Tx`] (a write transaction) and [`Rd`] (a snapshot with the
//! pending namespace changes over it), both with the I/O queue their reads and writes go
//! through; they implement `tree.rs`'s [`Items`] (and an [`Ns`](super::Ns) view its
//! [`ItemsMut`]).

use cow::{Direction, Key, ReadTxn, Transaction};

use bdev::IoQueue;

use crate::error::Result;
use crate::state::lookups::Changing;
use crate::state::pending::{merged, Ns, View};
use crate::state::tree::{Items, ItemsMut, FS_TREE};

/// A write transaction with its queue, and the cached lookups its writes change (declared
/// after `tx`: dropped after an abort; a commit drops it after publishing, see
/// `lookups.rs`).
pub(crate) struct Tx<'a> {
    pub tx: Transaction<'a>,
    pub io: &'a mut dyn IoQueue,
    pub changing: Changing<'a>,
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
    fn last_in<R>(
        &mut self,
        lo: Key,
        hi: Key,
        f: impl FnOnce(&Key, &[u8]) -> R,
    ) -> Result<Option<R>> {
        if self.pending.is_some() {
            let found = self.range(lo, hi, Direction::Backward, 1)?;
            return Ok(found.first().map(|(k, d)| f(k, d)));
        }
        Ok(self.r.last_at_or_before(self.io, FS_TREE, lo, hi, f)?)
    }
}

// `impl ItemsMut for Tx` is in `namespace/inode.rs`, beside the `delete_inode` it calls:
// deleting an inode is namespace work, above this layer.

impl ItemsMut for Ns<'_> {
    fn put(&mut self, key: Key, data: &[u8]) -> Result<()> {
        Ns::put(self, key, data)
    }
    fn del(&mut self, key: Key) -> Result<()> {
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
        self.changing.write(&key);
        Ok(self.tx.upsert(self.io, FS_TREE, key, data)?)
    }
    pub fn del(&mut self, key: Key) -> Result<bool> {
        self.changing.write(&key);
        Ok(self.tx.delete(self.io, FS_TREE, key)?)
    }

    /// [`Tx::put`] of a pending namespace change as readers see it already (the commit
    /// applying the pending changes): the lookup caches keep their entries.
    pub fn put_as_pending(&mut self, key: Key, data: &[u8]) -> Result<()> {
        Ok(self.tx.upsert(self.io, FS_TREE, key, data)?)
    }

    /// [`Tx::del`] of a pending namespace change (see [`Tx::put_as_pending`]).
    pub fn del_as_pending(&mut self, key: Key) -> Result<bool> {
        Ok(self.tx.delete(self.io, FS_TREE, key)?)
    }
}
