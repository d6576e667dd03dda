//! One cached page: a DMA buffer and per-block state.
//!
//! Invariants:
//! - `buf` is `None` exactly while the page's memory is inside a device request (a read
//!   filling it or a writeback writing it); nothing else touches the page meanwhile;
//! - a block's bytes are meaningful only if its `uptodate` bit is set; a recycled buffer
//!   holds stale bytes of another page in its other blocks, which are never shown;
//! - `dirty ⊆ uptodate`: a dirty block is always up to date.

use bdev::DmaBuf;

/// A page of the cache.
pub(crate) struct Page {
    /// The memory; `None` while under I/O.
    pub(crate) buf: Option<DmaBuf>,
    /// Bit `i`: block `i` of the page holds the file's current bytes.
    pub(crate) uptodate: u64,
    /// Bit `i`: block `i` is newer than on the device.
    pub(crate) dirty: u64,
    /// Touched since the eviction clock last passed.
    pub(crate) referenced: bool,
}

impl Page {
    pub(crate) fn new(buf: DmaBuf) -> Page {
        Page {
            buf: Some(buf),
            uptodate: 0,
            dirty: 0,
            referenced: true,
        }
    }

    pub(crate) fn is_busy(&self) -> bool {
        self.buf.is_none()
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty != 0
    }
}

/// Bits `[first, first + count)`.
pub(crate) fn mask(first: usize, count: usize) -> u64 {
    if count >= 64 {
        u64::MAX
    } else {
        ((1u64 << count) - 1) << first
    }
}
