//! The synchronous API: the same operations, run to completion on the caller's thread.
//!
//! Any operation is synchronous as `ctx.block_on(io.op(...))`; buffered reads and writes
//! already take slices. Direct I/O owns DMA buffers, so here are its slice forms: they
//! **bounce** through a DMA buffer from the device's pool (cost: one extra copy of the
//! request and the zeroing of the pooled buffer, about two memory passes; no system call,
//! no mapping once the pool is warm). Callers holding a [`DmaBuf`] use the `*_dma` forms,
//! which lend it to the request and copy nothing.

use bdev::exec::Context;
use bdev::DmaBuf;

use crate::counters::IoCounters;
use crate::error::Result;
use crate::layer::Iomap;
use crate::map::IterFlags;
use crate::ops::{Ino, IomapOps};

impl<O: IomapOps> Iomap<O> {
    /// Direct read into a plain slice, through a bounce buffer.
    pub fn read_direct_sync(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        dst: &mut [u8],
    ) -> Result<usize> {
        self.check_direct(pos, dst.len() as u64)?;
        if dst.is_empty() {
            return Ok(0);
        }
        let mut bounce = self.alloc_buf(dst.len())?;
        let n =
            ctx.block_on(self.read_direct_into(ctx, ino, pos, &mut bounce, IterFlags::EMPTY))?;
        dst.copy_from_slice(&bounce);
        IoCounters::bump(&self.counters.bounce_bytes, dst.len() as u64);
        Ok(n)
    }

    /// Direct write from a plain slice, through a bounce buffer.
    pub fn write_direct_sync(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        src: &[u8],
    ) -> Result<usize> {
        self.check_direct(pos, src.len() as u64)?;
        if src.is_empty() {
            return Ok(0);
        }
        let mut bounce = self.alloc_buf(src.len())?;
        bounce.copy_from_slice(src);
        IoCounters::bump(&self.counters.bounce_bytes, src.len() as u64);
        ctx.block_on(self.write_direct_from(ctx, ino, pos, &mut bounce, IterFlags::EMPTY))
    }

    /// Direct read into a DMA buffer, zero-copy.
    pub fn read_direct_dma(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        buf: &mut DmaBuf,
    ) -> Result<usize> {
        ctx.block_on(self.read_direct_into(ctx, ino, pos, buf, IterFlags::EMPTY))
    }

    /// Direct write from a DMA buffer, zero-copy.
    pub fn write_direct_dma(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        buf: &mut DmaBuf,
    ) -> Result<usize> {
        ctx.block_on(self.write_direct_from(ctx, ino, pos, buf, IterFlags::EMPTY))
    }
}
