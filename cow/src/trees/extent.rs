//! The extent tree: every allocated extent with its reference count and back-references.
//!
//! - a metadata node: `(bytenr, METADATA_ITEM, level)` with one inline TREE_BLOCK_REF per
//!   referring tree;
//! - a data extent: `(bytenr, EXTENT_ITEM, len)` with the total count, plus one
//!   `(bytenr, EXTENT_DATA_REF, hash)` item per distinct (tree, inode, offset) referrer.
//!
//! Free space is the complement of these items (and the reserved superblock areas); it is
//! rebuilt from them at open.

use bdev::IoQueue;

use crate::alloc::FreeSpace;
use crate::btree::{Direction, Iter, NodeSource};
use crate::delayed::RefTarget;
use crate::error::{Error, Result};
use crate::format::{kind, reserved_ranges, DataBackref, ExtentItem, Key, MetadataItem, TreeId};
use crate::transaction::Transaction;
use crate::volume::ReadTxn;

/// Applies one queued reference change to the extent tree.
pub(crate) fn apply_ref(
    tx: &mut Transaction<'_>,
    io: &mut dyn IoQueue,
    bytenr: u64,
    target: RefTarget,
    delta: i64,
) -> Result<()> {
    match target {
        RefTarget::Tree { level, root } => apply_tree_ref(tx, io, bytenr, level, root, delta),
        RefTarget::Data { len, backref } => apply_data_ref(tx, io, bytenr, len, backref, delta),
    }
}

fn apply_tree_ref(
    tx: &mut Transaction<'_>,
    io: &mut dyn IoQueue,
    bytenr: u64,
    level: u8,
    root: TreeId,
    delta: i64,
) -> Result<()> {
    let key = Key::new(bytenr, kind::METADATA_ITEM, u64::from(level));
    let nodesize = u64::from(tx.vol.sh.nodesize);
    let cur = tx
        .get(io, TreeId::EXTENT, key)?
        .map(|d| MetadataItem::parse(&d))
        .transpose()
        .map_err(|e| Error::Corrupt(format!("extent tree item {key}: {e}")))?;
    let mut item = match cur {
        Some(i) => i,
        None if delta > 0 => {
            tx.bytes_used += nodesize;
            tx.mark_applied(bytenr);
            MetadataItem {
                generation: tx.gen,
                roots: Vec::new(),
            }
        }
        None => {
            return Err(Error::Corrupt(format!(
                "dropping a reference of tree {root} to node {bytenr:#x}, which the extent \
                 tree does not know"
            )))
        }
    };
    if delta > 0 {
        item.roots.extend(std::iter::repeat_n(root, delta as usize));
    }
    for _ in 0..(-delta).max(0) {
        let Some(i) = item.roots.iter().position(|&r| r == root) else {
            return Err(Error::Corrupt(format!(
                "node {bytenr:#x} has no reference from tree {root} to drop"
            )));
        };
        item.roots.swap_remove(i);
    }
    if item.roots.is_empty() {
        tx.delete_internal(io, TreeId::EXTENT, key)?;
        tx.bytes_used -= nodesize;
        tx.release_extent(bytenr, nodesize);
        Ok(())
    } else {
        item.roots.sort_unstable();
        tx.put_internal(io, TreeId::EXTENT, key, &item.encode())
    }
}

fn apply_data_ref(
    tx: &mut Transaction<'_>,
    io: &mut dyn IoQueue,
    bytenr: u64,
    len: u64,
    backref: DataBackref,
    delta: i64,
) -> Result<()> {
    let ekey = Key::new(bytenr, kind::EXTENT_ITEM, len);
    let (cur, slot, count) = read_data_extent(tx, io, bytenr, len, &backref)?;
    let mut ext = match cur {
        Some(e) => e,
        None if delta > 0 && tx.unreferenced_data.get(&bytenr) == Some(&len) => {
            tx.unreferenced_data.remove(&bytenr);
            tx.bytes_used += len;
            ExtentItem {
                refs: 0,
                generation: tx.gen,
            }
        }
        None => {
            return Err(Error::Invalid(format!(
                "data extent {bytenr:#x}+{len:#x} is neither referenced nor allocated by this \
                 transaction"
            )))
        }
    };
    let new_count = i64::from(count) + delta;
    let refs = ext.refs as i64 + delta;
    if new_count < 0 || refs < 0 {
        return Err(Error::Invalid(format!(
            "dropping a reference of {backref:?} to data extent {bytenr:#x} that does not exist"
        )));
    }
    let rkey = Key::new(bytenr, kind::EXTENT_DATA_REF, slot);
    ext.refs = refs as u64;
    if ext.refs == 0 && new_count != 0 {
        return Err(Error::Corrupt(format!(
            "data extent {bytenr:#x} reaches zero references while {backref:?} still holds \
             {new_count}"
        )));
    }
    if ext.refs == 0 {
        // The extent item first: it sorts before its back-references, so the second delete
        // is usually in the leaf the first one left the transaction's finger on.
        tx.delete_internal(io, TreeId::EXTENT, ekey)?;
        tx.delete_internal(io, TreeId::EXTENT, rkey)?;
        tx.bytes_used -= len;
        crate::trees::csum::delete(tx, io, bytenr, len)?;
        tx.release_extent(bytenr, len);
        return Ok(());
    }
    if new_count == 0 {
        tx.delete_internal(io, TreeId::EXTENT, rkey)?;
    } else {
        tx.put_internal(io, TreeId::EXTENT, rkey, &backref.encode(new_count as u32))?;
    }
    tx.put_internal(io, TreeId::EXTENT, ekey, &ext.encode())
}

/// In one walk over the items of the data extent at `bytenr`: its extent item of length
/// `len` (if any), and the key offset of `backref`'s item with its count (a free offset and
/// 0 if there is none yet; hash collisions take the next free offset).
fn read_data_extent(
    tx: &Transaction<'_>,
    io: &mut dyn IoQueue,
    bytenr: u64,
    len: u64,
    backref: &DataBackref,
) -> Result<(Option<ExtentItem>, u64, u32)> {
    let lo = Key::new(bytenr, kind::EXTENT_ITEM, 0);
    let hi = Key::new(bytenr, kind::EXTENT_DATA_REF, u64::MAX);
    let mut ext = None;
    let mut taken = std::collections::BTreeSet::new();
    for item in Iter::new(tx, io, TreeId::EXTENT, lo, hi, Direction::Forward) {
        let (k, data) = item?;
        let bad = |e: String| Error::Corrupt(format!("extent tree item {k}: {e}"));
        match k.kind {
            kind::EXTENT_ITEM if k.offset == len => {
                ext = Some(ExtentItem::parse(&data).map_err(bad)?)
            }
            kind::EXTENT_DATA_REF => {
                let (b, count) = DataBackref::parse(&data).map_err(bad)?;
                if b == *backref {
                    return Ok((ext, k.offset, count));
                }
                taken.insert(k.offset);
            }
            _ => {}
        }
    }
    let mut slot = backref.hash();
    while taken.contains(&slot) {
        slot = slot.wrapping_add(1);
    }
    Ok((ext, slot, 0))
}

/// Free space of the snapshot: the volume minus reserved areas minus every extent item. Also
/// returns the bytes the items account for. Overlapping or out-of-range extents are
/// corruption.
pub(crate) fn rebuild_free_space(
    r: &ReadTxn<'_>,
    io: &mut dyn IoQueue,
) -> Result<(FreeSpace, u64)> {
    let sh = &r.vol.sh;
    let mut free = FreeSpace::default();
    free.free(0, sh.total_bytes).expect("empty map");
    for (s, l) in reserved_ranges(sh.total_bytes) {
        free.take(s, l)
            .expect("reserved ranges are disjoint and inside");
    }
    let mut used = 0;
    let src: &dyn NodeSource = r;
    for item in Iter::new(
        src,
        io,
        TreeId::EXTENT,
        Key::MIN,
        Key::MAX,
        Direction::Forward,
    ) {
        let (k, data) = item?;
        let bad = |e: String| Error::Corrupt(format!("extent tree item {k}: {e}"));
        let len = match k.kind {
            kind::METADATA_ITEM => {
                MetadataItem::parse(&data).map_err(bad)?;
                u64::from(sh.nodesize)
            }
            kind::EXTENT_ITEM => {
                ExtentItem::parse(&data).map_err(bad)?;
                k.offset
            }
            kind::EXTENT_DATA_REF => {
                DataBackref::parse(&data).map_err(bad)?;
                continue;
            }
            _ => return Err(bad("unexpected item type".into())),
        };
        if k.objectid % u64::from(sh.sectorsize) != 0
            || len == 0
            || len % u64::from(sh.sectorsize) != 0
        {
            return Err(bad("extent is not whole sectors".into()));
        }
        free.take(k.objectid, len)
            .map_err(|e| bad(format!("overlaps another extent or a reserved area ({e})")))?;
        used += len;
    }
    Ok((free, used))
}
