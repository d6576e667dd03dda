//! Buffered write (and the zeroing it shares with zero range and truncate).
//!
//! Invariants:
//! - before bytes go into a block the write covers only partly, that block is up to date:
//!   read from the **source map** when it holds data there (`Mapped`, not `NEW`), filled
//!   from inline bytes, or zeroed (hole, unwritten, delalloc, fresh space); a block the write
//!   covers fully is never read;
//! - bytes are copied into the cache only after that, all at once under the cache lock, and
//!   the blocks become dirty (delalloc: the filesystem reserved their space in `begin`);
//! - each `begin`/`end` pair covers at most one batch of pages, asked for with
//!   `make_room` beforehand, so throttling and writeback only happen between pairs;
//! - the file grows (`set_size`) once the bytes are in the cache, before `end`.

use bdev::exec::{yield_now, Context};

use crate::cache::Outcome;
use crate::error::{IomapError, Result, MAPPING_RETRIES};
use crate::layer::{Fill, Iomap};
use crate::map::{CoreFlags, IoMap, IterFlags, MapFlags, MapKind};
use crate::ops::{Ino, IomapOps};

/// A zero page for zeroing through the cache.
static ZEROES: [u8; 65536] = [0; 65536];

/// What a buffered write puts into the file.
#[derive(Clone, Copy)]
pub(crate) enum Src<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// This many zero bytes.
    Zeroes(u64),
}

impl Src<'_> {
    fn len(&self) -> u64 {
        match self {
            Src::Bytes(b) => b.len() as u64,
            Src::Zeroes(n) => *n,
        }
    }
}

impl<O: IomapOps> Iomap<O> {
    /// Writes `src` at `pos` into the page cache; returns the bytes written (short only if
    /// the filesystem gave less space than asked).
    pub async fn write(&self, ctx: &Context, ino: Ino, pos: u64, src: &[u8]) -> Result<usize> {
        let n = self
            .write_from(ctx, ino, pos, Src::Bytes(src), IterFlags::WRITE)
            .await?;
        Ok(n as usize)
    }

    /// The loop shared by write and zero range: one batch of pages per `begin`/`end`.
    pub(crate) async fn write_from(
        &self,
        ctx: &Context,
        ino: Ino,
        pos: u64,
        src: Src<'_>,
        flags: IterFlags,
    ) -> Result<u64> {
        let len = src.len();
        pos.checked_add(len)
            .ok_or_else(|| IomapError::Invalid(format!("write at {pos}+{len} overflows")))?;
        let page = self.cfg.page_size;
        let mut done = 0;
        let mut remaps = 0;
        while done < len {
            let at = pos + done;
            let chunk_end = (pos + len).min((at / page + self.batch_pages()) * page);
            self.make_room(ctx, self.pages_of(at, chunk_end)).await?;
            let mut it = self.iter(ctx, ino, at, chunk_end - at, flags);
            let mut remap = false;
            loop {
                let step = match it.next().await {
                    Ok(Some(step)) => step,
                    Ok(None) => break,
                    // An edge block's source was replaced while it was read: map the rest
                    // of the chunk again.
                    Err(IomapError::MappingChanged { .. }) if remaps < MAPPING_RETRIES => {
                        remaps += 1;
                        remap = true;
                        break;
                    }
                    Err(e) => return Err(e),
                };
                let off = (step.pos - pos) as usize;
                let piece = match src {
                    Src::Bytes(b) => Src::Bytes(&b[off..off + step.len as usize]),
                    Src::Zeroes(_) => Src::Zeroes(step.len),
                };
                let skip = flags.contains(IterFlags::ZERO)
                    && matches!(step.write.kind, MapKind::Hole | MapKind::Unwritten);
                let r = if skip {
                    // Already reads as zeroes and nothing dirty can sit over it.
                    Ok(())
                } else {
                    self.write_step(ctx, ino, step.source(), step.pos, piece)
                        .await
                };
                match r.and_then(|()| self.grow(ino, step.pos + step.len)) {
                    Ok(grew) => {
                        if grew {
                            it.set_core_flags(CoreFlags::SIZE_CHANGED);
                        }
                        it.advance();
                    }
                    Err(e) => it.failed(0, e),
                }
            }
            let progressed = it.pos() - at;
            done += progressed;
            self.balance_dirty(ctx, ino).await;
            if progressed < chunk_end - at && !remap {
                break;
            }
        }
        Ok(done)
    }

    /// Extends the file to `end` if it is shorter; returns whether it did.
    pub(crate) fn grow(&self, ino: Ino, end: u64) -> Result<bool> {
        self.ops.grow_size(ino, end)
    }

    /// Copies one mapped piece into the cache, completing its edge blocks from `source`.
    async fn write_step(
        &self,
        ctx: &Context,
        ino: Ino,
        source: &IoMap,
        pos: u64,
        src: Src<'_>,
    ) -> Result<()> {
        let end = pos + src.len();
        let (a, b) = (self.round_down(pos), self.round_up(end));
        loop {
            self.wait_idle(ino, a, b).await;
            self.cache.populate(ino, a, b)?;
            for edge in self.edge_blocks(pos, end) {
                if !self
                    .cache
                    .stale_runs(ino, edge, edge + self.block_size())
                    .is_empty()
                {
                    self.fill_block_from(ctx, ino, source, edge).await?;
                }
            }
            let copied = match src {
                Src::Bytes(bytes) => self.cache.write_cached(ino, pos, bytes),
                Src::Zeroes(n) => self.write_zeroes(ino, pos, n),
            };
            if copied {
                return Ok(());
            }
            // A concurrent future evicted or took a page while we read an edge: again.
            yield_now().await;
        }
    }

    fn write_zeroes(&self, ino: Ino, pos: u64, len: u64) -> bool {
        let mut at = pos;
        while at < pos + len {
            let n = (pos + len - at).min(ZEROES.len() as u64);
            if !self.cache.write_cached(ino, at, &ZEROES[..n as usize]) {
                return false;
            }
            at += n;
        }
        true
    }

    /// The blocks `[pos, end)` covers only partly (zero, one or two).
    pub(crate) fn edge_blocks(&self, pos: u64, end: u64) -> impl Iterator<Item = u64> {
        let bs = self.block_size();
        let head = (pos % bs != 0).then(|| self.round_down(pos));
        let tail = (end % bs != 0).then(|| self.round_down(end));
        let tail = tail.filter(|t| Some(*t) != head);
        head.into_iter().chain(tail)
    }

    /// Makes the cached block at `blk` up to date from `source`, which covers it.
    async fn fill_block_from(
        &self,
        ctx: &Context,
        ino: Ino,
        source: &IoMap,
        blk: u64,
    ) -> Result<()> {
        let end = blk + self.block_size();
        let has_data = source.kind == MapKind::Mapped && !source.flags.contains(MapFlags::NEW);
        if source.kind == MapKind::Inline {
            self.cache
                .fill(ino, blk, end, None, |off, buf| source.copy_inline(off, buf));
        } else if !has_data {
            self.cache.fill(ino, blk, end, None, |_, buf| buf.fill(0));
        } else {
            let fill = Fill {
                what: "source read",
                counter: &self.counters.source_reads,
                filled: Outcome::Filled,
            };
            self.fill_from_device(ctx, ino, (blk, end), source, fill)
                .await?;
        }
        Ok(())
    }
}
