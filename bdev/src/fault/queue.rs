//! The fault device's queue: carries out each request's [`Plan`] on an inner queue.
//!
//! Invariants:
//! - a user request holds one slot from submission until its completion is queued in `out`;
//!   the inner tag of a forwarded request is its slot index, so `in_flight()` (slots in use
//!   plus `out`) never exceeds `depth`;
//! - write-backs of cached blocks carry the tag bit `WRITEBACK`; a flush that needs them
//!   holds its slot until the last one completed, and only then goes to the inner device,
//!   so its inner flush covers everything it wrote back;
//! - every request submitted completes exactly once: error and crash paths queue a
//!   completion instead of dropping the request;
//! - once the device crashed, every completion reaped reports `IoError::Removed`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::device::{Bufs, Completion, IoQueue, Op, Rejected};
use crate::dma::DmaBuf;
use crate::error::{IoError, SubmitError};
use crate::types::Lba;
use crate::validate;

use super::cache::{Overlay, Resolved, Run, VolatileCache};
use super::plan::{Action, Shared, State};

/// Inner tags with this bit are write-backs; the rest indexes `writebacks`.
const WRITEBACK: u64 = 1 << 63;

/// What to do to a forwarded request's completion before the caller sees it.
enum Fixup {
    None,
    Read {
        corrupt: Option<u64>,
        overlay: Option<Overlay>,
    },
    /// A misdirected write: give the caller back the LBA it asked for.
    RestoreLba(Lba),
    /// A torn write: the inner device got a shortened copy; this is the caller's request.
    Torn(Op),
    /// A flush waiting for `pending` write-backs before its inner flush.
    Flush {
        pending: usize,
        failed: bool,
    },
}

struct Slot {
    tag: u64,
    deadline: Option<Instant>,
    fixup: Fixup,
}

pub(super) struct FaultQueue {
    shared: Arc<Shared>,
    inner: Box<dyn IoQueue>,
    depth: usize,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Write-back runs waiting for room in the inner queue, with their flush's slot.
    backlog: VecDeque<(usize, Run)>,
    /// Write-backs in the inner queue, with their flush's slot; indexed by inner tag.
    writebacks: Vec<Option<(usize, Run)>>,
    writebacks_free: Vec<usize>,
    /// Flushes whose write-backs are done, waiting for room to send the inner flush.
    flush_ready: VecDeque<usize>,
    /// Finished requests and the earliest time they may be reaped.
    out: VecDeque<(Option<Instant>, Completion)>,
    /// Completions reaped from the inner queue, kept for its capacity.
    scratch: Vec<Completion>,
}

impl FaultQueue {
    pub(super) fn new(shared: Arc<Shared>, inner: Box<dyn IoQueue>, depth: usize) -> FaultQueue {
        let slots = (0..depth).map(|_| Slot {
            tag: 0,
            deadline: None,
            fixup: Fixup::None,
        });
        FaultQueue {
            shared,
            scratch: Vec::with_capacity(inner.depth()),
            inner,
            depth,
            slots: slots.collect(),
            free: (0..depth).rev().collect(),
            backlog: VecDeque::new(),
            writebacks: Vec::new(),
            writebacks_free: Vec::new(),
            flush_ready: VecDeque::new(),
            out: VecDeque::with_capacity(depth),
        }
    }

    fn inner_has_room(&self) -> bool {
        self.inner.in_flight() < self.inner.depth()
    }

    /// Sends `op` to the inner queue under a fresh slot; on refusal gives the caller's
    /// request back as it came.
    fn forward(
        &mut self,
        tag: u64,
        op: Op,
        deadline: Option<Instant>,
        fixup: Fixup,
    ) -> Result<(), Rejected> {
        let slot = self
            .free
            .pop()
            .expect("in_flight() < depth leaves a free slot");
        match self.inner.submit(slot as u64, op) {
            Ok(()) => {
                self.slots[slot] = Slot {
                    tag,
                    deadline,
                    fixup,
                };
                Ok(())
            }
            Err(r) => {
                self.free.push(slot);
                let op = match fixup {
                    Fixup::Torn(user_op) => user_op,
                    Fixup::RestoreLba(lba) => with_lba(r.op, lba),
                    _ => r.op,
                };
                Err(Rejected {
                    tag,
                    op,
                    error: r.error,
                })
            }
        }
    }

    /// Carries out a planned write that moved (to `lba`) and/or tore (to `keep` blocks).
    fn forward_write(
        &mut self,
        tag: u64,
        op: Op,
        deadline: Option<Instant>,
        (lba, keep): (u64, u64),
    ) -> Result<(), Rejected> {
        let asked = op.lba().expect("planned for a write");
        if keep == 0 {
            // Nothing landed, yet the device claims success: a lost write.
            self.complete_now(deadline, tag, op, Ok(()));
            return Ok(());
        }
        let bs = self.shared.geometry.block_size as usize;
        let torn = keep as usize * bs < op.bufs().map_or(0, Bufs::len);
        let prefix = if torn {
            prefix_copy(&op, keep as usize * bs, self.shared.geometry.buf_align)
        } else {
            None
        };
        match (prefix, op) {
            (Some(prefix), user_op) => {
                let fua = user_op.fua();
                let op = Op::Write {
                    lba: Lba(lba),
                    bufs: Bufs::One(prefix),
                    fua,
                };
                self.forward(tag, op, deadline, Fixup::Torn(user_op))
            }
            // Moved only, or no memory for the torn copy: then it lands whole rather than
            // failing for a reason the configuration did not ask for.
            (None, op) => {
                let op = with_lba(op, Lba(lba));
                self.forward(tag, op, deadline, Fixup::RestoreLba(asked))
            }
        }
    }

    /// Starts a flush that must write `runs` back first.
    fn start_flush(&mut self, tag: u64, runs: Vec<Run>, deadline: Option<Instant>, state: &State) {
        let slot = self
            .free
            .pop()
            .expect("in_flight() < depth leaves a free slot");
        let fixup = Fixup::Flush {
            pending: runs.len(),
            failed: false,
        };
        self.slots[slot] = Slot {
            tag,
            deadline,
            fixup,
        };
        self.backlog.extend(runs.into_iter().map(|run| (slot, run)));
        self.pump(state);
    }

    /// Moves write-backs and ready flushes into the inner queue while it has room. Runs
    /// under the device lock, so the data written back is the cache content of this moment.
    fn pump(&mut self, state: &State) {
        while self.inner_has_room() {
            let Some((slot, run)) = self.backlog.pop_front() else {
                break;
            };
            match state.cache.resolve(&run) {
                Resolved::Recut(runs) => {
                    self.writeback_done(slot, true, runs.len());
                    for run in runs.into_iter().rev() {
                        self.backlog.push_front((slot, run));
                    }
                }
                Resolved::Current(data) => self.submit_writeback(slot, run, data),
            }
        }
        while self.inner_has_room() {
            let Some(slot) = self.flush_ready.pop_front() else {
                break;
            };
            if let Err(r) = self.inner.submit(slot as u64, Op::Flush) {
                if r.is_queue_full() {
                    self.flush_ready.push_front(slot);
                    break;
                }
                self.finish(
                    slot,
                    Op::Flush,
                    Err(IoError::Media {
                        op: "flush",
                        lba: 0,
                    }),
                );
            }
        }
    }

    fn submit_writeback(&mut self, slot: usize, run: Run, data: Option<Vec<u8>>) {
        let lba = Lba(run.lba);
        let op = match data {
            None => Op::WriteZeroes {
                lba,
                blocks: run.seqs.len() as u64,
                fua: false,
            },
            Some(bytes) => match DmaBuf::alloc(bytes.len(), self.shared.geometry.buf_align) {
                Ok(mut buf) => {
                    buf.copy_from_slice(&bytes);
                    Op::Write {
                        lba,
                        bufs: Bufs::One(buf),
                        fua: false,
                    }
                }
                Err(_) => return self.writeback_done(slot, false, 0),
            },
        };
        let id = self.writebacks_free.pop().unwrap_or_else(|| {
            self.writebacks.push(None);
            self.writebacks.len() - 1
        });
        match self.inner.submit(WRITEBACK | id as u64, op) {
            Ok(()) => self.writebacks[id] = Some((slot, run)),
            Err(r) => {
                self.writebacks_free.push(id);
                if r.is_queue_full() {
                    self.backlog.push_front((slot, run));
                } else {
                    self.writeback_done(slot, false, 0);
                }
            }
        }
    }

    /// One write-back of the flush in `slot` ended (`ok` or not), replaced by `more` new ones.
    fn writeback_done(&mut self, slot: usize, ok: bool, more: usize) {
        let Fixup::Flush { pending, failed } = &mut self.slots[slot].fixup else {
            unreachable!("write-backs belong to flushes");
        };
        *pending = *pending + more - 1;
        *failed |= !ok;
        if *pending > 0 {
            return;
        }
        if *failed {
            self.finish(
                slot,
                Op::Flush,
                Err(IoError::Media {
                    op: "flush",
                    lba: 0,
                }),
            );
        } else {
            self.flush_ready.push_back(slot);
        }
    }

    /// Queues the completion of the request in `slot` and frees the slot.
    fn finish(&mut self, slot: usize, op: Op, result: Result<(), IoError>) {
        let s = &mut self.slots[slot];
        s.fixup = Fixup::None;
        self.out.push_back((
            s.deadline,
            Completion {
                tag: s.tag,
                op,
                result,
            },
        ));
        self.free.push(slot);
    }

    /// Applies a forwarded request's fixup to its inner completion.
    fn complete(&mut self, c: Completion, state: Option<&mut State>) {
        if c.tag & WRITEBACK != 0 {
            let id = (c.tag & !WRITEBACK) as usize;
            let (slot, run) = self.writebacks[id].take().expect("a write-back in flight");
            self.writebacks_free.push(id);
            if let (Ok(()), Some(state)) = (&c.result, state) {
                state.cache.retire(run.lba, &run.seqs);
            }
            return self.writeback_done(slot, c.result.is_ok(), 0);
        }
        let slot = c.tag as usize;
        let (mut op, result) = (c.op, c.result);
        match std::mem::replace(&mut self.slots[slot].fixup, Fixup::None) {
            Fixup::None | Fixup::Flush { .. } => {}
            Fixup::RestoreLba(lba) => op = with_lba(op, lba),
            Fixup::Torn(user_op) => op = user_op,
            Fixup::Read { corrupt, overlay } => {
                if let (Ok(()), Op::Read { bufs, .. }) = (&result, &mut op) {
                    let bs = self.shared.geometry.block_size as usize;
                    if let Some(overlay) = &overlay {
                        VolatileCache::apply_overlay(overlay, bufs, bs);
                    }
                    if let Some(seed) = corrupt {
                        corrupt_bytes(bufs, seed);
                    }
                }
            }
        }
        self.finish(slot, op, result);
    }

    /// After a crash nothing more reaches the inner device: pending write-backs and
    /// flushes end here (and report `Removed` when reaped).
    fn abandon_writebacks(&mut self) {
        while let Some((slot, _)) = self.backlog.pop_front() {
            self.writeback_done(slot, false, 0);
        }
        while let Some(slot) = self.flush_ready.pop_front() {
            self.finish(slot, Op::Flush, Err(IoError::Removed));
        }
    }

    /// Queues a completion the wrapper decided by itself (nothing reached the inner device).
    fn complete_now(
        &mut self,
        deadline: Option<Instant>,
        tag: u64,
        op: Op,
        result: Result<(), IoError>,
    ) {
        self.out
            .push_back((deadline, Completion { tag, op, result }));
    }

    /// Plans a valid request and carries the plan out.
    fn plan_and_submit(&mut self, tag: u64, op: Op, blocks: u64) -> Result<(), Rejected> {
        let shared = Arc::clone(&self.shared);
        // Held until the request is in the inner queue: inner submission order is then the
        // order of the cache decisions, so a write-back never overtakes a newer write.
        let mut state = shared.lock();
        if shared.crashed() {
            self.complete_now(None, tag, op, Err(IoError::Removed));
            return Ok(());
        }
        let plan = state.plan(&shared.config, shared.geometry.block_count, &op, blocks);
        let deadline =
            (plan.delay_us > 0).then(|| Instant::now() + Duration::from_micros(plan.delay_us));
        match plan.action {
            Action::Fail => {
                let result = Err(op.media_error());
                self.complete_now(deadline, tag, op, result);
            }
            Action::Cached => self.complete_now(deadline, tag, op, Ok(())),
            Action::Forward => return self.forward(tag, op, deadline, Fixup::None),
            Action::Read { corrupt, overlay } => {
                return self.forward(tag, op, deadline, Fixup::Read { corrupt, overlay })
            }
            Action::Write { lba, keep } => {
                return self.forward_write(tag, op, deadline, (lba, keep))
            }
            Action::Flush { runs } => self.start_flush(tag, runs, deadline, &state),
        }
        Ok(())
    }

    /// Moves completions whose deadline passed to `done`, keeping their order.
    fn release(&mut self, done: &mut Vec<Completion>, crashed: bool) -> usize {
        let now = self.out.iter().any(|(d, _)| d.is_some()).then(Instant::now);
        let mut n = 0;
        for _ in 0..self.out.len() {
            let (deadline, mut c) = self.out.pop_front().expect("counted");
            if deadline.is_some_and(|d| now.is_some_and(|now| d > now)) {
                self.out.push_back((deadline, c));
                continue;
            }
            if crashed {
                c.result = Err(IoError::Removed);
            }
            done.push(c);
            n += 1;
        }
        n
    }
}

impl IoQueue for FaultQueue {
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
        if self.in_flight() >= self.depth {
            return Err(Rejected {
                tag,
                op,
                error: SubmitError::QueueFull,
            });
        }
        let blocks = match validate::check(&self.shared.geometry, &op) {
            Ok(blocks) => blocks,
            Err(e) => {
                return Err(Rejected {
                    tag,
                    op,
                    error: e.into(),
                })
            }
        };
        if self.shared.crashed() {
            self.complete_now(None, tag, op, Err(IoError::Removed));
            return Ok(());
        }
        if self.shared.inert {
            return self.forward(tag, op, None, Fixup::None);
        }
        // Refuse before planning, so a request retried after `QueueFull` is planned once.
        if !self.inner_has_room() {
            return Err(Rejected {
                tag,
                op,
                error: SubmitError::QueueFull,
            });
        }
        self.plan_and_submit(tag, op, blocks)
    }

    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        let crashed = self.shared.crashed();
        let mut reaped = std::mem::take(&mut self.scratch);
        self.inner.poll(&mut reaped);
        // Only write-backs need the device state: the common path stays lock-free.
        let writing_back = !self.backlog.is_empty()
            || !self.flush_ready.is_empty()
            || self.writebacks.iter().any(Option::is_some);
        if writing_back {
            let shared = Arc::clone(&self.shared);
            let mut state = shared.lock();
            for c in reaped.drain(..) {
                self.complete(c, Some(&mut state));
            }
            if !crashed {
                self.pump(&state);
            }
        } else {
            for c in reaped.drain(..) {
                self.complete(c, None);
            }
        }
        if crashed {
            self.abandon_writebacks();
        }
        self.scratch = reaped;
        self.release(done, crashed)
    }

    fn in_flight(&self) -> usize {
        self.depth - self.free.len() + self.out.len()
    }

    fn depth(&self) -> usize {
        self.depth
    }
}

fn with_lba(op: Op, lba: Lba) -> Op {
    match op {
        Op::Write { bufs, fua, .. } => Op::Write { lba, bufs, fua },
        other => other,
    }
}

/// A new buffer holding the first `len` bytes of a write's data.
fn prefix_copy(op: &Op, len: usize, align: usize) -> Option<DmaBuf> {
    let bufs = op.bufs()?;
    let mut copy = DmaBuf::alloc(len, align).ok()?;
    let mut at = 0;
    for seg in bufs.segments() {
        let n = seg.len().min(len - at);
        copy[at..at + n].copy_from_slice(&seg[..n]);
        at += n;
        if at == len {
            break;
        }
    }
    Some(copy)
}

/// Flips 1 to 4 consecutive bytes (each to a different value) at a place drawn from `seed`.
fn corrupt_bytes(bufs: &mut Bufs, seed: u64) {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let total = bufs.len() as u64;
    let flips = 1 + rng.below(4);
    let start = rng.below(total);
    for i in 0..flips {
        let mut at = ((start + i) % total) as usize;
        let mask = 1 + rng.below(255) as u8;
        for seg in bufs.segments_mut() {
            if at < seg.len() {
                seg[at] ^= mask;
                break;
            }
            at -= seg.len();
        }
    }
}
