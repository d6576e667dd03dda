//! Direct read: from the device into the caller's DMA buffer, no page cache.
//!
//! Invariants:
//! - the request is aligned to the device sector (offset and length) or rejected;
//! - dirty cached blocks of the range are written back first, so the device holds the
//!   newest bytes (coherence with buffered writes);
//! - each mapping gets its own piece of the caller's buffer (`split_off`), read in place;
//!   holes, unwritten and delalloc space read as zeroes, inline bytes are copied;
//! - the caller gets the whole buffer back, success or not; bytes past the end of the file
//!   are zeroes and not counted.

use bdev::exec::Context;
use bdev::{Bufs, DmaBuf};

use crate::error::{IomapError, Result};
use crate::iter::Step;
use crate::layer::{IoCounters, Iomap};
use crate::map::{IterFlags, MapKind};
use crate::ops::{Ino, IomapOps};

impl<O: IomapOps> Iomap<O> {
    /// Reads `buf.len()` bytes at `pos` straight into `buf`; returns the buffer and the bytes
    /// read (short at the end of the file). `flags` may add `NOWAIT`.
    pub async fn read_direct(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        mut buf: DmaBuf,
        flags: IterFlags,
    ) -> (DmaBuf, Result<usize>) {
        let len = buf.len() as u64;
        let size = match self
            .check_direct(pos, len)
            .and_then(|()| self.ops.size(ino))
        {
            Ok(size) => size,
            Err(e) => return (buf, Err(e)),
        };
        if pos >= size || len == 0 {
            buf.fill(0);
            return (buf, Ok(0));
        }
        let valid = len.min(size - pos);
        let io_len = len.min(valid.div_ceil(self.sector) * self.sector);
        if let Err(e) = self
            .direct_coherence(ctx, ino, pos, pos + io_len, flags)
            .await
        {
            return (buf, Err(e));
        }
        let beyond = (io_len < len).then(|| buf.split_off(io_len as usize));
        let (mut buf, r) = self.read_mappings(ctx, ino, pos, buf, flags).await;
        if let Some(beyond) = beyond {
            buf.unsplit(beyond)
                .expect("pieces of the caller's buffer are adjacent");
        }
        if r.is_ok() {
            buf[valid as usize..].fill(0);
        }
        (buf, r.map(|()| valid as usize))
    }

    /// [`Iomap::read_direct`] into a borrowed buffer (taken and put back, never copied).
    pub async fn read_direct_into(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        buf: &mut DmaBuf,
        flags: IterFlags,
    ) -> Result<usize> {
        let owned = buf.split_off(0);
        let (back, r) = self.read_direct(ctx, ino, pos, owned, flags).await;
        buf.unsplit(back).expect("the buffer comes back whole");
        r
    }

    /// Reads every mapping of `[pos, pos + buf.len())` into its piece of `buf`. A request
    /// inside one mapping (the common case) uses the buffer whole: no split.
    async fn read_mappings(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        buf: DmaBuf,
        flags: IterFlags,
    ) -> (DmaBuf, Result<()>) {
        let len = buf.len() as u64;
        let mut it = self.iter(ctx, ino, pos, len, flags | IterFlags::DIRECT);
        // `done` holds the pieces the finished mappings used, `rest` what is left.
        let (mut done, mut rest): (Option<DmaBuf>, Option<DmaBuf>) = (None, Some(buf));
        let mut result = Ok(());
        loop {
            let step = match it.next().await {
                Ok(Some(step)) => step,
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let mut cur = rest.take().expect("a step never goes past the request");
            if (step.len as usize) < cur.len() {
                rest = Some(cur.split_off(step.len as usize));
            }
            let (cur, r) = self.direct_read_step(ctx, ino, step, cur).await;
            done = Some(join(done, cur));
            match r {
                Ok(()) => it.advance(),
                Err(e) => it.failed(0, e),
            }
        }
        let buf = match rest {
            Some(rest) => join(done, rest),
            None => done.expect("the buffer went to some step"),
        };
        (buf, result)
    }

    async fn direct_read_step(
        &self,
        ctx: &Context,
        ino: Ino,
        step: &Step,
        mut cur: DmaBuf,
    ) -> (DmaBuf, Result<()>) {
        let map = &step.write;
        match map.kind {
            MapKind::Mapped => {
                IoCounters::bump(&self.counters.direct_ios, 1);
                let (bufs, r) = self
                    .dev_read(ctx, map.device_addr(step.pos), Bufs::One(cur))
                    .await;
                let cur = bufs.into_one().expect("sent as One");
                let r = r.map_err(|e| IomapError::device(ino.0, "direct read", step.pos, e));
                if let Err(e) = r {
                    return (cur, Err(e));
                }
                let r = self
                    .ops
                    .verify_read(ctx, ino, step.pos, map, std::slice::from_ref(&cur))
                    .await;
                (cur, r)
            }
            MapKind::Inline => {
                map.copy_inline(step.pos, &mut cur);
                (cur, Ok(()))
            }
            MapKind::Hole | MapKind::Unwritten | MapKind::Delalloc => {
                cur.fill(0);
                (cur, Ok(()))
            }
        }
    }

    /// Rejects a direct request not aligned to the device sector.
    pub(crate) fn check_direct(&self, pos: u64, len: u64) -> Result<()> {
        if pos % self.sector != 0 || len % self.sector != 0 || pos.checked_add(len).is_none() {
            return Err(IomapError::Unaligned {
                pos,
                len,
                align: self.sector,
            });
        }
        Ok(())
    }

    /// Writes back dirty cached blocks of the blocks around `[start, end)` (or, with
    /// `NOWAIT`, refuses to wait for that).
    pub(crate) async fn direct_coherence(
        &self,
        ctx: &Context,
        ino: Ino,
        start: u64,
        end: u64,
        flags: IterFlags,
    ) -> Result<()> {
        let (a, b) = (self.round_down(start), self.round_up(end));
        if !self.cache.has_dirty(ino, a, b) {
            return Ok(());
        }
        if flags.contains(IterFlags::NOWAIT) {
            return Err(IomapError::WouldBlock);
        }
        self.writeback_range(ctx, ino, a, b).await
    }
}

/// Appends `next` to the pieces in `done`.
fn join(done: Option<DmaBuf>, next: DmaBuf) -> DmaBuf {
    match done {
        None => next,
        Some(mut d) => {
            d.unsplit(next)
                .expect("pieces of the caller's buffer are adjacent");
            d
        }
    }
}
