//! Fiemap: the extents of a file, as `FS_IOC_FIEMAP` reports them.

use bdev::exec::Context;

use crate::error::Result;
use crate::layer::Iomap;
use crate::map::{IterFlags, MapFlags, MapKind};
use crate::ops::{Ino, IomapOps};

/// One extent of a fiemap answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiemapExtent {
    /// File offset.
    pub logical: u64,
    /// Device byte address; `None` when the data has no place yet (delalloc, inline).
    pub physical: Option<u64>,
    /// Length in bytes.
    pub length: u64,
    /// `FIEMAP_EXTENT_*` flags.
    pub flags: FiemapFlags,
}

/// `FIEMAP_EXTENT_*` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FiemapFlags {
    /// The last extent of the file.
    pub last: bool,
    /// Location unknown (delalloc).
    pub unknown: bool,
    /// Delayed allocation.
    pub delalloc: bool,
    /// Allocated, unwritten: reads as zeroes.
    pub unwritten: bool,
    /// Shared with other files.
    pub shared: bool,
    /// Data inline in metadata.
    pub inline: bool,
}

impl<O: IomapOps> Iomap<O> {
    /// The extents of `[start, start + len)` of `ino` (clipped to the file size); holes are
    /// not reported.
    pub async fn fiemap(
        &self,
        ctx: &Context,
        ino: Ino,
        start: u64,
        len: u64,
    ) -> Result<Vec<FiemapExtent>> {
        let size = self.round_up(self.ops.size(ino)?);
        let end = start.saturating_add(len).min(size);
        let mut out: Vec<FiemapExtent> = Vec::new();
        if start >= end {
            return Ok(out);
        }
        let mut it = self.iter(ctx, ino, start, end - start, IterFlags::REPORT);
        while let Some(step) = it.next().await? {
            let m = &step.write;
            let flags = FiemapFlags {
                last: false,
                unknown: matches!(m.kind, MapKind::Delalloc | MapKind::Inline),
                delalloc: m.kind == MapKind::Delalloc,
                unwritten: m.kind == MapKind::Unwritten,
                shared: m.flags.contains(MapFlags::SHARED),
                inline: m.kind == MapKind::Inline,
            };
            if m.kind != MapKind::Hole {
                let physical = matches!(m.kind, MapKind::Mapped | MapKind::Unwritten)
                    .then(|| m.device_addr(step.pos));
                out.push(FiemapExtent {
                    logical: step.pos,
                    physical,
                    length: step.len,
                    flags,
                });
            }
            it.advance();
        }
        if let Some(last) = out.last_mut() {
            last.flags.last = last.logical + last.length >= size;
        }
        Ok(out)
    }
}
