//! Async I/O for any executor: [`AsyncFs`] and [`AsyncFile`], whose calls return
//! [`Pending`] futures that tokio, async-std, `futures::executor` or a hand-written executor
//! can await. Nothing here knows any executor: a request goes over a channel to one of the
//! handle's polling threads, and its completion wakes the caller's `Waker`.
//!
//! # Two ways to do I/O, and what each costs
//! - **Native, per thread** ([`Context`](crate::Context) with [`File`](crate::File)'s calls
//!   and their `*_async` forms): the calling thread owns a device queue and runs the
//!   requests itself, run-to-completion like an SPDK reactor. No thread hop, no lock, no
//!   allocation per request; its futures run only on that context's own executor
//!   (`Context::block_on`, `Context::exec().spawn`). The fast path: use it for a thread per
//!   core that does its own I/O.
//! - **Async handle** (this module): for code on another executor. Each request costs a
//!   channel send and a doorbell ring to a polling thread, a boxed task there, and a wake of
//!   the caller's task when it answers: two cross-thread hand-offs and a few small
//!   allocations per request, and the polling threads' CPU on top of the executor's. The
//!   hand-offs dominate: a caller whose runtime parks between completions is woken (a futex
//!   wake and a context switch) for most requests. `examples/randread.rs` measures both
//!   paths; `docs/BENCHMARKS.md` has its numbers.
//!
//! # Invariants
//! - A request is sent when the call is made, not when its future is first polled; the
//!   [`Pending`] only waits for the answer. Dropping it never cancels or tears a request:
//!   buffers are owned by the request (moved in, handed back in the answer), the request
//!   runs to completion on its polling thread, and an unwanted answer is dropped there.
//! - Every request that was sent is answered: if it panicked, or its thread is gone, the
//!   answer is an [`Error::Io`](crate::Error::Io) saying so, never a future that waits
//!   forever. A synchronous call that panics ends only itself, not its thread.
//! - A polling thread sleeps when it has nothing to run; while requests run it polls the
//!   device as a native context does (spinning, then yielding), taking new requests at
//!   each turn.
//! - The synchronous calls (open, fsync, the namespace) run on a polling thread one at a
//!   time, and that thread's reads and writes go on during them; requests in flight at once
//!   complete in any order.
//! - Dropping the last handle (the [`AsyncFs`], its clones and its files) waits for the
//!   requests sent and for the threads to end (`worker.rs`).
//!
//! If you change how requests reach the threads, update this comment and `worker.rs`'s.

mod file;
mod fs;
mod reply;
mod worker;

pub use file::AsyncFile;
pub use fs::AsyncFs;
pub use reply::Pending;
