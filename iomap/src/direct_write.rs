//! Direct write: copy-on-write from the caller's DMA buffer, no page cache.
//!
//! Invariants (beside those of `direct.rs`, shared with direct read: sector alignment,
//! coherence with the cache, verified device reads):
//! - the request need not be aligned to the filesystem block: the rest of an edge block is
//!   read from the **source map** (zeroes for holes, unwritten and fresh space) into a
//!   block-sized edge buffer that also gets the caller's bytes for that block, something
//!   Linux's O_DIRECT does not do;
//! - the block-aligned middle goes to the device zero-copy: a `split_off` piece of the
//!   caller's buffer, joined back (`unsplit`) when the request completes;
//! - the caller's buffer is owned by the request until the device is done, so a checksum
//!   computed before submission stays true;
//! - the cached pages of the range are dropped afterwards, so a later buffered read sees the
//!   new bytes;
//! - each mapping's data goes to the device through the filesystem's `submit_direct` (by
//!   default one write through the context; the filesystem may add requests of its own,
//!   never blocking), and the device's answer goes to `end` with the bytes sent
//!   (`Ended::io`), which completes the write and grows the file only after success: one
//!   mapping is three calls into the filesystem, `begin`, `submit_direct`, `end`.

use bdev::exec::Context;
use bdev::{Bufs, DmaBuf};

use crate::counters::IoCounters;
use crate::error::{IomapError, Result, MAPPING_RETRIES};
use crate::iter::{Iter, Step};
use crate::layer::Iomap;
use crate::map::IterFlags;
use crate::ops::{DirectWrite, Ino, IoDone, IomapOps, IterArgs, Submitted};
use crate::upcalls::Counted;

impl<O: IomapOps> Iomap<O> {
    /// Writes `buf` at `pos`, bypassing the cache; returns the buffer and the bytes written.
    pub async fn write_direct(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        mut buf: DmaBuf,
        flags: IterFlags,
    ) -> (DmaBuf, Result<usize>) {
        let r = self.write_direct_from(ctx, ino, pos, &mut buf, flags).await;
        (buf, r)
    }

    /// [`Iomap::write_direct`] from a borrowed buffer (taken and put back, never copied).
    ///
    /// A write whose edge block's source a concurrent write replaced while it was read
    /// ([`IomapError::MappingChanged`]) is done again whole (rewriting the same bytes over
    /// what it already wrote).
    pub async fn write_direct_from(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        buf: &mut DmaBuf,
        flags: IterFlags,
    ) -> Result<usize> {
        let mut remaps = 0;
        loop {
            match self.write_direct_once(ctx, ino, pos, buf, flags).await {
                Err(IomapError::MappingChanged { .. }) if remaps < MAPPING_RETRIES => remaps += 1,
                r => return r,
            }
        }
    }

    /// One try of [`Iomap::write_direct_from`].
    async fn write_direct_once(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        buf: &mut DmaBuf,
        flags: IterFlags,
    ) -> Result<usize> {
        let len = buf.len() as u64;
        self.check_direct(pos, len)?;
        if len == 0 {
            return Ok(0);
        }
        let (a, b) = (self.round_down(pos), self.round_up(pos + len));
        self.direct_coherence(ctx, ino, a, b, flags).await?;
        let mut rest = buf.split_off(0);
        let flags = flags | IterFlags::WRITE | IterFlags::DIRECT;
        let mut it = self.iter(ctx, ino, pos, len, flags);
        let mut result = Ok(());
        loop {
            let step = match it.next().await {
                // A copy, so the iteration is free to end the step with its outcome.
                Ok(Some(step)) => step.clone(),
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let mut cur = rest;
            rest = cur.split_off(step.len as usize);
            let (cur, r) = self.direct_write_step(ctx, &step, cur, &mut it).await;
            buf.unsplit(cur)
                .expect("pieces of the caller's buffer are adjacent");
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        buf.unsplit(rest)
            .expect("pieces of the caller's buffer are adjacent");
        // Pages over the range are clean now (written back above) and stale.
        self.cache.invalidate(ino, a, b);
        result?;
        Ok((it.pos() - pos) as usize)
    }

    /// Writes one mapping's piece `cur` (bytes `[step.pos, step.pos + step.len)`) and ends
    /// the step.
    async fn direct_write_step(
        &self,
        ctx: &Context,
        step: &Step,
        cur: DmaBuf,
        it: &mut Iter<'_, Counted<O>>,
    ) -> (DmaBuf, Result<()>) {
        let bs = self.block_size();
        let (p, q) = (step.pos, step.pos + step.len);
        let (bp, bq) = (self.round_down(p), self.round_up(q));
        let one_block = bq - bp == bs && (p % bs != 0 || q % bs != 0);
        // Caller bytes that land in edge blocks, and the block-aligned middle between.
        let head_len = if one_block {
            step.len
        } else {
            (bp + bs - p) % bs
        };
        let tail_len = if one_block { 0 } else { q % bs };
        let mut head = cur;
        let mut middle = head.split_off(head_len as usize);
        let tail = middle.split_off(middle.len() - tail_len as usize);
        let r = self
            .direct_write_pieces(ctx, step, (&head, &tail), &mut middle, it)
            .await;
        head.unsplit(middle).expect("adjacent");
        head.unsplit(tail).expect("adjacent");
        (head, r)
    }

    /// Builds edge blocks around `middle`, has the filesystem submit the step's data
    /// (`submit_direct`) and ends the step with the outcome, for `end` to complete.
    async fn direct_write_pieces(
        &self,
        ctx: &Context,
        step: &Step,
        (head, tail): (&[u8], &[u8]),
        middle: &mut DmaBuf,
        it: &mut Iter<'_, Counted<O>>,
    ) -> Result<()> {
        let IterArgs { ino, flags, .. } = it.args();
        let bs = self.block_size();
        let (p, q) = (step.pos, step.pos + step.len);
        let (bp, bq) = (self.round_down(p), self.round_up(q));
        let mut segs = Vec::with_capacity(3);
        if !head.is_empty() {
            let mut edge = match self.edge_block(ctx, ino, step.source(), bp).await {
                Ok(edge) => edge,
                Err(e) => {
                    it.failed(0, e);
                    return it.end_step(None).await;
                }
            };
            let at = (p - bp) as usize;
            edge[at..at + head.len()].copy_from_slice(head);
            segs.push(edge);
        }
        let middle_at = segs.len();
        let had_middle = !middle.is_empty();
        if had_middle {
            segs.push(middle.split_off(0));
        }
        if !tail.is_empty() {
            let mut edge = match self.edge_block(ctx, ino, step.source(), q - q % bs).await {
                Ok(edge) => edge,
                Err(e) => {
                    if had_middle {
                        middle
                            .unsplit(segs.swap_remove(middle_at))
                            .expect("adjacent");
                    }
                    it.failed(0, e);
                    return it.end_step(None).await;
                }
            };
            edge[..tail.len()].copy_from_slice(tail);
            segs.push(edge);
        }
        IoCounters::bump(&self.counters.direct_ios, 1);
        let bufs = if segs.len() == 1 {
            Bufs::One(segs.pop().expect("one"))
        } else {
            Bufs::Many(segs)
        };
        let w = DirectWrite {
            ino,
            pos: bp,
            end: q,
            write_map: &step.write,
            dev: self.dev_id,
            sector: self.sector,
        };
        let Submitted {
            bufs,
            result,
            by_fs,
        } = self.ops.submit_direct(ctx, &w, bufs).await;
        let mut segs = match bufs {
            Bufs::One(b) => vec![b],
            Bufs::Many(v) => v,
        };
        let r = result.map_err(|e| IomapError::device(ino.0, "direct write", bp, e));
        // Once submitted, the space is the filesystem's to keep or free when it completes
        // the write in `end`: `end` hears the bytes as written either way.
        match &r {
            Ok(()) => it.advance(),
            Err(e) => it.failed(step.len, e.clone()),
        }
        let done = IoDone {
            pos: bp,
            len: bq - bp,
            write_map: &step.write,
            flags,
            result: r.as_ref().map(|_| ()),
            data: &segs,
            by_fs,
        };
        let ended = it.end_step(Some(&done)).await;
        if had_middle {
            middle
                .unsplit(segs.swap_remove(middle_at))
                .expect("the middle comes back whole");
        }
        ended
    }
}
