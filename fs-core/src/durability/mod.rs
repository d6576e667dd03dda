//! Durability: fsync, fdatasync, sync, and orphan cleanup at mount.
//!
//! The contract today (every claim holds because each metadata change is a cow transaction
//! committed — nodes written, flush, superblock with FUA, flush — before its call returns):
//! - a namespace operation (create, mkdir, link, unlink, rename, setattr, xattrs,
//!   fallocate, truncate) is durable and atomic when it returns;
//! - file data written through the cache is durable after `fsync`/`fdatasync` of the file,
//!   `sync`, or unmount; a crash before shows, for every block, the old or the new bytes,
//!   never others (new data goes to fresh space and is referenced only after it is on the
//!   device);
//! - a direct write's data is durable when it returns; the file size it grew is durable
//!   after `fsync`/`fdatasync`/`sync` (as ext4's `i_disksize`).
//!
//! There is no tree-log yet: an fsync costs the commit of the writeback completion (see
//! `tests/fsync_cost.rs` for the measured bound), not one log write.

use crate::context::Context;
use crate::core::Core;
use crate::error::Result;
use crate::fs::Filesystem;
use crate::items::{kind, ORPHAN_OBJECTID};

/// Writes back `ino` and commits its size: data and metadata durable on return.
pub(crate) fn fsync_ino(fs: &Filesystem, ctx: &Context, ino: u64) -> Result<()> {
    let io = &fs.inner.iomap;
    ctx.block_on(io.sync_file(ctx.exec(), iomap::Ino(ino)))?;
    // Every completion of the writeback just done (and of earlier direct writes) committed
    // its extents, checksums and size, flushes included; only a size the file grew to
    // without a writeback (direct write past the end) is left to commit.
    let c = fs.core();
    if c.mem(ino, |m| m.size_dirty)? {
        c.persist_inode(ino)?;
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
