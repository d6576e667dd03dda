//! The page cache: file pages in DMA memory, so writeback writes straight from it.
//!
//! Invariants (with those of `page.rs` and `budget.rs`):
//! - every method takes the state lock once, does bounded work and never awaits; callers
//!   hold no lock across device I/O;
//! - a page under I/O (`buf == None`) is skipped by eviction, invalidation and truncation
//!   and must not be touched by anyone else; callers wait until `busy` says so;
//! - dirty pages are never evicted: only writeback makes them clean;
//! - ranges given to `take`, `zero_fill`, `stale_runs` and the dirty-run search are
//!   block aligned.

mod budget;
mod index;
mod page;
mod pages;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bdev::{BlockDevice, DmaBuf};

pub use budget::CacheStats;
use index::FileIndex;
use page::{mask, Page};

use crate::error::{IomapError, Result};
use crate::ops::Ino;

/// The page cache of one filesystem.
pub struct PageCache {
    dev: Arc<dyn BlockDevice>,
    page: u64,
    block: u64,
    /// `stats.limit`, which never changes, readable without the lock (every read and write
    /// sizes its batches by it).
    limit: usize,
    state: Mutex<State>,
    /// `stats.dirty`, readable without the lock: lets direct I/O skip the coherence
    /// lookup when nothing at all is dirty.
    dirty_hint: AtomicUsize,
}

struct State {
    files: BTreeMap<Ino, FileIndex>,
    stats: CacheStats,
    /// Buffers of evicted pages, reused without zeroing (see `page` invariants).
    free: Vec<DmaBuf>,
    /// Where the eviction clock stands.
    hand: (Ino, u64),
    /// Invalidations so far (`invalidate`, `truncate`), in every file.
    invalidations: u64,
}

impl State {
    /// The index of `ino`, created if missing. A new index counts as invalidated now: a
    /// file without pages may have been invalidated (a direct write) while a reader was
    /// between its mapping lookup and its first page.
    fn index(&mut self, ino: Ino) -> &mut FileIndex {
        let now = self.invalidations;
        self.files.entry(ino).or_insert_with(|| FileIndex {
            invalidated_at: now,
            ..FileIndex::default()
        })
    }

    /// Counts an invalidation of `ino`'s pages.
    fn invalidated(&mut self, ino: Ino) {
        self.invalidations += 1;
        let now = self.invalidations;
        if let Some(f) = self.files.get_mut(&ino) {
            f.invalidated_at = now;
        }
    }
}

/// The pages of a block range taken out of the cache for one device request.
pub(crate) struct Taken {
    ino: Ino,
    start: u64,
    end: u64,
    /// Per page: its number and the parts before and after the range (`None` for a page
    /// taken whole: the common case, which needs no splitting and joining).
    parts: Vec<(u64, Option<(DmaBuf, DmaBuf)>)>,
}

/// What a device request takes pages for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TakeFor {
    /// A read fills them: every block must still be stale (not up to date). A block
    /// another writer filled after the reader looked holds newer bytes than the device.
    Fill,
    /// A writeback writes them: every block must still be dirty. A block another
    /// writeback cleaned meanwhile may since have been overwritten on the device by a
    /// direct write, and writing its cached bytes again would map them over the newer data.
    Writeback,
}

/// What a read's first look at the cache did ([`PageCache::read_start`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadStart {
    /// Every byte was up to date and is copied.
    Copied,
    /// Something was not up to date (part of the buffer may be written).
    Missed,
    /// Nothing copied: these pages are to be read ahead first.
    ReadAhead(std::ops::Range<u64>),
}

/// What happened to taken pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The range was read from the device: it is up to date.
    Filled,
    /// The range was written to the device: it is clean.
    Written,
    /// The request failed: nothing changes.
    Failed,
    /// The range was read from a mapping looked up after invalidation mark `.0`
    /// ([`PageCache::invalidation_mark`]): up to date, unless the file's pages were
    /// invalidated since. Then the mapping may be one a direct write replaced, and the
    /// blocks stay stale, so the reader maps them again.
    FilledUnlessInvalidated(u64),
}

impl PageCache {
    /// A cache of `limit` pages of `page_size` bytes for blocks of `block_size` bytes, at most
    /// `dirty_limit` of them dirty.
    pub fn new(
        dev: Arc<dyn BlockDevice>,
        page_size: u64,
        block_size: u64,
        limit: usize,
        dirty_limit: usize,
    ) -> Result<PageCache> {
        let ok = page_size.is_power_of_two()
            && block_size.is_power_of_two()
            && page_size >= block_size
            && page_size / block_size <= 64
            && limit > 0;
        if !ok {
            return Err(IomapError::Invalid(format!(
                "page cache of {limit} pages of {page_size} bytes over {block_size}-byte blocks: \
                 sizes must be powers of two, at most 64 blocks per page, limit positive"
            )));
        }
        let stats = CacheStats {
            limit,
            dirty_limit,
            ..CacheStats::default()
        };
        Ok(PageCache {
            dev,
            page: page_size,
            block: block_size,
            limit,
            dirty_hint: AtomicUsize::new(0),
            state: Mutex::new(State {
                files: BTreeMap::new(),
                stats,
                free: Vec::new(),
                hand: (Ino(0), 0),
                invalidations: 0,
            }),
        })
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u64 {
        self.page
    }

    /// The page budget (`stats().limit`).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        self.st().stats
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pieces of `[start, end)` per page: (page number, first byte, end byte within page).
    fn spans(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, usize, usize)> {
        let page = self.page;
        let first = start / page;
        let last = end.div_ceil(page);
        (first..last).map(move |p| {
            let lo = start.max(p * page) - p * page;
            let hi = end.min((p + 1) * page) - p * page;
            (p, lo as usize, hi as usize)
        })
    }

    /// Block mask of the bytes `[lo, hi)` of a page (blocks partly covered included).
    fn blocks(&self, lo: usize, hi: usize) -> u64 {
        let b = self.block as usize;
        mask(lo / b, hi.div_ceil(b) - lo / b)
    }

    /// Whether any page of `[start, end)` is under I/O.
    pub(crate) fn busy(&self, ino: Ino, start: u64, end: u64) -> bool {
        let st = self.st();
        let Some(f) = st.files.get(&ino) else {
            return false;
        };
        let range = start / self.page..end.div_ceil(self.page);
        let busy = f.pages.range(range).any(|(_, p)| p.is_busy());
        busy
    }

    /// Copies `[pos, pos + dst.len())` out of the cache if all of it is up to date.
    pub(crate) fn read_cached(&self, ino: Ino, pos: u64, dst: &mut [u8]) -> bool {
        let mut st = self.st();
        let Some(f) = st.files.get_mut(&ino) else {
            return false;
        };
        self.copy_out(f, pos, dst)
    }

    /// A read's first look at the cache, in one hold of the lock: updates the file's
    /// read-ahead state for a read of pages `pages` of a file of `eof` pages (see
    /// [`FileIndex::readahead`], window at most `max_ra` pages). With pages to read ahead
    /// it copies nothing (the read-ahead goes to the device first); otherwise it copies
    /// `[pos, pos + dst.len())` out if all of it is up to date.
    pub(crate) fn read_start(
        &self,
        ino: Ino,
        pos: u64,
        dst: &mut [u8],
        (pages, eof): (std::ops::Range<u64>, u64),
        max_ra: u64,
    ) -> ReadStart {
        let mut st = self.st();
        let f = st.index(ino);
        match f.readahead(pages.start, pages.end, max_ra, eof) {
            Some(ahead) => ReadStart::ReadAhead(ahead),
            None if self.copy_out(f, pos, dst) => ReadStart::Copied,
            None => ReadStart::Missed,
        }
    }

    /// Copies `[pos, pos + dst.len())` out of `f` if all of it is up to date, looking each
    /// page up once. On a miss part of `dst` may have been written: the caller fills the
    /// cache and copies again.
    fn copy_out(&self, f: &mut FileIndex, pos: u64, dst: &mut [u8]) -> bool {
        let end = pos + dst.len() as u64;
        let mut at = 0;
        for (p, lo, hi) in self.spans(pos, end) {
            let want = self.blocks(lo, hi);
            let Some(pg) = f.pages.get_mut(&p) else {
                return false;
            };
            let Some(buf) = pg.buf.as_ref().filter(|_| pg.uptodate & want == want) else {
                return false;
            };
            dst[at..at + hi - lo].copy_from_slice(&buf[lo..hi]);
            pg.referenced = true;
            at += hi - lo;
        }
        true
    }

    /// Copies `src` into the cache at `pos` and marks the blocks dirty. Every page must be
    /// cached and idle and the blocks `src` covers only partly up to date; otherwise nothing
    /// is copied and `false` comes back.
    pub(crate) fn write_cached(&self, ino: Ino, pos: u64, src: &[u8]) -> bool {
        let end = pos + src.len() as u64;
        let b = self.block as usize;
        let mut st = self.st();
        let st = &mut *st;
        let Some(f) = st.files.get_mut(&ino) else {
            return false;
        };
        for (p, lo, hi) in self.spans(pos, end) {
            let partial = if lo % b != 0 { mask(lo / b, 1) } else { 0 }
                | if hi % b != 0 { mask(hi / b, 1) } else { 0 };
            match f.pages.get(&p) {
                Some(pg) if !pg.is_busy() && pg.uptodate & partial == partial => {}
                _ => return false,
            }
        }
        let mut at = 0;
        for (p, lo, hi) in self.spans(pos, end) {
            let pg = f.pages.get_mut(&p).expect("checked above");
            let buf = pg.buf.as_mut().expect("checked idle");
            buf[lo..hi].copy_from_slice(&src[at..at + hi - lo]);
            at += hi - lo;
            let m = self.blocks(lo, hi);
            if !pg.is_dirty() {
                st.stats.dirty += 1;
                self.dirty_hint.store(st.stats.dirty, Ordering::Relaxed);
                f.dirty.insert(p);
            }
            pg.uptodate |= m;
            pg.dirty |= m;
            pg.referenced = true;
        }
        true
    }

    /// Runs of blocks of `[start, end)` that are not up to date (or not cached).
    pub(crate) fn stale_runs(&self, ino: Ino, start: u64, end: u64) -> Vec<(u64, u64)> {
        self.block_runs(ino, start, end, |pg| !pg.map_or(0, |p| p.uptodate))
    }

    /// Runs of blocks of `[start, end)` that are dirty (`dirty == true`) or not.
    pub(crate) fn dirty_runs(
        &self,
        ino: Ino,
        start: u64,
        end: u64,
        dirty: bool,
    ) -> Vec<(u64, u64)> {
        let flip = if dirty { 0 } else { u64::MAX };
        self.block_runs(ino, start, end, |pg| pg.map_or(0, |p| p.dirty) ^ flip)
    }

    /// Runs of blocks whose bit is set in `bits(page)`.
    fn block_runs(
        &self,
        ino: Ino,
        start: u64,
        end: u64,
        bits: impl Fn(Option<&Page>) -> u64,
    ) -> Vec<(u64, u64)> {
        let st = self.st();
        let f = st.files.get(&ino);
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (p, lo, hi) in self.spans(start, end) {
            let set = bits(f.and_then(|f| f.pages.get(&p)));
            let base = p * self.page;
            let b = self.block as usize;
            for blk in lo / b..hi / b {
                if set & (1 << blk) == 0 {
                    continue;
                }
                let at = base + (blk * b) as u64;
                match runs.last_mut() {
                    Some((_, e)) if *e == at => *e = at + self.block,
                    _ => runs.push((at, at + self.block)),
                }
            }
        }
        runs
    }

    /// Inserts an empty page for every page of `[start, end)` not cached yet.
    pub(crate) fn populate(&self, ino: Ino, start: u64, end: u64) -> Result<()> {
        let mut st = self.st();
        let st = &mut *st;
        st.index(ino);
        let f = st.files.get_mut(&ino).expect("just made");
        for p in start / self.page..end.div_ceil(self.page) {
            if f.pages.contains_key(&p) {
                continue;
            }
            let buf = match st.free.pop() {
                Some(b) => b,
                None => self
                    .dev
                    .alloc_buf(self.page as usize)
                    .map_err(|e| IomapError::NoMemory(format!("page cache page: {e}")))?,
            };
            f.pages.insert(p, Page::new(buf));
            st.stats.add_cached(1);
        }
        Ok(())
    }

    /// Fills the blocks of `[start, end)` that are not up to date with `fill(file_offset,
    /// bytes)` and marks them up to date (used for zeroes and inline data). Blocks up to
    /// date already keep their bytes: another writer may have put newer ones there since
    /// the caller looked. Pages must be cached and idle. With `mark` (the mapping that said
    /// what to fill was looked up after it), nothing is filled if the file's pages were
    /// invalidated since.
    pub(crate) fn fill(
        &self,
        ino: Ino,
        start: u64,
        end: u64,
        mark: Option<u64>,
        fill: impl Fn(u64, &mut [u8]),
    ) {
        let mut st = self.st();
        let Some(f) = st.files.get_mut(&ino) else {
            return;
        };
        if mark.is_some_and(|m| f.invalidated_at > m) {
            return;
        }
        let b = self.block as usize;
        for (p, lo, hi) in self.spans(start, end) {
            let Some(pg) = f.pages.get_mut(&p) else {
                continue;
            };
            let Some(buf) = pg.buf.as_mut() else { continue };
            for blk in lo / b..hi.div_ceil(b) {
                if pg.uptodate & (1 << blk) != 0 {
                    continue;
                }
                let (x, y) = ((blk * b).max(lo), ((blk + 1) * b).min(hi));
                fill(p * self.page + x as u64, &mut buf[x..y]);
                pg.uptodate |= 1 << blk;
            }
        }
    }

    /// Takes the memory of `[start, end)` out of the cache, as one buffer per page piece in
    /// file order, for a device request; `None` (and nothing taken) unless every page is
    /// cached and idle and every block is still as the request needs it (`purpose`). The
    /// caller looked at the blocks before, under an earlier hold of the lock: checking
    /// again here, in the same hold that takes them, is what keeps a slow reader from
    /// writing a device's older bytes over a block another thread wrote meanwhile.
    pub(crate) fn take(
        &self,
        ino: Ino,
        start: u64,
        end: u64,
        purpose: TakeFor,
    ) -> Option<(Taken, Vec<DmaBuf>)> {
        let mut st = self.st();
        let f = st.files.get_mut(&ino)?;
        for (p, lo, hi) in self.spans(start, end) {
            let m = self.blocks(lo, hi);
            let fits = f.pages.get(&p).is_some_and(|pg| {
                !pg.is_busy()
                    && match purpose {
                        TakeFor::Fill => pg.uptodate & m == 0,
                        TakeFor::Writeback => pg.dirty & m == m,
                    }
            });
            if !fits {
                return None;
            }
        }
        let mut parts = Vec::new();
        let mut pieces = Vec::new();
        for (p, lo, hi) in self.spans(start, end) {
            let pg = f.pages.get_mut(&p).expect("checked above");
            let mut head = pg.buf.take().expect("checked idle");
            if lo == 0 && hi == head.len() {
                parts.push((p, None));
                pieces.push(head);
                continue;
            }
            let mut mid = head.split_off(lo);
            let tail = mid.split_off(hi - lo);
            parts.push((p, Some((head, tail))));
            pieces.push(mid);
        }
        let taken = Taken {
            ino,
            start,
            end,
            parts,
        };
        Some((taken, pieces))
    }

    /// Puts taken memory back and records what the request did to it.
    pub(crate) fn restore(&self, taken: Taken, pieces: Vec<DmaBuf>, outcome: Outcome) {
        let Taken {
            ino,
            start,
            end,
            parts,
        } = taken;
        let mut st = self.st();
        let st = &mut *st;
        // Pages under I/O are never dropped, but stay safe if a caller broke that rule.
        let Some(f) = st.files.get_mut(&ino) else {
            return;
        };
        let spans = self.spans(start, end);
        for (((p, edges), mid), (_, lo, hi)) in parts.into_iter().zip(pieces).zip(spans) {
            let head = match edges {
                None => mid,
                Some((mut head, tail)) => {
                    head.unsplit(mid).expect("pieces of one page are adjacent");
                    head.unsplit(tail).expect("pieces of one page are adjacent");
                    head
                }
            };
            let Some(pg) = f.pages.get_mut(&p) else {
                continue;
            };
            pg.buf = Some(head);
            let m = self.blocks(lo, hi);
            match outcome {
                Outcome::Filled => pg.uptodate |= m,
                Outcome::FilledUnlessInvalidated(mark) if f.invalidated_at <= mark => {
                    pg.uptodate |= m
                }
                Outcome::FilledUnlessInvalidated(_) => {}
                Outcome::Written => {
                    let was = pg.is_dirty();
                    pg.dirty &= !m;
                    if was && !pg.is_dirty() {
                        st.stats.dirty -= 1;
                        self.dirty_hint.store(st.stats.dirty, Ordering::Relaxed);
                        f.dirty.remove(&p);
                    }
                }
                Outcome::Failed => {}
            }
        }
    }

    /// The first run of dirty blocks in `[from, end)`, at most `max` bytes long.
    pub(crate) fn next_dirty_run(
        &self,
        ino: Ino,
        from: u64,
        end: u64,
        max: u64,
    ) -> Option<(u64, u64)> {
        if self.dirty_hint.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let st = self.st();
        let f = st.files.get(&ino)?;
        let b = self.block;
        let mut run: Option<(u64, u64)> = None;
        // Only dirty pages can start or extend a run: a run ends at a clean or missing page.
        for &p in f.dirty.range(from / self.page..end.div_ceil(self.page)) {
            if let Some((_, e)) = run {
                if e != p * self.page {
                    return run;
                }
            }
            let Some(pg) = f.pages.get(&p) else {
                debug_assert!(false, "page {p} is in the dirty set but not cached");
                continue;
            };
            for blk in 0..self.page / b {
                let at = p * self.page + blk * b;
                if at < from || at >= end {
                    continue;
                }
                let dirty = pg.dirty & (1 << blk) != 0;
                match run {
                    None if dirty => run = Some((at, at + b)),
                    None => {}
                    Some((s, e)) if dirty && e == at && e - s < max => run = Some((s, e + b)),
                    Some(_) => return run,
                }
            }
        }
        run
    }

    /// Whether `[start, end)` holds a dirty block.
    pub(crate) fn has_dirty(&self, ino: Ino, start: u64, end: u64) -> bool {
        if self.dirty_hint.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let st = self.st();
        let Some(f) = st.files.get(&ino) else {
            return false;
        };
        self.spans(start, end).any(|(p, lo, hi)| {
            f.pages
                .get(&p)
                .is_some_and(|pg| pg.dirty & self.blocks(lo, hi) != 0)
        })
    }

    /// The invalidation count now: a read records it before looking a mapping up, and fills
    /// with [`Outcome::FilledUnlessInvalidated`].
    pub(crate) fn invalidation_mark(&self) -> u64 {
        self.st().invalidations
    }

    /// Forgets the clean blocks of `[start, end)` (a direct write made them stale) and drops
    /// pages left with nothing up to date. Dirty blocks (written after the direct write's
    /// writeback) are newer than the device and stay.
    pub(crate) fn invalidate(&self, ino: Ino, start: u64, end: u64) {
        let mut st = self.st();
        let st = &mut *st;
        st.invalidated(ino);
        let Some(f) = st.files.get_mut(&ino) else {
            return;
        };
        let mut doomed = Vec::new();
        for (p, lo, hi) in self.spans(start, end) {
            let Some(pg) = f.pages.get_mut(&p) else {
                continue;
            };
            // A page under I/O (another block's read or writeback) loses the blocks' state
            // too, only its memory stays: skipping it kept blocks a reader had filled from
            // the old mapping (zeroes of a hole a direct write just filled).
            pg.uptodate &= !(self.blocks(lo, hi) & !pg.dirty);
            if pg.uptodate == 0 && !pg.is_busy() {
                doomed.push(p);
            }
        }
        for p in doomed {
            let pg = f.pages.remove(&p).expect("listed above");
            st.stats.cached -= 1;
            st.free.extend(pg.buf);
        }
    }

    /// Forgets everything past `size`: whole pages go, blocks of the page straddling it lose
    /// their state (dirty ones included: those bytes are no longer in the file).
    pub(crate) fn truncate(&self, ino: Ino, size: u64) {
        let mut st = self.st();
        let st = &mut *st;
        st.invalidated(ino);
        let Some(f) = st.files.get_mut(&ino) else {
            return;
        };
        let keep_end = size.div_ceil(self.block) * self.block;
        let first_gone = keep_end.div_ceil(self.page);
        let gone: Vec<u64> = f
            .pages
            .range(first_gone..)
            .filter(|(_, pg)| !pg.is_busy())
            .map(|(p, _)| p)
            .collect();
        for p in gone {
            let pg = f.pages.remove(&p).expect("listed above");
            st.stats.cached -= 1;
            st.stats.dirty -= usize::from(pg.is_dirty());
            self.dirty_hint.store(st.stats.dirty, Ordering::Relaxed);
            f.dirty.remove(&p);
            st.free.extend(pg.buf);
        }
        if keep_end % self.page != 0 {
            let p = keep_end / self.page;
            if let Some(pg) = f.pages.get_mut(&p) {
                let first = ((keep_end % self.page) / self.block) as usize;
                let m = !mask(0, first);
                let was = pg.is_dirty();
                pg.uptodate &= !m;
                pg.dirty &= !m;
                if was && !pg.is_dirty() {
                    st.stats.dirty -= 1;
                    self.dirty_hint.store(st.stats.dirty, Ordering::Relaxed);
                    f.dirty.remove(&p);
                }
            }
        }
        if f.pages.is_empty() && f.wb_error.is_none() {
            st.files.remove(&ino);
        }
    }

    /// Evicts up to `want` clean, idle pages, least recently used first (a clock).
    pub(crate) fn evict(&self, want: usize) -> usize {
        let mut st = self.st();
        let st = &mut *st;
        let mut evicted = 0;
        // Two sweeps: the first may only clear `referenced` bits.
        for _ in 0..2 {
            let (hino, hpage) = st.hand;
            // Files from the hand on, then from the start up to it, one lookup each: a
            // list of every file made each eviction cost as much as the cache holds files
            // (20,000 small files: a third of the time of creating them).
            let mut next = st.files.range(hino..).next().map(|(&i, _)| i);
            let mut wrapped = next.is_none();
            if wrapped {
                next = st.files.range(..hino).next().map(|(&i, _)| i);
            }
            while let Some(ino) = next {
                next = st
                    .files
                    .range((Bound::Excluded(ino), Bound::Unbounded))
                    .next()
                    .map(|(&i, _)| i);
                if next.is_none() && !wrapped {
                    wrapped = true;
                    next = st.files.range(..hino).next().map(|(&i, _)| i);
                }
                if wrapped && next.is_some_and(|n| n >= hino) {
                    next = None;
                }
                let f = st.files.get_mut(&ino).expect("listed");
                let from = if ino == hino { hpage } else { 0 };
                let mut doomed = Vec::new();
                f.pages.visit_from_mut(from, |p, pg| {
                    if evicted + doomed.len() >= want {
                        return false;
                    }
                    if !pg.is_busy() && !pg.is_dirty() && !std::mem::take(&mut pg.referenced) {
                        doomed.push(p);
                    }
                    true
                });
                for p in &doomed {
                    let pg = f.pages.remove(p).expect("listed");
                    st.free.extend(pg.buf);
                }
                evicted += doomed.len();
                if evicted >= want {
                    st.hand = (ino, doomed.last().map_or(0, |p| p + 1));
                    break;
                }
            }
            if evicted >= want {
                break;
            }
            st.hand = (Ino(0), 0);
        }
        st.stats.cached -= evicted;
        st.stats.evicted += evicted as u64;
        // Recycled buffers count against the budget too.
        let keep = st.stats.limit.saturating_sub(st.stats.cached);
        st.free.truncate(keep);
        evicted
    }

    /// Drops every clean page not under I/O, referenced or not (Linux's `drop_caches`), so
    /// the next reads come from the device; dirty pages stay. Returns the pages dropped.
    pub fn drop_clean(&self) -> usize {
        // Two sweeps of the clock: the first clears the `referenced` bits it passes.
        let mut dropped = 0;
        loop {
            let n = self.evict(usize::MAX);
            dropped += n;
            if n == 0 {
                return dropped;
            }
        }
    }

    /// Files with dirty pages.
    pub(crate) fn dirty_files(&self) -> Vec<Ino> {
        let st = self.st();
        st.files
            .iter()
            .filter(|(_, f)| !f.dirty.is_empty())
            .map(|(&i, _)| i)
            .collect()
    }

    /// Remembers a writeback error for the file's next fsync-equivalent (the first one wins).
    pub(crate) fn record_error(&self, ino: Ino, e: &IomapError) {
        // A file forgotten (deleted) while its writeback ran has nobody to report to.
        if let Some(f) = self.st().files.get_mut(&ino) {
            f.wb_error.get_or_insert_with(|| e.clone());
        }
    }

    /// Takes the unreported writeback error of the file.
    pub(crate) fn take_error(&self, ino: Ino) -> Option<IomapError> {
        self.st()
            .files
            .get_mut(&ino)
            .and_then(|f| f.wb_error.take())
    }

    /// Drops every page of the file, dirty or not (the file is gone).
    pub fn forget(&self, ino: Ino) {
        let mut st = self.st();
        let st = &mut *st;
        if let Some(f) = st.files.remove(&ino) {
            for pg in f.pages.into_values() {
                st.stats.cached -= 1;
                st.stats.dirty -= usize::from(pg.is_dirty());
                self.dirty_hint.store(st.stats.dirty, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests;
