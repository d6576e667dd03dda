//! Requests: the slot table, the per-device staging list, and the future of one request.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Poll, Waker};

use super::context::{Context, DevId};
use crate::device::{Completion, IoQueue, Op};
use crate::error::{IoError, SubmitError};
use crate::types::Geometry;

/// What a request resolves to: the request (with its buffers) and its outcome.
pub(super) type Outcome = (Op, Result<(), IoError>);

/// A device attached to a context: its queue and the requests waiting for it.
pub(super) struct Dev {
    pub(super) name: String,
    pub(super) geometry: Geometry,
    pub(super) queue: Box<dyn IoQueue>,
    /// Requests made and not yet accepted by the queue, in order: (slot, request).
    pub(super) staged: VecDeque<(usize, Op)>,
    pub(super) peak_in_flight: usize,
    pub(super) submitted: u64,
}

impl Dev {
    pub(super) fn new(name: String, geometry: Geometry, queue: Box<dyn IoQueue>) -> Dev {
        let depth = queue.depth();
        Dev {
            name,
            geometry,
            queue,
            staged: VecDeque::with_capacity(depth),
            peak_in_flight: 0,
            submitted: 0,
        }
    }

    /// Hands the staged requests to the queue, back to back and in order, until it is full.
    pub(super) fn submit_staged(&mut self, slots: &mut Slots) {
        while let Some((i, op)) = self.staged.pop_front() {
            match self.queue.submit(i as u64, op) {
                Ok(()) => self.submitted += 1,
                Err(r) => match r.error {
                    SubmitError::QueueFull => {
                        self.staged.push_front((i, r.op));
                        break;
                    }
                    SubmitError::Rejected(e) => slots.finish(i, r.op, Err(e)),
                },
            }
        }
        self.peak_in_flight = self.peak_in_flight.max(self.queue.in_flight());
    }

    /// Reaps the queue and hands every outcome to its slot; returns how many were reaped.
    /// `reaped` is scratch space, empty on return.
    pub(super) fn reap(&mut self, slots: &mut Slots, reaped: &mut Vec<Completion>) -> usize {
        let n = self.queue.poll(reaped);
        for c in reaped.drain(..) {
            slots.finish(c.tag as usize, c.op, c.result);
        }
        n
    }

    /// Requests made and not yet handed back: staged or in the queue.
    pub(super) fn in_flight(&self) -> usize {
        self.queue.in_flight() + self.staged.len()
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
    fn alloc(&mut self, waker: &Waker) -> usize {
        let i = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                state: SlotState::Free,
                waker: None,
                outcome: None,
            });
            self.slots.len() - 1
        });
        let slot = &mut self.slots[i];
        slot.state = SlotState::Waiting;
        note_waker(&mut slot.waker, waker);
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
    fn take(&mut self, i: usize, waker: &Waker) -> Option<Outcome> {
        let slot = &mut self.slots[i];
        match slot.state {
            SlotState::Waiting => {
                note_waker(&mut slot.waker, waker);
                None
            }
            SlotState::Done => {
                // Freed first, so the outcome moves straight into the return value.
                slot.state = SlotState::Free;
                self.free.push(i);
                slot.outcome.take()
            }
            SlotState::Free | SlotState::Abandoned => panic!("exec: slot {i} lost its request"),
        }
    }

    /// The future of slot `i` went away: free the slot now or when the request completes.
    fn abandon(&mut self, i: usize) {
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

enum IoState {
    New(Op),
    Made(usize),
    Finished,
}

/// The future of one request; see [`Context::io`].
pub struct IoFuture<'a> {
    ctx: &'a Context,
    dev: DevId,
    state: IoState,
}

impl<'a> IoFuture<'a> {
    pub(super) fn new(ctx: &'a Context, dev: DevId, op: Op) -> IoFuture<'a> {
        IoFuture {
            ctx,
            dev,
            state: IoState::New(op),
        }
    }
}

impl Future for IoFuture<'_> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Outcome> {
        let this = &mut *self;
        let inner = &this.ctx.inner;
        match std::mem::replace(&mut this.state, IoState::Finished) {
            IoState::New(op) => {
                let i = inner.slots.borrow_mut().alloc(cx.waker());
                inner.devs.borrow_mut()[usize::from(this.dev.0)]
                    .staged
                    .push_back((i, op));
                this.state = IoState::Made(i);
                Poll::Pending
            }
            IoState::Made(i) => match inner.slots.borrow_mut().take(i, cx.waker()) {
                Some(outcome) => Poll::Ready(outcome),
                None => {
                    this.state = IoState::Made(i);
                    Poll::Pending
                }
            },
            IoState::Finished => panic!("IoFuture polled after completion"),
        }
    }
}

impl Drop for IoFuture<'_> {
    fn drop(&mut self) {
        if let IoState::Made(i) = self.state {
            self.ctx.inner.slots.borrow_mut().abandon(i);
        }
    }
}
