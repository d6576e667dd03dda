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

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bdev::exec::Context;
use iomap::{Ino, IoDone, IoMap, IomapError, IomapOps, IterFlags, MapFlags, Maps, Result};

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
    size: u64,
    ext: BTreeMap<u64, Ext>,
    delalloc: Ranges,
    inline: Option<Arc<[u8]>>,
}

impl File {
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

struct State {
    files: BTreeMap<Ino, File>,
    alloc: Alloc,
    reserved: u64,
}

/// The reference filesystem.
pub struct RefFs {
    bs: u64,
    st: Mutex<State>,
}

impl RefFs {
    /// A filesystem of `blocks` blocks of `bs` bytes.
    pub fn new(bs: u32, blocks: u64) -> RefFs {
        RefFs {
            bs: u64::from(bs),
            st: Mutex::new(State {
                files: BTreeMap::new(),
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

    fn st(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap()
    }

    /// Creates an empty file.
    pub fn create(&self, ino: Ino) {
        self.st().files.insert(ino, File::default());
    }

    /// Creates a file whose bytes are inline (at most one block).
    pub fn create_inline(&self, ino: Ino, data: &[u8]) {
        assert!(data.len() as u64 <= self.bs);
        let f = File {
            size: data.len() as u64,
            inline: Some(data.into()),
            ..File::default()
        };
        self.st().files.insert(ino, f);
    }

    /// Deletes a file (its size must be zero: truncate first, as unlink does).
    pub fn remove(&self, ino: Ino) {
        let mut st = self.st();
        let f = st.files.remove(&ino).expect("no such file");
        assert!(
            f.ext.is_empty() && f.delalloc.0.is_empty(),
            "remove a truncated file"
        );
    }

    /// Blocks not allocated.
    pub fn free_blocks(&self) -> u64 {
        self.st().alloc.free_blocks()
    }

    /// Blocks reserved by delalloc.
    pub fn reserved(&self) -> u64 {
        self.st().reserved
    }

    /// Allocates unwritten space for the holes of `[pos, pos + len)`; grows the file.
    pub fn fallocate(&self, ino: Ino, pos: u64, len: u64) -> Result<()> {
        let mut st = self.st();
        let st = &mut *st;
        let f = st.files.get_mut(&ino).ok_or_else(|| nofile(ino))?;
        let (mut b, b1) = (pos / self.bs, (pos + len).div_ceil(self.bs));
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
            let (pblk, n) = st.alloc.alloc(next - b).ok_or_else(nospace)?;
            f.ext.insert(
                b,
                Ext {
                    len: n,
                    pblk,
                    unwritten: true,
                },
            );
            b += n;
        }
        f.size = f.size.max(pos + len);
        Ok(())
    }

    /// Makes `dst` (a new file) share all of `src`'s extents; `src` must be written back.
    pub fn reflink(&self, src: Ino, dst: Ino) -> Result<()> {
        let mut st = self.st();
        let st = &mut *st;
        let s = st.files.get(&src).ok_or_else(|| nofile(src))?;
        if !s.delalloc.0.is_empty() {
            return Err(IomapError::Fs(
                "reflink of a file with delalloc data".into(),
            ));
        }
        let (ext, size) = (s.ext.clone(), s.size);
        for e in ext.values() {
            for b in e.pblk..e.pblk + e.len {
                st.alloc.refs[b as usize] += 1;
            }
        }
        st.files.insert(
            dst,
            File {
                size,
                ext,
                ..File::default()
            },
        );
        Ok(())
    }

    /// The current mapping at block `b0`, up to block `b1`.
    fn current(&self, st: &State, f: &File, b0: u64, b1: u64) -> IoMap {
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
            let shared = |b: u64| st.alloc.refs[(pblk + b - b0) as usize] > 1;
            let first = shared(b0);
            let end = (b0..end).find(|&b| shared(b) != first).unwrap_or(end);
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

    fn begin_sync(&self, ino: Ino, pos: u64, len: u64, flags: IterFlags) -> Result<Maps> {
        let bs = self.bs;
        let mut st = self.st();
        let st = &mut *st;
        let f = st.files.get(&ino).ok_or_else(|| nofile(ino))?;
        let (b0, b1) = (pos / bs, (pos + len).div_ceil(bs));
        if let Some(data) = &f.inline {
            let inline = IoMap::inline(0, bs, Arc::clone(data));
            if b0 > 0 {
                let m = IoMap::hole(b0 * bs, (b1 - b0) * bs);
                return Ok(Maps::one(m));
            }
            if !flags.is_write() {
                return Ok(Maps::one(inline));
            }
            // A write turns the inline file into a regular one: reserve its block.
            return self.reserve(st, 0, 1, Some(inline));
        }
        let cur = self.current(st, f, b0, b1);
        if flags.contains(IterFlags::WRITEBACK) {
            let (pblk, n) = st.alloc.alloc(b1 - b0).ok_or_else(nospace)?;
            let m = IoMap::mapped(b0 * bs, n * bs, pblk * bs).with_flags(MapFlags::NEW);
            return Ok(Maps::one(m));
        }
        if flags.contains(IterFlags::DIRECT) && flags.contains(IterFlags::WRITE) {
            let want = cur.end() / bs - b0;
            let (pblk, n) = st.alloc.alloc(want).ok_or_else(nospace)?;
            let m = IoMap::mapped(b0 * bs, n * bs, pblk * bs).with_flags(MapFlags::NEW);
            let source = (cur.kind != iomap::MapKind::Delalloc).then_some(cur);
            return Ok(Maps { write: m, source });
        }
        let zero_skip = flags.contains(IterFlags::ZERO)
            && matches!(cur.kind, iomap::MapKind::Hole | iomap::MapKind::Unwritten);
        if !flags.is_write() || zero_skip || cur.kind == iomap::MapKind::Delalloc {
            return Ok(Maps::one(cur));
        }
        let n = cur.end() / bs - b0;
        self.reserve(st, b0, n, Some(cur))
    }

    /// Reserves `n` blocks of delalloc space at block `b0`.
    fn reserve(&self, st: &mut State, b0: u64, n: u64, source: Option<IoMap>) -> Result<Maps> {
        if st.alloc.free_blocks() < st.reserved + n {
            return Err(nospace());
        }
        st.reserved += n;
        let write = IoMap::delalloc(b0 * self.bs, n * self.bs).with_flags(MapFlags::NEW);
        Ok(Maps { write, source })
    }

    fn end_sync(&self, ino: Ino, pos: u64, written: u64, flags: IterFlags, m: &IoMap) {
        let bs = self.bs;
        let mut st = self.st();
        let st = &mut *st;
        let (m0, m1) = (m.offset / bs, m.end() / bs);
        let used_end = if written == 0 {
            pos / bs
        } else {
            (pos + written).div_ceil(bs)
        };
        let (u0, u1) = ((pos / bs).max(m0), used_end.min(m1).max(pos / bs));
        let new = m.flags.contains(MapFlags::NEW);
        let Some(f) = st.files.get_mut(&ino) else {
            return;
        };
        match m.kind {
            iomap::MapKind::Delalloc if new => {
                // Reserved m0..m1; keep what was written as delalloc, release the rest.
                if u1 > u0 {
                    f.delalloc.insert(u0, u1);
                    // The inline bytes now live in the cache block, dirty.
                    f.inline = None;
                }
                st.reserved -= (m1 - m0) - (u1 - u0);
            }
            iomap::MapKind::Mapped
                if new && flags.intersects(IterFlags::WRITEBACK | IterFlags::DIRECT) =>
            {
                // Allocated m0..m1: blocks past what was submitted were never used.
                let keep_end = if written == 0 { m0 } else { u1.max(m0) };
                if m1 > keep_end {
                    let pblk = m.addr / bs + (keep_end - m0);
                    st.alloc.decref(pblk, m1 - keep_end);
                }
            }
            _ => {}
        }
    }

    fn complete_sync(&self, ino: Ino, done: &IoDone<'_>) {
        let bs = self.bs;
        let mut st = self.st();
        let st = &mut *st;
        let m = done.write_map;
        let (b0, n) = (done.pos / bs, done.len / bs);
        let pblk = m.addr / bs + (b0 - m.offset / bs);
        let Some(f) = st.files.get_mut(&ino) else {
            st.alloc.decref(pblk, n);
            return;
        };
        if done.result.is_err() {
            st.alloc.decref(pblk, n);
            return;
        }
        // Writeback of blocks a truncate took away meanwhile is not kept. (A direct write
        // past the end completes before the core grows the file: kept.)
        let keep = if done.flags.contains(IterFlags::WRITEBACK) {
            n.min(f.size.div_ceil(bs).saturating_sub(b0))
        } else {
            n
        };
        for (p, len) in f.punch(b0, b0 + keep) {
            st.alloc.decref(p, len);
        }
        if keep > 0 {
            f.ext.insert(
                b0,
                Ext {
                    len: keep,
                    pblk,
                    unwritten: false,
                },
            );
        }
        if n > keep {
            st.alloc.decref(pblk + keep, n - keep);
        }
        if done.flags.contains(IterFlags::WRITEBACK) {
            st.reserved -= f.delalloc.remove(b0, b0 + n);
        }
    }

    /// Every extent of a file, for tests: (file block, device block, blocks, unwritten).
    pub fn extents(&self, ino: Ino) -> Vec<(u64, u64, u64, bool)> {
        let st = self.st();
        st.files[&ino]
            .ext
            .iter()
            .map(|(&s, e)| (s, e.pblk, e.len, e.unwritten))
            .collect()
    }
}

fn nofile(ino: Ino) -> IomapError {
    IomapError::Fs(format!("no inode {ino}"))
}

fn nospace() -> IomapError {
    IomapError::Fs("no space left".into())
}

impl IomapOps for RefFs {
    fn block_size(&self) -> u32 {
        self.bs as u32
    }

    fn size(&self, ino: Ino) -> Result<u64> {
        self.st()
            .files
            .get(&ino)
            .map(|f| f.size)
            .ok_or_else(|| nofile(ino))
    }

    fn set_size(&self, ino: Ino, size: u64) -> Result<()> {
        let bs = self.bs;
        let mut st = self.st();
        let st = &mut *st;
        let f = st.files.get_mut(&ino).ok_or_else(|| nofile(ino))?;
        if size < f.size {
            let keep = size.div_ceil(bs);
            for (p, n) in f.punch(keep, u64::MAX / bs) {
                st.alloc.decref(p, n);
            }
            st.reserved -= f.delalloc.remove(keep, u64::MAX / bs);
            if let Some(d) = &f.inline {
                f.inline = Some(d[..(size as usize).min(d.len())].into());
            }
        }
        f.size = size;
        Ok(())
    }

    async fn begin(
        &self,
        _: &Context,
        ino: Ino,
        pos: u64,
        len: u64,
        flags: IterFlags,
    ) -> Result<Maps> {
        self.begin_sync(ino, pos, len, flags)
    }

    async fn end(
        &self,
        _: &Context,
        ino: Ino,
        pos: u64,
        _len: u64,
        written: u64,
        flags: IterFlags,
        write_map: &IoMap,
    ) -> Result<()> {
        // Reads and reports reserve nothing.
        if flags.is_write() {
            self.end_sync(ino, pos, written, flags, write_map);
        }
        Ok(())
    }

    async fn complete(&self, _: &Context, ino: Ino, done: &IoDone<'_>) -> Result<()> {
        self.complete_sync(ino, done);
        Ok(())
    }
}
