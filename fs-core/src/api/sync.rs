//! fsync, fdatasync, sync and unmount: writeback through the iomap layer, then durability
//! (`durability/`: one fsync record, or a commit).

use crate::api::{Context, Filesystem};
use crate::durability;
use crate::error::{Error, Result};
use crate::state::SYNC_BATCH;

/// Writes back `ino` and makes it durable: through the log when it has one, else by a
/// commit of what writeback left (a grown size).
pub(crate) fn fsync_ino(fs: &Filesystem, ctx: &Context, ino: u64, datasync: bool) -> Result<()> {
    let io = &fs.inner.iomap;
    let c = fs.core();
    let use_log = durability::logs(c, ino)?;
    if use_log {
        c.mem(ino, |m| m.log_writeback += 1)?;
    }
    let r = ctx.block_on(io.sync_file(ctx.exec(), iomap::Ino(ino)));
    if use_log {
        c.mem(ino, |m| m.log_writeback -= 1)?;
    }
    r?;
    durability::fsync_written(c, ino, datasync, use_log)
}

impl Filesystem {
    /// Writes back everything, commits, flushes; reports an earlier failure that made the
    /// filesystem read-only. Open files stay usable until dropped.
    pub fn unmount(self, ctx: &Context) -> Result<()> {
        if self.core().read_only().is_none() {
            self.sync(ctx)?;
        }
        if let Some(p) = self.core().vol().poisoned() {
            return Err(Error::ReadOnly(p));
        }
        self.release_claim()
    }

    /// Makes the entries of directory `ino` durable: names added, removed or renamed in or
    /// out of it since the last commit, and its attributes (a commit, or the one in flight
    /// that holds them). Nothing is written when nothing of it is pending.
    pub fn fsync_dir_ino(&self, ino: u64) -> Result<()> {
        let c = self.core();
        match c.pending().seq_of(ino) {
            Some(seq) => c.namespace_durable(seq, || c.commit_for(seq)),
            None => Ok(()),
        }
    }

    /// Writes back every file and commits: everything written before is durable on return.
    pub fn sync(&self, ctx: &Context) -> Result<()> {
        sync_all(self, ctx)
    }
}

/// Writes back every file, commits every remembered size and time, flushes.
pub(crate) fn sync_all(fs: &Filesystem, ctx: &Context) -> Result<()> {
    let io = &fs.inner.iomap;
    let c = fs.core();
    let r = writeback_in_batches(fs, ctx);
    // Files dirty without delalloc blocks (cached overwrites of NOCOW or preallocated
    // space) and anything dirtied meanwhile.
    let r2 = ctx.block_on(io.writeback_all(ctx.exec()));
    let dirty = c
        .inodes()
        .select(|m| m.size_dirty || m.mtime_dirty.is_some());
    durability::commit_with_attrs(c, &dirty)?;
    r?;
    r2?;
    Ok(())
}

/// Writes back every file with cached data or unwritten attributes, committing (with their
/// sizes and times) after every `SYNC_BATCH` files or overlay pieces: the room kept for a
/// commit's copied nodes (`Space::fold_need`, `Space::slack`) covers a batch, not the whole
/// cache at once. One commit of everything (13,000 small files' extents and inode items)
/// failed for want of space on a full filesystem at unmount, dropping writes that had
/// returned Ok. Returns the first writeback error; a failed commit ends it.
fn writeback_in_batches(fs: &Filesystem, ctx: &Context) -> Result<()> {
    let io = &fs.inner.iomap;
    let c = fs.core();
    let mut dirty = c
        .inodes()
        .select(|m| m.delalloc.has_cached() || m.size_dirty || m.mtime_dirty.is_some());
    dirty.sort_unstable();
    let mut first_err = None;
    let mut batch = Vec::new();
    for ino in dirty {
        let r = ctx.block_on(io.writeback_range(ctx.exec(), iomap::Ino(ino), 0, u64::MAX));
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
        batch.push(ino);
        let pieces = c.space().overlay_pieces();
        if batch.len() >= SYNC_BATCH || pieces >= SYNC_BATCH {
            durability::commit_with_attrs(c, &batch)?;
            batch.clear();
        }
    }
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
