//! Writeback: dirty cached blocks to freshly allocated space, straight from the cache.
//!
//! Invariants:
//! - a dirty run (contiguous dirty blocks, up to `max_io_bytes`) becomes one `begin(WRITEBACK)`
//!   and one device write per mapping the filesystem returns: the pages are DMA memory and go
//!   to the device as they are (a vectored request of page pieces, no copy);
//! - up to `WRITEBACK_RUNS` disjoint runs of a file are written back at once; each takes
//!   its pages out of the cache before its request, so no block is in two requests at once;
//! - while written, the pages are under I/O (taken out of the cache): nobody changes them,
//!   so the bytes on the device are the bytes the filesystem checksums in `complete`;
//! - blocks become clean only when the device reports success; after a failure they stay
//!   dirty, the error is recorded on the file for the next fsync-equivalent and returned;
//! - `complete` runs after the device finished, success or not, so the filesystem points
//!   file extents at the new space only once the data is there.

use bdev::exec::{join_all, Context};
use bdev::Bufs;

use crate::cache::{Outcome, TakeFor};
use crate::counters::IoCounters;
use crate::error::{IomapError, Result};
use crate::iter::Step;
use crate::layer::Iomap;
use crate::map::IterFlags;
use crate::ops::{Ino, IoDone, IomapOps};

/// Dirty runs one writeback has on the device at once. A run is at most `max_io_bytes`;
/// one at a time left the device idle while the filesystem checksummed and mapped each
/// run, and the writer idle while the device copied it (a 1 GiB fsync of a file in the
/// cache ran at about 0.9 GB/s on the io_uring backend over /dev/shm).
const WRITEBACK_RUNS: usize = 4;

impl<O: IomapOps> Iomap<O> {
    /// The bytes of file one writeback batch spans: as many runs as go to the device at once.
    pub(crate) fn writeback_batch(&self) -> u64 {
        WRITEBACK_RUNS as u64 * self.cfg.max_io_bytes
    }

    /// Writes back the dirty blocks of `[start, end)` of `ino`. Every run is tried; the
    /// first error is returned (and recorded on the file).
    pub async fn writeback_range(
        &self,
        ctx: &Context,
        ino: Ino,
        start: u64,
        end: u64,
    ) -> Result<()> {
        let start = self.round_down(start);
        let end = if end == u64::MAX {
            end
        } else {
            self.round_up(end)
        };
        let mut from = start;
        let mut first_err = None;
        loop {
            let runs = self.idle_dirty_runs(ino, from, end).await;
            let Some(&(_, last_end)) = runs.last() else {
                break;
            };
            let results = join_all(
                runs.iter()
                    .map(|&(a, b)| self.writeback_run(ctx, ino, a, b)),
            )
            .await;
            for r in results {
                if let Err(e) = r {
                    self.cache.record_error(ino, &e);
                    first_err.get_or_insert(e);
                }
            }
            from = last_end;
            for &(a, b) in &runs {
                if self.cache.busy(ino, a, b) {
                    // Another writeback took pages of the run after we looked (ours then
                    // skipped them): the caller is promised they are written when this
                    // returns, so wait for it and look at the run again.
                    self.wait_idle(ino, a, b).await;
                    from = a;
                    break;
                }
                if self.cache.has_dirty(ino, a, b) && first_err.is_none() {
                    // Part of the run was cleaned by someone else while ours mapped it, and
                    // ours skipped what was left: look for the dirty blocks again.
                    from = a;
                    break;
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Up to [`WRITEBACK_RUNS`] dirty runs of `[from, end)` in file order, none of whose
    /// pages is under I/O, to write back at once. A run under I/O (another writeback or a
    /// fill owns a page) ends the batch; with nothing before it, it is waited for first.
    async fn idle_dirty_runs(&self, ino: Ino, from: u64, end: u64) -> Vec<(u64, u64)> {
        let mut runs = Vec::new();
        let mut at = from;
        while runs.len() < WRITEBACK_RUNS {
            let Some((a, b)) = self
                .cache
                .next_dirty_run(ino, at, end, self.cfg.max_io_bytes)
            else {
                break;
            };
            if self.cache.busy(ino, a, b) {
                if !runs.is_empty() {
                    break;
                }
                self.wait_idle(ino, a, b).await;
                continue;
            }
            runs.push((a, b));
            at = b;
        }
        runs
    }

    /// Writes back every dirty block of the file and reports any writeback error not yet
    /// reported, including ones from background writeback: the fsync-equivalent of the
    /// layer (the filesystem then commits its metadata and flushes the device).
    pub async fn sync_file(&self, ctx: &Context, ino: Ino) -> Result<()> {
        let r = self.writeback_range(ctx, ino, 0, u64::MAX).await;
        let earlier = self.cache.take_error(ino);
        r?;
        match earlier {
            None => Ok(()),
            Some(e) => Err(IomapError::WritebackFailed {
                ino: ino.0,
                source: Box::new(e),
            }),
        }
    }

    /// Writes back every dirty file; returns the first error.
    pub async fn writeback_all(&self, ctx: &Context) -> Result<()> {
        let mut first_err = None;
        for ino in self.cache.dirty_files() {
            if let Err(e) = self.writeback_range(ctx, ino, 0, u64::MAX).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn writeback_run(&self, ctx: &Context, ino: Ino, a: u64, b: u64) -> Result<()> {
        let mut it = self.iter(ctx, ino, a, b - a, IterFlags::WRITEBACK);
        while let Some(step) = it.next().await? {
            let len = step.len;
            match self.writeback_step(ctx, ino, step).await {
                Ok(n) => it.processed(n),
                // Submitted: the completion hook has kept or freed the space.
                Err(e) => it.failed(len, e),
            }
        }
        Ok(())
    }

    /// Writes one mapping's worth of a dirty run; returns the bytes written.
    async fn writeback_step(&self, ctx: &Context, ino: Ino, step: &Step) -> Result<u64> {
        let (a, b) = (step.pos, step.pos + step.len);
        // The run may have changed while `begin` ran (truncated, written back by someone
        // else): only blocks still dirty go to the device (see `TakeFor::Writeback`).
        let Some((taken, pieces)) = self.cache.take(ino, a, b, TakeFor::Writeback) else {
            return Ok(0);
        };
        IoCounters::bump(&self.counters.writeback_writes, 1);
        let addr = step.write.device_addr(a);
        let (bufs, r) = self.dev_write(ctx, addr, Bufs::Many(pieces)).await;
        let Bufs::Many(pieces) = bufs else {
            unreachable!("sent as Many")
        };
        let r = r.map_err(|e| IomapError::device(ino.0, "writeback", a, e));
        // Complete while the pages are still taken: nobody can change the bytes the
        // filesystem checksums.
        let done = IoDone {
            pos: a,
            len: step.len,
            write_map: &step.write,
            flags: IterFlags::WRITEBACK,
            result: r.as_ref().map(|_| ()),
            data: &pieces,
            by_fs: false,
        };
        let completed = self.ops.complete(ctx, ino, &done).await;
        let outcome = if r.is_ok() && completed.is_ok() {
            Outcome::Written
        } else {
            Outcome::Failed
        };
        self.cache.restore(taken, pieces, outcome);
        r?;
        completed?;
        Ok(step.len)
    }
}
