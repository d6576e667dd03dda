//! `exec`: the per-thread execution context and its small local executor.
//!
//! A [`Context`] owns one [`IoQueue`](crate::IoQueue) per attached device and drives Rust
//! futures on the caller's thread, run-to-completion like an SPDK reactor: no helper threads,
//! no interrupts, the thread polls its own queues. [`Context::io`] turns one request into a
//! future; [`Context::block_on`] runs a future (and every spawned task) until it is done,
//! polling the queues in between, so a synchronous call is `ctx.block_on(op_future)` and one
//! thread keeps as many requests in flight as it has futures (128 concurrent futures: queue
//! depth 128). Synchronous code that submits and polls instead (B-tree reads, commits) gets
//! an [`ExecQueue`] from [`Context::queue`]: an `IoQueue` whose requests go through the same
//! device queue, slot table and staging as the futures', so a thread has one I/O engine.
//!
//! One turn of the reactor: poll the futures that were woken, hand every request they made
//! to its queue back to back, reap the queues and wake the futures whose requests finished.
//! Requests are staged during the turn and submitted together at its end, the way a
//! userspace NVMe driver rings one doorbell per batch: the device (for `mem`, its memory
//! copies) then sees a burst rather than requests spread between bookkeeping.
//!
//! Invariants:
//! - every request a future or an `ExecQueue` makes owns one slot of the slot table, found
//!   again by its tag; the slot is freed only when the outcome has been handed to its owner,
//!   or dropped if the owner went away first (the buffers are then released after the device
//!   is done with them). A request is submitted even if its owner is dropped meanwhile;
//! - staged requests go to their queue in the order they were made; one refused with
//!   `QueueFull` stays first in line until the next reap, one refused as invalid completes
//!   with that error;
//! - nothing here holds a `RefCell` borrow while polling a user future, so futures may call
//!   back into the context (submit, spawn, an `ExecQueue`'s submit and poll) freely; the one
//!   exception is `running`, held by `run_ready` while it polls tasks, so a task must not call
//!   `block_on` or `run_until_idle`. Wakers run while the slot table is borrowed and must not
//!   call back into the context;
//! - only woken futures are polled: a spawned task and each child of [`join_all`] has its
//!   own waker;
//! - steady state allocates nothing per I/O: slots, staging lists and wakers are reused.
//!
//! `Context` is `!Send` (it holds `Rc`s and the queues, which belong to one thread).

mod context;
mod io;
mod join;
mod queue;
#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod tests;

pub use context::{Context, DevId, IoFuture};
pub use join::{join_all, yield_now, JoinAll};
pub use queue::ExecQueue;
