//! The device and queue contract every backend implements.

use std::sync::Arc;

use crate::dma::DmaBuf;
use crate::error::{BdevError, IoError, SubmitError};
use crate::types::{Geometry, Lba};

/// A block device: shareable across threads; I/O goes through per-thread [`IoQueue`]s.
pub trait BlockDevice: Send + Sync {
    /// The device's name (the bdev name of its config).
    fn name(&self) -> &str;

    /// What the device is and what it promises.
    fn geometry(&self) -> Geometry;

    /// Opens a queue of at most `depth` requests in flight, for use by the calling thread
    /// (like `spdk_bdev_get_io_channel`). `depth` must be positive.
    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError>;

    /// Allocates a zeroed DMA buffer of `len` bytes aligned as this device requires.
    fn alloc_buf(&self, len: usize) -> Result<DmaBuf, BdevError> {
        DmaBuf::alloc(len, self.geometry().buf_align)
    }

    /// The storage this object drives, when another object of this process can drive the
    /// same storage (an SPDK bdev, by its name, which is unique in the application): what a
    /// mount's claim compares to refuse a second mount in one process. `None`: no other
    /// object drives this storage (RAM), or a lock already keeps them apart (files).
    fn storage_id(&self) -> Option<String> {
        None
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        (**self).queue(depth)
    }
    fn alloc_buf(&self, len: usize) -> Result<DmaBuf, BdevError> {
        (**self).alloc_buf(len)
    }
    fn storage_id(&self) -> Option<String> {
        (**self).storage_id()
    }
}

/// A poll-mode I/O queue owned by one thread (`!Send`, like an SPDK io channel).
///
/// Nothing here blocks. `submit` hands a request to the device or gives it back;
/// completions are reaped by `poll`, in any order.
pub trait IoQueue {
    /// Submits `op`, identified by `tag` in its completion. On refusal the request comes back
    /// untouched with the reason; [`SubmitError::QueueFull`] means: poll, then retry.
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected>;

    /// Makes progress and appends finished requests to `done`; returns how many it appended.
    /// Does not allocate if `done` has room for [`IoQueue::depth`] entries.
    fn poll(&mut self, done: &mut Vec<Completion>) -> usize;

    /// Requests submitted and not yet reaped.
    fn in_flight(&self) -> usize;

    /// The most requests that can be in flight at once.
    fn depth(&self) -> usize;

    /// Waits until a request in flight may have completed, for a poller that has nothing
    /// else to do while many requests are in flight: a kernel-driven queue sleeps until one
    /// completes (its next `poll` reaps it), giving the core to the kernel's workers and
    /// other threads instead of spinning. Says whether it waited; the default returns false
    /// at once (a polled device, such as SPDK's, completes only when polled).
    fn wait(&mut self) -> bool {
        false
    }

    /// The most bytes of writes to adjacent blocks the executor may hand over as one vectored
    /// write (0, the default: none). Worth it for a queue whose every request costs a fixed
    /// amount beyond its bytes, such as io_uring on a file, where each request is a system
    /// call's share and, on filesystems without non-blocking writes, a kernel worker's turn.
    fn merge_limit(&self) -> usize {
        0
    }
}

/// The buffers of a read or write: one buffer, or a vector of them (readv / writev), laid
/// out back to back on the device.
#[derive(Debug)]
pub enum Bufs {
    /// One contiguous buffer.
    One(DmaBuf),
    /// Several buffers, in device order. The `Vec` comes back on completion for reuse.
    Many(Vec<DmaBuf>),
}

impl Bufs {
    /// The buffers as a slice.
    pub fn segments(&self) -> &[DmaBuf] {
        match self {
            Bufs::One(b) => std::slice::from_ref(b),
            Bufs::Many(v) => v,
        }
    }

    /// The buffers as a mutable slice.
    pub fn segments_mut(&mut self) -> &mut [DmaBuf] {
        match self {
            Bufs::One(b) => std::slice::from_mut(b),
            Bufs::Many(v) => v,
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.segments().iter().map(|b| b.len()).sum()
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The single buffer of a `One`, or `None`.
    pub fn into_one(self) -> Option<DmaBuf> {
        match self {
            Bufs::One(b) => Some(b),
            Bufs::Many(_) => None,
        }
    }
}

impl From<DmaBuf> for Bufs {
    fn from(b: DmaBuf) -> Self {
        Bufs::One(b)
    }
}

impl From<Vec<DmaBuf>> for Bufs {
    fn from(v: Vec<DmaBuf>) -> Self {
        Bufs::Many(v)
    }
}

/// A request. It owns its buffers; they come back in the [`Completion`].
#[derive(Debug)]
pub enum Op {
    /// Read `bufs.len()` bytes starting at `lba`.
    Read {
        /// First block.
        lba: Lba,
        /// Where the data lands.
        bufs: Bufs,
    },
    /// Write `bufs.len()` bytes starting at `lba`; with `fua`, durable on completion.
    Write {
        /// First block.
        lba: Lba,
        /// The data.
        bufs: Bufs,
        /// Force unit access.
        fua: bool,
    },
    /// Make every write completed before this flush was submitted durable.
    Flush,
    /// Discard `blocks` blocks; later reads return zeroes or old data, never other bytes.
    Unmap {
        /// First block.
        lba: Lba,
        /// Number of blocks.
        blocks: u64,
    },
    /// Write zeroes to `blocks` blocks without a data buffer.
    WriteZeroes {
        /// First block.
        lba: Lba,
        /// Number of blocks.
        blocks: u64,
        /// Force unit access.
        fua: bool,
    },
}

/// The kind of an [`Op`], without its buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// [`Op::Read`].
    Read,
    /// [`Op::Write`].
    Write,
    /// [`Op::Flush`].
    Flush,
    /// [`Op::Unmap`].
    Unmap,
    /// [`Op::WriteZeroes`].
    WriteZeroes,
}

impl OpKind {
    /// Lower-case name, as in messages.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Flush => "flush",
            OpKind::Unmap => "unmap",
            OpKind::WriteZeroes => "write-zeroes",
        }
    }
}

impl Op {
    /// The kind of this request.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Read { .. } => OpKind::Read,
            Op::Write { .. } => OpKind::Write,
            Op::Flush => OpKind::Flush,
            Op::Unmap { .. } => OpKind::Unmap,
            Op::WriteZeroes { .. } => OpKind::WriteZeroes,
        }
    }

    /// First block addressed, if any.
    pub fn lba(&self) -> Option<Lba> {
        match self {
            Op::Read { lba, .. }
            | Op::Write { lba, .. }
            | Op::Unmap { lba, .. }
            | Op::WriteZeroes { lba, .. } => Some(*lba),
            Op::Flush => None,
        }
    }

    /// The data buffers, if the request has any.
    pub fn bufs(&self) -> Option<&Bufs> {
        match self {
            Op::Read { bufs, .. } | Op::Write { bufs, .. } => Some(bufs),
            _ => None,
        }
    }

    /// Takes the data buffers out of a finished request.
    pub fn into_bufs(self) -> Option<Bufs> {
        match self {
            Op::Read { bufs, .. } | Op::Write { bufs, .. } => Some(bufs),
            _ => None,
        }
    }

    /// Whether the request asks for force unit access.
    pub fn fua(&self) -> bool {
        matches!(
            self,
            Op::Write { fua: true, .. } | Op::WriteZeroes { fua: true, .. }
        )
    }

    /// The error to report when the media fails this request.
    pub fn media_error(&self) -> IoError {
        IoError::Media {
            op: self.kind().name(),
            lba: self.lba().map_or(0, |l| l.0),
        }
    }
}

/// A finished request: its tag, its outcome, and the request itself (with its buffers).
#[derive(Debug)]
pub struct Completion {
    /// The tag given to `submit`.
    pub tag: u64,
    /// The request, returned for reuse of its buffers.
    pub op: Op,
    /// The outcome.
    pub result: Result<(), IoError>,
}

/// A request `submit` gave back.
#[derive(Debug)]
pub struct Rejected {
    /// The tag given to `submit`.
    pub tag: u64,
    /// The request, untouched.
    pub op: Op,
    /// Why.
    pub error: SubmitError,
}

impl Rejected {
    /// Whether the queue was merely full (retry after polling).
    pub fn is_queue_full(&self) -> bool {
        self.error == SubmitError::QueueFull
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The kind only: the request's buffers are not printable.
        write!(f, "{} rejected: {}", self.op.kind().name(), self.error)
    }
}

impl std::error::Error for Rejected {}
