//! Folding the fsync log's overlay into a transaction, and replaying the log at mount.

use hashbrown::{HashMap, HashSet};

use crate::data::replace_extent;
use crate::durability::area::find_area;
use crate::durability::gap::find_gap;
use crate::error::{Error, Result};
use crate::items::{ExtentKind, FileExtent};
use crate::namespace::{save_inode, try_inode};
use crate::state::{decode, Blocks, Entry, Layer, Logged, Overlay, Pieces};
use crate::state::{Core, Tx};

/// The longest run of logged extents [`fold`] joins into one extent. A block overwritten
/// later keeps its whole extent allocated until every block of it is (as in btrfs), so runs
/// stay short: with runs of up to 1 MiB, random overwrites of a half-full filesystem ran out
/// of space (`tests/enospc.rs`); 64 KiB is the size those tests lay their files out in.
const MAX_RUN: u64 = 64 << 10;

/// Applies everything logged (extents, checksums, sizes) to `tx`. A one-block extent's
/// checksum goes into its file extent item instead of the checksum tree: the random
/// overwrite this path serves then changes no checksum item, to insert or to free. Whole
/// extents that follow each other both in a file and on the device (a file written block by
/// block, each block its own extent) are joined into one extent of up to `MAX_RUN` bytes:
/// one extent item, one file extent item and one checksum run instead of one of each per
/// block.
pub(crate) fn fold(tx: &mut Tx<'_>, log: &Logged, bs: u64) -> Result<()> {
    match log.overlay() {
        Overlay::Blocks(b) => fold_blocks(tx, b, bs)?,
        Overlay::Pieces(p) => fold_pieces(tx, p, bs)?,
    }
    for (&ino, &size) in log.sizes() {
        if let Some(mut item) = try_inode(tx, ino)? {
            item.size = size;
            save_inode(tx, ino, &item)?;
        }
    }
    for (&ino, &t) in log.times() {
        if let Some(mut item) = try_inode(tx, ino)? {
            item.mtime_ns = item.mtime_ns.max(t);
            item.ctime_ns = item.ctime_ns.max(t);
            save_inode(tx, ino, &item)?;
        }
    }
    Ok(())
}

/// [`fold`]'s pieces of an overlay of any extents.
fn fold_pieces(tx: &mut Tx<'_>, log: &Pieces, bs: u64) -> Result<()> {
    let lacks = |b: u64| Error::Corrupt(format!("logged extent {b:#x} lacks checksums"));
    // Extents whose every block a later write in the overlay replaced are given back
    // without entering the trees.
    let mapped: HashSet<u64> = log.mapped().values().map(|p| p.disk_bytenr).collect();
    let (runs, joined) = runs(log);
    // A reference added and one dropped per piece.
    tx.tx.expect_ref_changes(2 * log.mapped().len());
    for &(b, l) in log.extents() {
        if !mapped.contains(&b) {
            tx.tx.free_reserved(b, l)?;
        } else if joined.contains(&b) {
            // Adopted with its run, below.
        } else if l == bs {
            tx.tx.adopt_data_csums_elsewhere(b, l)?;
        } else {
            adopt_with_csums(tx, log, b, l, bs)?;
        }
    }
    for (&b, &l) in &runs {
        adopt_with_csums(tx, log, b, l, bs)?;
    }
    let mut live = None;
    for (&(ino, off), p) in log.mapped() {
        if !inode_lives(tx, &mut live, ino)? {
            continue;
        }
        let fe = if let Some(&len) = runs.get(&p.disk_bytenr) {
            FileExtent::disk(ExtentKind::Regular, p.disk_bytenr, len, 0, len)
        } else if joined.contains(&p.disk_bytenr) {
            // Mapped with the first piece of its run.
            continue;
        } else if p.disk_len == bs {
            let crc = log.crc(p.disk_bytenr);
            FileExtent::one_block(p.disk_bytenr, bs, crc.ok_or_else(|| lacks(p.disk_bytenr))?)
        } else {
            FileExtent::disk(
                ExtentKind::Regular,
                p.disk_bytenr,
                p.disk_len,
                p.offset,
                p.num_bytes,
            )
        };
        replace_extent(tx, ino, off, &fe)?;
    }
    Ok(())
}

/// [`fold`]'s pieces of an overlay of one-block extents (`Overlay::Blocks`): the same
/// result as [`fold_pieces`] with no lookup per block, every extent being mapped whole by
/// one piece or replaced (`Blocks::dead`).
fn fold_blocks(tx: &mut Tx<'_>, log: &Blocks, bs: u64) -> Result<()> {
    let mut blocks: Vec<((u64, u64), (u64, u32))> = log.mapped().collect();
    blocks.sort_unstable_by_key(|&(k, _)| k);
    // Runs of blocks that follow each other in one file and on the device, joined as in
    // `runs`: `(first index, device start, bytes)`.
    let mut runs: Vec<(usize, u64, u64)> = Vec::new();
    for (i, &((ino, off), (b, _))) in blocks.iter().enumerate() {
        if let Some((first, start, len)) = runs.last_mut() {
            let ((pino, poff), _) = blocks[*first];
            let follows = pino == ino && poff + *len == off && *start + *len == b;
            if follows && *len + bs <= MAX_RUN {
                *len += bs;
                continue;
            }
        }
        runs.push((i, b, bs));
    }
    tx.tx.expect_ref_changes(2 * blocks.len());
    for &b in log.dead() {
        tx.tx.free_reserved(b, bs)?;
    }
    // Adopted in device order, which is close to the order they were reserved in.
    let mut adopt: Vec<(u64, u64, usize)> = runs.iter().map(|&(i, b, l)| (b, l, i)).collect();
    adopt.sort_unstable();
    for (b, l, i) in adopt {
        if l == bs {
            tx.tx.adopt_data_csums_elsewhere(b, l)?;
        } else {
            let crcs: Vec<u32> = blocks[i..i + (l / bs) as usize]
                .iter()
                .map(|&(_, (_, c))| c)
                .collect();
            adopt_with(tx, b, l, &crcs)?;
        }
    }
    let mut live = None;
    for (i, b, l) in runs {
        let ((ino, off), (_, crc)) = blocks[i];
        if !inode_lives(tx, &mut live, ino)? {
            continue;
        }
        let fe = if l == bs {
            FileExtent::one_block(b, bs, crc)
        } else {
            FileExtent::disk(ExtentKind::Regular, b, l, 0, l)
        };
        replace_extent(tx, ino, off, &fe)?;
    }
    Ok(())
}

/// Adopts the logged extent `[b, b + l)` with its blocks' checksums in the checksum tree.
fn adopt_with_csums(tx: &mut Tx<'_>, log: &Pieces, b: u64, l: u64, bs: u64) -> Result<()> {
    let crcs = (0..l / bs)
        .map(|i| log.crc(b + i * bs))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| Error::Corrupt(format!("logged extent {b:#x} lacks checksums")))?;
    adopt_with(tx, b, l, &crcs)
}

/// Adopts the logged extent `[b, b + l)` with `crcs`, its blocks' checksums, in the
/// checksum tree.
fn adopt_with(tx: &mut Tx<'_>, b: u64, l: u64, crcs: &[u32]) -> Result<()> {
    tx.tx.adopt_data(b, l)?;
    Ok(tx.tx.csum_insert(tx.io, b, crcs)?)
}

/// Whether inode `ino` exists, for pieces that come sorted by inode: `last` keeps the
/// answer for the inode asked before, so each inode is looked up once.
fn inode_lives(tx: &mut Tx<'_>, last: &mut Option<(u64, bool)>, ino: u64) -> Result<bool> {
    if let Some((at, lives)) = *last {
        if at == ino {
            return Ok(lives);
        }
    }
    let lives = try_inode(tx, ino)?.is_some();
    *last = Some((ino, lives));
    Ok(lives)
}

/// Runs of logged extents that [`fold`] joins: whole extents, each mapped whole by one
/// piece, whose pieces follow each other in one file and whose extents follow each other on
/// the device. Returns the runs of two extents or more (`start -> bytes`, at most `MAX_RUN`)
/// and the starts of all the extents in them.
fn runs(log: &Pieces) -> (HashMap<u64, u64>, HashSet<u64>) {
    let whole: HashMap<u64, u64> = log.extents().iter().copied().collect();
    let mut runs = HashMap::new();
    let mut joined = HashSet::new();
    // The run being built (inode, file end, device start, bytes) and its extents.
    let mut run: Option<(u64, u64, u64, u64)> = None;
    let mut members: Vec<u64> = Vec::new();
    let mut finish = |run: Option<(u64, u64, u64, u64)>, members: &mut Vec<u64>| {
        if let (Some((_, _, start, len)), true) = (run, members.len() > 1) {
            runs.insert(start, len);
            joined.extend(members.iter().copied());
        }
        members.clear();
    };
    for (&(ino, off), p) in log.mapped() {
        let is_whole = p.offset == 0
            && p.num_bytes == p.disk_len
            && whole.get(&p.disk_bytenr) == Some(&p.disk_len);
        if let Some((i, end, start, len)) = run.as_mut() {
            let next = *i == ino && *end == off && *start + *len == p.disk_bytenr;
            if is_whole && next && *len + p.disk_len <= MAX_RUN {
                *end += p.num_bytes;
                *len += p.disk_len;
                members.push(p.disk_bytenr);
                continue;
            }
        }
        finish(run.take(), &mut members);
        if is_whole {
            run = Some((ino, off + p.num_bytes, p.disk_bytenr, p.disk_len));
            members.push(p.disk_bytenr);
        }
    }
    finish(run, &mut members);
    (runs, joined)
}

/// Reads the durable records of the log (the prefix of valid records extending the
/// committed generation whose data is on the device) and applies them in one commit.
/// Returns how many records were replayed. With `commit` false (read-only mount) the
/// records only go to the in-memory overlay, so reads see them.
pub(crate) fn replay(core: &Core, commit: bool, accept_loss: bool) -> Result<usize> {
    let Some((addr, len)) = find_area(core)? else {
        return Ok(0);
    };
    let bs = core.bs();
    let generation = core.vol().generation();
    core.log().start(Some((addr, len)), generation);
    let mut entries = Vec::new();
    let mut records = 0;
    for slot in 0..len / bs {
        let block = crate::durability::io::read(core, addr + slot * bs, bs)?;
        let Some(rec) = decode(&block, generation, slot) else {
            // Never truncate history silently (`gap.rs`).
            if let Some(gap) = find_gap(core, (addr, len), generation, slot)? {
                let msg = gap.message();
                if commit && !accept_loss {
                    return Err(Error::Corrupt(format!(
                        "{msg}; mount read-only to read what the records before it hold, \
                         or mount with accept_log_loss (`bypassfs mount -o accept_log_loss`) \
                         to keep them and drop the rest"
                    )));
                }
                log::error!("fs-core: {msg}; replaying the {records} records before it");
            }
            break;
        };
        if !data_landed(core, &rec)? {
            break;
        }
        entries.extend(rec);
        records += 1;
    }
    if records == 0 {
        return Ok(0);
    }
    log::info!("fs-core: replaying {records} fsync log records");
    let mut state = Logged::default();
    for e in &entries {
        match e {
            Entry::Extent {
                ino,
                file_off,
                bytenr,
                len,
                crcs,
            } => {
                core.vol().reserve_exact(*bytenr, *len)?;
                state.map_extent(*ino, *file_off, *bytenr, *len, crcs, bs);
            }
            Entry::Size { .. } | Entry::Times { .. } => state.note_attrs(std::slice::from_ref(e)),
            // Applied as pending namespace changes, below.
            Entry::Item { .. } | Entry::Forget { .. } => {}
        }
    }
    // The namespace changes go in as one pending layer: the commit below applies them
    // before the data (as the commit that never ran would have), a read-only mount reads
    // them as pending changes.
    if entries.iter().any(Entry::is_namespace) {
        core.pending()
            .replayed(Layer::replayed(&entries, generation, 1));
    }
    core.space().set_overlay_pieces(state.overlay().len());
    if !commit {
        // No commit folds the logged sizes into the items: memory must know them, or a
        // read-only mount shows files grown only by logged writes as empty.
        for (&ino, &size) in state.sizes() {
            match core.mem(ino, |m| m.size = size) {
                // Deleted since: nothing to show.
                Err(Error::NotFound(_)) => {}
                r => r?,
            }
        }
    }
    core.log().replayed(state);
    if commit {
        core.commit_pending()?;
    }
    Ok(records)
}

/// Whether every block of every extent of a record holds its logged checksum.
fn data_landed(core: &Core, rec: &[Entry]) -> Result<bool> {
    let bs = core.bs();
    for e in rec {
        if let Entry::Extent {
            bytenr, len, crcs, ..
        } = e
        {
            if crcs.len() as u64 != len / bs {
                return Ok(false);
            }
            let data = crate::durability::io::read(core, *bytenr, *len)?;
            for (i, c) in crcs.iter().enumerate() {
                let blk = &data[i * bs as usize..(i + 1) * bs as usize];
                if crc32c::crc32c(blk) != *c {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}
