//! Seek data / seek hole (`SEEK_DATA`, `SEEK_HOLE`).
//!
//! Data is mapped, delalloc and inline space; holes are holes. Unwritten space is a hole
//! except where the cache holds dirty blocks over it (a filesystem that writes unwritten
//! space in place). Linux also counts clean up-to-date pages over unwritten space as data;
//! those only ever hold zeroes read from it, so here they stay a hole. The end of the file
//! counts as a hole.

use bdev::exec::Context;

use crate::error::Result;
use crate::layer::Iomap;
use crate::map::{IterFlags, MapKind};
use crate::ops::{Ino, IomapOps};

impl<O: IomapOps> Iomap<O> {
    /// The first data byte at or after `pos`; `None` if there is none before the end of
    /// the file (`ENXIO`).
    pub async fn seek_data(&self, ctx: &Context, ino: Ino, pos: u64) -> Result<Option<u64>> {
        self.seek(ctx, ino, pos, true).await
    }

    /// The first hole byte at or after `pos` (the end of the file at the latest); `None`
    /// if `pos` is at or past the end (`ENXIO`).
    pub async fn seek_hole(&self, ctx: &Context, ino: Ino, pos: u64) -> Result<Option<u64>> {
        let size = self.ops.size(ino)?;
        if pos >= size {
            return Ok(None);
        }
        Ok(Some(
            self.seek(ctx, ino, pos, false)
                .await?
                .unwrap_or(size)
                .min(size),
        ))
    }

    async fn seek(&self, ctx: &Context, ino: Ino, pos: u64, data: bool) -> Result<Option<u64>> {
        let size = self.ops.size(ino)?;
        if pos >= size {
            return Ok(None);
        }
        let mut found = None;
        let mut it = self.iter(ctx, ino, pos, size - pos, IterFlags::REPORT);
        while let Some(step) = it.next().await? {
            let (a, b) = (step.pos, step.pos + step.len);
            found = match step.write.kind {
                MapKind::Mapped | MapKind::Delalloc | MapKind::Inline => data.then_some(a),
                MapKind::Hole => (!data).then_some(a),
                MapKind::Unwritten => {
                    let (ra, rb) = (self.round_down(a), self.round_up(b));
                    let runs = self.cache.dirty_runs(ino, ra, rb, data);
                    runs.first().map(|&(s, _)| s.max(a))
                }
            };
            // A short step ends the iteration once the answer is known.
            if found.is_some() {
                it.processed(0);
            } else {
                it.advance();
            }
        }
        Ok(found)
    }
}
