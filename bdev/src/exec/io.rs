//! Requests: the slot table and the per-device staging list.

use std::collections::VecDeque;
use std::task::Waker;

use crate::device::{Bufs, Completion, IoQueue, Op};
use crate::error::{IoError, SubmitError};
use crate::types::{Geometry, Lba};

/// What a request resolves to: the request (with its buffers) and its outcome.
pub(super) type Outcome = (Op, Result<(), IoError>);

/// Set in the tag of a request made of merged writes; the other bits index `Merges::parts`.
const MERGED: u64 = 1 << 63;

/// The most writes merged into one request.
const MAX_MERGED: usize = 64;

/// A device attached to a context: its queue and the requests waiting for it.
pub(super) struct Dev {
    pub(super) name: String,
    pub(super) geometry: Geometry,
    pub(super) queue: Box<dyn IoQueue>,
    /// Requests made and not yet accepted by the queue, in order: (slot, request).
    pub(super) staged: VecDeque<(usize, Op)>,
    pub(super) peak_in_flight: usize,
    /// Requests accepted by the queue, each write of a merged one counted.
    pub(super) submitted: u64,
    /// Writes accepted as part of a merged request.
    pub(super) merged_writes: u64,
    merges: Merges,
}

/// Writes staged back to back for adjacent blocks, handed to the queue as one vectored write
/// ([`IoQueue::merge_limit`]), as a block layer's plug merges them. Each part keeps its own
/// slot: the merged request's outcome (success, or the error, for every part) and its
/// buffers go back to the parts' futures as if each had been sent alone.
#[derive(Default)]
struct Merges {
    /// Bytes the queue takes merged (0: no merging).
    limit: usize,
    /// By the index in a merged request's tag: each part's slot and blocks, in device order.
    parts: Vec<Vec<(usize, u64)>>,
    /// Free indexes of `parts`.
    free: Vec<usize>,
    /// Writes in the queue beyond one per merged request.
    extra_in_flight: usize,
}

impl Merges {
    /// The part lists of finished merges are kept for reuse.
    fn new_index(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.parts.push(Vec::new());
            self.parts.len() - 1
        })
    }

    /// Gives each part of the merged request `tag` its own write and calls `each` with its
    /// slot, in device order. `tag` must be a merged request's and `op` its write.
    fn split(&mut self, tag: u64, op: Op, mut each: impl FnMut(usize, Op)) -> usize {
        let idx = (tag & !MERGED) as usize;
        let Op::Write {
            lba,
            bufs: Bufs::Many(bufs),
            fua,
        } = op
        else {
            unreachable!("merged requests are vectored writes");
        };
        let mut at = lba.0;
        let n = self.parts[idx].len();
        for ((slot, blocks), buf) in self.parts[idx].drain(..).zip(bufs) {
            let part = Op::Write {
                lba: Lba(at),
                bufs: Bufs::One(buf),
                fua,
            };
            each(slot, part);
            at += blocks;
        }
        self.free.push(idx);
        n
    }
}

/// The block count of a single-buffer write the executor may merge, if `op` is one and
/// valid for `geo` (an invalid request goes alone, so its error stays its own).
fn mergeable(geo: &Geometry, op: &Op) -> Option<u64> {
    match op {
        Op::Write {
            bufs: Bufs::One(_), ..
        } => crate::validate::check(geo, op).ok(),
        _ => None,
    }
}

impl Dev {
    pub(super) fn new(name: String, geometry: Geometry, queue: Box<dyn IoQueue>) -> Dev {
        let depth = queue.depth();
        let merges = Merges {
            limit: queue.merge_limit(),
            ..Merges::default()
        };
        Dev {
            name,
            geometry,
            queue,
            staged: VecDeque::with_capacity(depth),
            peak_in_flight: 0,
            submitted: 0,
            merged_writes: 0,
            merges,
        }
    }

    /// Hands the staged requests to the queue, back to back and in order, until it is full.
    pub(super) fn submit_staged(&mut self, slots: &mut Slots) {
        while let Some((i, op)) = self.staged.pop_front() {
            let (tag, op, n) = self.merge_staged(i, op);
            match self.queue.submit(tag, op) {
                Ok(()) => {
                    self.submitted += n;
                    if n > 1 {
                        self.merged_writes += n;
                        self.merges.extra_in_flight += n as usize - 1;
                    }
                }
                Err(r) => match r.error {
                    SubmitError::QueueFull => {
                        if tag & MERGED == 0 {
                            self.staged.push_front((i, r.op));
                        } else {
                            let mut back = Vec::new();
                            self.merges
                                .split(tag, r.op, |slot, op| back.push((slot, op)));
                            for p in back.into_iter().rev() {
                                self.staged.push_front(p);
                            }
                        }
                        break;
                    }
                    SubmitError::Rejected(e) => {
                        finish(&mut self.merges, slots, tag, r.op, Err(e), false)
                    }
                },
            }
        }
        let queued = self.queue.in_flight() + self.merges.extra_in_flight;
        self.peak_in_flight = self.peak_in_flight.max(queued);
    }

    /// `op` (slot `i`), merged with the writes staged right after it that continue it on the
    /// device, as far as the queue's merge limit allows: `(tag, request, writes in it)`.
    fn merge_staged(&mut self, i: usize, op: Op) -> (u64, Op, u64) {
        let limit = self.merges.limit as u64;
        let first = (limit > 0)
            .then(|| mergeable(&self.geometry, &op))
            .flatten();
        let (Some(blocks), Op::Write { lba, fua, .. }) = (first, &op) else {
            return (i as u64, op, 1);
        };
        let (lba, fua) = (*lba, *fua);
        let bs = u64::from(self.geometry.block_size);
        let (mut end, mut bytes, mut more) = (lba.0 + blocks, blocks * bs, 0);
        for (_, next) in self.staged.iter().take(MAX_MERGED - 1) {
            match next {
                Op::Write { lba: l, fua: f, .. } if l.0 == end && *f == fua => {}
                _ => break,
            }
            match mergeable(&self.geometry, next) {
                Some(b) if bytes + b * bs <= limit => {
                    end += b;
                    bytes += b * bs;
                    more += 1;
                }
                _ => break,
            }
        }
        if more == 0 {
            return (i as u64, op, 1);
        }
        let idx = self.merges.new_index();
        let parts = &mut self.merges.parts[idx];
        let mut bufs = Vec::with_capacity(more + 1);
        let mut take = |slot: usize, op: Op| {
            let Op::Write {
                bufs: Bufs::One(buf),
                ..
            } = op
            else {
                unreachable!("only single-buffer writes are merged")
            };
            parts.push((slot, buf.len() as u64 / bs));
            bufs.push(buf);
        };
        take(i, op);
        for _ in 0..more {
            let (slot, next) = self.staged.pop_front().expect("counted above");
            take(slot, next);
        }
        let op = Op::Write {
            lba,
            bufs: Bufs::Many(bufs),
            fua,
        };
        (MERGED | idx as u64, op, more as u64 + 1)
    }

    /// Reaps the queue and hands every outcome to its slot; returns how many were reaped.
    /// `reaped` is scratch space, empty on return.
    pub(super) fn reap(&mut self, slots: &mut Slots, reaped: &mut Vec<Completion>) -> usize {
        let n = self.queue.poll(reaped);
        for c in reaped.drain(..) {
            finish(&mut self.merges, slots, c.tag, c.op, c.result, true);
        }
        n
    }

    /// Requests made and not yet handed back: staged or in the queue (each write of a
    /// merged request counted).
    pub(super) fn in_flight(&self) -> usize {
        self.queue.in_flight() + self.merges.extra_in_flight + self.staged.len()
    }
}

/// Hands the outcome of the request `tag` to its slot, or to each of its parts' slots.
/// `reaped`: it came from the queue (not refused by it).
fn finish(
    merges: &mut Merges,
    slots: &mut Slots,
    tag: u64,
    op: Op,
    result: Result<(), IoError>,
    reaped: bool,
) {
    if tag & MERGED == 0 {
        slots.finish(tag as usize, op, result);
        return;
    }
    let n = merges.split(tag, op, |slot, part| {
        slots.finish(slot, part, result.clone())
    });
    if reaped {
        merges.extra_in_flight -= n - 1;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    /// The request is staged or in the queue.
    Waiting,
    /// The outcome is in the slot, for its future to take.
    Done,
    /// The future was dropped while its request was staged or in flight.
    Abandoned,
}

/// One request's place in the table. The waker outlives the request: a future that makes
/// its next request in the poll that took the last outcome gets the same slot back (the free
/// list is LIFO) and its waker needs no clone.
struct Slot {
    state: SlotState,
    waker: Option<Waker>,
    outcome: Option<Outcome>,
}

/// The slot table: a request's tag is its slot index.
#[derive(Default)]
pub(super) struct Slots {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

impl Slots {
    /// A slot for a request whose future `waker` wakes.
    pub(super) fn alloc(&mut self, waker: &Waker) -> usize {
        let i = self.alloc_waiting();
        note_waker(&mut self.slots[i].waker, waker);
        i
    }

    /// A slot for a request no future waits on (an [`ExecQueue`](super::ExecQueue)'s, found
    /// by polling): its completion wakes nobody. The waker a future left in the slot goes,
    /// or it would be woken for a request that is not its own.
    pub(super) fn alloc_unwoken(&mut self) -> usize {
        let i = self.alloc_waiting();
        self.slots[i].waker = None;
        i
    }

    fn alloc_waiting(&mut self) -> usize {
        let i = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                state: SlotState::Free,
                waker: None,
                outcome: None,
            });
            self.slots.len() - 1
        });
        self.slots[i].state = SlotState::Waiting;
        i
    }

    fn release(&mut self, i: usize) {
        self.slots[i].state = SlotState::Free;
        self.free.push(i);
    }

    /// Hands the outcome of slot `i`'s request to its future and wakes it.
    pub(super) fn finish(&mut self, i: usize, op: Op, result: Result<(), IoError>) {
        let slot = &mut self.slots[i];
        match slot.state {
            SlotState::Waiting => {
                slot.outcome = Some((op, result));
                slot.state = SlotState::Done;
                if let Some(w) = &slot.waker {
                    w.wake_by_ref();
                }
            }
            SlotState::Abandoned => self.release(i),
            SlotState::Free | SlotState::Done => {
                panic!("exec: completion for tag {i}, which has no request in flight")
            }
        }
    }

    /// The outcome of slot `i`, freeing the slot; `None` (and `waker` noted) while waiting.
    pub(super) fn take(&mut self, i: usize, waker: &Waker) -> Option<Outcome> {
        let outcome = self.take_done(i);
        if outcome.is_none() {
            note_waker(&mut self.slots[i].waker, waker);
        }
        outcome
    }

    /// The outcome of slot `i` if it is there, freeing the slot; `None` while waiting.
    pub(super) fn take_done(&mut self, i: usize) -> Option<Outcome> {
        let slot = &mut self.slots[i];
        match slot.state {
            SlotState::Waiting => None,
            SlotState::Done => {
                // Freed first, so the outcome moves straight into the return value.
                slot.state = SlotState::Free;
                self.free.push(i);
                slot.outcome.take()
            }
            SlotState::Free | SlotState::Abandoned => panic!("exec: slot {i} lost its request"),
        }
    }

    /// Slots not free: requests in flight, outcomes not taken, abandoned requests.
    #[cfg(test)]
    pub(super) fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether the outcome of slot `i` is there to take.
    pub(super) fn is_done(&self, i: usize) -> bool {
        self.slots[i].state == SlotState::Done
    }

    /// The owner of slot `i` went away: free the slot now or when the request completes.
    pub(super) fn abandon(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        match slot.state {
            SlotState::Done => {
                slot.outcome = None;
                self.release(i);
            }
            _ => slot.state = SlotState::Abandoned,
        }
    }
}

/// Keeps `waker` in `slot`, cloning it only when it is not the one there already.
fn note_waker(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}
