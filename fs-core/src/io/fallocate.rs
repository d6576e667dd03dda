//! Size changes and fallocate: preallocation (unwritten extents), hole punching.

use crate::data::punch;
use crate::data::{extents_in, insert_extent};
use crate::error::{Error, Result};
use crate::items::{ExtentKind, FileExtent};
use crate::namespace::{load_inode, save_inode};
use bdev::exec::Context;
use iomap::Iomap;

use crate::io::DataOps;
use crate::state::{now_ns, Core, Items};

/// What `fallocate` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallocMode {
    /// Allocate unwritten space for the holes of the range; grow the file unless
    /// `keep_size`.
    Preallocate {
        /// Do not change the file size (`FALLOC_FL_KEEP_SIZE`).
        keep_size: bool,
    },
    /// Deallocate the range; it reads as zeroes; the size does not change.
    PunchHole,
    /// Make the range read as zeroes (whole blocks become unwritten extents); grow the file
    /// unless `keep_size`.
    ZeroRange {
        /// Do not change the file size.
        keep_size: bool,
    },
}

impl Core {
    /// Raises the size of `ino` to `end` if it is smaller, under the inode's lock (see
    /// `IomapOps::grow_size`); returns whether it changed. Like a growth by `set_size`, it
    /// is written by the next writeback completion, fsync or sync.
    pub(crate) fn grow_size(&self, ino: u64, end: u64) -> Result<bool> {
        self.mem(ino, |m| {
            let grew = end > m.size;
            if grew {
                m.size = end;
                m.size_dirty = true;
            }
            grew
        })
    }

    /// Sets the size (iomap's `set_size`): a shrink releases the blocks past the new last
    /// block at once (one transaction); a growth is remembered and written by the next
    /// writeback completion, fsync or sync (as ext4's `i_disksize`).
    pub(crate) fn set_size(&self, ino: u64, size: u64) -> Result<()> {
        let bs = self.bs();
        let old = self.mem(ino, |m| std::mem::replace(&mut m.size, size))?;
        if size >= old {
            self.mem(ino, |m| m.size_dirty = true)?;
            return Ok(());
        }
        let keep = size.div_ceil(bs) * bs;
        self.commit(|tx| {
            punch(tx, ino, keep, u64::MAX / 2)?;
            let mut item = load_inode(tx, ino)?;
            item.size = size;
            let now = now_ns();
            item.mtime_ns = now;
            item.ctime_ns = now;
            save_inode(tx, ino, &item)
        })?;
        let n = self.mem(ino, |m| m.delalloc.remove(keep / bs, u64::MAX / bs))?;
        self.release(n * bs);
        Ok(())
    }

    /// Writes the remembered size of `ino` (and its times) in one committed transaction:
    /// the metadata half of fsync.
    pub(crate) fn persist_inode(&self, ino: u64) -> Result<()> {
        let (size, mtime) = self.mem(ino, |m| (m.size, m.mtime_dirty))?;
        self.commit(|tx| {
            let Some(mut item) = crate::namespace::try_inode(tx, ino)? else {
                return Ok(());
            };
            item.size = size;
            if let Some(t) = mtime {
                // The last accepted write's time: an explicit time set after it cleared it.
                item.mtime_ns = t;
                item.ctime_ns = item.ctime_ns.max(t);
            }
            save_inode(tx, ino, &item)
        })?;
        self.mem(ino, |m| {
            m.size_dirty = m.size != size;
            if m.mtime_dirty == mtime {
                m.mtime_dirty = None;
            }
        })
    }

    /// Unwritten extents over the holes of the block range `[a, b)` (data cached but not
    /// yet written back counts as no hole); then the size becomes at least `grow_to`.
    ///
    /// The holes are found, and space reserved for them, before the transaction, but they
    /// count only as found again inside it: a writeback on another thread may meanwhile
    /// have written a cached block (no longer delalloc, its extent in the fsync log, which
    /// the commit folds first), and an unwritten extent laid over it would read as zeroes.
    /// When they changed, nothing is inserted and the whole thing runs again.
    pub(crate) fn prealloc(&self, ino: u64, a: u64, b: u64, grow_to: u64) -> Result<()> {
        let bs = self.bs();
        loop {
            if !self.log().is_clean() {
                // Holes are found in the committed tree: commit what the log holds first.
                self.commit_pending()?;
            }
            let holes = self.read(|rd| self.holes(rd, ino, a, b))?;
            let want: u64 = holes.iter().map(|(s, e)| e - s).sum();
            let mut got: Vec<(u64, u64, u64)> = Vec::new();
            let mut reserve = || -> Result<()> {
                let r = self.space().lock_reserved();
                if self.space().data_room(self.vol(), *r) < want {
                    return Err(Error::NoSpace(format!("fallocate of {want} bytes")));
                }
                for &(s, e) in &holes {
                    let mut at = s;
                    while at < e {
                        let (addr, len) = self.vol().reserve_data(bs, e - at)?;
                        got.push((at, addr, len));
                        at += len;
                    }
                }
                Ok(())
            };
            let reserved = reserve();
            let r = reserved.and_then(|()| {
                self.commit(|tx| {
                    if self.holes(tx, ino, a, b)? != holes {
                        return Ok(false);
                    }
                    for &(at, addr, len) in &got {
                        tx.tx.adopt_data(addr, len)?;
                        let fe = FileExtent::disk(ExtentKind::Prealloc, addr, len, 0, len);
                        insert_extent(tx, ino, at, &fe)?;
                    }
                    let mut item = load_inode(tx, ino)?;
                    item.size = item.size.max(grow_to);
                    item.ctime_ns = now_ns();
                    save_inode(tx, ino, &item)?;
                    Ok(true)
                })
            });
            match r {
                Ok(true) => break,
                // Not adopted (holes changed), or an aborted transaction handed the adopted
                // pieces back: all are ours to give back.
                Ok(false) | Err(_) => {
                    for &(_, addr, len) in &got {
                        self.vol().unreserve_data(addr, len)?;
                    }
                    r?;
                }
            }
        }
        // Marked dirty, though the item has it: a `sync` or fsync on another thread may have
        // read the smaller size before this and log it after this commit (its commit
        // would write it over this one's); the mark makes the next one write this size
        // again, and keeps the entry from being evicted and reloaded from that item.
        self.grow_size(ino, grow_to)?;
        Ok(())
    }

    /// Holes of `[a, b)` in `items` (the committed tree, or a transaction's view): no
    /// extent and no delalloc. Memory's delalloc is read after the extents: a block
    /// written back in between is then in neither, and the transaction's look (where the
    /// fold put its extent) tells.
    fn holes(&self, items: &mut impl Items, ino: u64, a: u64, b: u64) -> Result<Vec<(u64, u64)>> {
        let bs = self.bs();
        let exts = extents_in(items, ino, a, b)?;
        let da = self.mem(ino, |m| m.delalloc.clone())?;
        // An inline extent ends inside its block, which it occupies whole.
        let mut covered: Vec<(u64, u64)> = exts
            .iter()
            .map(|e| (e.file_off, e.end().div_ceil(bs) * bs))
            .collect();
        covered.extend(da.cached().map(|(s, e)| (s * bs, e * bs)));
        covered.sort_unstable();
        let mut out = Vec::new();
        let mut at = a;
        for (s, e) in covered {
            if s > at && at < b {
                out.push((at, s.min(b)));
            }
            at = at.max(e);
        }
        if at < b {
            out.push((at, b));
        }
        Ok(out)
    }

    /// Unmaps the block range `[a, b)` on the device (cached pages are the caller's).
    pub(crate) fn punch_blocks(&self, ino: u64, a: u64, b: u64) -> Result<()> {
        if a >= b {
            return Ok(());
        }
        self.commit(|tx| {
            punch(tx, ino, a, b)?;
            let mut item = load_inode(tx, ino)?;
            let now = now_ns();
            item.mtime_ns = now;
            item.ctime_ns = now;
            save_inode(tx, ino, &item)
        })
    }
}

/// `fallocate` on an open file, through the mount's iomap layer `io` on this thread's
/// executor `ctx`.
pub(crate) fn fallocate_file(
    io: &Iomap<DataOps>,
    ctx: &Context,
    ino: u64,
    mode: FallocMode,
    pos: u64,
    len: u64,
) -> Result<()> {
    let c = &*io.ops().core;
    let bs = c.bs();
    let end = pos + len;
    let (a, b) = (pos / bs * bs, end.div_ceil(bs) * bs);
    let (inner_a, inner_b) = (pos.div_ceil(bs) * bs, end / bs * bs);
    let size = c.mem(ino, |m| m.size)?;
    match mode {
        FallocMode::Preallocate { keep_size } => {
            let grow = if keep_size { 0 } else { end };
            c.prealloc(ino, a, b, grow)
        }
        FallocMode::PunchHole | FallocMode::ZeroRange { .. } => {
            // Partial edge blocks are zeroed through the cache; whole blocks are unmapped
            // after everything cached is written back (so no dirty page refills them).
            let ex = iomap::Ino(ino);
            if pos < inner_a.min(end) {
                ctx.block_on(io.zero_range(ctx, ex, pos, inner_a.min(end) - pos))?;
            }
            if inner_b >= inner_a && end > inner_b {
                ctx.block_on(io.zero_range(ctx, ex, inner_b, end - inner_b))?;
            }
            ctx.block_on(io.sync_file(ctx, ex))?;
            c.punch_blocks(ino, inner_a, inner_b.max(inner_a))?;
            io.cache().forget(ex);
            if let FallocMode::ZeroRange { keep_size } = mode {
                let grow = if keep_size { 0 } else { end.max(size) };
                c.prealloc(ino, inner_a, inner_b.max(inner_a), grow)?;
            }
            c.persist_inode(ino)
        }
    }
}
