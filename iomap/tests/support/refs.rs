//! `RefFs`: a small, real copy-on-write extent filesystem in memory, over a `bdev` device,
//! to test the iomap layer against.
//!
//! - per inode: a size, an extent map (file block → device block, written or unwritten), a
//!   set of delalloc ranges (dirty in the cache, space reserved, not yet allocated) and
//!   optionally inline bytes (a file that fits in one block, held in "metadata");
//! - an allocator: a bump pointer plus a coalescing free map, with per-block reference
//!   counts so reflinked blocks are shared and freed by the last owner;
//! - buffered writes reserve space (delalloc) in `begin`; writeback allocates fresh blocks
//!   and the completion hook points the file at them and frees the old ones (copy-on-write);
//!   direct writes allocate fresh blocks in `begin` and remap on completion;
//! - `fallocate` creates unwritten extents; `reflink` shares extents (SHARED flag).
//!
//! Space accounting: `free_blocks()` counts unallocated blocks, `reserved()` blocks promised
//! to delalloc; tests check both return to their start after everything is deleted.
//!
//! Locking, shaped like a kernel filesystem's so that the read path costs what it would
//! there: inodes live in a fixed table indexed by inode number (no lookup structure to
//! lock); an inode's size is an atomic read without a lock (`i_size_read`); its mappings sit
//! under a reader-writer lock (XFS's `ilock`), so a read maps under a shared lock and never
//! touches the allocator. Lock order: one inode, then space.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bdev::exec::Context;
use iomap::{
    Ended, FsError, Ino, IoDone, IoMap, IomapError, IomapOps, IterArgs, IterFlags, MapFlags, Maps,
    Result,
};

/// A set of disjoint half-open block ranges.
#[derive(Clone, Debug, Default)]
struct Ranges(BTreeMap<u64, u64>);

impl Ranges {
    /// The range containing `b`.
    fn containing(&self, b: u64) -> Option<(u64, u64)> {
        self.0
            .range(..=b)
            .next_back()
            .map(|(&s, &e)| (s, e))
            .filter(|&(_, e)| e > b)
    }

    /// The first range starting after `b`.
    fn next_after(&self, b: u64) -> Option<u64> {
        self.0.range(b + 1..).next().map(|(&s, _)| s)
    }

    /// Removes `[a, b)`; returns how many blocks were in the set.
    fn remove(&mut self, a: u64, b: u64) -> u64 {
        let hit: Vec<(u64, u64)> = self
            .0
            .range(..b)
            .filter(|&(_, &e)| e > a)
            .map(|(&s, &e)| (s, e))
            .collect();
        let mut n = 0;
        for (s, e) in hit {
            self.0.remove(&s);
            n += e.min(b) - s.max(a);
            if s < a {
                self.0.insert(s, a);
            }
            if e > b {
                self.0.insert(b, e);
            }
        }
        n
    }

    /// Adds `[a, b)`, merging with neighbours.
    fn insert(&mut self, a: u64, b: u64) {
        self.remove(a, b);
        let (mut s, mut e) = (a, b);
        if let Some((ps, pe)) = self.0.range(..a).next_back().map(|(&s, &e)| (s, e)) {
            if pe == a {
                self.0.remove(&ps);
                s = ps;
            }
        }
        if let Some(ne) = self.0.get(&b).copied() {
            self.0.remove(&b);
            e = ne;
        }
        self.0.insert(s, e);
    }

    fn count(&self) -> u64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }
}

/// A written or unwritten extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ext {
    len: u64,
    pblk: u64,
    unwritten: bool,
}

#[derive(Default)]
struct File {
    ext: BTreeMap<u64, Ext>,
    delalloc: Ranges,
    inline: Option<Arc<[u8]>>,
}

impl File {
    /// Maps the unmapped blocks from `b` on to `ext`, merged with the extents before and
    /// after when they continue it on the device (as ext4 and XFS merge), so a file written
    /// in order stays one extent however many writes made it.
    fn map(&mut self, b: u64, mut ext: Ext) {
        let mut start = b;
        let continues = |a: &Ext, b: &Ext| a.unwritten == b.unwritten && a.pblk + a.len == b.pblk;
        if let Some((s, prev)) = b.checked_sub(1).and_then(|p| self.ext_at(p)) {
            if continues(&prev, &ext) {
                self.ext.remove(&s);
                (start, ext.pblk, ext.len) = (s, prev.pblk, prev.len + ext.len);
            }
        }
        let end = start + ext.len;
        if let Some(next) = self.ext.get(&end).copied() {
            if continues(&ext, &next) {
                self.ext.remove(&end);
                ext.len += next.len;
            }
        }
        self.ext.insert(start, ext);
    }

    fn ext_at(&self, b: u64) -> Option<(u64, Ext)> {
        self.ext
            .range(..=b)
            .next_back()
            .map(|(&s, &e)| (s, e))
            .filter(|(s, e)| s + e.len > b)
    }

    /// Unmaps `[a, b)`; returns the device runs that were mapped there.
    fn punch(&mut self, a: u64, b: u64) -> Vec<(u64, u64)> {
        let hit: Vec<(u64, Ext)> = self
            .ext
            .range(..b)
            .filter(|(s, e)| *s + e.len > a)
            .map(|(&s, &e)| (s, e))
            .collect();
        let mut freed = Vec::new();
        for (s, e) in hit {
            self.ext.remove(&s);
            let (lo, hi) = (s.max(a), (s + e.len).min(b));
            freed.push((e.pblk + (lo - s), hi - lo));
            if s < a {
                self.ext.insert(s, Ext { len: a - s, ..e });
            }
            if s + e.len > b {
                let cut = b - s;
                self.ext.insert(
                    b,
                    Ext {
                        len: e.len - cut,
                        pblk: e.pblk + cut,
                        unwritten: e.unwritten,
                    },
                );
            }
        }
        freed
    }
}

struct Alloc {
    total: u64,
    next: u64,
    free: Ranges,
    refs: Vec<u32>,
}

impl Alloc {
    /// Up to `max` contiguous blocks.
    fn alloc(&mut self, max: u64) -> Option<(u64, u64)> {
        let (s, e) = match self.free.0.iter().next() {
            Some((&s, &e)) => (s, e),
            None if self.next < self.total => (self.next, self.total),
            None => return None,
        };
        let n = max.min(e - s);
        if s == self.next {
            self.next += n;
        } else {
            self.free.remove(s, s + n);
        }
        for b in s..s + n {
            self.refs[b as usize] = 1;
        }
        Some((s, n))
    }

    fn decref(&mut self, pblk: u64, n: u64) {
        for b in pblk..pblk + n {
            let r = &mut self.refs[b as usize];
            assert!(*r > 0, "refs: block {b} freed twice");
            *r -= 1;
            if *r == 0 {
                self.free.insert(b, b + 1);
            }
        }
    }

    fn free_blocks(&self) -> u64 {
        self.total - self.next + self.free.count()
    }
}

/// Space shared by every file: the allocator and the delalloc reservations.
struct Space {
    alloc: Alloc,
    reserved: u64,
}

impl Space {
    /// Reserves `n` blocks of delalloc space at block `b0` of a file.
    fn reserve(&mut self, bs: u64, b0: u64, n: u64, source: Option<IoMap>) -> Result<Maps> {
        if self.alloc.free_blocks() < self.reserved + n {
            return Err(nospace());
        }
        self.reserved += n;
        let write = IoMap::delalloc(b0 * bs, n * bs).with_flags(MapFlags::NEW);
        Ok(Maps { write, source })
    }
}

/// Inodes in the table (as ext4 and XFS, fixed when the filesystem is made).
const INODES: usize = 64;

/// The size of an inode slot that holds no file.
const FREE: u64 = u64::MAX;

/// One slot of the inode table.
struct Inode {
    /// The file size, or `FREE`. Changed only under the write lock of `file`.
    size: AtomicU64,
    file: RwLock<Option<File>>,
}

/// The reference filesystem.
pub struct RefFs {
    bs: u64,
    inodes: Box<[Inode]>,
    space: Mutex<Space>,
}

impl RefFs {
    /// A filesystem of `blocks` blocks of `bs` bytes.
    pub fn new(bs: u32, blocks: u64) -> RefFs {
        assert!(
            bs.is_power_of_two(),
            "block size {bs} is not a power of two"
        );
        let inodes = (0..INODES)
            .map(|_| Inode {
                size: AtomicU64::new(FREE),
                file: RwLock::new(None),
            })
            .collect();
        RefFs {
            bs: u64::from(bs),
            inodes,
            space: Mutex::new(Space {
                alloc: Alloc {
                    total: blocks,
                    next: 0,
                    free: Ranges::default(),
                    refs: vec![0; blocks as usize],
                },
                reserved: 0,
            }),
        }
    }

    fn space(&self) -> MutexGuard<'_, Space> {
        self.space.lock().unwrap()
    }

    fn inode(&self, ino: Ino) -> Result<&Inode> {
        usize::try_from(ino.0)
            .ok()
            .and_then(|i| self.inodes.get(i))
            .ok_or_else(|| nofile(ino))
    }

    /// Runs `op` on the file `ino` (whose size is `size`) under the inode's write lock and
    /// the space lock.
    fn with_file<T>(
        &self,
        ino: Ino,
        op: impl FnOnce(&mut File, &AtomicU64, &mut Space) -> Result<T>,
    ) -> Result<T> {
        let inode = self.inode(ino)?;
        let mut file = inode.file.write().unwrap();
        let f = file.as_mut().ok_or_else(|| nofile(ino))?;
        op(f, &inode.size, &mut self.space())
    }

    /// Puts `f` of `size` bytes into the free slot `ino`.
    fn install(&self, ino: Ino, f: File, size: u64) {
        let inode = self.inode(ino).expect("inode number inside the table");
        let mut file = inode.file.write().unwrap();
        assert!(file.is_none(), "inode {ino} exists already");
        *file = Some(f);
        inode.size.store(size, Ordering::Release);
    }

    /// Creates an empty file.
    pub fn create(&self, ino: Ino) {
        self.install(ino, File::default(), 0);
    }

    /// Creates a file whose bytes are inline (at most one block).
    pub fn create_inline(&self, ino: Ino, data: &[u8]) {
        assert!(data.len() as u64 <= self.bs);
        let f = File {
            inline: Some(data.into()),
            ..File::default()
        };
        self.install(ino, f, data.len() as u64);
    }

    /// Deletes a file (its size must be zero: truncate first, as unlink does).
    pub fn remove(&self, ino: Ino) {
        let inode = self.inode(ino).expect("no such file");
        let mut file = inode.file.write().unwrap();
        let f = file.take().expect("no such file");
        inode.size.store(FREE, Ordering::Release);
        assert!(
            f.ext.is_empty() && f.delalloc.0.is_empty(),
            "remove a truncated file"
        );
    }

    /// Blocks not allocated.
    pub fn free_blocks(&self) -> u64 {
        self.space().alloc.free_blocks()
    }

    /// Blocks reserved by delalloc.
    pub fn reserved(&self) -> u64 {
        self.space().reserved
    }

    /// Allocates unwritten space for the holes of `[pos, pos + len)`; grows the file.
    pub fn fallocate(&self, ino: Ino, pos: u64, len: u64) -> Result<()> {
        let bs = self.bs;
        self.with_file(ino, |f, size, sp| {
            let (mut b, b1) = (pos / bs, (pos + len).div_ceil(bs));
            while b < b1 {
                if let Some((s, e)) = f.ext_at(b) {
                    b = s + e.len;
                    continue;
                }
                if let Some((_, e)) = f.delalloc.containing(b) {
                    b = e;
                    continue;
                }
                let next = f.ext.range(b..).next().map_or(b1, |(&s, _)| s).min(b1);
                let next = f.delalloc.next_after(b).map_or(next, |s| s.min(next));
                let (pblk, n) = sp.alloc.alloc(next - b).ok_or_else(nospace)?;
                f.map(
                    b,
                    Ext {
                        len: n,
                        pblk,
                        unwritten: true,
                    },
                );
                b += n;
            }
            size.fetch_max(pos + len, Ordering::AcqRel);
            Ok(())
        })
    }

    /// Makes `dst` (a new file) share all of `src`'s extents; `src` must be written back.
    pub fn reflink(&self, src: Ino, dst: Ino) -> Result<()> {
        let (f, size) = self.with_file(src, |s, size, sp| {
            if !s.delalloc.0.is_empty() {
                return Err(IomapError::Fs(FsError::msg(
                    "reflink of a file with delalloc data",
                )));
            }
            for e in s.ext.values() {
                for b in e.pblk..e.pblk + e.len {
                    sp.alloc.refs[b as usize] += 1;
                }
            }
            let f = File {
                ext: s.ext.clone(),
                ..File::default()
            };
            Ok((f, size.load(Ordering::Acquire)))
        })?;
        self.install(dst, f, size);
        Ok(())
    }

    /// The current mapping at block `b0`, up to block `b1`. Given the space, a mapped extent
    /// is cut where sharing changes and flagged `SHARED` when shared; reads do not ask (as in
    /// XFS, only writes and reports look at reference counts).
    fn current(&self, space: Option<&Space>, f: &File, b0: u64, b1: u64) -> IoMap {
        let bs = self.bs;
        if let Some((_, e)) = f.delalloc.containing(b0) {
            return IoMap::delalloc(b0 * bs, (e.min(b1) - b0) * bs);
        }
        if let Some((s, e)) = f.ext_at(b0) {
            let mut end = (s + e.len).min(b1);
            if let Some(d) = f.delalloc.next_after(b0) {
                end = end.min(d);
            }
            let pblk = e.pblk + (b0 - s);
            let is_shared = |b: u64| space.is_some_and(|sp| sp.alloc.refs[b as usize] > 1);
            let first = is_shared(pblk);
            let end = match space {
                Some(_) => (b0..end)
                    .find(|&b| is_shared(pblk + b - b0) != first)
                    .unwrap_or(end),
                None => end,
            };
            let (off, len, addr) = (b0 * bs, (end - b0) * bs, pblk * bs);
            let m = if e.unwritten {
                IoMap::unwritten(off, len, addr)
            } else {
                IoMap::mapped(off, len, addr)
            };
            return if first {
                m.with_flags(MapFlags::SHARED)
            } else {
                m
            };
        }
        let mut end = f.ext.range(b0..).next().map_or(b1, |(&s, _)| s.min(b1));
        if let Some(d) = f.delalloc.next_after(b0) {
            end = end.min(d);
        }
        IoMap::hole(b0 * bs, (end - b0) * bs)
    }

    /// The blocks `[b0, b1)` that bytes `[pos, pos + len)` touch. Shifts, not divisions (the
    /// block size is a power of two), as kernel filesystems use `i_blkbits`.
    fn blocks(&self, pos: u64, len: u64) -> (u64, u64) {
        let (shift, end) = (self.bs.trailing_zeros(), pos + len);
        (
            pos >> shift,
            (end >> shift) + u64::from(end & (self.bs - 1) != 0),
        )
    }

    fn begin_sync(&self, ino: Ino, pos: u64, len: u64, flags: IterFlags) -> Result<Maps> {
        let bs = self.bs;
        let (b0, b1) = self.blocks(pos, len);
        if !flags.is_write() {
            // Reads and reports: the shared lock; the space only to report sharing.
            let file = self.inode(ino)?.file.read().unwrap();
            let f = file.as_ref().ok_or_else(|| nofile(ino))?;
            if let Some(m) = self.inline_map(f, b0, b1) {
                return Ok(Maps::one(m));
            }
            let space = flags.contains(IterFlags::REPORT).then(|| self.space());
            return Ok(Maps::one(self.current(space.as_deref(), f, b0, b1)));
        }
        self.with_file(ino, |f, _, sp| {
            if let Some(m) = self.inline_map(f, b0, b1) {
                if m.kind == iomap::MapKind::Hole {
                    return Ok(Maps::one(m));
                }
                // A write turns the inline file into a regular one: reserve its block.
                return sp.reserve(bs, 0, 1, Some(m));
            }
            let cur = self.current(Some(sp), f, b0, b1);
            self.begin_write(sp, cur, b0, b1, flags)
        })
    }

    /// The map of an inline file at block `b0`: its bytes in block 0, a hole past it.
    fn inline_map(&self, f: &File, b0: u64, b1: u64) -> Option<IoMap> {
        let data = f.inline.as_ref()?;
        Some(match b0 {
            0 => IoMap::inline(0, self.bs, Arc::clone(data)),
            _ => IoMap::hole(b0 * self.bs, (b1 - b0) * self.bs),
        })
    }

    /// The maps of a write at block `b0` whose current mapping is `cur`.
    fn begin_write(
        &self,
        sp: &mut Space,
        cur: IoMap,
        b0: u64,
        b1: u64,
        flags: IterFlags,
    ) -> Result<Maps> {
        let bs = self.bs;
        if flags.contains(IterFlags::WRITEBACK) {
            let (pblk, n) = sp.alloc.alloc(b1 - b0).ok_or_else(nospace)?;
            let m = IoMap::mapped(b0 * bs, n * bs, pblk * bs).with_flags(MapFlags::NEW);
            return Ok(Maps::one(m));
        }
        if flags.contains(IterFlags::DIRECT) && flags.contains(IterFlags::WRITE) {
            let want = cur.end() / bs - b0;
            let (pblk, n) = sp.alloc.alloc(want).ok_or_else(nospace)?;
            let m = IoMap::mapped(b0 * bs, n * bs, pblk * bs).with_flags(MapFlags::NEW);
            let source = (cur.kind != iomap::MapKind::Delalloc).then_some(cur);
            return Ok(Maps { write: m, source });
        }
        let zero_skip = flags.contains(IterFlags::ZERO)
            && matches!(cur.kind, iomap::MapKind::Hole | iomap::MapKind::Unwritten);
        if zero_skip || cur.kind == iomap::MapKind::Delalloc {
            return Ok(Maps::one(cur));
        }
        let n = cur.end() / bs - b0;
        sp.reserve(bs, b0, n, Some(cur))
    }

    fn end_sync(&self, ino: Ino, pos: u64, written: u64, flags: IterFlags, m: &IoMap) {
        let bs = self.bs;
        let (m0, m1) = (m.offset / bs, m.end() / bs);
        let used_end = if written == 0 {
            pos / bs
        } else {
            (pos + written).div_ceil(bs)
        };
        let (u0, u1) = ((pos / bs).max(m0), used_end.min(m1).max(pos / bs));
        let new = m.flags.contains(MapFlags::NEW);
        // A file removed meanwhile has nothing to end.
        let _ = self.with_file(ino, |f, _, sp| {
            match m.kind {
                iomap::MapKind::Delalloc if new => {
                    // Reserved m0..m1; keep what was written as delalloc, release the rest.
                    if u1 > u0 {
                        f.delalloc.insert(u0, u1);
                        // The inline bytes now live in the cache block, dirty.
                        f.inline = None;
                    }
                    sp.reserved -= (m1 - m0) - (u1 - u0);
                }
                iomap::MapKind::Mapped
                    if new && flags.intersects(IterFlags::WRITEBACK | IterFlags::DIRECT) =>
                {
                    // Allocated m0..m1: blocks past what was submitted were never used.
                    let keep_end = if written == 0 { m0 } else { u1.max(m0) };
                    if m1 > keep_end {
                        let pblk = m.addr / bs + (keep_end - m0);
                        sp.alloc.decref(pblk, m1 - keep_end);
                    }
                }
                _ => {}
            }
            Ok(())
        });
    }

    fn complete_sync(&self, ino: Ino, done: &IoDone<'_>) {
        let bs = self.bs;
        let m = done.write_map;
        let (b0, n) = (done.pos / bs, done.len / bs);
        let pblk = m.addr / bs + (b0 - m.offset / bs);
        let kept = self.with_file(ino, |f, size, sp| {
            if done.result.is_err() {
                sp.alloc.decref(pblk, n);
                return Ok(());
            }
            // Writeback of blocks a truncate took away meanwhile is not kept. (A direct write
            // past the end completes before the core grows the file: kept.)
            let keep = if done.flags.contains(IterFlags::WRITEBACK) {
                let size = size.load(Ordering::Acquire);
                n.min(size.div_ceil(bs).saturating_sub(b0))
            } else {
                n
            };
            for (p, len) in f.punch(b0, b0 + keep) {
                sp.alloc.decref(p, len);
            }
            if keep > 0 {
                f.map(
                    b0,
                    Ext {
                        len: keep,
                        pblk,
                        unwritten: false,
                    },
                );
            }
            if n > keep {
                sp.alloc.decref(pblk + keep, n - keep);
            }
            if done.flags.contains(IterFlags::WRITEBACK) {
                sp.reserved -= f.delalloc.remove(b0, b0 + n);
            }
            Ok(())
        });
        if kept.is_err() {
            // The file is gone: nobody points at the new blocks.
            self.space().alloc.decref(pblk, n);
        }
    }

    /// Every extent of a file, for tests: (file block, device block, blocks, unwritten).
    pub fn extents(&self, ino: Ino) -> Vec<(u64, u64, u64, bool)> {
        let file = self.inode(ino).unwrap().file.read().unwrap();
        file.as_ref()
            .expect("no such file")
            .ext
            .iter()
            .map(|(&s, e)| (s, e.pblk, e.len, e.unwritten))
            .collect()
    }
}

fn nofile(ino: Ino) -> IomapError {
    IomapError::Fs(FsError::msg(format!("no inode {ino}")))
}

fn nospace() -> IomapError {
    IomapError::Fs(FsError::msg("no space left"))
}

impl IomapOps for RefFs {
    fn block_size(&self) -> u32 {
        self.bs as u32
    }

    fn size(&self, ino: Ino) -> Result<u64> {
        match self.inode(ino)?.size.load(Ordering::Acquire) {
            FREE => Err(nofile(ino)),
            size => Ok(size),
        }
    }

    fn set_size(&self, ino: Ino, size: u64) -> Result<()> {
        let bs = self.bs;
        self.with_file(ino, |f, old, sp| {
            if size < old.load(Ordering::Acquire) {
                let keep = size.div_ceil(bs);
                for (p, n) in f.punch(keep, u64::MAX / bs) {
                    sp.alloc.decref(p, n);
                }
                sp.reserved -= f.delalloc.remove(keep, u64::MAX / bs);
                if let Some(d) = &f.inline {
                    f.inline = Some(d[..(size as usize).min(d.len())].into());
                }
            }
            old.store(size, Ordering::Release);
            Ok(())
        })
    }

    fn grow_size(&self, ino: Ino, end: u64) -> Result<bool> {
        self.with_file(ino, |_, size, _| {
            Ok(size.fetch_max(end, Ordering::AcqRel) < end)
        })
    }

    async fn begin(&self, _: &Context, a: IterArgs) -> Result<Maps> {
        self.begin_sync(a.ino, a.pos, a.len, a.flags)
    }

    async fn end(&self, _: &Context, e: &Ended<'_>) -> Result<()> {
        let a = e.args;
        // A direct write completes here, and grows the file once its data is on the device.
        if let Some(done) = e.io {
            self.complete_sync(a.ino, done);
            if done.result.is_ok() {
                self.grow_size(a.ino, a.pos + e.written)?;
            }
        }
        // Reads and reports reserve nothing.
        if a.flags.is_write() {
            self.end_sync(a.ino, a.pos, e.written, a.flags, e.write_map);
        }
        Ok(())
    }

    async fn complete(&self, _: &Context, ino: Ino, done: &IoDone<'_>) -> Result<()> {
        self.complete_sync(ino, done);
        Ok(())
    }
}
