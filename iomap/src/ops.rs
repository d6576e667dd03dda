//! What a filesystem implements for the iomap layer.
//!
//! Contract (if you change it, update the iteration's invariants in `iter.rs` and the
//! operations' in `direct_write.rs`, `direct_read.rs` and `writeback.rs`):
//! - `begin` maps `[pos, pos + len)` of an [`IterArgs`] and may return less (never nothing):
//!   the **write map** says where the bytes go (or are, for a read), the **source map**
//!   where the old bytes of a partly overwritten block come from when the write map is
//!   fresh space (copy-on-write). No source map means the write map is its own source.
//! - `begin` may keep data of its own in the write map's `private` (Linux's
//!   `iomap->private`: a pinned generation, a token); the core never reads or changes it
//!   and hands the map back with it to `submit_direct`, `end` and `complete`, so nothing
//!   needs a side table keyed by file and offset to find it again;
//! - every successful `begin` is followed by exactly one `end` for the same step, with the
//!   number of bytes actually done (0 after a failure before any I/O) in an [`Ended`];
//!   `end` commits what was used and releases the rest of what `begin` reserved.
//! - a direct write's data goes to the device through `submit_direct` (Linux's
//!   `iomap_dio_ops::submit_io`): the default submits one write through the context; a
//!   filesystem may submit its own requests beside it (an fsync record), through the same
//!   context and never blocking. Its outcome comes to `end` ([`Ended::io`]), which
//!   completes the write (the filesystem may now point file extents at the new space and
//!   record checksums, as btrfs does with ordered extents) and, after success, raises the
//!   file size to `args.pos + written`. So one direct write of one mapping is three calls
//!   into the filesystem: `begin`, `submit_direct`, `end` (a test counts them: see
//!   [`Upcalls`](crate::Upcalls)).
//! - `complete` runs once the data of a writeback is on the device (or failed to get
//!   there), with the same meaning; its order relative to `end` of the same range is not
//!   fixed.
//! - `verify_read` sees every device read of file data (cache fill, direct read, source
//!   read of a partly overwritten block) before its bytes are used; an error fails the read.
//! - the filesystem's own errors come back to it typed ([`FsError`](crate::FsError)).
//! - the core never holds a page-cache lock across these calls.

use bdev::exec::{Context, DevId};
use bdev::{Bufs, DmaBuf, IoError, Lba, Op};

use crate::align;
use crate::error::{IomapError, Result};
use crate::map::{IoMap, IterFlags};

/// An inode number: which file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ino(pub u64);

impl std::fmt::Display for Ino {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a step of an iteration maps: `[pos, pos + len)` of `ino`, for an iteration with
/// `flags`; what `begin` is asked for and `end` hears back ([`Ended::args`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IterArgs {
    /// The file.
    pub ino: Ino,
    /// First byte.
    pub pos: u64,
    /// Bytes from `pos`.
    pub len: u64,
    /// What the iteration is for.
    pub flags: IterFlags,
}

impl IterArgs {
    /// The same file and flags over `[pos, pos + len)`.
    pub fn at(self, pos: u64, len: u64) -> IterArgs {
        IterArgs { pos, len, ..self }
    }
}

/// What [`IomapOps::end`] hears about a mapping `begin` returned.
#[derive(Debug)]
pub struct Ended<'a> {
    /// The step: the range `begin` was asked for, clipped to what the maps covered.
    pub args: IterArgs,
    /// Bytes done from `args.pos` (0 after a failure before any I/O). For a direct write
    /// whose data was submitted, the whole step, even if the device failed it: the space is
    /// then the completion's to keep or free (see `io`).
    pub written: u64,
    /// The write map `begin` returned, with the core's flags set.
    pub write_map: &'a IoMap,
    /// A direct write's device outcome, when its data was submitted: `end` completes it
    /// (what `complete` does for writeback) and, if it succeeded, raises the file size to
    /// `args.pos + written` if smaller.
    pub io: Option<&'a IoDone<'a>>,
}

/// The write map and the source map `begin` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maps {
    /// Where the bytes go (for a read or report: where they are).
    pub write: IoMap,
    /// Where the old bytes are, when different from `write` (copy-on-write).
    pub source: Option<IoMap>,
}

impl Maps {
    /// A single mapping with no separate source.
    pub fn one(write: IoMap) -> Maps {
        Maps {
            write,
            source: None,
        }
    }
}

/// The outcome of a writeback or direct write, handed to [`IomapOps::complete`] (writeback)
/// or with [`Ended::io`] to [`IomapOps::end`] (direct write).
#[derive(Debug)]
pub struct IoDone<'a> {
    /// First file byte written (block aligned).
    pub pos: u64,
    /// Bytes written (whole blocks).
    pub len: u64,
    /// The write map the data went to.
    pub write_map: &'a IoMap,
    /// The iteration's flags.
    pub flags: IterFlags,
    /// Whether the data reached the device.
    pub result: std::result::Result<(), &'a IomapError>,
    /// The bytes sent to the device, in order: together exactly `[pos, pos + len)`. They are
    /// still owned by the request, so a checksum computed here is of what the device got.
    pub data: &'a [DmaBuf],
    /// The filesystem submitted the data its own way ([`Submitted::by_fs`]).
    pub by_fs: bool,
}

/// A direct write's data on its way to the device, as [`IomapOps::submit_direct`] gets it.
#[derive(Debug)]
pub struct DirectWrite<'a> {
    /// The file.
    pub ino: Ino,
    /// First file byte of the data (block aligned).
    pub pos: u64,
    /// One past the caller's last byte in this piece: the size the file grows to, if larger.
    pub end: u64,
    /// Where the data goes.
    pub write_map: &'a IoMap,
    /// The device's queue on the context.
    pub dev: DevId,
    /// The device sector in bytes.
    pub(crate) sector: u64,
}

impl DirectWrite<'_> {
    /// Device byte address of the data.
    pub fn addr(&self) -> u64 {
        self.write_map.device_addr(self.pos)
    }

    /// The device request writing `bufs` at [`DirectWrite::addr`], with FUA if `fua`.
    pub fn write_op(&self, bufs: Bufs, fua: bool) -> Op {
        Op::Write {
            lba: Lba(align::div(self.addr(), self.sector)),
            bufs,
            fua,
        }
    }

    /// Writes `bufs` the way the core does (one write, no FUA): what
    /// [`IomapOps::submit_direct`] does by default.
    pub async fn submit(&self, ctx: &Context, bufs: Bufs) -> Submitted {
        let (op, result) = ctx.io(self.dev, self.write_op(bufs, false)).await;
        Submitted {
            bufs: op.into_bufs().expect("a write has buffers"),
            result,
            by_fs: false,
        }
    }
}

/// What [`IomapOps::submit_direct`] gives back: the buffers, whole, and the device's answer.
#[derive(Debug)]
pub struct Submitted {
    /// The buffers it was given.
    pub bufs: Bufs,
    /// Whether the data reached the device.
    pub result: std::result::Result<(), IoError>,
    /// The filesystem wrote the data its own way (with metadata of its own); told to `end`
    /// as [`IoDone::by_fs`].
    pub by_fs: bool,
}

/// The filesystem side of the iomap layer.
// Futures run on one thread's `Context`, so they need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait IomapOps {
    /// The filesystem block size in bytes: a power of two, a multiple of the device sector.
    fn block_size(&self) -> u32;

    /// The file's size in bytes.
    fn size(&self, ino: Ino) -> Result<u64>;

    /// Sets the file's size. When it shrinks, the filesystem releases the space past the
    /// last block that still holds file bytes (the core has zeroed that block's tail).
    fn set_size(&self, ino: Ino, size: u64) -> Result<()>;

    /// Raises the file's size to `end` if it is smaller, in one step (two writers past the
    /// end must not read the size, then set it, in turn: the later `set_size` could shrink
    /// the file under the other's data and truncate it). Returns whether the size changed.
    /// (Buffered writes; a direct write's `end` grows the file itself.)
    fn grow_size(&self, ino: Ino, end: u64) -> Result<bool>;

    /// Maps `[args.pos, args.pos + args.len)` for an iteration with `args.flags`; see the
    /// module contract.
    async fn begin(&self, ctx: &Context, args: IterArgs) -> Result<Maps>;

    /// Ends the mapping `begin` returned; `ended.written` bytes from `ended.args.pos` were
    /// done; completes a direct write ([`Ended::io`]).
    async fn end(&self, ctx: &Context, ended: &Ended<'_>) -> Result<()>;

    /// Writes a direct write's data (`bufs`, block aligned, exactly `[w.pos, w.pos +
    /// bufs.len())`) to the device and gives the buffers back with the answer. The default
    /// submits one write ([`DirectWrite::submit`]); a filesystem may add requests of its
    /// own to the same round trip (an fsync record), submitted through `ctx` like the rest:
    /// it must not block the thread.
    async fn submit_direct(&self, ctx: &Context, w: &DirectWrite<'_>, bufs: Bufs) -> Submitted {
        w.submit(ctx, bufs).await
    }

    /// The data of a writeback is on the device (or failed).
    async fn complete(&self, ctx: &Context, ino: Ino, done: &IoDone<'_>) -> Result<()>;

    /// Checks bytes just read from the device for file bytes `[pos, pos + len)` of `map`
    /// (`data` concatenated, `len` their total) before anyone sees them: a filesystem with
    /// data checksums fails the read here rather than show wrong bytes. Accepts by default.
    async fn verify_read(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        map: &IoMap,
        data: &[DmaBuf],
    ) -> Result<()> {
        let _ = (ctx, ino, pos, map, data);
        Ok(())
    }
}
