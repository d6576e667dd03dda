//! Loading, saving and deleting inode items.

use cow::{Direction, Key, TreeId};

use crate::error::{Error, Result};
use crate::items::{kind, ExtentKind, FileExtent, InodeItem, ORPHAN_OBJECTID};
use crate::state::{inode_key, Items, ItemsMut, Tx};

pub(crate) fn save_inode(tx: &mut impl ItemsMut, ino: u64, item: &InodeItem) -> Result<()> {
    tx.put(inode_key(ino), &item.encode())
}

/// A transaction's writes: here rather than in `state/store.rs`, since deleting an inode
/// (its extents' back-references, xattrs, ...) is this layer's work.
impl ItemsMut for Tx<'_> {
    fn put(&mut self, key: Key, data: &[u8]) -> Result<()> {
        Tx::put(self, key, data)
    }
    fn del(&mut self, key: Key) -> Result<()> {
        Tx::del(self, key).map(drop)
    }
    fn generation(&self) -> u64 {
        self.tx.generation()
    }
    fn max_item_size(&self) -> usize {
        self.tx.max_item_size()
    }
    fn delete_inode(&mut self, ino: u64) -> Result<()> {
        delete_inode(self, ino)
    }
}

/// Removes every item of `ino` and drops its data references (its names are gone already).
pub(crate) fn delete_inode(tx: &mut Tx<'_>, ino: u64) -> Result<()> {
    loop {
        let items = tx.range(
            Key::new(ino, 0, 0),
            Key::new(ino, u8::MAX, u64::MAX),
            Direction::Forward,
            64,
        )?;
        if items.is_empty() {
            break;
        }
        for (k, data) in items {
            if k.kind == kind::EXTENT_DATA {
                drop_extent_ref(tx, ino, k.offset, &data)?;
            }
            tx.del(k)?;
        }
    }
    tx.del(Key::new(ORPHAN_OBJECTID, kind::ORPHAN_ITEM, ino))?;
    Ok(())
}

/// Drops the data reference of the file extent item at `(ino, off)`.
pub(crate) fn drop_extent_ref(tx: &mut Tx<'_>, ino: u64, off: u64, data: &[u8]) -> Result<()> {
    let fe = FileExtent::parse(data)
        .map_err(|e| Error::Corrupt(format!("inode {ino} extent at {off}: {e}")))?;
    if fe.kind == ExtentKind::Inline {
        return Ok(());
    }
    tx.tx.drop_data_ref(
        fe.disk_bytenr,
        fe.disk_len,
        crate::data::backref(ino, off - fe.offset),
    )?;
    Ok(())
}

/// The tree all of this lives in (for messages).
#[allow(dead_code)]
pub(crate) const TREE: TreeId = TreeId::FS;
