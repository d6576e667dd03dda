//! Zero range: make bytes of a file read as zeroes, through the page cache.
//!
//! Invariants:
//! - space that already reads as zeroes (hole, unwritten) is skipped: the filesystem
//!   returns it as the write map and nothing is reserved or dirtied;
//! - everything else is zeroed like a buffered write of zeroes, so partly covered blocks are
//!   completed from the source map first and the zeroes reach the device by writeback;
//! - the file size does not change: the range is clipped to it.

use bdev::exec::Context;

use crate::buffered_write::Src;
use crate::error::Result;
use crate::layer::Iomap;
use crate::map::IterFlags;
use crate::ops::{Ino, IomapOps};

impl<O: IomapOps> Iomap<O> {
    /// Zeroes `[pos, pos + len)` of `ino` (clipped to the file size).
    pub async fn zero_range(&self, ctx: &Context, ino: Ino, pos: u64, len: u64) -> Result<()> {
        let size = self.ops.size(ino)?;
        let end = pos.saturating_add(len).min(size);
        if pos >= end {
            return Ok(());
        }
        self.write_from(ctx, ino, pos, Src::Zeroes(end - pos), IterFlags::ZERO)
            .await?;
        Ok(())
    }
}
