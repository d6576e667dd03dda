//! The iteration step: one loop over the mappings of a range.
//!
//! ```text
//! let mut it = Iter::new(&io, ctx, limits, IterArgs { ino, pos, len, flags });
//! while let Some(step) = it.next().await? {
//!     let r = do_the_operation(step).await;
//!     match r { Ok(()) => it.advance(), Err(e) => it.failed(0, e) }
//! }
//! ```
//!
//! `next` ends the previous mapping with what was processed, advances, and begins the next.
//! An operation that usually fits in one mapping (a direct read) may do the first step's
//! `begin` and [`check`] itself, finish a range that one mapping covers without the loop
//! (calling `end` itself, or [`refuse`] when the check fails), and hand anything else to
//! [`Iter::resume`] as [`into_step`], which continues the loop from that step.
//! Invariants it enforces:
//! - every mapping is checked before use (covers `pos`, positive length, whole blocks, no
//!   overflow, space aligned to the block and inside the device, a write map that can take data, a source
//!   map only for writes, covering `pos`, and never delalloc); a bad one is a
//!   [`IomapError::BadMapping`] naming what the filesystem got wrong, after `end` has been
//!   told nothing was done;
//! - a step never extends past either map: its length is clipped to both;
//! - `end` is called exactly once per successful `begin`, even when the step failed: by
//!   `next`, or earlier by [`Iter::end_step`], which a direct write uses to hand `end` its
//!   device outcome (the step's data buffers are still borrowed then);
//! - a short step (fewer bytes than mapped) ends the iteration;
//! - the write map reaches `end` as `begin` returned it, but for the core's flags: its
//!   `private` (the filesystem's per-mapping data) is never read or changed here.

use bdev::exec::Context;

use crate::align;
use crate::error::{IomapError, Result};
use crate::map::{CoreFlags, IoMap, IterFlags, MapKind};
use crate::ops::{Ended, IoDone, IomapOps, IterArgs, Maps};

/// One mapped piece of the range: `[pos, pos + len)` lies inside both maps.
#[derive(Clone, Debug)]
pub struct Step {
    /// File offset of this piece.
    pub pos: u64,
    /// Length of this piece (positive).
    pub len: u64,
    /// Where the bytes go (or are).
    pub write: IoMap,
    /// Where old bytes come from; `None`: from `write`.
    pub source: Option<IoMap>,
}

impl Step {
    /// The map old bytes come from.
    pub fn source(&self) -> &IoMap {
        self.source.as_ref().unwrap_or(&self.write)
    }
}

/// The iteration over `[pos, pos + len)` of one file.
pub struct Iter<'a, O: IomapOps> {
    ops: &'a O,
    ctx: &'a Context,
    /// What is left: `pos` the next byte to map, `len` the bytes after it.
    args: IterArgs,
    limits: Limits,
    cur: Option<Step>,
    /// `cur` came from [`Iter::resume`] and `next` has not returned it yet.
    resumed: bool,
    processed: Option<std::result::Result<u64, (u64, IomapError)>>,
}

/// What mappings must respect: the filesystem block and the device size.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Filesystem block size (a power of two).
    pub block: u64,
    /// Device size in bytes.
    pub device_bytes: u64,
}

impl<'a, O: IomapOps> Iter<'a, O> {
    /// An iteration over `args`.
    pub fn new(ops: &'a O, ctx: &'a Context, limits: Limits, args: IterArgs) -> Self {
        Iter {
            ops,
            ctx,
            args,
            limits,
            cur: None,
            resumed: false,
            processed: None,
        }
    }

    /// The iteration over `args` whose first step [`begin_step`] returned already (at
    /// `args.pos`): `next` returns `first` before anything else.
    pub fn resume(
        ops: &'a O,
        ctx: &'a Context,
        limits: Limits,
        args: IterArgs,
        first: Step,
    ) -> Self {
        debug_assert_eq!(first.pos, args.pos, "the first step starts the range");
        let mut it = Iter::new(ops, ctx, limits, args);
        it.cur = Some(first);
        it.resumed = true;
        it
    }

    /// Records that the current step did `n` bytes.
    pub fn processed(&mut self, n: u64) {
        self.processed = Some(Ok(n));
    }

    /// Records that the current step was done whole.
    pub fn advance(&mut self) {
        let n = self.cur.as_ref().map_or(0, |s| s.len);
        self.processed = Some(Ok(n));
    }

    /// Records that the current step failed after doing `n` bytes.
    pub fn failed(&mut self, n: u64, e: IomapError) {
        self.processed = Some(Err((n, e)));
    }

    /// Sets core flags on the current step's write map, for `end` to see.
    pub fn set_core_flags(&mut self, flags: CoreFlags) {
        if let Some(step) = &mut self.cur {
            step.write.core_flags.insert(flags);
        }
    }

    /// The file, the flags, and what is left: from the next byte to map to the end.
    pub fn args(&self) -> IterArgs {
        self.args
    }

    /// Where the iteration stands: the next byte to map.
    pub fn pos(&self) -> u64 {
        self.args.pos
    }

    /// Ends the previous step (unless [`Iter::end_step`] did) and begins the next; `None`
    /// when the range is done.
    pub async fn next(&mut self) -> Result<Option<&Step>> {
        if std::mem::take(&mut self.resumed) {
            return Ok(self.cur.as_ref());
        }
        self.end_step(None).await?;
        if self.args.len == 0 {
            return Ok(None);
        }
        let step = begin_step(self.ops, self.ctx, self.limits, self.args).await?;
        Ok(Some(self.cur.insert(step)))
    }

    /// Ends the current step now, with what [`Iter::processed`], [`Iter::advance`] or
    /// [`Iter::failed`] recorded and, for a direct write, its device outcome `io` for the
    /// filesystem to complete in `end`; then advances. Returns the step's error if it
    /// failed, else `end`'s; either ends the iteration. Nothing to do if no step is open.
    pub async fn end_step(&mut self, io: Option<&IoDone<'_>>) -> Result<()> {
        let Some(step) = self.cur.take() else {
            return Ok(());
        };
        let (done, err) = match self.processed.take() {
            Some(Ok(n)) => (n.min(step.len), None),
            Some(Err((n, e))) => (n.min(step.len), Some(e)),
            None => (0, None),
        };
        let ended = Ended {
            args: self.args.at(step.pos, step.len),
            written: done,
            write_map: &step.write,
            io,
        };
        let ended = self.ops.end(self.ctx, &ended).await;
        let r = match err {
            Some(e) => Err(e),
            None => ended,
        };
        self.args = match r {
            Err(_) => self.args.at(self.args.pos, 0),
            Ok(()) if done < step.len => self.args.at(self.args.pos + done, 0),
            Ok(()) => self.args.at(self.args.pos + done, self.args.len - done),
        };
        r
    }
}

/// Begins the mapping of `[pos, pos + len)` and checks it: one step of an iteration. A caller
/// that finds the whole range in this step (one mapping) may finish it without an [`Iter`]:
/// it must then call `end` itself; otherwise it continues with [`Iter::resume`].
pub async fn begin_step<O: IomapOps>(
    ops: &O,
    ctx: &Context,
    limits: Limits,
    args: IterArgs,
) -> Result<Step> {
    let maps = ops.begin(ctx, args).await?;
    match check(&maps, args, limits) {
        Ok(step_len) => Ok(into_step(maps, args.pos, step_len)),
        Err(e) => Err(refuse(ops, ctx, args, &maps, e).await),
    }
}

/// Ends maps that failed [`check`] with nothing done, so the filesystem releases what it
/// reserved; returns the check's error, which is the one that matters.
pub async fn refuse<O: IomapOps>(
    ops: &O,
    ctx: &Context,
    args: IterArgs,
    maps: &Maps,
    e: IomapError,
) -> IomapError {
    let ended = Ended {
        args,
        written: 0,
        write_map: &maps.write,
        io: None,
    };
    let _ = ops.end(ctx, &ended).await;
    e
}

/// The step at `pos` of `len` bytes (as [`check`] returned) in `maps`; core flags cleared.
pub fn into_step(maps: Maps, pos: u64, len: u64) -> Step {
    let Maps {
        mut write,
        mut source,
    } = maps;
    write.core_flags = CoreFlags::EMPTY;
    if let Some(s) = &mut source {
        s.core_flags = CoreFlags::EMPTY;
        if s.end() < write.end() {
            write.core_flags.insert(CoreFlags::CLIPPED);
        }
    }
    Step {
        pos,
        len,
        write,
        source,
    }
}

/// Checks the maps `begin` returned for `args`; returns the step length.
pub fn check(maps: &Maps, args: IterArgs, limits: Limits) -> Result<u64> {
    let IterArgs {
        ino,
        pos,
        len,
        flags,
    } = args;
    let bad = |which: &'static str, reason: String| IomapError::BadMapping {
        ino: ino.0,
        which,
        pos,
        len,
        reason,
    };
    let w = &maps.write;
    check_map(w, pos, limits).map_err(|r| bad("write map", r))?;
    if flags.is_write() {
        let ok = if flags.contains(IterFlags::WRITEBACK) {
            w.kind == MapKind::Mapped
        } else if flags.contains(IterFlags::DIRECT) {
            matches!(w.kind, MapKind::Mapped | MapKind::Unwritten)
        } else if flags.contains(IterFlags::ZERO) {
            // Holes and unwritten space already read as zeroes: the core skips them.
            w.kind != MapKind::Inline
        } else {
            !matches!(w.kind, MapKind::Hole | MapKind::Inline)
        };
        if !ok {
            let why = format!(
                "kind {:?} cannot take the data of a {flags:?} iteration",
                w.kind
            );
            return Err(bad("write map", why));
        }
    }
    let mut step = len.min(w.end() - pos);
    if let Some(s) = &maps.source {
        if !flags.is_write() {
            return Err(bad(
                "source map",
                "a source map only makes sense for a write".into(),
            ));
        }
        if s.kind == MapKind::Delalloc {
            return Err(bad(
                "source map",
                "delalloc has no bytes on the device; return no source map instead".into(),
            ));
        }
        check_map(s, pos, limits).map_err(|r| bad("source map", r))?;
        step = step.min(s.end() - pos);
    }
    Ok(step)
}

fn check_map(m: &IoMap, pos: u64, limits: Limits) -> std::result::Result<(), String> {
    if m.length == 0 {
        return Err("zero length".into());
    }
    if m.offset.checked_add(m.length).is_none() {
        return Err(format!(
            "offset {} + length {} overflows",
            m.offset, m.length
        ));
    }
    if !m.covers(pos) {
        return Err(format!("covers {}..{}, not {pos}", m.offset, m.end()));
    }
    if align::rem(m.offset, limits.block) != 0 || align::rem(m.length, limits.block) != 0 {
        return Err(format!(
            "{}..{} is not in whole {}-byte blocks",
            m.offset,
            m.end(),
            limits.block
        ));
    }
    match m.kind {
        MapKind::Mapped | MapKind::Unwritten => {
            if m.addr == IoMap::NULL_ADDR {
                return Err(format!("{:?} without a device address", m.kind));
            }
            if align::rem(m.addr, limits.block) != 0 {
                return Err(format!(
                    "device address {} not aligned to the {}-byte block",
                    m.addr, limits.block
                ));
            }
            if m.addr
                .checked_add(m.length)
                .is_none_or(|e| e > limits.device_bytes)
            {
                return Err(format!(
                    "device bytes {}..+{} lie outside the {}-byte device",
                    m.addr, m.length, limits.device_bytes
                ));
            }
        }
        MapKind::Hole | MapKind::Delalloc => {
            if m.addr != IoMap::NULL_ADDR {
                return Err(format!("{:?} with device address {}", m.kind, m.addr));
            }
        }
        MapKind::Inline => {
            let n = m.inline_data.as_ref().map_or(0, |d| d.len() as u64);
            if m.inline_data.is_none() || n > m.length {
                return Err(format!(
                    "inline map of {} bytes holds {n} bytes of data",
                    m.length
                ));
            }
        }
    }
    Ok(())
}
