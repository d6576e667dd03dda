//! Jobs on a file of a bypassfs (`bfsperf --fs`, `bypassfs bench`).
//!
//! One thread keeps `depth` requests in flight through fs-core's asynchronous file API:
//! `depth` futures, each looping over `read_at_async` / `write_at_async` with its own DMA
//! buffer, joined on the thread's [`Context`]. Invariants:
//! - the file is written once over its whole size before timing (not counted), so reads
//!   never hit holes (a hole costs no device I/O and would flatter reads) and writes
//!   overwrite, which is what copy-on-write makes expensive;
//! - fs-core's `fdatasync` is synchronous, so with `fdatasync_every = N` the write that makes
//!   a sync due stops every worker from starting new I/O; once the in-flight requests are
//!   done the sync runs, and its time is charged to that write (with N = 1 at depth 1 a row
//!   reads as the latency of "write + fdatasync"), then the workers start again;
//! - I/O finishing after the deadline is not counted, as in the bdev engine; the runtime is
//!   the time of the first completion seen past it;
//! - with `end_fsync`, one fsync of the file follows the timed I/O and its time is added to
//!   the runtime, so a buffered write's IOPS include writing back what it left dirty (fio's
//!   `end_fsync=1` syncs the same way but reports no time for it;
//!   `bench/scripts/vs-kernel-fs.sh` times it with a second fio job).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bdev::exec::join_all;
use bdev::{BlockDevice, DmaBuf};
use fs_core::{Context, File, Filesystem, FormatOptions, MountOptions, OpenFlags};

use crate::args::{CacheStart, Workload};
use crate::error::BenchError;
use crate::report::{JobInfo, JobStats};
use crate::rng::Rng;

/// A job on one file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileJobSpec {
    /// The job's name in the table.
    pub name: String,
    /// A data workload: read, write, randread, randwrite, rw or randrw.
    pub workload: Workload,
    /// Reads per hundred I/Os.
    pub read_percent: u32,
    pub depth: usize,
    pub io_size: usize,
    /// Bytes of the file the job runs over (whole `io_size` ranges of it).
    pub file_size: u64,
    /// `O_DIRECT` (else through bypassfs's page cache).
    pub direct: bool,
    /// An fdatasync after every this many writes.
    pub fdatasync_every: Option<u64>,
    /// One fsync after the timed I/O, its time counted in the runtime.
    pub end_fsync: bool,
    /// A sequential job ends after one pass over the file (or at `duration`).
    pub one_pass: bool,
    pub duration: Duration,
    pub seed: u64,
}

/// What a job measured.
#[derive(Clone, Debug)]
pub struct FileJobResult {
    pub info: JobInfo,
    pub stats: JobStats,
    /// The first failure, to tell the user what failed.
    pub first_error: Option<String>,
    /// How long the end fsync took (already in `stats.runtime`), when the spec asked for one.
    pub end_fsync: Option<Duration>,
}

fn fs_err(what: impl Into<String>) -> impl FnOnce(fs_core::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Fs { what, source }
}

/// Checks a spec against the filesystem's block size, before anything is written.
pub fn check(spec: &FileJobSpec, fs_block_size: u64) -> Result<(), BenchError> {
    let plan = |m: String| Err(BenchError::Plan(m));
    if !matches!(
        spec.workload,
        Workload::Read
            | Workload::Write
            | Workload::Randread
            | Workload::Randwrite
            | Workload::Rw
            | Workload::Randrw
    ) {
        return plan(format!(
            "-w {} is not a file workload; with --fs use read, write, randread, randwrite, rw \
             or randrw",
            spec.workload.name()
        ));
    }
    let io = spec.io_size as u64;
    if spec.direct && io % fs_block_size != 0 {
        return plan(format!(
            "-o {io}: direct I/O needs a multiple of the filesystem block size \
             ({fs_block_size} bytes); use --buffered for other sizes"
        ));
    }
    if spec.file_size < io {
        return plan(format!(
            "--file-size {}: smaller than one I/O (-o {io})",
            spec.file_size
        ));
    }
    if spec.fdatasync_every == Some(0) {
        return plan("--fdatasync-every 0: give a number of writes, at least 1".into());
    }
    Ok(())
}

/// Formats `dev` with the default options and mounts it; returns the filesystem and this
/// thread's context.
pub fn format_and_mount(dev: Arc<dyn BlockDevice>) -> Result<(Filesystem, Context), BenchError> {
    format_and_mount_with(dev, MountOptions::default())
}

/// [`format_and_mount`] with mount options `opts`.
pub fn format_and_mount_with(
    dev: Arc<dyn BlockDevice>,
    opts: MountOptions,
) -> Result<(Filesystem, Context), BenchError> {
    let name = dev.name().to_string();
    Filesystem::format(Arc::clone(&dev), FormatOptions::default())
        .map_err(fs_err(format!("formatting {name}")))?;
    let fs = Filesystem::mount(dev, opts).map_err(fs_err(format!("mounting {name}")))?;
    let ctx = fs.context().map_err(fs_err("opening a context"))?;
    Ok((fs, ctx))
}

/// The share of the free space (in percent) a `--fs` file takes when no size is given.
///
/// Copy-on-write needs room beyond the file: an overwrite goes to new blocks, and the blocks
/// it replaced stay taken until the fold that commits it (started once new extents reach a
/// quarter of the free space), while writes go on during that fold and the fold rewrites the
/// metadata of a file that random 4 KiB writes have cut into one extent per block. Measured
/// with 4 KiB random writes at QD 32-128: a file of 80 % or 50 % of a 64 MiB RAM bdev ran out
/// of space within a second, 40 % did not; on 1 GiB, 50 % ran without failures but at 16 k
/// IOPS (writers waiting for space), 30 % at 166 k, 12 % at 233 k. A quarter keeps clear of
/// that cliff, so the default measures the filesystem rather than its space pressure.
pub const DEFAULT_FILE_SHARE_PERCENT: u64 = 25;

/// The largest multiple of `io_size` up to `share` percent of the space the filesystem has
/// free for data.
pub fn default_file_size(fs: &Filesystem, io_size: usize, share: u64) -> Result<u64, BenchError> {
    let st = fs.statfs().map_err(fs_err("statfs"))?;
    let bytes = st.blocks_avail * st.block_size * share / 100;
    Ok(bytes / io_size as u64 * io_size as u64)
}

/// Creates `path` and writes it once over `size` bytes through the page cache (any size
/// works; writeback sends large requests), then fsyncs. Not timed.
pub fn prefill(fs: &Filesystem, ctx: &Context, path: &str, size: u64) -> Result<(), BenchError> {
    const CHUNK: usize = 1 << 20;
    let file = fs
        .open(ctx, path, OpenFlags::read_write_create(), 0o644)
        .map_err(fs_err(format!("creating {path}")))?;
    let data: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    let mut pos = 0u64;
    while pos < size {
        let len = CHUNK.min((size - pos) as usize);
        file.write_at(ctx, pos, &data[..len])
            .map_err(fs_err(format!("prefilling {path} at byte {pos}")))?;
        pos += len as u64;
    }
    file.fsync(ctx)
        .map_err(fs_err(format!("fsync of {path} after prefill")))
}

/// Puts the cache in the state `cache` asks for before timing: clean pages dropped (cold)
/// or `path` read once over `size` bytes (warm). Not timed.
pub fn prepare_cache(
    fs: &Filesystem,
    ctx: &Context,
    path: &str,
    size: u64,
    cache: CacheStart,
) -> Result<(), BenchError> {
    match cache {
        CacheStart::AsPrefilled => {}
        CacheStart::Cold => {
            fs.drop_clean_pages();
        }
        CacheStart::Warm => {
            const CHUNK: usize = 1 << 20;
            let file = fs
                .open(ctx, path, OpenFlags::read_only(), 0)
                .map_err(fs_err(format!("opening {path} to warm the cache")))?;
            let mut buf = vec![0u8; CHUNK];
            let mut pos = 0u64;
            while pos < size {
                let len = CHUNK.min((size - pos) as usize);
                file.read_at(ctx, pos, &mut buf[..len])
                    .map_err(fs_err(format!("warming the cache: {path} at byte {pos}")))?;
                pos += len as u64;
            }
        }
    }
    Ok(())
}

/// A DMA buffer filled with a pattern that tells slots and offsets apart.
fn pattern_buf(file: &File, len: usize, slot: usize) -> Result<DmaBuf, BenchError> {
    let mut buf = file.alloc_buf(len).map_err(fs_err("allocating a buffer"))?;
    for (i, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(((slot as u64) << 32) | i as u64).to_le_bytes());
    }
    Ok(buf)
}

/// The state the workers of one job share (one thread: cells, no locks).
struct Shared<'a> {
    spec: &'a FileJobSpec,
    file: &'a File,
    ctx: &'a Context,
    clock: Instant,
    rng: RefCell<Rng>,
    next_slot: Cell<u64>,
    slots: u64,
    stats: RefCell<JobStats>,
    first_error: RefCell<Option<String>>,
    /// The last clock read and the executor's reap round it was read in ([`Shared::now`]).
    last_read: Cell<(Instant, u64)>,
    /// Runtime: set at the first completion seen past the deadline.
    ended: Cell<Option<Duration>>,
    writes_since_sync: Cell<u64>,
    /// The latency and outcome of the write that made a sync due, counted after the sync.
    sync_due: Cell<Option<(u64, bool)>>,
}

impl Shared<'_> {
    /// The time a request that started in reap round `started` (the executor's
    /// `reap_rounds` at its submission) ended: one clock read per reap round, shared by the
    /// workers its completions wake (a read per request was about 2 % of a direct randread's
    /// samples on SPDK), so latencies have the resolution of a round, as in the raw engine.
    /// A request no round reaped since it started (a cached buffered read or write, a hole,
    /// an error) ran on this thread alone: its end is read afresh, or a round's reused time
    /// would charge it everything since that round.
    fn now(&self, started: u64) -> Instant {
        let round = self.ctx.exec().reap_rounds();
        let (at, seen) = self.last_read.get();
        if round != started && round == seen {
            return at;
        }
        let at = Instant::now();
        self.last_read.set((at, round));
        at
    }

    fn running(&self) -> bool {
        self.running_at(Instant::now())
    }

    /// [`Shared::running`] with the time already read (a clock read per request is enough:
    /// four were 4 % of the I/O thread of a random-write run).
    fn running_at(&self, at: Instant) -> bool {
        if self.ended.get().is_some() {
            return false;
        }
        let now = at.saturating_duration_since(self.clock);
        if now >= self.spec.duration {
            self.ended.set(Some(now));
            return false;
        }
        true
    }

    /// The next request: its file offset and whether it is a read; `None` once a
    /// one-pass job has issued its whole pass.
    fn next(&self) -> Option<(u64, bool)> {
        let mut rng = self.rng.borrow_mut();
        let slot = if self.spec.workload.is_random() {
            rng.below(self.slots)
        } else {
            let s = self.next_slot.get();
            if self.pass_issued() {
                return None;
            }
            let wrap = s + 1 == self.slots && !self.spec.one_pass;
            self.next_slot.set(if wrap { 0 } else { s + 1 });
            s
        };
        let p = self.spec.read_percent;
        let read = p == 100 || (p != 0 && rng.below(100) < u64::from(p));
        Some((slot * self.spec.io_size as u64, read))
    }

    /// Whether a one-pass job has issued every request of its pass.
    fn pass_issued(&self) -> bool {
        self.spec.one_pass && self.next_slot.get() >= self.slots
    }

    fn note_error(&self, e: String) {
        self.first_error.borrow_mut().get_or_insert(e);
    }

    /// One worker: requests back to back until the deadline or a due sync.
    async fn worker(&self, mut buf: DmaBuf) -> DmaBuf {
        let mut now = Instant::now();
        while self.sync_due.get().is_none() && self.running_at(now) {
            let Some((pos, read)) = self.next() else {
                break;
            };
            // The previous request's end: nothing between it and this submission waits.
            let start = now;
            let started = self.ctx.exec().reap_rounds();
            let (b, r) = if read {
                self.file.read_at_async(self.ctx, pos, buf).await
            } else {
                self.file.write_at_async(self.ctx, pos, buf).await
            };
            buf = b;
            now = self.now(started);
            let latency_ns = now.saturating_duration_since(start).as_nanos() as u64;
            if !self.running_at(now) {
                break;
            }
            let ok = match r {
                Ok(n) if n == buf.len() => true,
                Ok(n) => {
                    self.note_error(format!("short I/O at {pos}: {n} of {} bytes", buf.len()));
                    false
                }
                Err(e) => {
                    let op = if read { "read" } else { "write" };
                    self.note_error(format!("{op} at {pos}: {e}"));
                    false
                }
            };
            if let (false, Some(every)) = (read, self.spec.fdatasync_every) {
                let n = self.writes_since_sync.get() + 1;
                if n >= every {
                    self.writes_since_sync.set(0);
                    self.sync_due.set(Some((latency_ns, ok)));
                    break;
                }
                self.writes_since_sync.set(n);
            }
            self.stats.borrow_mut().record(latency_ns, ok);
        }
        buf
    }

    /// Runs the sync a worker made due; charges it to that write.
    fn sync(&self) {
        let Some((write_ns, write_ok)) = self.sync_due.take() else {
            return;
        };
        let start = Instant::now();
        let r = self.file.fdatasync(self.ctx);
        let sync_ns = start.elapsed().as_nanos() as u64;
        if let Err(e) = &r {
            self.note_error(format!("fdatasync: {e}"));
        }
        if self.running() {
            self.stats
                .borrow_mut()
                .record(write_ns + sync_ns, write_ok && r.is_ok());
        }
    }
}

/// Runs one job on `path` (created and prefilled over `spec.file_size` first, not timed).
pub fn run_file_job(
    fs: &Filesystem,
    ctx: &Context,
    path: &str,
    spec: &FileJobSpec,
) -> Result<FileJobResult, BenchError> {
    let st = fs.statfs().map_err(fs_err("statfs"))?;
    check(spec, st.block_size)?;
    let io = spec.io_size as u64;
    let slots = spec.file_size / io;
    if fs.stat(path).map(|s| s.size).unwrap_or(0) < slots * io {
        prefill(fs, ctx, path, slots * io)?;
    }
    let flags = OpenFlags {
        direct: spec.direct,
        ..OpenFlags::read_write_create()
    };
    let file = fs
        .open(ctx, path, flags, 0o644)
        .map_err(fs_err(format!("opening {path}")))?;
    let mut bufs = Vec::with_capacity(spec.depth);
    for slot in 0..spec.depth {
        bufs.push(pattern_buf(&file, spec.io_size, slot)?);
    }
    crate::memstat::reset_peak_rss();
    let shared = Shared {
        spec,
        file: &file,
        ctx,
        clock: Instant::now(),
        last_read: Cell::new((Instant::now(), u64::MAX)),
        rng: RefCell::new(Rng::new(spec.seed, 0)),
        next_slot: Cell::new(0),
        slots,
        stats: RefCell::new(JobStats::new()),
        first_error: RefCell::new(None),
        ended: Cell::new(None),
        writes_since_sync: Cell::new(0),
        sync_due: Cell::new(None),
    };
    loop {
        bufs = ctx.block_on(join_all(bufs.into_iter().map(|b| shared.worker(b))));
        shared.sync();
        if shared.pass_issued() && shared.ended.get().is_none() {
            // Every worker has seen its last request of the pass complete.
            shared.ended.set(Some(shared.clock.elapsed()));
        }
        if !shared.running() {
            break;
        }
    }
    let mut stats = shared.stats.into_inner();
    stats.runtime = shared.ended.get().unwrap_or(spec.duration);
    let mut first_error = shared.first_error.into_inner();
    let end_fsync = if spec.end_fsync {
        let start = Instant::now();
        let r = file.fsync(ctx);
        let took = start.elapsed();
        stats.runtime += took;
        if let Err(e) = r {
            first_error.get_or_insert(format!("end fsync: {e}"));
            // Nothing written since the last successful sync can be counted as done.
            stats.failed += 1;
        }
        Some(took)
    } else {
        None
    };
    stats.peak_rss_kib = crate::memstat::peak_rss_kib();
    Ok(FileJobResult {
        info: JobInfo::new(
            spec.name.clone(),
            spec.workload,
            spec.read_percent,
            spec.depth,
            spec.io_size,
        ),
        stats,
        first_error,
        end_fsync,
    })
}

/// Metadata operations for `duration`: create a file and write `file_bytes` into it, stat it,
/// unlink it, each one timed I/O (so the row's IOPS are operations per second), in `dir`.
pub fn run_metadata_job(
    fs: &Filesystem,
    ctx: &Context,
    dir: &str,
    file_bytes: usize,
    duration: Duration,
) -> Result<FileJobResult, BenchError> {
    match fs.mkdir(dir, 0o755) {
        Ok(_) | Err(fs_core::Error::Exists(_)) => {}
        Err(e) => return Err(fs_err(format!("mkdir {dir}"))(e)),
    }
    let data = vec![0x5au8; file_bytes];
    let mut stats = JobStats::new();
    crate::memstat::reset_peak_rss();
    let mut first_error = None;
    let clock = Instant::now();
    let mut i = 0u64;
    while clock.elapsed() < duration {
        let path = format!("{dir}/f{i}");
        i += 1;
        let cycle = (|| {
            timed(&mut stats, &mut || {
                let f = fs.open(ctx, &path, OpenFlags::read_write_create(), 0o644)?;
                f.write_at(ctx, 0, &data).map(drop)
            })?;
            timed(&mut stats, &mut || fs.stat(&path).map(drop))?;
            timed(&mut stats, &mut || fs.unlink(&path))
        })();
        if let Err(e) = cycle {
            first_error.get_or_insert(format!("{path}: {e}"));
            // Every further cycle would likely fail the same way.
            break;
        }
    }
    stats.runtime = clock.elapsed();
    stats.peak_rss_kib = crate::memstat::peak_rss_kib();
    Ok(FileJobResult {
        info: JobInfo {
            name: "metadata".into(),
            workload: "create+stat+unlink".into(),
            mix_read_percent: None,
            depth: 1,
            io_size: 0,
            core_mask: "0x1".into(),
        },
        stats,
        first_error,
        end_fsync: None,
    })
}

/// Runs `f` as one timed operation.
fn timed(stats: &mut JobStats, f: &mut dyn FnMut() -> fs_core::Result<()>) -> fs_core::Result<()> {
    let start = Instant::now();
    let r = f();
    stats.record(start.elapsed().as_nanos() as u64, r.is_ok());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Workload;

    fn spec(end_fsync: bool) -> FileJobSpec {
        FileJobSpec {
            name: "t".into(),
            workload: Workload::Write,
            read_percent: 0,
            depth: 2,
            io_size: 1 << 20,
            file_size: 4 << 20,
            direct: false,
            fdatasync_every: None,
            end_fsync,
            one_pass: false,
            duration: Duration::from_millis(200),
            seed: 1,
        }
    }

    /// A cold one-pass read reads every slot once, from the device, and stops there; a warm
    /// start has the whole file cached.
    #[test]
    fn one_pass_reads_the_file_once_from_a_cold_or_warm_cache() {
        let dev = bdev::mem::MemDevice::new("Mem0", 4096, 8192).unwrap();
        let (fs, ctx) = format_and_mount(Arc::new(dev)).unwrap();
        let spec = FileJobSpec {
            workload: Workload::Read,
            read_percent: 100,
            one_pass: true,
            duration: Duration::from_secs(600),
            ..spec(false)
        };
        prefill(&fs, &ctx, "/f", spec.file_size).unwrap();
        prepare_cache(&fs, &ctx, "/f", spec.file_size, CacheStart::Cold).unwrap();
        assert_eq!(fs.page_cache_stats().cached, 0);
        let r = run_file_job(&fs, &ctx, "/f", &spec).unwrap();
        assert!(r.first_error.is_none(), "{:?}", r.first_error);
        assert_eq!(r.stats.ios, spec.file_size / spec.io_size as u64);
        assert!(r.stats.runtime < spec.duration, "{:?}", r.stats.runtime);
        prepare_cache(&fs, &ctx, "/f", spec.file_size, CacheStart::Cold).unwrap();
        prepare_cache(&fs, &ctx, "/f", spec.file_size, CacheStart::Warm).unwrap();
        let pages = spec.file_size / fs.page_size();
        assert_eq!(fs.page_cache_stats().cached as u64, pages);
        fs.unmount(&ctx).unwrap();
    }

    #[test]
    fn end_fsync_time_is_counted_in_the_runtime() {
        let dev = bdev::mem::MemDevice::new("Mem0", 4096, 8192).unwrap();
        let (fs, ctx) = format_and_mount(Arc::new(dev)).unwrap();
        let plain = run_file_job(&fs, &ctx, "/plain", &spec(false)).unwrap();
        assert_eq!(plain.end_fsync, None);
        let r = run_file_job(&fs, &ctx, "/synced", &spec(true)).unwrap();
        let took = r.end_fsync.expect("an end fsync was asked for");
        assert!(r.first_error.is_none(), "{:?}", r.first_error);
        assert_eq!(r.stats.failed, 0);
        assert!(r.stats.ios > 0);
        // The timed I/O runs to the deadline, then the fsync's time is added.
        assert!(
            r.stats.runtime >= spec(true).duration + took,
            "runtime {:?}, end fsync {took:?}",
            r.stats.runtime
        );
        fs.unmount(&ctx).unwrap();
    }
}
