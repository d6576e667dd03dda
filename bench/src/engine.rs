//! The I/O engine: one thread keeps its jobs' queues full until the time is up (with `-m`,
//! one such thread per core, `cores`).
//!
//! Invariants (the hot path is the reason for each):
//! - no allocation per I/O: every job allocates its `depth` buffers, its completion list and
//!   its retry list up front; a completed request's buffers go straight into the next one;
//! - the clock is read once per job per poll-loop iteration, not per I/O (`Instant::now()`
//!   costs ~20 ns here, ~40 % of the per-I/O budget on a RAM bdev). Every I/O submitted in an
//!   iteration is stamped with that iteration's time and every completion reaped in it too,
//!   so latencies have a resolution of one iteration;
//! - a tag is a slot index `0..depth`: it indexes the per-slot submit stamps directly;
//! - I/O reaped after the deadline is not counted, and none is submitted after it; the
//!   in-flight rest is drained uncounted before the devices are dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bdev::config::NamedDevice;
use bdev::{BlockDevice, Bufs, Completion, DmaBuf, IoQueue, Lba, Op};

use crate::args::{mask_text, PerfSpec, Workload};
use crate::error::BenchError;
use crate::report::{JobInfo, JobStats};
use crate::rng::Rng;
use crate::verify::Verifier;

/// A job ready to be opened: what to run against which bdev.
pub struct JobPlan {
    pub info: JobInfo,
    pub dev: Arc<dyn BlockDevice>,
    pub seed: u64,
    pub workload: Workload,
    pub read_percent: u32,
    /// The job's place in the run, which picks its random stream.
    pub index: u64,
    /// The CPU of `-m` whose thread runs the job; `None`: the calling thread.
    pub core: Option<usize>,
    /// The job covers slice `slice.0` of `slice.1` equal slices of the bdev (as bdevperf -C
    /// splits a bdev among the cores that each run a job on it).
    pub slice: (u64, u64),
}

/// What a job measured, and its place in the run.
#[derive(Clone, Debug)]
pub struct JobResult {
    pub index: u64,
    pub info: JobInfo,
    pub stats: JobStats,
    /// The first I/O error, to show the user what failed.
    pub first_error: Option<String>,
}

/// Matches the bdevs with the command line: one job per bdev (or just `-T`), or with `-m`
/// one per bdev and core, each on its own slice of the bdev (bdevperf -C); each checked
/// against its bdev's geometry. Ordered by bdev, then core, as bdevperf lists them.
pub fn plan(spec: &PerfSpec, bdevs: Vec<NamedDevice>) -> Result<Vec<JobPlan>, BenchError> {
    let names = || {
        bdevs
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<NamedDevice> = match &spec.target {
        Some(t) => match bdevs.iter().find(|(n, _)| n == t) {
            Some(found) => vec![found.clone()],
            None => {
                return Err(BenchError::Plan(format!(
                    "-T {t}: no such bdev in {} (it has: {})",
                    spec.config.display(),
                    names()
                )))
            }
        },
        None => bdevs,
    };
    let cores: Vec<Option<usize>> = match &spec.cores {
        Some(cpus) => cpus.iter().copied().map(Some).collect(),
        None => vec![None],
    };
    let slices = cores.len() as u64;
    let mut plans = Vec::with_capacity(chosen.len() * cores.len());
    for (name, dev) in chosen {
        check_geometry(spec, &name, dev.as_ref(), slices)?;
        for (slice, &core) in cores.iter().enumerate() {
            let mut info = JobInfo::new(
                name.clone(),
                spec.workload,
                spec.read_percent,
                spec.depth,
                spec.io_size,
            );
            if let Some(cpu) = core {
                info.core_mask = mask_text(&[cpu]);
            }
            plans.push(JobPlan {
                info,
                dev: Arc::clone(&dev),
                seed: spec.seed,
                workload: spec.workload,
                read_percent: spec.read_percent,
                index: plans.len() as u64,
                core,
                slice: (slice as u64, slices),
            });
        }
    }
    Ok(plans)
}

/// Checks the command line against a bdev split into `slices` equal parts, one per job.
fn check_geometry(
    spec: &PerfSpec,
    name: &str,
    dev: &dyn BlockDevice,
    slices: u64,
) -> Result<(), BenchError> {
    let geo = dev.geometry();
    let (io, bs) = (spec.io_size as u64, u64::from(geo.block_size));
    let size = geo.block_count / slices * bs;
    if io % bs != 0 {
        return Err(BenchError::Plan(format!(
            "-o {io}: the I/O size must be a multiple of {name}'s block size ({bs} bytes)"
        )));
    }
    if io > size && slices > 1 {
        return Err(BenchError::Plan(format!(
            "-o {io}: larger than the {size} bytes of {name} each of the {slices} cores of -m \
             runs on"
        )));
    }
    if io > size {
        return Err(BenchError::Plan(format!(
            "-o {io}: larger than {name} itself ({size} bytes)"
        )));
    }
    let slots = size / io;
    if spec.workload == Workload::Verify && slots < spec.depth as u64 {
        return Err(BenchError::Plan(format!(
            "-q {}: verify keeps every request on its own range, but {name} has only {slots} \
             ranges of {io} bytes; lower -q or -o",
            spec.depth
        )));
    }
    Ok(())
}

/// What each request of a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pattern {
    /// Reads and writes, mixed by `read_percent`.
    Data,
    Flush,
    Unmap,
    WriteZeroes,
    /// Write, read back, compare: driven by [`Verifier`].
    Verify,
}

/// One job: a bdev, its queue, its buffers, its counters.
pub struct Job {
    pub info: JobInfo,
    pub stats: JobStats,
    dev: Arc<dyn BlockDevice>,
    queue: Box<dyn IoQueue>,
    pattern: Pattern,
    /// Reads per hundred data requests.
    read_percent: u32,
    offsets: Offsets,
    /// When each slot's request was submitted (ns since the run started), indexed by tag.
    submitted_ns: Vec<u64>,
    done: Vec<Completion>,
    /// Requests the queue refused as full, submitted again after the next poll.
    retry: Vec<(u64, Op)>,
    /// The next requests of a reaped batch, submitted together (see `reap`).
    ready: Vec<(u64, Op)>,
    /// Buffers for the first round of requests.
    unused: Vec<Option<Bufs>>,
    verifier: Option<Verifier>,
    first_error: Option<String>,
    stopped: bool,
    /// The job's place in the run.
    index: u64,
}

impl Job {
    /// Opens the queue and allocates everything the job will use.
    pub fn open(plan: JobPlan) -> Result<Job, BenchError> {
        let JobPlan {
            info,
            dev,
            seed,
            workload,
            read_percent,
            index,
            core: _,
            slice: (slice, slices),
        } = plan;
        let geo = dev.geometry();
        let slice_blocks = geo.block_count / slices;
        let pattern = match workload {
            Workload::Flush => Pattern::Flush,
            Workload::Unmap => Pattern::Unmap,
            Workload::WriteZeroes => Pattern::WriteZeroes,
            Workload::Verify => Pattern::Verify,
            _ => Pattern::Data,
        };
        let depth = info.depth;
        let mut unused = Vec::with_capacity(depth);
        for slot in 0..depth {
            unused.push(match pattern {
                Pattern::Data => Some(Bufs::One(data_buf(dev.as_ref(), info.io_size, slot)?)),
                _ => None,
            });
        }
        let verifier = match pattern {
            Pattern::Verify => Some(Verifier::new(dev.as_ref(), depth, info.io_size, seed)?),
            _ => None,
        };
        Ok(Job {
            queue: dev.queue(depth)?,
            pattern,
            read_percent,
            offsets: Offsets {
                rng: Rng::new(seed, index),
                random: workload.is_random(),
                next_slot: 0,
                first: slice * slice_blocks,
                slots: slice_blocks * u64::from(geo.block_size) / info.io_size as u64,
                io_blocks: info.io_size as u64 / u64::from(geo.block_size),
            },
            submitted_ns: vec![0; depth],
            done: Vec::with_capacity(depth),
            retry: Vec::with_capacity(depth),
            ready: Vec::with_capacity(depth),
            unused,
            verifier,
            first_error: None,
            stopped: false,
            index,
            stats: JobStats::new(),
            info,
            dev,
        })
    }

    /// Writes every range of the device once, `depth` at a time, with throw-away buffers.
    pub fn prefill(&mut self) -> Result<(), BenchError> {
        let io_size = self.info.io_size;
        let mut idle = Vec::with_capacity(self.info.depth);
        for _ in 0..self.info.depth {
            idle.push(self.dev.alloc_buf(io_size)?);
        }
        let (mut next, mut completed) = (0u64, 0u64);
        let fail = |lba: u64, reason: String| BenchError::Prefill {
            job: self.info.name.clone(),
            lba,
            reason,
        };
        let (first, slots, io_blocks) = (
            self.offsets.first,
            self.offsets.slots,
            self.offsets.io_blocks,
        );
        while completed < slots {
            while next < slots {
                let Some(buf) = idle.pop() else { break };
                let lba = Lba(first + next * io_blocks);
                match self.queue.submit(
                    next,
                    Op::Write {
                        lba,
                        bufs: Bufs::One(buf),
                        fua: false,
                    },
                ) {
                    Ok(()) => next += 1,
                    Err(r) if r.is_queue_full() => {
                        idle.extend(r.op.into_bufs().and_then(Bufs::into_one));
                        break;
                    }
                    Err(r) => return Err(fail(lba.0, r.error.to_string())),
                }
            }
            self.queue.poll(&mut self.done);
            for c in self.done.drain(..) {
                if let Err(e) = c.result {
                    return Err(fail(first + c.tag * io_blocks, e.to_string()));
                }
                completed += 1;
                idle.extend(c.op.into_bufs().and_then(Bufs::into_one));
            }
        }
        Ok(())
    }

    /// Bytes the job's offsets cover.
    pub fn size_bytes(&self) -> u64 {
        self.offsets.slots * self.info.io_size as u64
    }

    /// The first I/O error, to show the user what failed.
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    /// What the job measured (after [`run`]).
    pub fn result(&self) -> JobResult {
        JobResult {
            index: self.index,
            info: self.info.clone(),
            stats: self.stats.clone(),
            first_error: self.first_error.clone(),
        }
    }

    /// Fills the queue: `depth` requests stamped `now_ns`.
    fn start(&mut self, now_ns: u64) -> Result<(), BenchError> {
        for tag in 0..self.info.depth as u64 {
            let op = match self.verifier.as_mut() {
                Some(v) => v.first_write(tag, self.offsets.next()),
                None => {
                    let bufs = self.unused[tag as usize].take();
                    self.next_op(bufs)
                }
            };
            self.submitted_ns[tag as usize] = now_ns;
            self.submit(tag, op)?;
        }
        Ok(())
    }

    /// The next request of a non-verify job, reusing `bufs` from a finished one.
    #[inline(always)]
    fn next_op(&mut self, bufs: Option<Bufs>) -> Op {
        let lba = self.offsets.next();
        match (self.pattern, bufs) {
            (Pattern::Data, Some(bufs)) => {
                let p = self.read_percent;
                // As bdevperf: pure workloads draw no random number for the choice.
                if p == 100 || (p != 0 && self.offsets.rng.below(100) < u64::from(p)) {
                    Op::Read { lba, bufs }
                } else {
                    Op::Write {
                        lba,
                        bufs,
                        fua: false,
                    }
                }
            }
            (Pattern::Unmap, _) => Op::Unmap {
                lba,
                blocks: self.offsets.io_blocks,
            },
            (Pattern::WriteZeroes, _) => Op::WriteZeroes {
                lba,
                blocks: self.offsets.io_blocks,
                fua: false,
            },
            // A data request always returns its buffers; a flush never has any.
            _ => Op::Flush,
        }
    }

    #[inline(always)]
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), BenchError> {
        match self.queue.submit(tag, op) {
            Ok(()) => Ok(()),
            Err(r) if r.is_queue_full() => {
                self.retry.push((r.tag, r.op));
                Ok(())
            }
            Err(r) => Err(BenchError::Rejected {
                job: self.info.name.clone(),
                reason: r.to_string(),
            }),
        }
    }

    /// Submits again what a full queue refused, in order, until it refuses again.
    fn resubmit_refused(&mut self) -> Result<(), BenchError> {
        let mut pending = std::mem::take(&mut self.retry);
        let mut rest = pending.drain(..);
        for (tag, op) in rest.by_ref() {
            self.submit(tag, op)?;
            if !self.retry.is_empty() {
                break;
            }
        }
        self.retry.extend(rest);
        // Keep the allocation: the list is reused for the whole run.
        if self.retry.capacity() < pending.capacity() {
            std::mem::swap(&mut self.retry, &mut pending);
            self.retry.append(&mut pending);
        }
        Ok(())
    }

    /// One loop iteration: poll, read the clock, count what finished and (before the
    /// deadline) replace it. Returns whether the job has stopped.
    #[inline]
    fn step(&mut self, clock: Instant, deadline_ns: u64) -> Result<bool, BenchError> {
        self.queue.poll(&mut self.done);
        let now = clock.elapsed().as_nanos() as u64;
        let running = now < deadline_ns;
        if !running {
            self.stopped = true;
            self.stats.runtime = Duration::from_nanos(now);
        }
        if !self.retry.is_empty() && running {
            self.resubmit_refused()?;
        }
        let mut done = std::mem::take(&mut self.done);
        let result = if self.verifier.is_some() {
            self.reap_verify(&mut done, now, running)
        } else {
            self.reap(&mut done, now, running)
        };
        self.done = done;
        result.map(|()| self.stopped)
    }

    /// Counts finished requests; before the deadline, sends their buffers out again.
    ///
    /// Two passes: first the bookkeeping of the whole batch, then the submissions back to
    /// back. A RAM bdev copies during `submit`, and copies that follow each other closely
    /// overlap their memory misses in the CPU; interleaving our bookkeeping between them
    /// measured ~20 % slower at QD 128.
    #[inline(always)]
    fn reap(
        &mut self,
        done: &mut Vec<Completion>,
        now: u64,
        running: bool,
    ) -> Result<(), BenchError> {
        let mut ready = std::mem::take(&mut self.ready);
        for c in done.drain(..) {
            self.count(c.tag, c.result.is_ok(), now);
            if let Err(e) = &c.result {
                self.note_error(e);
            }
            // Reaped after the deadline: finished before `now`, which is the runtime.
            if running {
                let op = self.next_op(c.op.into_bufs());
                self.submitted_ns[c.tag as usize] = now;
                ready.push((c.tag, op));
            }
        }
        let mut result = Ok(());
        for (tag, op) in ready.drain(..) {
            if result.is_ok() {
                result = self.submit(tag, op);
            }
        }
        self.ready = ready;
        result
    }

    fn reap_verify(
        &mut self,
        done: &mut Vec<Completion>,
        now: u64,
        running: bool,
    ) -> Result<(), BenchError> {
        for c in done.drain(..) {
            let tag = c.tag;
            let verifier = self.verifier.as_mut().expect("verify jobs have a verifier");
            let offsets = &mut self.offsets;
            let step = verifier.complete(c, running, || offsets.next());
            if let Some(ended) = step.ended {
                // A cycle (write + read back) is one I/O, timed from its write.
                self.count(tag, ended.is_ok(), now);
                if let Err(e) = ended {
                    self.note_error(&e);
                }
                self.submitted_ns[tag as usize] = now;
            }
            if let Some(op) = step.next {
                self.submit(tag, op)?;
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn count(&mut self, tag: u64, ok: bool, now: u64) {
        let latency = now.saturating_sub(self.submitted_ns[tag as usize]);
        self.stats.record(latency, ok);
    }

    #[cold]
    fn note_error(&mut self, e: &dyn std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    /// Polls until nothing is in flight, discarding results; gives up after `limit`.
    fn drain(&mut self, limit: Duration) -> usize {
        self.retry.clear();
        let give_up = Instant::now() + limit;
        while self.queue.in_flight() > 0 && Instant::now() < give_up {
            self.queue.poll(&mut self.done);
            self.done.clear();
        }
        self.queue.in_flight()
    }
}

/// Where a job's requests go: whole `io_size` ranges of its slice of the device, uniformly
/// at random or in order (wrapping), as bdevperf.
struct Offsets {
    /// Also draws the read/write choice of mixed workloads.
    rng: Rng,
    random: bool,
    next_slot: u64,
    /// The slice's first block.
    first: u64,
    /// Whole `io_size` ranges in the slice.
    slots: u64,
    io_blocks: u64,
}

impl Offsets {
    #[inline(always)]
    fn next(&mut self) -> Lba {
        let slot = if self.random {
            self.rng.below(self.slots)
        } else {
            let s = self.next_slot;
            self.next_slot = if s + 1 == self.slots { 0 } else { s + 1 };
            s
        };
        Lba(self.first + slot * self.io_blocks)
    }
}

/// A data buffer, filled once with a pattern so that writes carry recognisable data.
fn data_buf(dev: &dyn BlockDevice, len: usize, slot: usize) -> Result<DmaBuf, BenchError> {
    let mut buf = dev.alloc_buf(len)?;
    for (i, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(((slot as u64) << 32) | i as u64).to_le_bytes());
    }
    Ok(buf)
}

/// Runs every job on this thread for `duration`, then drains them.
pub fn run(jobs: &mut [Job], duration: Duration) -> Result<(), BenchError> {
    const DRAIN_LIMIT: Duration = Duration::from_secs(30);
    let clock = Instant::now();
    let deadline_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    // The jobs share this process: one peak for all of them (with -m, the threads reset it
    // as they start together).
    crate::memstat::reset_peak_rss();
    for job in jobs.iter_mut() {
        job.start(0)?;
    }
    let mut result = Ok(());
    'run: loop {
        let mut all_stopped = true;
        for job in jobs.iter_mut().filter(|j| !j.stopped) {
            match job.step(clock, deadline_ns) {
                Ok(stopped) => all_stopped &= stopped,
                Err(e) => {
                    result = Err(e);
                    break 'run;
                }
            }
        }
        if all_stopped {
            break;
        }
    }
    for job in jobs.iter_mut() {
        let stuck = job.drain(DRAIN_LIMIT);
        if stuck > 0 {
            log::warn!(
                "{}: {stuck} I/Os still in flight after {DRAIN_LIMIT:?}; giving up on them",
                job.info.name
            );
        }
    }
    let peak = crate::memstat::peak_rss_kib();
    for job in jobs.iter_mut() {
        job.stats.peak_rss_kib = peak;
    }
    result
}
