//! Durability: fsync, fdatasync, sync, and orphan cleanup at mount.
//!
//! The contract (namespace changes are cow transactions committed — nodes written, flush,
//! superblock with FUA, flush — before their call returns; data reaches the trees at
//! writeback completion, through a commit or the fsync log):
//! - a namespace operation (create, mkdir, link, unlink, rename, setattr, xattrs,
//!   fallocate, truncate) is durable and atomic when it returns;
//! - file data written through the cache is durable after `fsync`/`fdatasync` of the file,
//!   `sync`, or unmount; a crash before shows, for every block, the old or the new bytes,
//!   never others (new data goes to fresh space and is referenced only after it is on the
//!   device);
//! - a direct write's data is durable when it returns; the file size it grew is durable
//!   after `fsync`/`fdatasync`/`sync` (as ext4's `i_disksize`).
//!
//! fsync/fdatasync of data written through the cache use the fsync log (`fslog.rs`): the
//! writeback completions go to an in-memory overlay, and one record block plus one flush
//! make them durable; replay at mount links them (`fold.rs`). `tests/fsync_log.rs` counts
//! the device writes and flushes (a 4 KiB write + fdatasync: 2 writes, 1 flush).
//!
//! Crash tests backing these claims: `tests/crash.rs` (`ace_one_operation_workloads`,
//! `ace_two_operation_workloads_sampled`), `tests/fsync_log.rs`
//! (`logged_fsyncs_survive_a_crash_and_a_full_log_commits`), `tests/model.rs` (crash after
//! fdatasync of every file).

mod fold;
mod fslog;
mod io;

pub(crate) use fold::{ensure_area, fold, replay};
pub use fslog::LOG_INO;
pub(crate) use fslog::{Entry, LogState};

use crate::context::Context;
use crate::core::Core;
use crate::error::Result;
use crate::fs::Filesystem;
use crate::items::{kind, ORPHAN_OBJECTID};

/// Writes back `ino` and makes it durable: through the log when it has one, else by a
/// commit of what writeback left (a grown size).
pub(crate) fn fsync_ino(fs: &Filesystem, ctx: &Context, ino: u64) -> Result<()> {
    let io = &fs.inner.iomap;
    let c = fs.core();
    let use_log = c.log().area.is_some() && !c.mem(ino, |m| m.nocow)?;
    if use_log {
        c.mem(ino, |m| m.log_writeback += 1)?;
    }
    let r = ctx.block_on(io.sync_file(ctx.exec(), iomap::Ino(ino)));
    if use_log {
        c.mem(ino, |m| m.log_writeback -= 1)?;
    }
    r?;
    if use_log {
        return log_fsync(c, ino);
    }
    // Every completion of the writeback just done (and of earlier direct writes) committed
    // its extents, checksums and size, flushes included; only a size the file grew to
    // without a writeback (direct write past the end) is left to commit.
    if c.mem(ino, |m| m.size_dirty)? {
        c.persist_inode(ino)?;
    }
    Ok(())
}

/// Writes what is logged but not yet durable, with the size of `ino`, as one record and
/// flushes; falls back to a commit when the record does not fit or the log is full.
fn log_fsync(c: &Core, ino: u64) -> Result<()> {
    let (size, size_dirty) = c.mem(ino, |m| (m.size, m.size_dirty))?;
    let mut log = c.log();
    if log.unwritten.is_empty() && !size_dirty {
        // Everything of this file is already in a durable record or committed.
        return Ok(());
    }
    let (addr, len) = log.area.expect("checked by the caller");
    let mut entries = log.unwritten.clone();
    if size_dirty {
        entries.push(Entry::Size { ino, size });
    }
    let bs = c.bs;
    let slot = log.next_slot;
    let record = (slot < len / bs)
        .then(|| fslog::encode(log.base_gen, slot, &entries, bs as usize))
        .flatten();
    let Some(record) = record else {
        drop(log);
        if size_dirty {
            c.mem(ino, |m| m.size_dirty = false)?;
            c.log().sizes.insert(ino, size);
        }
        return c.write(|_| Ok(()));
    };
    if let Err(e) = io::write_flush(c, addr + slot * bs, &record) {
        drop(log);
        // The record may or may not be on the media; a commit makes everything durable.
        ::log::error!("fs-core: fsync log write failed ({e}); committing instead");
        return c.write(|_| Ok(()));
    }
    log.next_slot += 1;
    log.unwritten.clear();
    if size_dirty {
        log.sizes.insert(ino, size);
    }
    drop(log);
    if size_dirty {
        c.mem(ino, |m| m.size_dirty &= m.size != size)?;
    }
    Ok(())
}

/// Writes back every file, commits every remembered size, flushes.
pub(crate) fn sync_all(fs: &Filesystem, ctx: &Context) -> Result<()> {
    let io = &fs.inner.iomap;
    let r = ctx.block_on(io.writeback_all(ctx.exec()));
    let c = fs.core();
    let dirty: Vec<(u64, u64)> = c
        .inodes()
        .iter()
        .filter(|(_, m)| m.size_dirty)
        .map(|(&i, m)| (i, m.size))
        .collect();
    c.write(|tx| {
        for &(ino, size) in &dirty {
            if let Some(mut item) = crate::namespace::try_inode(tx, ino)? {
                item.size = size;
                crate::namespace::save_inode(tx, ino, &item)?;
            }
        }
        Ok(())
    })?;
    let mut map = c.inodes();
    for (ino, size) in dirty {
        if let Some(m) = map.get_mut(&ino) {
            m.size_dirty = m.size != size;
        }
    }
    drop(map);
    r?;
    Ok(())
}

/// Deletes inodes left unlinked-but-open by a crash or an unclean unmount.
pub(crate) fn remove_orphans(core: &Core) -> Result<()> {
    let lo = cow::Key::new(ORPHAN_OBJECTID, kind::ORPHAN_ITEM, 0);
    let hi = cow::Key::new(ORPHAN_OBJECTID, kind::ORPHAN_ITEM, u64::MAX);
    let orphans = core.read(|rd| {
        use crate::core::Items;
        rd.range(lo, hi, cow::Direction::Forward, usize::MAX)
    })?;
    if orphans.is_empty() {
        return Ok(());
    }
    log::info!("fs-core: removing {} orphan inodes", orphans.len());
    core.write(|tx| {
        for (k, _) in &orphans {
            crate::namespace::delete_inode(tx, k.offset)?;
        }
        Ok(())
    })
}
