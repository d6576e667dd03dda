//! The in-memory inode table: what is known of open or recently used inodes beyond their
//! items, in stripes by inode number, each under its own lock (all of the innermost level
//! of the crate's order, `lock.rs`; a thread holds at most one), and [`Delalloc`], the
//! cached-write bookkeeping whose methods are the write/writeback race protocol.
//!
//! Striped so that I/O on different files, which looks its inode up several times per
//! request, takes no lock and writes no cache line in common (`STRIPES`); I/O on one file
//! still shares its stripe's lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use hashbrown::{HashMap, HashSet};

use super::lock::{Level, Ordered};
use super::ranges::Ranges;
use crate::error::{Error, Result};
use crate::items::{InodeFlags, InodeItem};

/// What is known of an open or recently used inode beyond its item.
#[derive(Clone, Debug, Default)]
pub(crate) struct InodeMem {
    /// The file size as the API sees it (ahead of the item while writes are cached).
    pub size: u64,
    /// `size` differs from the item's: fsync must write it.
    pub size_dirty: bool,
    /// Cached blocks not yet written back, and the write steps filling blocks.
    pub delalloc: Delalloc,
    /// Open handles.
    pub opens: u32,
    /// The inode is NOCOW.
    pub nocow: bool,
    /// fsyncs running on the file: its writeback completions go to the fsync log.
    pub log_writeback: u32,
    /// The last data write (ns): mtime and ctime the item does not have yet.
    pub mtime_dirty: Option<i64>,
    /// Direct writes (pieces) since the file's last fsync (`durability/synced.rs`).
    pub direct_writes: u32,
    /// The last fsyncs in a row that each followed exactly one direct write.
    pub sync_streak: u32,
}

/// A file's cached (delalloc) blocks and the buffered write steps filling blocks.
///
/// The race it settles: a buffered write step reserves its blocks in `begin`
/// ([`Delalloc::begin_step`]), copies its bytes into the cache, and in `end` marks the
/// filled blocks delalloc ([`Delalloc::end_step`]). Another thread's writeback may take a
/// block as soon as its bytes are copied, before the step's `end`: the writeback's
/// completion ([`Delalloc::written_back`]) notes such blocks, and the step's `end` then
/// leaves them clean (their page was written), so no block is delalloc without a dirty
/// page and no reservation is kept twice.
#[derive(Clone, Debug, Default)]
pub(crate) struct Delalloc {
    /// Blocks written to the cache and not yet written back (space reserved).
    cached: Ranges,
    /// Blocks reserved by write steps between their `begin` and `end` (a count per block:
    /// steps of several threads may overlap).
    writing: BTreeMap<u64, u32>,
    /// Blocks of `writing` that a writeback already wrote: their step's `end` must not
    /// mark them delalloc again.
    written_while_writing: HashSet<u64>,
}

impl Delalloc {
    /// Whether no block is cached and no write step runs.
    pub fn is_idle(&self) -> bool {
        self.cached.0.is_empty() && self.writing.is_empty()
    }

    /// Whether blocks are cached and not written back.
    pub fn has_cached(&self) -> bool {
        !self.cached.0.is_empty()
    }

    /// The cached range containing block `b`.
    pub fn containing(&self, b: u64) -> Option<(u64, u64)> {
        self.cached.containing(b)
    }

    /// The first cached range starting after block `b`.
    pub fn next_after(&self, b: u64) -> Option<u64> {
        self.cached.next_after(b)
    }

    /// The cached block ranges, in order.
    pub fn cached(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.cached.0.iter().map(|(&s, &e)| (s, e))
    }

    /// Drops `[a, b)` from the cached blocks (truncate, punch); returns how many were.
    pub fn remove(&mut self, a: u64, b: u64) -> u64 {
        self.cached.remove(a, b)
    }

    /// A write step reserved blocks `[a, b)` and is about to fill them.
    pub fn begin_step(&mut self, a: u64, b: u64) {
        for blk in a..b {
            *self.writing.entry(blk).or_default() += 1;
        }
    }

    /// One past the last block of `[a, b)` that a write step is filling, if any: writeback
    /// of it is kept even though the step has not grown the file yet.
    pub fn filling_end(&self, a: u64, b: u64) -> Option<u64> {
        self.writing
            .range(a..b)
            .next_back()
            .map(|(&blk, _)| blk + 1)
    }

    /// Ends a write step that reserved blocks `[m0, m1)` and filled `[u0, u1)`: the filled
    /// blocks become delalloc, except those a writeback already wrote. Returns how many
    /// blocks became delalloc (the reservation they keep).
    pub fn end_step(&mut self, (m0, m1): (u64, u64), (u0, u1): (u64, u64)) -> u64 {
        let mut added = 0;
        for b in u0..u1 {
            if !self.written_while_writing.contains(&b) {
                added += self.cached.insert(b, b + 1);
            }
        }
        for b in m0..m1 {
            if let Some(n) = self.writing.get_mut(&b) {
                *n -= 1;
                if *n == 0 {
                    self.writing.remove(&b);
                    self.written_while_writing.remove(&b);
                }
            }
        }
        added
    }

    /// Writeback wrote blocks `[a, b)`: they are no longer delalloc, and those a write step
    /// is still filling must not become delalloc at its end. Returns how many blocks were
    /// delalloc (their reservation is used up).
    pub fn written_back(&mut self, a: u64, b: u64) -> u64 {
        let filling: Vec<u64> = self.writing.range(a..b).map(|(&blk, _)| blk).collect();
        self.written_while_writing.extend(filling);
        self.cached.remove(a, b)
    }
}

/// What [`InodeTable::sizes_seen`] reports.
pub(crate) struct SeenSizes {
    pub size: u64,
    /// The time of the last write accepted and not yet in the item.
    pub mtime: Option<i64>,
    /// Byte ranges of cached writes not written back yet (only if asked for).
    pub delalloc: Vec<(u64, u64)>,
    /// The bytes of those ranges (always).
    pub delalloc_bytes: u64,
}

/// Stripes of the inode table: inode numbers are handed out in sequence, so files created
/// one after another land in different stripes.
const STRIPES: u64 = 64;

/// One stripe: the inodes whose number is its index modulo `STRIPES`.
type Stripe = CachePadded<Ordered<HashMap<u64, InodeMem>>>;

/// The in-memory inodes of a mount.
pub(crate) struct InodeTable {
    stripes: Box<[Stripe]>,
    /// Entries dropped so far (changed only under the dropped entry's stripe lock): a thread
    /// that read an item without the lock uses it only if no entry went meanwhile.
    evictions: AtomicU64,
}

impl InodeTable {
    pub fn new() -> InodeTable {
        InodeTable {
            stripes: (0..STRIPES)
                .map(|_| CachePadded::new(Ordered::new(Level::Inodes, HashMap::new())))
                .collect(),
            evictions: AtomicU64::new(0),
        }
    }

    /// The stripe of `ino`.
    fn stripe(&self, ino: u64) -> &Ordered<HashMap<u64, InodeMem>> {
        &self.stripes[(ino % STRIPES) as usize]
    }

    /// The eviction count, to pass to [`InodeTable::sizes_seen`] after reading an item.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Acquire)
    }

    /// Runs `f` on the state of `ino`, made from its item (`load`, read without the lock)
    /// the first time.
    pub fn with<T>(
        &self,
        ino: u64,
        mut load: impl FnMut() -> Result<Option<InodeItem>>,
        f: impl FnOnce(&mut InodeMem) -> T,
    ) -> Result<T> {
        loop {
            let seen = {
                let mut map = self.stripe(ino).lock();
                if let Some(m) = map.get_mut(&ino) {
                    return Ok(f(m));
                }
                self.evictions.load(Ordering::Relaxed)
            };
            let item = load()?.ok_or_else(|| Error::NotFound(format!("inode {ino}")))?;
            let mut map = self.stripe(ino).lock();
            // The item was read without the lock. If another thread loaded the inode,
            // changed it, committed and evicted it meanwhile, the item may predate that
            // commit (a smaller size): read it again.
            if !map.contains_key(&ino) && self.evictions.load(Ordering::Relaxed) != seen {
                continue;
            }
            let m = map.entry(ino).or_insert_with(|| InodeMem {
                size: item.size,
                nocow: item.flags.contains(InodeFlags::NOCOW),
                ..InodeMem::default()
            });
            return Ok(f(m));
        }
    }

    /// Runs `f` on the state of `ino` if memory has it.
    pub fn with_loaded<T>(&self, ino: u64, f: impl FnOnce(&mut InodeMem) -> T) -> Option<T> {
        self.stripe(ino).lock().get_mut(&ino).map(f)
    }

    /// Drops the state of a closed inode whose item says everything it knows (nothing
    /// cached dirty, no size or time waiting), unless `logged` (the fsync log holds
    /// attributes of it): memory stays bounded by the open and dirty files.
    pub fn evict_if_idle(&self, ino: u64, logged: bool) {
        let mut map = self.stripe(ino).lock();
        let idle = map.get(&ino).is_some_and(|m| {
            m.opens == 0
                && m.delalloc.is_idle()
                && !m.size_dirty
                && m.mtime_dirty.is_none()
                && m.log_writeback == 0
        });
        if idle && !logged {
            map.remove(&ino);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops the state of a deleted inode; returns it.
    pub fn remove(&self, ino: u64) -> Option<InodeMem> {
        let mut map = self.stripe(ino).lock();
        let gone = map.remove(&ino);
        self.evictions.fetch_add(1, Ordering::Relaxed);
        gone
    }

    /// The size, unwritten mtime and cached (delalloc) bytes of `ino` as the API sees them,
    /// given its item (read after `evictions` returned `seen`): what memory knows, else the
    /// item's; the cached byte ranges too if `ranges` (a stat of a file without committed
    /// extents needs only their sum, and allocates nothing). `None`: the item may predate
    /// the state of a concurrently evicted entry (read it again).
    pub fn sizes_seen(
        &self,
        ino: u64,
        item_size: u64,
        seen: u64,
        bs: u64,
        ranges: bool,
    ) -> Option<SeenSizes> {
        let map = self.stripe(ino).lock();
        match map.get(&ino) {
            Some(m) => {
                let cached = m.delalloc.cached().map(|(s, e)| (s * bs, e * bs));
                let (delalloc, delalloc_bytes) = if ranges {
                    let v: Vec<_> = cached.collect();
                    let n = v.iter().map(|(s, e)| e - s).sum();
                    (v, n)
                } else {
                    (Vec::new(), cached.map(|(s, e)| e - s).sum())
                };
                Some(SeenSizes {
                    size: m.size,
                    mtime: m.mtime_dirty,
                    delalloc,
                    delalloc_bytes,
                })
            }
            None if self.evictions.load(Ordering::Relaxed) == seen => Some(SeenSizes {
                size: item_size,
                mtime: None,
                delalloc: Vec::new(),
                delalloc_bytes: 0,
            }),
            None => None,
        }
    }

    /// Inodes whose state matches `pred`, in no order (one stripe at a time: not a
    /// snapshot of the whole table, as the single lock's was not across calls either).
    pub fn select(&self, pred: impl Fn(&InodeMem) -> bool) -> Vec<u64> {
        let mut found = Vec::new();
        for stripe in self.stripes.iter() {
            let map = stripe.lock();
            found.extend(map.iter().filter(|(_, m)| pred(m)).map(|(&i, _)| i));
        }
        found
    }
}
