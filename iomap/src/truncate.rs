//! Truncate: the core's part of changing a file's size.
//!
//! Invariants:
//! - bytes past the end of the file inside its last block are zeroes, in the cache and on the
//!   device, so growing the file later shows zeroes: on shrink the tail of the block
//!   straddling the new size is zeroed (read from the source map first if needed);
//! - cached pages and blocks past the new size are dropped, dirty ones included (their bytes
//!   left the file), once no I/O is using them;
//! - then the filesystem's `set_size` releases the space past the last block.

use bdev::exec::Context;

use crate::error::Result;
use crate::layer::Iomap;
use crate::ops::{Ino, IomapOps};

impl<O: IomapOps> Iomap<O> {
    /// Sets the size of `ino` to `size`.
    pub async fn truncate(&self, ctx: &Context, ino: Ino, size: u64) -> Result<()> {
        let old = self.ops.size(ino)?;
        if size < old {
            let block_end = self.round_up(size).min(old);
            if size % self.block_size() != 0 {
                self.zero_range(ctx, ino, size, block_end - size).await?;
            }
            self.wait_idle(ino, self.round_down(size), u64::MAX).await;
            self.cache.truncate(ino, size);
        }
        self.ops.set_size(ino, size)
    }
}
