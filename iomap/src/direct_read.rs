//! Direct read: from the device into the caller's DMA buffer, no page cache.
//!
//! Invariants (beside those of `direct.rs`, shared with direct write: sector alignment,
//! coherence with the cache, verified device reads):
//! - each mapping gets its own piece of the caller's buffer (`split_off`), read in place;
//!   holes, unwritten and delalloc space read as zeroes, inline bytes are copied;
//! - a request inside the file and inside one mapped extent (the common case) takes a short
//!   path: one `begin`, one device read into the whole buffer, one `end`, with only the maps
//!   `begin` returned kept across the device wait, where `begin` put them. Its state is what
//!   every direct read carries, so the rare parts (coherence writeback, several mappings,
//!   the end of the file) are boxed futures;
//! - the caller gets the whole buffer back, success or not; bytes past the end of the file
//!   are zeroes and not counted.

use bdev::exec::Context;
use bdev::{Bufs, DmaBuf};

use crate::align;
use crate::counters::IoCounters;
use crate::direct::into_buf;
use crate::error::{IomapError, Result, MAPPING_RETRIES};
use crate::iter::{check, into_step, refuse, Iter, Step};
use crate::layer::Iomap;
use crate::map::{CoreFlags, IterFlags, MapKind};
use crate::ops::{Ended, Ino, IomapOps, IterArgs};
use crate::upcalls::Counted;

impl<O: IomapOps> Iomap<O> {
    /// Reads `buf.len()` bytes at `pos` straight into `buf`; returns the buffer and the bytes
    /// read (short at the end of the file). `flags` may add `NOWAIT`.
    ///
    /// A request inside the file and inside one mapped extent (the common case) is one
    /// `begin`, one device read into the whole buffer and one `end`, all in this function:
    /// no inner future is built and moved per read. Anything else is boxed.
    ///
    /// A read whose mapping a concurrent write replaced while it ran
    /// ([`IomapError::MappingChanged`]) is mapped and read again.
    pub async fn read_direct(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        mut buf: DmaBuf,
        flags: IterFlags,
    ) -> (DmaBuf, Result<usize>) {
        let mut remaps = 0;
        loop {
            let (back, r) = self.read_direct_once(ctx, ino, pos, buf, flags).await;
            match r {
                Err(IomapError::MappingChanged { .. }) if remaps < MAPPING_RETRIES => {
                    remaps += 1;
                    buf = back;
                }
                r => return (back, r),
            }
        }
    }

    /// One try of [`Iomap::read_direct`].
    async fn read_direct_once(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        buf: DmaBuf,
        flags: IterFlags,
    ) -> (DmaBuf, Result<usize>) {
        let len = buf.len() as u64;
        let valid = match self.direct_read_valid(ino, pos, len) {
            Ok(valid) => valid,
            Err(e) => return (buf, Err(e)),
        };
        if valid < len || len == 0 {
            return Box::pin(self.read_direct_short(ctx, ino, pos, buf, flags, valid)).await;
        }
        if self
            .cache
            .has_dirty(ino, self.round_down(pos), self.round_up(pos + len))
        {
            let coherent = self.direct_coherence(ctx, ino, pos, pos + len, flags);
            if let Err(e) = Box::pin(coherent).await {
                return (buf, Err(e));
            }
        }
        let args = IterArgs {
            ino,
            pos,
            len,
            flags: flags | IterFlags::DIRECT,
        };
        // `begin_step`, written out so that the maps stay where `begin` put them.
        let mut maps = match self.ops.begin(ctx, args).await {
            Ok(maps) => maps,
            Err(e) => return (buf, Err(e)),
        };
        let step_len = match check(&maps, args, self.limits) {
            Ok(n) => n,
            Err(e) => {
                let refused = refuse(&self.ops, ctx, args, &maps, e);
                return (buf, Err(Box::pin(refused).await));
            }
        };
        if step_len < len || maps.write.kind != MapKind::Mapped {
            let first = into_step(maps, pos, step_len);
            let it = Iter::resume(&self.ops, ctx, self.limits, args, first);
            let (buf, r) = Box::pin(self.read_steps(ctx, ino, it, buf)).await;
            return (buf, r.map(|()| len as usize));
        }
        // A read has no source map (`check` refuses one), so `into_step` would only do this.
        maps.write.core_flags = CoreFlags::EMPTY;
        let map = &maps.write;
        IoCounters::bump(&self.counters.direct_ios, 1);
        let op = self.read_op(map.device_addr(pos), Bufs::One(buf));
        let (op, r) = ctx.io(self.dev_id, op).await;
        let buf = into_buf(op);
        let mut r = r.map_err(|e| IomapError::device(ino.0, "direct read", pos, e));
        if r.is_ok() {
            // Nobody sees the bytes before the filesystem has checked them (checksums).
            r = self
                .ops
                .verify_read(ctx, ino, pos, map, std::slice::from_ref(&buf))
                .await;
        }
        let ended = Ended {
            args,
            written: if r.is_ok() { len } else { 0 },
            write_map: map,
            io: None,
        };
        let ended = self.ops.end(ctx, &ended).await;
        // As in `Iter`: the step's error first, then the filesystem's.
        (buf, r.and(ended).map(|()| len as usize))
    }

    /// How many of the `len` bytes at `pos` are the file's (0 past its end); refuses a request
    /// not aligned to the sector.
    fn direct_read_valid(&self, ino: Ino, pos: u64, len: u64) -> Result<u64> {
        self.check_direct(pos, len)?;
        let size = self.ops.size(ino)?;
        Ok(if pos >= size { 0 } else { len.min(size - pos) })
    }

    /// A direct read of which only the first `valid` bytes are the file's: reads the sectors
    /// that hold them, mapping by mapping, and zeroes the rest of `buf`.
    async fn read_direct_short(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        mut buf: DmaBuf,
        flags: IterFlags,
        valid: u64,
    ) -> (DmaBuf, Result<usize>) {
        let len = buf.len() as u64;
        if valid == 0 {
            buf.fill(0);
            return (buf, Ok(0));
        }
        let io_len = len.min(align::up(valid, self.sector));
        if let Err(e) = self
            .direct_coherence(ctx, ino, pos, pos + io_len, flags)
            .await
        {
            return (buf, Err(e));
        }
        let beyond = (io_len < len).then(|| buf.split_off(io_len as usize));
        let it = self.iter(ctx, ino, pos, io_len, flags | IterFlags::DIRECT);
        let (mut buf, r) = self.read_steps(ctx, ino, it, buf).await;
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

    /// Reads every mapping `it` walks into its piece of `buf` (the loop of the uncommon
    /// cases: several mappings, holes, inline data).
    async fn read_steps(
        &self,
        ctx: &Context,
        ino: Ino,
        mut it: Iter<'_, Counted<O>>,
        buf: DmaBuf,
    ) -> (DmaBuf, Result<()>) {
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
                self.read_verified(ctx, ino, (step.pos, map), cur, "direct read")
                    .await
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
