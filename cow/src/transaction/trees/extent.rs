//! The extent tree: every allocated extent with its reference count and back-references.
//!
//! - a metadata node: `(bytenr, METADATA_ITEM, level)` with one inline TREE_BLOCK_REF per
//!   referring tree;
//! - a data extent: `(bytenr, EXTENT_ITEM, len)` with the total count and one
//!   back-reference inline, plus one `(bytenr, EXTENT_DATA_REF, hash)` item per further
//!   distinct (tree, inode, offset) referrer.
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
    // An extent this transaction allocated or adopted and nothing references yet has no
    // items: its space was free or reserved, and space freed in a transaction is not given
    // out again before the commit. Its first reference skips the search.
    let fresh = if delta > 0 {
        tx.take_unreferenced(bytenr, len)
    } else {
        None
    };
    let (cur, at, count) = if fresh.is_some() {
        debug_assert!(
            read_data_extent(tx, io, bytenr, len, &backref)?.0.is_none(),
            "unreferenced data extent {bytenr:#x} has an extent item"
        );
        (None, RefAt::Inline, 0)
    } else {
        read_data_extent(tx, io, bytenr, len, &backref)?
    };
    let mut ext = match (cur, fresh) {
        (Some(e), _) => e,
        (None, Some(csums_elsewhere)) => {
            tx.bytes_used += len;
            ExtentItem {
                refs: 0,
                generation: tx.gen,
                inline: None,
                csums_elsewhere,
            }
        }
        (None, None) => {
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
    ext.refs = refs as u64;
    if ext.refs == 0 && new_count != 0 {
        return Err(Error::Corrupt(format!(
            "data extent {bytenr:#x} reaches zero references while {backref:?} still holds \
             {new_count}"
        )));
    }
    // A back-reference new to the extent takes the inline place when it is free.
    let at = match at {
        RefAt::Item(_) if count == 0 && ext.inline.is_none() => RefAt::Inline,
        at => at,
    };
    if ext.refs == 0 {
        // The extent item first: it sorts before its back-references, so the second delete
        // is usually in the leaf the first one left the transaction's finger on.
        tx.delete_internal(io, TreeId::EXTENT, ekey)?;
        if let RefAt::Item(slot) = at {
            tx.delete_internal(io, TreeId::EXTENT, ref_key(bytenr, slot))?;
        }
        tx.bytes_used -= len;
        if !ext.csums_elsewhere {
            super::csum::delete(tx, io, bytenr, len)?;
        }
        tx.release_extent(bytenr, len);
        return Ok(());
    }
    match at {
        RefAt::Inline => ext.inline = (new_count > 0).then_some((backref, new_count as u32)),
        RefAt::Item(slot) if new_count == 0 => {
            tx.delete_internal(io, TreeId::EXTENT, ref_key(bytenr, slot))?
        }
        RefAt::Item(slot) => {
            let data = backref.encode(new_count as u32);
            tx.put_internal(io, TreeId::EXTENT, ref_key(bytenr, slot), &data)?
        }
    }
    tx.put_internal(io, TreeId::EXTENT, ekey, &ext.encode())
}

/// Where a data extent keeps one of its back-references.
enum RefAt {
    /// In its extent item.
    Inline,
    /// In the EXTENT_DATA_REF item at this key offset.
    Item(u64),
}

fn ref_key(bytenr: u64, slot: u64) -> Key {
    Key::new(bytenr, kind::EXTENT_DATA_REF, slot)
}

/// In one walk over the items of the data extent at `bytenr`: its extent item of length
/// `len` (if any), where `backref` is kept and its count (if it is nowhere yet: a free
/// EXTENT_DATA_REF key offset, hash collisions taking the next free one, and 0).
fn read_data_extent(
    tx: &Transaction<'_>,
    io: &mut dyn IoQueue,
    bytenr: u64,
    len: u64,
    backref: &DataBackref,
) -> Result<(Option<ExtentItem>, RefAt, u32)> {
    let lo = Key::new(bytenr, kind::EXTENT_ITEM, 0);
    let hi = Key::new(bytenr, kind::EXTENT_DATA_REF, u64::MAX);
    let mut ext = None;
    let mut taken = std::collections::BTreeSet::new();
    for item in Iter::new(tx, io, TreeId::EXTENT, lo, hi, Direction::Forward) {
        let (k, data) = item?;
        let bad = |e: String| Error::Corrupt(format!("extent tree item {k}: {e}"));
        match k.kind {
            kind::EXTENT_ITEM if k.offset == len => {
                let e = ExtentItem::parse(&data).map_err(bad)?;
                ext = Some(e);
                match e.inline {
                    Some((b, count)) if b == *backref => return Ok((ext, RefAt::Inline, count)),
                    // Every reference is inline: there are no back-reference items.
                    Some((_, count)) if u64::from(count) == e.refs => break,
                    _ => {}
                }
            }
            kind::EXTENT_DATA_REF => {
                let (b, count) = DataBackref::parse(&data).map_err(bad)?;
                if b == *backref {
                    return Ok((ext, RefAt::Item(k.offset), count));
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
    Ok((ext, RefAt::Item(slot), 0))
}

/// Free space of the snapshot: the volume minus reserved areas minus every extent item. Also
/// returns the bytes the items account for and how many of them are B-tree nodes.
/// Overlapping or out-of-range extents are corruption.
pub(crate) fn rebuild_free_space(
    r: &ReadTxn<'_>,
    io: &mut dyn IoQueue,
) -> Result<(FreeSpace, u64, u64)> {
    let sh = &r.vol.sh;
    let mut free = FreeSpace::default();
    free.free(0, sh.total_bytes).expect("empty map");
    for (s, l) in reserved_ranges(sh.total_bytes) {
        free.take(s, l)
            .expect("reserved ranges are disjoint and inside");
    }
    let mut used = 0;
    let mut nodes = 0;
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
                nodes += 1;
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
    Ok((free, used, nodes))
}
