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
        // Stopped first (waiting for a tick's sync in progress): its thread must not hold
        // the mount, and with it the device, past this call.
        let timer = self
            .inner
            .timer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(timer);
        if self.core().read_only().is_none() {
            self.sync(ctx)?;
        }
        if let Some(p) = self.core().vol().poisoned() {
            return Err(Error::ReadOnly(p));
        }
        self.release_claim()
    }

    /// Makes the entries of directory `ino` durable: names added, removed or renamed in or
    /// out of it since the last commit, and its attributes (a log record carrying every
    /// pending namespace change, else a commit or the one in flight that holds them).
    /// Nothing is written when nothing of it is pending.
    pub fn fsync_dir_ino(&self, ino: u64) -> Result<()> {
        match self.core().pending().seq_of(ino) {
            Some(seq) => durability::fsync_names(self.core(), seq),
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
    let r2 = ctx
        .block_on(io.writeback_all(ctx.exec()))
        .map_err(Error::from)
        .or_else(unless_removed);
    let dirty = c
        .inodes()
        .select(|m| m.size_dirty || m.mtime_dirty.is_some());
    durability::commit_with_attrs(c, &dirty)?;
    r?;
    r2?;
    Ok(())
}

/// Writes back every file with cached data or unwritten attributes, committing (with their
/// sizes and times) after every batch of files or overlay pieces (`Space::sync_batch`): the
/// room kept for a commit's copied nodes (`Space::fold_need`, `Space::slack`) covers a
/// batch, not the whole cache at once. One commit of everything (13,000 small files' extents
/// and inode items) failed for want of space on a full filesystem at unmount, dropping
/// writes that had returned Ok. Files are written back `WRITEBACK_AT_ONCE` at a time, their
/// writes in flight together (one at a time when space is short). Returns the first writeback error; a failed commit ends it.
fn writeback_in_batches(fs: &Filesystem, ctx: &Context) -> Result<()> {
    let io = &fs.inner.iomap;
    let c = fs.core();
    let mut dirty = c
        .inodes()
        .select(|m| m.delalloc.has_cached() || m.size_dirty || m.mtime_dirty.is_some());
    dirty.sort_unstable();
    let mut first_err = None;
    let mut batch = Vec::new();
    let mut limit = c.space().sync_batch(c.vol());
    let mut rest = &dirty[..];
    while !rest.is_empty() {
        // Short of space, one file at a time: a file's pieces then never overshoot the
        // batch the room was kept for.
        let at_once = if limit <= SYNC_BATCH {
            1
        } else {
            WRITEBACK_AT_ONCE
        };
        let n = rest.len().min(at_once).min(limit - batch.len());
        let (now, later) = rest.split_at(n);
        rest = later;
        let writebacks = now
            .iter()
            .map(|&ino| io.writeback_range(ctx.exec(), iomap::Ino(ino), 0, u64::MAX));
        for r in ctx.block_on(bdev::exec::join_all(writebacks)) {
            if let Err(e) = r.map_err(Error::from).or_else(unless_removed) {
                first_err.get_or_insert(e);
            }
        }
        batch.extend_from_slice(now);
        let pieces = c.space().overlay_pieces();
        if batch.len() >= limit || pieces >= limit {
            durability::commit_with_attrs(c, &batch)?;
            batch.clear();
            limit = c.space().sync_batch(c.vol());
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A writeback error unless it says the file is gone: writeback looks up no names, so it
/// finds no inode only when another thread removed the file (its last name, not open)
/// after `sync` listed it, and its cached data went with it.
fn unless_removed(e: Error) -> Result<()> {
    match e {
        Error::NotFound(_) => Ok(()),
        e => Err(e),
    }
}

/// Files `sync` writes back at once (each a few requests in flight).
const WRITEBACK_AT_ONCE: usize = 32;
