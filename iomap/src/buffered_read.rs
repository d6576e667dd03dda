//! Buffered read: copy out of the page cache, filling it from the device where needed.
//!
//! Invariants:
//! - only blocks marked up to date are ever copied to the caller;
//! - a block is filled from its mapping: device data for `Mapped`, zeroes for holes,
//!   unwritten and delalloc space (delalloc data is always dirty in the cache, so a stale
//!   delalloc block is one truncate took away), inline bytes for `Inline`;
//! - a run of stale blocks inside one mapped extent is one device request, whatever the
//!   number of pages (the pages are DMA memory: no bounce);
//! - sequential readers get read-ahead: the window grows up to `readahead_bytes` (or the
//!   read's size, if larger, within one batch of pages), and the pages ahead go to the
//!   device before the current ones are copied out, so the copy overlaps the device's
//!   work on the next window;
//! - no request outlives the read that made it: read-ahead is awaited before `read`
//!   returns, so no page stays busy for a context that may never run again;
//! - a failed read-ahead fails nothing: its pages stay stale and the read that reaches
//!   them fills them again and reports what it gets;
//! - reads stop at the file size.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use bdev::exec::{join_all, yield_now, Context};

use crate::cache::{Outcome, ReadStart};
use crate::error::{IomapError, Result, MAPPING_RETRIES};
use crate::iter::Step;
use crate::layer::{Fill, Iomap};
use crate::map::{IterFlags, MapKind};
use crate::ops::{Ino, IomapOps};

/// Read-ahead goes to the device in pieces of at most this many bytes, all in flight at
/// once: the first pieces are verified while the device still reads the last.
const READAHEAD_PIECE_BYTES: u64 = 256 << 10;

impl<O: IomapOps> Iomap<O> {
    /// Reads up to `dst.len()` bytes at `pos` through the cache; returns the bytes read
    /// (short at the end of the file).
    pub async fn read(&self, ctx: &Context, ino: Ino, pos: u64, dst: &mut [u8]) -> Result<usize> {
        let size = self.ops.size(ino)?;
        if pos >= size || dst.is_empty() {
            return Ok(0);
        }
        let len = (dst.len() as u64).min(size - pos);
        let dst = &mut dst[..len as usize];
        let page = self.cfg.page_size;
        let pages = pos / page..(pos + len).div_ceil(page);
        // A window of at least the read itself, as Linux's for reads larger than its own.
        let max_ra = (self.cfg.readahead_bytes / page)
            .max(pages.end - pages.start)
            .min(self.batch_pages());
        let ahead = match self
            .cache
            .read_start(ino, pos, dst, (pages, size.div_ceil(page)), max_ra)
        {
            ReadStart::Copied => return Ok(len as usize),
            ReadStart::Missed => return self.read_range(ctx, ino, pos, dst, true).await,
            ReadStart::ReadAhead(ahead) => ahead,
        };
        let (a, b) = (
            ahead.start * page,
            self.round_up(size).min(ahead.end * page),
        );
        // Polled first: the read-ahead's requests go to the device before the copy out.
        let ((), got) = join2(
            self.read_ahead(ctx, ino, a, b),
            self.read_range(ctx, ino, pos, dst, false),
        )
        .await;
        got
    }

    /// Fills `[a, b)` as read-ahead, in pieces of `READAHEAD_PIECE_BYTES`, each handed to
    /// the device as soon as its request is made, in the first poll: the device works on
    /// the first piece while the next is prepared, and on the rest while the caller copies
    /// out. Errors are dropped: the read that reaches a page left stale fills it itself and
    /// reports the error then.
    async fn read_ahead(&self, ctx: &Context, ino: Ino, a: u64, b: u64) {
        let piece = READAHEAD_PIECE_BYTES.max(self.cfg.page_size);
        let mut fills = Vec::new();
        for s in (a..b).step_by(piece as usize) {
            let mut fill = Box::pin(self.fill(ctx, ino, s, (s + piece).min(b)));
            // One poll makes the request (or finishes: nothing was stale, or it failed)...
            let pending = poll_fn(|cx| Poll::Ready(fill.as_mut().poll(cx).is_pending())).await;
            if pending {
                fills.push(fill);
            }
            // ...and this hands it to the device now rather than at the end of the turn.
            ctx.poll_queues();
        }
        // Dropped on purpose: the pages of a failed piece stay stale (see the invariants).
        let _ = join_all(fills).await;
    }

    /// Copies `[pos, pos + dst.len())` out of the cache, filling what is not up to date
    /// first, one batch of pages at a time; `dst` ends before the end of the file.
    /// `missed`: the caller found the first batch not up to date already.
    async fn read_range(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        dst: &mut [u8],
        mut missed: bool,
    ) -> Result<usize> {
        let len = dst.len() as u64;
        let page = self.cfg.page_size;
        let mut done = 0u64;
        let mut remaps = 0;
        while done < len {
            let at = pos + done;
            let chunk_end = (pos + len).min((at / page + self.batch_pages()) * page);
            let dst = &mut dst[done as usize..(chunk_end - pos) as usize];
            let mut hit = !std::mem::take(&mut missed) && self.cache.read_cached(ino, at, dst);
            let mut tries = 0;
            while !hit {
                tries += 1;
                if tries > 1000 {
                    return Err(IomapError::Invalid(format!(
                        "inode {ino}: pages at {at} stay busy or stale"
                    )));
                }
                let start = self.round_down(at);
                match self.fill(ctx, ino, start, self.round_up(chunk_end)).await {
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

/// Runs `a` and `b` together (both polled with the caller's waker) until both are done;
/// `a` is polled first each time.
async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}
