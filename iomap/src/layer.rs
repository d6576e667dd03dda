//! [`Iomap`]: one filesystem's iomap layer: its ops, its device, its page cache.
//!
//! The operations live one per file (`buffered_read.rs`, `direct_write.rs` …) as `impl` blocks
//! on this type; here are the pieces they share: configuration, counters, device requests,
//! waiting for pages under I/O, and the memory-budget and dirty-limit balancing.
//!
//! Invariants:
//! - no page-cache lock is held across an `.await`;
//! - an operation asks for room (`make_room`) before it inserts pages, outside any
//!   `begin`/`end` pair, so writeback started for room never sees half-done writes;
//! - a writeback error is recorded on its file before it is returned, so it reaches the next
//!   fsync-equivalent even when the caller that triggered the writeback drops it.

use std::sync::Arc;

use bdev::exec::{yield_now, Context, DevId};
use bdev::{BlockDevice, Bufs, DmaBuf, IoError, Lba, Op};

use crate::align;
use crate::cache::{Outcome, PageCache, TakeFor};
use crate::counters::{Counter, IoCounters};
use crate::error::{IomapError, Result};
use crate::iter::{Iter, Limits};
use crate::map::{IoMap, IterFlags};
use crate::ops::{Ino, IomapOps, IterArgs};
use crate::upcalls::Counted;

/// Tunables of the layer.
#[derive(Clone, Copy, Debug)]
pub struct IomapConfig {
    /// Page size of the cache (a power of two, at least the filesystem block, at most 64
    /// blocks).
    pub page_size: u64,
    /// Memory budget of the cache in bytes.
    pub cache_bytes: u64,
    /// Dirty bytes past which writers help write back.
    pub dirty_bytes: u64,
    /// Largest sequential read-ahead window in bytes.
    pub readahead_bytes: u64,
    /// Largest single device request the layer builds, in bytes.
    pub max_io_bytes: u64,
}

impl Default for IomapConfig {
    fn default() -> Self {
        IomapConfig {
            page_size: 4096,
            cache_bytes: 64 << 20,
            dirty_bytes: 16 << 20,
            readahead_bytes: 256 << 10,
            max_io_bytes: 1 << 20,
        }
    }
}

/// What a cache fill from the device is for ([`Iomap::fill_from_device`]).
pub(crate) struct Fill<'a> {
    /// Names the read in errors.
    pub what: &'static str,
    /// Counts it.
    pub counter: &'a Counter,
    /// What success does to the pages (see [`Outcome::FilledUnlessInvalidated`]).
    pub filled: Outcome,
}

/// The iomap layer of one filesystem on one device.
pub struct Iomap<O: IomapOps> {
    /// The filesystem's ops; every call into them is counted in `counters.upcalls`.
    pub(crate) ops: Counted<O>,
    pub(crate) dev: Arc<dyn BlockDevice>,
    pub(crate) dev_id: DevId,
    pub(crate) cache: PageCache,
    pub(crate) cfg: IomapConfig,
    pub(crate) limits: Limits,
    /// Device sector size.
    pub(crate) sector: u64,
    pub(crate) counters: Arc<IoCounters>,
}

impl<O: IomapOps> Iomap<O> {
    /// The layer for `ops` on `dev`, whose queue is `dev_id` on the contexts that use it.
    pub fn new(
        ops: O,
        dev: Arc<dyn BlockDevice>,
        dev_id: DevId,
        cfg: IomapConfig,
    ) -> Result<Iomap<O>> {
        let geo = dev.geometry();
        let block = u64::from(ops.block_size());
        let sector = u64::from(geo.block_size);
        if !block.is_power_of_two()
            || !sector.is_power_of_two()
            || block < sector
            || cfg.max_io_bytes < cfg.page_size
        {
            return Err(IomapError::Invalid(format!(
                "filesystem block {block} and the {sector}-byte sector must be powers of two, \
                 the block a multiple of the sector; max I/O {} at least a page",
                cfg.max_io_bytes
            )));
        }
        let pages = |bytes: u64| (bytes / cfg.page_size) as usize;
        let cache = PageCache::new(
            Arc::clone(&dev),
            cfg.page_size,
            block,
            pages(cfg.cache_bytes),
            pages(cfg.dirty_bytes),
        )?;
        let counters = Arc::new(IoCounters::default());
        Ok(Iomap {
            ops: Counted {
                fs: ops,
                counters: Arc::clone(&counters),
            },
            dev,
            dev_id,
            cache,
            cfg,
            limits: Limits {
                block,
                device_bytes: geo.size_bytes(),
            },
            sector,
            counters,
        })
    }

    /// The filesystem's ops.
    pub fn ops(&self) -> &O {
        &self.ops.fs
    }

    /// The page cache.
    pub fn cache(&self) -> &PageCache {
        &self.cache
    }

    /// The request counters.
    pub fn counters(&self) -> &IoCounters {
        &self.counters
    }

    /// The filesystem block size.
    pub fn block_size(&self) -> u64 {
        self.limits.block
    }

    /// Allocates a DMA buffer of `len` bytes for this device.
    pub fn alloc_buf(&self, len: usize) -> Result<DmaBuf> {
        self.dev
            .alloc_buf(len)
            .map_err(|e| IomapError::NoMemory(e.to_string()))
    }

    pub(crate) fn iter<'a>(
        &'a self,
        ctx: &'a Context,
        ino: Ino,
        pos: u64,
        len: u64,
        flags: IterFlags,
    ) -> Iter<'a, Counted<O>> {
        let args = IterArgs {
            ino,
            pos,
            len,
            flags,
        };
        Iter::new(&self.ops, ctx, self.limits, args)
    }

    pub(crate) fn round_down(&self, x: u64) -> u64 {
        align::down(x, self.limits.block)
    }

    pub(crate) fn round_up(&self, x: u64) -> u64 {
        align::up(x, self.limits.block)
    }

    /// Pages a byte range touches.
    pub(crate) fn pages_of(&self, start: u64, end: u64) -> usize {
        let p = self.cfg.page_size;
        (end.div_ceil(p) - start / p) as usize
    }

    /// Pages one step of a buffered operation handles at once: a quarter of the budget,
    /// so a tiny cache still works, and no more than one device request.
    pub(crate) fn batch_pages(&self) -> u64 {
        let limit = self.cache.limit() as u64;
        (limit / 4).clamp(1, self.cfg.max_io_bytes / self.cfg.page_size)
    }

    /// The request that reads `bufs.len()` bytes at device byte `addr`.
    pub(crate) fn read_op(&self, addr: u64, bufs: Bufs) -> Op {
        Op::Read {
            lba: Lba(align::div(addr, self.sector)),
            bufs,
        }
    }

    /// Reads `bufs.len()` bytes at device byte `addr`; the buffers come back either way.
    pub(crate) async fn dev_read(
        &self,
        ctx: &Context,
        addr: u64,
        bufs: Bufs,
    ) -> (Bufs, std::result::Result<(), IoError>) {
        let op = self.read_op(addr, bufs);
        let (op, r) = ctx.io(self.dev_id, op).await;
        (op.into_bufs().expect("a read has buffers"), r)
    }

    /// Fills the cached blocks `[a, b)` of `ino` from `map` on the device and has the
    /// filesystem verify them (`IomapOps::verify_read`) before the pages count as up to date;
    /// `fill` says what the read is for (see [`Fill`]). Pages evicted or under I/O meanwhile
    /// are left alone: the caller's copy misses and retries.
    pub(crate) async fn fill_from_device(
        &self,
        ctx: &Context,
        ino: Ino,
        (a, b): (u64, u64),
        map: &IoMap,
        fill: Fill<'_>,
    ) -> Result<()> {
        let Fill {
            what,
            counter,
            filled,
        } = fill;
        // Blocks someone made up to date since the caller looked are left alone; the
        // caller looks again.
        let Some((taken, pieces)) = self.cache.take(ino, a, b, TakeFor::Fill) else {
            return Ok(());
        };
        IoCounters::bump(counter, 1);
        let (bufs, r) = self
            .dev_read(ctx, map.device_addr(a), Bufs::Many(pieces))
            .await;
        let Bufs::Many(pieces) = bufs else {
            unreachable!("sent as Many")
        };
        let r = match r {
            Err(e) => Err(IomapError::device(ino.0, what, a, e)),
            Ok(()) => self.ops.verify_read(ctx, ino, a, map, &pieces).await,
        };
        let outcome = if r.is_ok() { filled } else { Outcome::Failed };
        self.cache.restore(taken, pieces, outcome);
        r
    }

    /// Writes `bufs` at device byte `addr`; the buffers come back either way.
    pub(crate) async fn dev_write(
        &self,
        ctx: &Context,
        addr: u64,
        bufs: Bufs,
    ) -> (Bufs, std::result::Result<(), IoError>) {
        let op = Op::Write {
            lba: Lba(align::div(addr, self.sector)),
            bufs,
            fua: false,
        };
        let (op, r) = ctx.io(self.dev_id, op).await;
        (op.into_bufs().expect("a write has buffers"), r)
    }

    /// Waits until no page of `[start, end)` is under I/O.
    pub(crate) async fn wait_idle(&self, ino: Ino, start: u64, end: u64) {
        while self.cache.busy(ino, start, end) {
            yield_now().await;
        }
    }

    /// Makes room for `pages` more pages: evicts clean pages, and if that is not enough,
    /// writes dirty ones back first. The budget is soft: if everything left is under I/O,
    /// the caller goes ahead.
    pub(crate) async fn make_room(&self, ctx: &Context, pages: usize) -> Result<()> {
        loop {
            let excess = self.cache.stats().excess_for(pages);
            if excess == 0 || self.cache.evict(excess) >= excess {
                return Ok(());
            }
            // Nothing clean left to evict: clean a dirty file, then try again.
            let Some(&ino) = self.cache.dirty_files().first() else {
                return Ok(());
            };
            self.writeback_range(ctx, ino, 0, u64::MAX).await?;
        }
    }

    /// Writers call this after dirtying pages: past the dirty limit they write back (this
    /// file first) until a quarter of the limit is clean again, a few runs at a time (see
    /// [`Iomap::writeback_batch`]), checking after each. Writing back every dirty block of
    /// the file, or down to half the limit, made every eighth or sixteenth 1 MiB write wait
    /// for 8-16 MiB of writeback (a 53 ms worst case at load 12). Errors are recorded on
    /// the files for their next fsync and do not fail the write that already went into the
    /// cache.
    pub(crate) async fn balance_dirty(&self, ctx: &Context, ino: Ino) {
        if !self.cache.stats().over_dirty_limit() {
            return;
        }
        let limit = self.cache.stats().dirty_limit;
        let target = limit - limit / 4;
        let mut files = self.cache.dirty_files();
        files.sort_by_key(|&i| i != ino);
        for f in files {
            let mut from = 0;
            while let Some(next) = self.cache.next_dirty_run(f, from, u64::MAX, 1).map(|r| r.0) {
                let end = next.saturating_add(self.writeback_batch());
                if self.writeback_range(ctx, f, next, end).await.is_err() {
                    // Recorded on the file; retrying now would only fail again.
                    return;
                }
                if self.cache.stats().dirty <= target {
                    return;
                }
                from = end;
            }
        }
    }
}
