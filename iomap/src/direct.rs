//! What direct read and direct write share: checks, coherence with the page cache, and
//! reads of file data from the device.
//!
//! Invariants (both directions; `direct_read.rs` and `direct_write.rs` add their own):
//! - a request is aligned to the device sector (offset and length) or rejected
//!   ([`Iomap::check_direct`]), before anything is mapped;
//! - dirty cached blocks around the range are written back before the device is touched
//!   ([`Iomap::direct_coherence`]), so a direct read sees the newest bytes and a direct
//!   write is not overwritten later by older cached ones; with `NOWAIT` that refuses instead;
//! - file bytes read from the device (a direct read, the old bytes of a partly written
//!   edge block) reach nobody before the filesystem's `verify_read` accepted them
//!   ([`Iomap::read_verified`]).

use bdev::exec::Context;
use bdev::{Bufs, DmaBuf, Op};

use crate::align;
use crate::counters::IoCounters;
use crate::error::{IomapError, Result};
use crate::layer::Iomap;
use crate::map::{IoMap, IterFlags, MapFlags, MapKind};
use crate::ops::{Ino, IomapOps};

impl<O: IomapOps> Iomap<O> {
    /// Rejects a direct request not aligned to the device sector.
    pub(crate) fn check_direct(&self, pos: u64, len: u64) -> Result<()> {
        let unaligned = align::rem(pos, self.sector) != 0 || align::rem(len, self.sector) != 0;
        if unaligned || pos.checked_add(len).is_none() {
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

    /// Reads file bytes `[pos, pos + buf.len())` of `map` from the device into `buf` and has
    /// the filesystem verify them; `what` names the read in errors. The buffer comes back
    /// either way.
    pub(crate) async fn read_verified(
        &self,
        ctx: &Context,
        ino: Ino,
        (pos, map): (u64, &IoMap),
        buf: DmaBuf,
        what: &'static str,
    ) -> (DmaBuf, Result<()>) {
        let op = self.read_op(map.device_addr(pos), Bufs::One(buf));
        let (op, r) = ctx.io(self.dev_id, op).await;
        let buf = into_buf(op);
        if let Err(e) = r {
            return (buf, Err(IomapError::device(ino.0, what, pos, e)));
        }
        let r = self
            .ops
            .verify_read(ctx, ino, pos, map, std::slice::from_ref(&buf))
            .await;
        (buf, r)
    }

    /// A block-sized buffer holding the old bytes of the block at `blk` from `source`.
    pub(crate) async fn edge_block(
        &self,
        ctx: &Context,
        ino: Ino,
        source: &IoMap,
        blk: u64,
    ) -> Result<DmaBuf> {
        let mut edge = self.alloc_buf(self.block_size() as usize)?;
        match source.kind {
            MapKind::Mapped if !source.flags.contains(MapFlags::NEW) => {
                IoCounters::bump(&self.counters.source_reads, 1);
                let (read, r) = self
                    .read_verified(ctx, ino, (blk, source), edge, "source read")
                    .await;
                edge = read;
                r?;
            }
            MapKind::Inline => source.copy_inline(blk, &mut edge),
            // Holes, unwritten and fresh space: zeroes, which a new buffer holds.
            _ => {}
        }
        Ok(edge)
    }
}

/// The buffer of a finished direct read, sent as one. (A match, not `into_bufs` and
/// `into_one`: those are calls into `bdev` that move the request twice.)
pub(crate) fn into_buf(op: Op) -> DmaBuf {
    match op {
        Op::Read {
            bufs: Bufs::One(buf),
            ..
        } => buf,
        _ => unreachable!("a read gives back the one buffer it was sent with"),
    }
}
