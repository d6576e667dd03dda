//! File extent lookup and the punching that copy-on-write, truncate and fallocate share.

use cow::{Direction, Key};

use crate::data::backref;
use crate::error::{Error, Result};
use crate::items::{kind, ExtentKind, FileExtent};
use crate::state::{Items, Tx};

/// A file extent and where it starts in the file.
#[derive(Clone, Debug)]
pub(crate) struct ExtentAt {
    pub file_off: u64,
    pub fe: FileExtent,
}

impl ExtentAt {
    pub fn end(&self) -> u64 {
        self.file_off + self.fe.num_bytes
    }
}

fn parse(ino: u64, k: &Key, d: &[u8]) -> Result<ExtentAt> {
    let fe = FileExtent::parse(d)
        .map_err(|e| Error::Corrupt(format!("inode {ino} extent at {}: {e}", k.offset)))?;
    Ok(ExtentAt {
        file_off: k.offset,
        fe,
    })
}

/// The file ranges `[start, end)` that `ino`'s committed extents map (an inline extent's
/// by its bytes).
pub(crate) fn extent_ranges(it: &mut impl Items, ino: u64) -> Result<Vec<(u64, u64)>> {
    it.range(
        Key::new(ino, kind::EXTENT_DATA, 0),
        Key::new(ino, kind::EXTENT_DATA, u64::MAX),
        Direction::Forward,
        usize::MAX,
    )?
    .iter()
    .map(|(k, d)| parse(ino, k, d).map(|e| (e.file_off, e.end())))
    .collect()
}

/// Bytes the union of `ranges` covers.
pub(crate) fn union_bytes(mut ranges: Vec<(u64, u64)>) -> u64 {
    ranges.sort_unstable();
    let mut total = 0;
    let mut covered_to = 0;
    for (s, e) in ranges {
        let s = s.max(covered_to);
        if e > s {
            total += e - s;
            covered_to = e;
        }
    }
    total
}

/// The extent covering file byte `pos`, else the first one after it (`None`: neither).
pub(crate) fn extent_at(it: &mut impl Items, ino: u64, pos: u64) -> Result<Option<ExtentAt>> {
    let before = it.last_in(
        Key::new(ino, kind::EXTENT_DATA, 0),
        Key::new(ino, kind::EXTENT_DATA, pos),
        |k, d| parse(ino, k, d),
    )?;
    if let Some(e) = before.transpose()? {
        if e.end() > pos {
            return Ok(Some(e));
        }
    }
    let after = it.range(
        Key::new(ino, kind::EXTENT_DATA, pos.saturating_add(1)),
        Key::new(ino, kind::EXTENT_DATA, u64::MAX),
        Direction::Forward,
        1,
    )?;
    after.first().map(|(k, d)| parse(ino, k, d)).transpose()
}

/// Every extent overlapping `[a, b)`.
pub(crate) fn extents_in(it: &mut impl Items, ino: u64, a: u64, b: u64) -> Result<Vec<ExtentAt>> {
    let mut out = Vec::new();
    if let Some(e) = extent_at(it, ino, a)? {
        if e.file_off < a {
            out.push(e);
        }
    }
    if b > a {
        for (k, d) in it.range(
            Key::new(ino, kind::EXTENT_DATA, a),
            Key::new(ino, kind::EXTENT_DATA, b - 1),
            Direction::Forward,
            usize::MAX,
        )? {
            out.push(parse(ino, &k, &d)?);
        }
    }
    Ok(out)
}

/// Every extent overlapping the nonempty `[a, b)`, last first: one backward walk from
/// `b - 1` (extents do not overlap, so the first that ends by `a` ends the walk), where
/// `extents_in` needs two or three tree descents.
fn overlapping(it: &mut impl Items, ino: u64, a: u64, b: u64) -> Result<Vec<ExtentAt>> {
    const BATCH: usize = 8;
    let mut out: Vec<ExtentAt> = Vec::new();
    let mut hi = b - 1;
    loop {
        let batch = it.range(
            Key::new(ino, kind::EXTENT_DATA, 0),
            Key::new(ino, kind::EXTENT_DATA, hi),
            Direction::Backward,
            BATCH,
        )?;
        let n = batch.len();
        for (k, d) in &batch {
            let e = parse(ino, k, d)?;
            if e.end() <= a {
                return Ok(out);
            }
            out.push(e);
        }
        match out.last() {
            Some(e) if n == BATCH && e.file_off > 0 => hi = e.file_off - 1,
            _ => return Ok(out),
        }
    }
}

/// Inserts a file extent at `file_off` and takes its data reference.
pub(crate) fn insert_extent(
    tx: &mut Tx<'_>,
    ino: u64,
    file_off: u64,
    fe: &FileExtent,
) -> Result<()> {
    tx.put(Key::new(ino, kind::EXTENT_DATA, file_off), &fe.encode())?;
    if fe.kind != ExtentKind::Inline {
        tx.tx.add_data_ref(
            fe.disk_bytenr,
            fe.disk_len,
            backref(ino, file_off - fe.offset),
        )?;
    }
    Ok(())
}

/// Unmaps the block-aligned file range `[a, b)`: extents inside go (their references
/// dropped), extents straddling an edge are cut. The pieces keep their back-reference (the
/// same data extent start in the file), so a cut is a -1 and a +1 that cancel.
pub(crate) fn punch(tx: &mut Tx<'_>, ino: u64, a: u64, b: u64) -> Result<()> {
    let found = if b > a {
        overlapping(tx, ino, a, b)?
    } else {
        extents_in(tx, ino, a, b)?
    };
    unmap(tx, ino, a, b, found)
}

/// Points the nonempty block-aligned range `[off, off + fe.num_bytes)` of `ino` at `fe`
/// (not inline): `punch` then `insert_extent`, except that when one old extent covers
/// exactly that range (the common overwrite) its item is replaced in place, one tree
/// change instead of a delete and an insert.
pub(crate) fn replace_extent(tx: &mut Tx<'_>, ino: u64, off: u64, fe: &FileExtent) -> Result<()> {
    let end = off + fe.num_bytes;
    // An extent starting exactly at `off` is found by a point lookup (through the
    // transaction's finger as the fold goes in key order); if it also ends at `end`, it is
    // the only one in the range (extents do not overlap), and no walk is needed.
    let key = Key::new(ino, kind::EXTENT_DATA, off);
    let at_off = tx.get(key)?.map(|d| parse(ino, &key, &d)).transpose()?;
    let found = match at_off {
        Some(e) if e.end() == end => vec![e],
        _ => overlapping(tx, ino, off, end)?,
    };
    match found.as_slice() {
        [old] if old.file_off == off && old.end() == end && old.fe.kind != ExtentKind::Inline => {
            tx.put(Key::new(ino, kind::EXTENT_DATA, off), &fe.encode())?;
            tx.tx.drop_data_ref(
                old.fe.disk_bytenr,
                old.fe.disk_len,
                backref(ino, off - old.fe.offset),
            )?;
            tx.tx
                .add_data_ref(fe.disk_bytenr, fe.disk_len, backref(ino, off - fe.offset))?;
            Ok(())
        }
        _ => {
            unmap(tx, ino, off, end, found)?;
            insert_extent(tx, ino, off, fe)
        }
    }
}

/// Unmaps `[a, b)` given the extents overlapping it.
fn unmap(tx: &mut Tx<'_>, ino: u64, a: u64, b: u64, found: Vec<ExtentAt>) -> Result<()> {
    for e in found {
        let key = Key::new(ino, kind::EXTENT_DATA, e.file_off);
        tx.del(key)?;
        if e.fe.kind == ExtentKind::Inline {
            continue;
        }
        tx.tx.drop_data_ref(
            e.fe.disk_bytenr,
            e.fe.disk_len,
            backref(ino, e.file_off - e.fe.offset),
        )?;
        if e.file_off < a {
            let mut left = e.fe.clone();
            left.num_bytes = a - e.file_off;
            insert_extent(tx, ino, e.file_off, &left)?;
        }
        if e.end() > b {
            let mut right = e.fe.clone();
            right.offset += b - e.file_off;
            right.num_bytes = e.end() - b;
            insert_extent(tx, ino, b, &right)?;
        }
    }
    Ok(())
}

/// Whether the data extent at `bytenr` has more than one reference (a NOCOW file must not
/// overwrite it in place).
pub(crate) fn is_shared(
    tx_or_rd: &mut crate::state::Rd<'_>,
    bytenr: u64,
    len: u64,
) -> Result<bool> {
    let key = Key::new(bytenr, cow::format::kind::EXTENT_ITEM, len);
    let Some(d) = tx_or_rd.r.get(tx_or_rd.io, cow::TreeId::EXTENT, key)? else {
        return Ok(true);
    };
    let item = cow::format::ExtentItem::parse(&d).map_err(Error::Corrupt)?;
    Ok(item.refs > 1)
}
