//! [`ExecQueue`]: an [`IoQueue`] over a device of a [`Context`], for synchronous code.
//!
//! Synchronous code speaks `IoQueue`: submit, then poll until done (cow's B-tree reads and
//! commits, a filesystem's log record). An `ExecQueue` lets it do so through the context's
//! own device queue rather than a second queue of its own: its requests take slots of the
//! context's slot table and are staged, merged and submitted with the futures' requests, and
//! its `poll` turns the context's queues as the executor's loop does. One thread then has one
//! I/O engine however it makes its requests.
//!
//! Invariants:
//! - a view hands back only its own requests, with the tags given to its `submit`; the
//!   futures' requests it reaps go to their slots and wake their futures, as `block_on`'s
//!   loop does. Tags are the caller's: any `u64`, reused freely, never seen by the device;
//! - at most `depth` of its requests are made and not yet handed back; one more is refused
//!   with `QueueFull`. The device queue's own depth is shared with the futures and waited
//!   out by staging, as theirs is;
//! - a request that fails the checks every backend makes (block-sized, aligned, on the
//!   device) is given back by `submit` as `Rejected`, as a device's queue would give it back;
//!   one that passes them and is refused by the device later completes with that error;
//! - it may be used from inside a future this context runs (a filesystem's
//!   `IomapOps::begin` reads B-tree nodes in the middle of `block_on`): each method takes the
//!   context's `RefCell`s only for its own duration, and the executor holds none of those
//!   while it polls a future (`exec`'s invariants). It polls no future and runs no task:
//!   those it wakes run when the executor's loop turns next. It must not be used from inside
//!   a waker (a waker runs while the slot table is borrowed);
//! - a view dropped with requests in flight abandons them, as a dropped `IoFuture` does:
//!   they still go to the device, and their slots (and buffers) are freed when they
//!   complete. Dropping never blocks.

use crate::device::{Completion, IoQueue, Op, Rejected};
use crate::error::{BdevError, SubmitError};
use crate::types::Geometry;

use super::context::{Context, DevId};

/// A synchronous [`IoQueue`] view of one device of a [`Context`]; made by
/// [`Context::queue`]. Holds a handle to the context, so it may outlive the `Context` value
/// it came from (not the thread: it is `!Send`).
pub struct ExecQueue {
    ctx: Context,
    dev: DevId,
    geometry: Geometry,
    depth: usize,
    /// This view's requests made and not yet handed back: (slot, the caller's tag).
    pending: Vec<(usize, u64)>,
}

impl Context {
    /// A synchronous [`IoQueue`](crate::IoQueue) of at most `depth` requests on the attached
    /// device `dev`, for code that submits and polls rather than awaits (B-tree reads, a
    /// commit, a log record), even from inside a future this context runs. Its requests go
    /// through `dev`'s queue, slot table and staging with the futures' requests; see
    /// [`ExecQueue`].
    pub fn queue(&self, dev: DevId, depth: usize) -> Result<ExecQueue, BdevError> {
        let geometry = self
            .inner
            .devs
            .borrow()
            .get(usize::from(dev.0))
            .map(|d| d.geometry);
        let geometry = geometry
            .ok_or_else(|| BdevError::Config(format!("no device {} on this context", dev.0)))?;
        if depth == 0 {
            return Err(BdevError::Config(
                "an exec queue's depth must be positive".into(),
            ));
        }
        Ok(ExecQueue::new(self.clone(), dev, geometry, depth))
    }
}

impl ExecQueue {
    pub(super) fn new(ctx: Context, dev: DevId, geometry: Geometry, depth: usize) -> ExecQueue {
        ExecQueue {
            ctx,
            dev,
            geometry,
            depth,
            pending: Vec::with_capacity(depth),
        }
    }

    /// The device this view makes its requests on.
    pub fn dev(&self) -> DevId {
        self.dev
    }

    /// The context this view belongs to.
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

impl IoQueue for ExecQueue {
    /// Stages `op` on the context's device, to be handed to the device queue with the
    /// futures' requests at the next turn (this view's `poll`, or the executor's loop).
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
        if self.pending.len() >= self.depth {
            return Err(Rejected {
                tag,
                op,
                error: SubmitError::QueueFull,
            });
        }
        if let Err(e) = crate::validate::check(&self.geometry, &op) {
            return Err(Rejected {
                tag,
                op,
                error: SubmitError::Rejected(e),
            });
        }
        let inner = &self.ctx.inner;
        let slot = inner.slots.borrow_mut().alloc_unwoken();
        inner.devs.borrow_mut()[usize::from(self.dev.0)]
            .staged
            .push_back((slot, op));
        self.pending.push((slot, tag));
        Ok(())
    }

    /// Turns the context's queues once ([`Context::poll_queues`]: submits what is staged,
    /// reaps every device, wakes the futures whose requests finished), then appends this
    /// view's finished requests to `done`, in no particular order.
    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        self.ctx.poll_queues();
        if self.pending.is_empty() {
            return 0;
        }
        let mut slots = self.ctx.inner.slots.borrow_mut();
        let mut n = 0;
        let mut i = 0;
        while i < self.pending.len() {
            let (slot, tag) = self.pending[i];
            match slots.take_done(slot) {
                Some((op, result)) => {
                    self.pending.swap_remove(i);
                    done.push(Completion { tag, op, result });
                    n += 1;
                }
                None => i += 1,
            }
        }
        n
    }

    fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn depth(&self) -> usize {
        self.depth
    }

    /// Sleeps in the device queue's `wait` when every request of this view still to finish
    /// is in the device queue (none staged, none finished and not yet handed back): then a
    /// completion is coming. Futures woken meanwhile wait too; they could not run before this
    /// synchronous caller returns anyway.
    fn wait(&mut self) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        {
            let slots = self.ctx.inner.slots.borrow();
            if self.pending.iter().any(|&(slot, _)| slots.is_done(slot)) {
                return false;
            }
        }
        let mut devs = self.ctx.inner.devs.borrow_mut();
        let dev = &mut devs[usize::from(self.dev.0)];
        if !dev.staged.is_empty() {
            return false;
        }
        dev.queue.wait()
    }

    /// 0: the context already merges this view's adjacent writes (with each other and with
    /// the futures'), up to the device queue's limit.
    fn merge_limit(&self) -> usize {
        0
    }
}

impl Drop for ExecQueue {
    fn drop(&mut self) {
        let mut slots = self.ctx.inner.slots.borrow_mut();
        for (slot, _) in self.pending.drain(..) {
            slots.abandon(slot);
        }
    }
}
