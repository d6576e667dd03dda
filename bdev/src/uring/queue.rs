//! `UringQueue`: one io_uring and the slot table of the requests in flight on it.
//!
//! `submit` only takes a request into a slot and lines it up; `poll` (and `wait`) dispatch
//! what is lined up, as one batch: through the ring, or, for a queue that may run requests
//! inline ([`Dispatch::InlineWhenIdle`]) when the batch is small and the ring is idle, with
//! a system call each on this thread. Either way a request's completion comes out of
//! `poll`, and nothing reaches the kernel before the `poll` or `wait` after its `submit`.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use io_uring::{types, IoUring};

use super::lock::LockedFile;
use super::slot::{Backing, Dispatch, Slot, Stage, Step, Target};
use super::sys;
use crate::device::{Completion, IoQueue, Op, Rejected};
use crate::error::{IoError, SubmitError};
use crate::types::{Geometry, Lba};
use crate::validate;

/// The most requests a batch may hold to run inline. A lone write and its flush (an fsync),
/// or a log record's FUA write and flush, are such batches; a deep random workload keeps
/// the ring busy and never comes here.
const INLINE_MAX_REQUESTS: usize = 4;

/// The most bytes a batch may move to run inline. A 4 KiB write and its FUA log record
/// fit; the executor's merged writes (up to `MERGE_LIMIT`) do not: copying those here
/// rather than in a kernel worker beside this thread halved bypassfs's random 4 KiB
/// writes at QD 32 (docs/BENCHMARKS.md, "io_uring on tmpfs").
const INLINE_MAX_BYTES: u64 = 16 << 10;

pub(super) struct UringQueue {
    ring: IoUring,
    /// `slots[i]` holds the request whose SQEs carry user data `i`.
    slots: Box<[Slot]>,
    /// Indices of the empty slots.
    free: Vec<usize>,
    /// Slots submitted and not yet dispatched, in submission order.
    lined_up: Vec<usize>,
    /// Requests finished inline, waiting for `poll` (room for `depth`: never allocates).
    ready: Vec<Completion>,
    /// Requests submitted and not yet reaped: lined up, on the ring, or ready.
    in_flight: usize,
    /// Requests on the ring (SQEs queued or in the kernel).
    in_ring: usize,
    dispatch: Dispatch,
    target: Target,
    backing: Backing,
    geometry: Geometry,
    /// Keeps `target.fd` open.
    file: Arc<LockedFile>,
    /// Whether a failed `io_uring_enter` has been logged (once per queue is enough).
    enter_error_logged: bool,
}

impl UringQueue {
    pub(super) fn new(
        file: Arc<LockedFile>,
        backing: Backing,
        geometry: Geometry,
        depth: usize,
        dispatch: Dispatch,
    ) -> io::Result<UringQueue> {
        let entries = u32::try_from(depth.next_power_of_two()).map_err(io::Error::other)?;
        Ok(UringQueue {
            ring: build_ring(entries)?,
            slots: (0..depth).map(|_| Slot::new()).collect(),
            free: (0..depth).rev().collect(),
            lined_up: Vec::with_capacity(depth),
            ready: Vec::with_capacity(depth),
            in_flight: 0,
            in_ring: 0,
            dispatch,
            target: Target {
                fd: types::Fd(file.as_raw_fd()),
                block_size: u64::from(geometry.block_size),
                zero_range_works: true,
            },
            backing,
            geometry,
            file,
            enter_error_logged: false,
        })
    }

    /// The first step of `op`. A block-device unmap happens here, synchronously: io_uring
    /// has no discard opcode for block devices before Linux 6.12's uring_cmd.
    fn first_stage(&self, op: &Op) -> Stage {
        match op {
            Op::Read { .. } | Op::Write { .. } => Stage::Transfer,
            Op::Flush => Stage::Sync,
            Op::WriteZeroes { .. } if self.target.zero_range_works => Stage::ZeroRange,
            Op::WriteZeroes { .. } => Stage::PunchHole,
            Op::Unmap { .. } if self.backing == Backing::File => Stage::PunchHole,
            Op::Unmap {
                lba: Lba(lba),
                blocks,
            } => {
                let bs = self.target.block_size;
                match sys::discard(&self.file, lba * bs, blocks * bs) {
                    Ok(()) => Stage::DoneAtSubmit(0),
                    Err(e) => Stage::DoneAtSubmit(-e.raw_os_error().unwrap_or(libc::EIO)),
                }
            }
        }
    }

    /// Queues the next SQE of slot `idx`; `io_uring_enter` happens in `poll`.
    fn push(&mut self, idx: usize) {
        let entry = self.slots[idx].entry(&self.target).user_data(idx as u64);
        // SAFETY: the entry's addresses point into the DmaBufs of the request held by
        // `slots[idx]` and into that slot's iovec array. Until the CQE with user data `idx`
        // is reaped (by `poll` or `drop`), the slot keeps the request (so the buffers stay
        // mapped and no one else can reach them: the caller gave them up at submit), its
        // index stays off the free list, and its iovec array is neither resized nor
        // touched. `self.file` keeps the fd open.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        // Each queued SQE belongs to a distinct in-flight slot, and there are no more
        // slots than ring entries, so the ring always has room.
        pushed.expect("the submission ring has an entry for every slot");
    }

    /// Hands the lined-up requests on: inline if this queue may, the batch is small and the
    /// ring idle, else to the ring. A queue kept deep is after throughput, which a kernel
    /// worker copying beside this thread gives; a small batch on an idle queue is waited
    /// for, and inline it costs no thread hand-off.
    fn dispatch_lined_up(&mut self) {
        if self.lined_up.is_empty() {
            return;
        }
        let mut lined_up = std::mem::take(&mut self.lined_up);
        if self.runs_inline(&lined_up) {
            for &idx in &lined_up {
                let result = self.run_inline(idx);
                let (tag, op) = self.slots[idx].take();
                self.free.push(idx);
                self.ready.push(Completion { tag, op, result });
            }
        } else {
            for &idx in &lined_up {
                self.push(idx);
            }
            self.in_ring += lined_up.len();
        }
        lined_up.clear();
        self.lined_up = lined_up;
    }

    fn runs_inline(&self, batch: &[usize]) -> bool {
        self.dispatch == Dispatch::InlineWhenIdle
            && self.in_ring == 0
            && batch.len() <= INLINE_MAX_REQUESTS
            && batch.iter().map(|&i| self.slots[i].bytes()).sum::<u64>() <= INLINE_MAX_BYTES
    }

    /// Carries slot `idx`'s request out on this thread, stage after stage.
    fn run_inline(&mut self, idx: usize) -> Result<(), IoError> {
        loop {
            let res = self.slots[idx].run_now(&self.target);
            match self.slots[idx].complete(res, &mut self.target) {
                Step::Again => continue,
                Step::Finished(result) => return result,
            }
        }
    }

    /// Takes one CQE off the completion ring, if any (no system call).
    fn next_cqe(&mut self) -> Option<io_uring::cqueue::Entry> {
        self.ring.completion().next()
    }

    /// Hands queued SQEs to the kernel and, if it flagged completions waiting for this
    /// thread (COOP/DEFER_TASKRUN), has it post them. No system call otherwise.
    fn enter(&mut self) {
        let sq = self.ring.submission();
        let needed = !sq.is_empty() || sq.taskrun();
        drop(sq);
        if !needed {
            return;
        }
        match self.ring.submit() {
            Ok(_) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) => self.log_enter_error(&e),
        }
    }

    fn log_enter_error(&mut self, e: &io::Error) {
        if !self.enter_error_logged {
            log::error!("bdev uring: io_uring_enter failed: {e}; retrying at every poll");
            self.enter_error_logged = true;
        }
    }

    /// Reaps the completion ring into `done`, pushing the next SQE of requests that need
    /// another; returns how many requests finished.
    fn reap_ring(&mut self, done: &mut Vec<Completion>) -> usize {
        let mut reaped = 0;
        while let Some(cqe) = self.next_cqe() {
            let idx = cqe.user_data() as usize;
            match self.slots[idx].complete(cqe.result(), &mut self.target) {
                Step::Again => self.push(idx),
                Step::Finished(result) => {
                    let (tag, op) = self.slots[idx].take();
                    self.free.push(idx);
                    self.in_ring -= 1;
                    self.in_flight -= 1;
                    done.push(Completion { tag, op, result });
                    reaped += 1;
                }
            }
        }
        reaped
    }
}

/// Errors after which `io_uring_enter` is simply tried again.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
    )
}

/// Sets up a ring of `entries`, with the cheapest completion delivery the kernel has.
/// DEFER_TASKRUN (6.1) runs completion work only when this thread enters the kernel, in a
/// batch; COOP_TASKRUN (5.19) runs it without interrupting the thread. With TASKRUN_FLAG
/// the kernel flags pending work so `poll` knows when entering is worth a system call.
fn build_ring(entries: u32) -> io::Result<IoUring> {
    let deferred = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .setup_submit_all()
        .build(entries);
    if let Ok(ring) = deferred {
        return Ok(ring);
    }
    let cooperative = IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(entries);
    if let Ok(ring) = cooperative {
        return Ok(ring);
    }
    IoUring::new(entries)
}

impl IoQueue for UringQueue {
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
        if self.in_flight >= self.slots.len() {
            return Err(Rejected {
                tag,
                op,
                error: SubmitError::QueueFull,
            });
        }
        if let Err(e) = validate::check(&self.geometry, &op) {
            return Err(Rejected {
                tag,
                op,
                error: e.into(),
            });
        }
        let stage = self.first_stage(&op);
        let idx = self.free.pop().expect("fewer in flight than slots");
        self.slots[idx].start(tag, op, stage);
        self.lined_up.push(idx);
        self.in_flight += 1;
        Ok(())
    }

    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        if self.in_flight == 0 {
            return 0;
        }
        self.dispatch_lined_up();
        let mut reaped = 0;
        if self.in_ring > 0 {
            self.enter();
            reaped = self.reap_ring(done);
        }
        if !self.ready.is_empty() {
            reaped += self.ready.len();
            self.in_flight -= self.ready.len();
            done.append(&mut self.ready);
        }
        reaped
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn depth(&self) -> usize {
        self.slots.len()
    }

    fn wait(&mut self) -> bool {
        self.dispatch_lined_up();
        if !self.ready.is_empty() {
            // Finished inline just now: the next poll reaps them without sleeping.
            return true;
        }
        if self.in_ring == 0 {
            return false;
        }
        // Submits what is queued and sleeps until a completion. A failed enter did not
        // sleep (an interrupted or busy one is retried by the caller's next poll).
        match self.ring.submit_and_wait(1) {
            Ok(_) => true,
            Err(e) => {
                if !is_transient(&e) {
                    self.log_enter_error(&e);
                }
                false
            }
        }
    }

    fn merge_limit(&self) -> usize {
        MERGE_LIMIT
    }
}

/// Bytes of adjacent writes the executor may merge into one request: every request costs an
/// SQE, a CQE and, on files without non-blocking writes (tmpfs), a kernel worker's turn
/// whatever its size. Random 4 KiB overwrites of a bypassfs file on a /dev/shm file, in
/// alternating runs of one build: with merges up to 16, 32 and 64 KiB, about 3 % more
/// writes a second than without; up to 128 KiB, no better than without (a merged request's
/// first write waits for its last).
const MERGE_LIMIT: usize = 64 << 10;

impl Drop for UringQueue {
    /// Carries out what is still lined up (as a poll would have), then blocks until the
    /// kernel has finished every request on the ring: only then may their buffers be freed
    /// or reused. If the ring fails, the requests are leaked instead.
    fn drop(&mut self) {
        self.dispatch_lined_up();
        while self.in_ring > 0 {
            if let Err(e) = self.ring.submit_and_wait(1) {
                if is_transient(&e) {
                    continue;
                }
                log::error!(
                    "bdev uring: cannot wait for {} requests in flight ({e}); leaking their \
                     buffers rather than freeing memory the kernel may still write",
                    self.in_ring
                );
                std::mem::forget(std::mem::take(&mut self.slots));
                return;
            }
            while let Some(cqe) = self.next_cqe() {
                // The kernel is done with this slot's memory; its request can be dropped.
                drop(self.slots[cqe.user_data() as usize].take());
                self.in_ring -= 1;
            }
        }
    }
}
