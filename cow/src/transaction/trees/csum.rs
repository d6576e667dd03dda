//! The checksum tree: the crc32c of every data block (one sector), in items
//! `(CSUM_OBJECTID, EXTENT_CSUM, bytenr)` holding the checksums of consecutive blocks from
//! `bytenr` on. Items never overlap.

use bdev::IoQueue;

use crate::btree::{last_at_or_before, Direction, Iter, NodeSource};
use crate::error::{Error, Result};
use crate::format::{kind, max_item_size, Key, TreeId, CSUM_OBJECTID};
use crate::transaction::Transaction;
use crate::volume::ReadTxn;

fn key(bytenr: u64) -> Key {
    Key::new(CSUM_OBJECTID, kind::EXTENT_CSUM, bytenr)
}

fn check_item(k: &Key, data: &[u8]) -> Result<usize> {
    if data.is_empty() || data.len() % 4 != 0 {
        return Err(Error::Corrupt(format!(
            "csum tree item {k}: {} bytes is not a whole number of checksums",
            data.len()
        )));
    }
    Ok(data.len() / 4)
}

/// The checksum of the block at `bytenr`: read in place in its leaf, with no copy of the
/// item (up to a node's worth of checksums) nor of its reference count.
pub(crate) fn lookup(
    src: &dyn NodeSource,
    io: &mut dyn IoQueue,
    sectorsize: u32,
    bytenr: u64,
) -> Result<Option<u32>> {
    let ss = u64::from(sectorsize);
    let found = last_at_or_before(src, io, TreeId::CSUM, key(0), key(bytenr), |k, data| {
        let n = check_item(k, data)? as u64;
        let idx = (bytenr - k.offset) / ss;
        if (bytenr - k.offset) % ss != 0 || idx >= n {
            return Ok(None);
        }
        let at = idx as usize * 4;
        Ok(Some(u32::from_le_bytes(
            data[at..at + 4].try_into().expect("4 bytes"),
        )))
    })?;
    found.unwrap_or(Ok(None))
}

/// The checksums of the `count` blocks from `bytenr` on, `None` where none is recorded: one
/// descent to the item holding `bytenr` and a walk along the leaves from there, where a
/// [`lookup`] per block descends once per block (a 1 MiB buffered read verifies 256).
pub(crate) fn lookup_range(
    src: &dyn NodeSource,
    io: &mut dyn IoQueue,
    sectorsize: u32,
    bytenr: u64,
    count: usize,
) -> Result<Vec<Option<u32>>> {
    let ss = u64::from(sectorsize);
    let mut out = vec![None; count];
    let Some(end) = (count as u64)
        .checked_mul(ss)
        .and_then(|len| bytenr.checked_add(len))
        .filter(|&end| end > bytenr)
    else {
        return Ok(out);
    };
    // Items never overlap: only the last one starting at or before `bytenr` can reach into
    // the range from before it. When it covers the whole range (a read inside one
    // extent's checksums, the usual case) that one descent is all.
    let mut put = |k: &Key, data: &[u8]| -> Result<u64> {
        let n = check_item(k, data)? as u64;
        for (i, c) in data.chunks_exact(4).enumerate() {
            let at = k.offset + i as u64 * ss;
            if at >= end {
                break;
            }
            if at < bytenr || (at - bytenr) % ss != 0 {
                continue;
            }
            let sum = u32::from_le_bytes(c.try_into().expect("4 bytes"));
            out[((at - bytenr) / ss) as usize] = Some(sum);
        }
        Ok(k.offset.saturating_add(n * ss))
    };
    let covered = {
        let mut back = Iter::new(
            src,
            io,
            TreeId::CSUM,
            key(0),
            key(bytenr),
            Direction::Backward,
        );
        match back.next() {
            Some(item) => {
                let (k, data) = item?;
                put(&k, &data)?
            }
            None => bytenr,
        }
    };
    if covered < end {
        // Items starting after `bytenr` (the one at it, if any, was read above).
        let it = Iter::new(
            src,
            io,
            TreeId::CSUM,
            key(bytenr + 1),
            key(end - 1),
            Direction::Forward,
        );
        for item in it {
            let (k, data) = item?;
            put(&k, &data)?;
        }
    }
    Ok(out)
}

fn sectors(tx: &Transaction<'_>, bytenr: u64, len: u64) -> Result<u64> {
    let ss = u64::from(tx.vol.sh.sectorsize);
    if bytenr % ss != 0 || len % ss != 0 || bytenr.checked_add(len).is_none() {
        return Err(Error::Invalid(format!(
            "checksum range {bytenr:#x}+{len:#x} is not whole {ss}-byte sectors"
        )));
    }
    Ok(ss)
}

/// Records `csums` for the blocks from `bytenr` on, replacing what was there.
pub(crate) fn insert(
    tx: &mut Transaction<'_>,
    io: &mut dyn IoQueue,
    bytenr: u64,
    csums: &[u32],
) -> Result<()> {
    let ss = sectors(tx, bytenr, 0)?;
    let len = csums.len() as u64 * ss;
    if !tx.first_csums_of_new_extent(bytenr, len) {
        delete(tx, io, bytenr, len)?;
    }
    let per_item = max_item_size(tx.vol.sh.nodesize) / 4;
    for (i, chunk) in csums.chunks(per_item).enumerate() {
        let data: Vec<u8> = chunk.iter().flat_map(|c| c.to_le_bytes()).collect();
        let start = bytenr + (i * per_item) as u64 * ss;
        tx.put_internal(io, TreeId::CSUM, key(start), &data)?;
    }
    Ok(())
}

/// Removes the checksums of the blocks in `[bytenr, bytenr + len)`, trimming items that
/// stick out on either side.
pub(crate) fn delete(
    tx: &mut Transaction<'_>,
    io: &mut dyn IoQueue,
    bytenr: u64,
    len: u64,
) -> Result<()> {
    let ss = sectors(tx, bytenr, len)?;
    if len == 0 {
        return Ok(());
    }
    let end = bytenr + len;
    // One walk down from the end: items never overlap, so the first one (going down) that
    // ends at or before `bytenr` ends the search.
    let mut items = Vec::new();
    for item in Iter::new(
        &*tx,
        io,
        TreeId::CSUM,
        key(0),
        key(end - 1),
        Direction::Backward,
    ) {
        let (k, data) = item?;
        if k.offset + check_item(&k, &data)? as u64 * ss <= bytenr {
            break;
        }
        items.push((k, data));
    }
    for (k, data) in items {
        let s = k.offset;
        let e = s + check_item(&k, &data)? as u64 * ss;
        if e <= bytenr || s >= end {
            continue;
        }
        tx.delete_internal(io, TreeId::CSUM, k)?;
        if s < bytenr {
            let keep = ((bytenr - s) / ss) as usize * 4;
            tx.put_internal(io, TreeId::CSUM, key(s), &data[..keep])?;
        }
        if e > end {
            let skip = ((end - s) / ss) as usize * 4;
            tx.put_internal(io, TreeId::CSUM, key(end), &data[skip..])?;
        }
    }
    Ok(())
}

impl ReadTxn<'_> {
    /// The crc32c recorded for the data block at `bytenr`.
    pub fn csum_lookup(&self, io: &mut dyn IoQueue, bytenr: u64) -> Result<Option<u32>> {
        lookup(self, io, self.vol.sh.sectorsize, bytenr)
    }

    /// The crc32c recorded for each of the `count` data blocks from `bytenr` on (`None`
    /// where there is none), in one walk of the checksum tree.
    pub fn csum_lookup_range(
        &self,
        io: &mut dyn IoQueue,
        bytenr: u64,
        count: usize,
    ) -> Result<Vec<Option<u32>>> {
        lookup_range(self, io, self.vol.sh.sectorsize, bytenr, count)
    }
}
