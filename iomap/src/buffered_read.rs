//! Buffered read: copy out of the page cache, filling it from the device where needed.
//!
//! Invariants:
//! - only blocks marked up to date are ever copied to the caller;
//! - a block is filled from its mapping: device data for `Mapped`, zeroes for holes,
//!   unwritten and delalloc space (delalloc data is always dirty in the cache, so a stale
//!   delalloc block is one truncate took away), inline bytes for `Inline`;
//! - a run of stale blocks inside one mapped extent is one device request, whatever the
//!   number of pages (the pages are DMA memory: no bounce);
//! - sequential readers get read-ahead: the window doubles up to `readahead_bytes`;
//! - reads stop at the file size.

use bdev::exec::{yield_now, Context};

use crate::cache::Outcome;
use crate::error::{IomapError, Result, MAPPING_RETRIES};
use crate::iter::Step;
use crate::layer::{Fill, Iomap};
use crate::map::{IterFlags, MapKind};
use crate::ops::{Ino, IomapOps};

impl<O: IomapOps> Iomap<O> {
    /// Reads up to `dst.len()` bytes at `pos` through the cache; returns the bytes read
    /// (short at the end of the file).
    pub async fn read(&self, ctx: &Context, ino: Ino, pos: u64, dst: &mut [u8]) -> Result<usize> {
        let size = self.ops.size(ino)?;
        if pos >= size || dst.is_empty() {
            return Ok(0);
        }
        let len = (dst.len() as u64).min(size - pos);
        let page = self.cfg.page_size;
        let max_ra = (self.cfg.readahead_bytes / page).min(self.batch_pages());
        let pages = pos / page..(pos + len).div_ceil(page);
        // Set by the first chunk's look at the cache, which also updates read-ahead.
        let mut ra = None;
        let eof = self.round_up(size);
        let mut done = 0u64;
        let mut remaps = 0;
        while done < len {
            let at = pos + done;
            let chunk_end = (pos + len).min((at / page + self.batch_pages()) * page);
            let last = chunk_end == pos + len;
            let dst = &mut dst[done as usize..(chunk_end - pos) as usize];
            let mut hit = match ra {
                None => {
                    let (hit, window) = self.cache.read_start(ino, at, dst, pages.clone(), max_ra);
                    ra = Some(window);
                    hit
                }
                Some(_) => self.cache.read_cached(ino, at, dst),
            };
            let ra = ra.unwrap_or(0);
            let fill_end = if last {
                // Chunk and read-ahead together stay within one batch: that is the most the
                // budget may be overshot by when nothing else can be evicted.
                let chunk_pages = chunk_end.div_ceil(page) - at / page;
                let ra = ra.min(self.batch_pages().saturating_sub(chunk_pages));
                chunk_end.div_ceil(page) * page + ra * page
            } else {
                chunk_end
            };
            let mut tries = 0;
            while !hit {
                tries += 1;
                if tries > 1000 {
                    return Err(IomapError::Invalid(format!(
                        "inode {ino}: pages at {at} stay busy or stale"
                    )));
                }
                let start = self.round_down(at);
                match self
                    .fill(ctx, ino, start, self.round_up(fill_end).min(eof))
                    .await
                {
                    Ok(()) => {}
                    // A fill whose mapping was replaced under it dropped its bytes: the
                    // next turn maps again.
                    Err(IomapError::MappingChanged { .. }) if remaps < MAPPING_RETRIES => {
                        remaps += 1
                    }
                    Err(e) => return Err(e),
                }
                if tries > 1 {
                    yield_now().await;
                }
                hit = self.cache.read_cached(ino, at, dst);
            }
            done = chunk_end - pos;
        }
        Ok(len as usize)
    }

    /// Makes the blocks of `[start, end)` up to date in the cache.
    pub(crate) async fn fill(&self, ctx: &Context, ino: Ino, start: u64, end: u64) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        self.make_room(ctx, self.pages_of(start, end)).await?;
        self.wait_idle(ino, start, end).await;
        // Taken before the mappings are: if a direct write replaces one of them before the
        // pages are filled, its invalidation comes after this mark and the fill is dropped
        // (else the cache would keep the replaced bytes).
        let mark = self.cache.invalidation_mark();
        self.cache.populate(ino, start, end)?;
        for (a, b) in self.cache.stale_runs(ino, start, end) {
            let mut it = self.iter(ctx, ino, a, b - a, IterFlags::EMPTY);
            while let Some(step) = it.next().await? {
                match self.fill_step(ctx, ino, step, mark).await {
                    Ok(()) => it.advance(),
                    Err(e) => it.failed(0, e),
                }
            }
        }
        Ok(())
    }

    /// Fills one mapped piece of a stale run, unless the file's pages were invalidated after
    /// `mark`.
    async fn fill_step(&self, ctx: &Context, ino: Ino, step: &Step, mark: u64) -> Result<()> {
        let (a, b) = (step.pos, step.pos + step.len);
        let map = &step.write;
        // Another future may have evicted or started I/O on these pages while we awaited
        // `begin`; put them back, or leave the range to the caller's retry.
        self.cache.populate(ino, a, b)?;
        match map.kind {
            MapKind::Hole | MapKind::Unwritten | MapKind::Delalloc => {
                self.cache.fill(ino, a, b, Some(mark), |_, buf| buf.fill(0));
            }
            MapKind::Inline => self
                .cache
                .fill(ino, a, b, Some(mark), |off, buf| map.copy_inline(off, buf)),
            MapKind::Mapped => {
                let fill = Fill {
                    what: "read",
                    counter: &self.counters.cache_reads,
                    filled: Outcome::FilledUnlessInvalidated(mark),
                };
                self.fill_from_device(ctx, ino, (a, b), map, fill).await?;
            }
        }
        Ok(())
    }
}
