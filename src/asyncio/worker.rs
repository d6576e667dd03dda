//! The polling threads behind an async handle: each owns one filesystem [`Context`] and
//! runs the requests sent to it through a channel.
//!
//! A polling thread's loop:
//! - idle (no request running), it sleeps in the channel's `recv`: an idle handle costs no
//!   CPU;
//! - a [`Job::Spawn`] (reads and writes) becomes a task of its context's executor, so one
//!   thread keeps many requests in flight, as a native caller of the `*_async` calls does;
//! - a [`Job::Call`] (open, fsync, namespace calls: fs-core's synchronous API, which runs
//!   its own `block_on`) runs on the thread itself, between turns of the executor; the
//!   tasks in flight keep running inside that call's `block_on`;
//! - while tasks run, the executor's `block_on` runs a future that takes new requests off
//!   the channel; a sender rings the thread's [`Doorbell`] (that future's waker), so a
//!   request sent meanwhile is taken on the executor's next turn.
//!
//! A thread ends when every sender is gone and its last task has finished, so no request
//! that was sent is lost: dropping the handles waits for them (`Lanes`' `Drop`).

use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread::JoinHandle;

use fs_core::{Context, Error, Filesystem, Result};

/// A task of a polling thread's executor (not `Send`: it lives on that thread).
pub(crate) type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// A synchronous request: runs on the polling thread, blocking it until it returns.
pub(crate) type CallFn = Box<dyn FnOnce(&Filesystem, &Context) + Send>;

/// An asynchronous request: makes, on the polling thread, the task that runs it.
pub(crate) type SpawnFn = Box<dyn FnOnce(&Filesystem, &Context) -> LocalTask + Send>;

/// One request, as sent to a polling thread.
pub(crate) enum Job {
    /// Runs on the polling thread, blocking it until it returns.
    Call(CallFn),
    /// Makes a task that the polling thread's executor runs among the others.
    Spawn(SpawnFn),
}

/// Wakes a polling thread that is inside `block_on` (its waker there sets a flag the
/// executor checks every turn). A thread sleeping in `recv` needs no bell: the send wakes it.
#[derive(Default)]
struct Doorbell {
    waker: Mutex<Option<Waker>>,
}

impl Doorbell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.waker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ring(&self) {
        if let Some(w) = &*self.lock() {
            w.wake_by_ref();
        }
    }

    fn listen(&self, w: &Waker) {
        let mut slot = self.lock();
        if !slot.as_ref().is_some_and(|old| old.will_wake(w)) {
            *slot = Some(w.clone());
        }
    }
}

struct Lane {
    tx: Sender<Job>,
    bell: Arc<Doorbell>,
}

/// The polling threads of one handle and the channels to them. Requests go to the threads
/// in turn; dropping this (with the last handle) closes the channels and waits for the
/// threads to finish what they were sent.
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
    threads: Vec<JoinHandle<()>>,
}

impl Lanes {
    /// Starts `threads` polling threads on `fs`; fails if a thread or its context cannot
    /// be made (the threads already started end).
    pub(crate) fn start(fs: &Filesystem, threads: usize) -> Result<Lanes> {
        if threads == 0 {
            return Err(Error::Invalid(
                "an async handle needs at least one polling thread".into(),
            ));
        }
        let mut lanes = Lanes {
            lanes: Vec::with_capacity(threads),
            next: AtomicUsize::new(0),
            threads: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let (tx, rx) = mpsc::channel();
            let bell = Arc::new(Doorbell::default());
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let fs = fs.clone();
            let thread_bell = Arc::clone(&bell);
            let t = std::thread::Builder::new()
                .name(format!("bypassfs-async-{i}"))
                .spawn(move || match fs.context() {
                    Ok(ctx) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(&fs, &ctx, &rx, &thread_bell);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                })
                .map_err(|e| Error::Io(format!("starting polling thread {i}: {e}")))?;
            lanes.threads.push(t);
            lanes.lanes.push(Lane { tx, bell });
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Error::Io(format!("polling thread {i} ended at start"))),
            }
        }
        Ok(lanes)
    }

    /// Sends `job` to the next thread in turn. A job that cannot be sent (its thread is gone)
    /// is dropped here, which answers its caller with an error (`Reply`'s `Drop`).
    pub(crate) fn send(&self, job: Job) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        self.send_to(i, job);
    }

    /// Sends `job` to thread `i`.
    pub(crate) fn send_to(&self, i: usize, job: Job) {
        let lane = &self.lanes[i % self.lanes.len()];
        if lane.tx.send(job).is_ok() {
            lane.bell.ring();
        }
    }

    /// How many polling threads there are.
    pub(crate) fn len(&self) -> usize {
        self.lanes.len()
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // Closing the channels lets each thread finish what it was sent, then end.
        self.lanes.clear();
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            // A handle dropped by one of its own jobs cannot wait for its own thread.
            if t.thread().id() != me {
                if let Err(e) = t.join() {
                    log::error!("bypassfs async handle: a polling thread panicked: {e:?}");
                }
            }
        }
    }
}

/// A polling thread's loop (see the module's opening comment).
fn serve(fs: &Filesystem, ctx: &Context, rx: &Receiver<Job>, bell: &Arc<Doorbell>) {
    let exec = ctx.exec();
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                // Every sender is gone and no task is left.
                Err(_) => return,
            },
        };
        match job {
            Job::Call(f) => call(fs, ctx, f),
            Job::Spawn(f) => spawn(ctx, bell, f(fs, ctx)),
        }
        if exec.live_tasks() == 0 {
            continue;
        }
        // Runs the tasks, taking new requests as they come, until none is left or a call
        // must run (outside this `block_on`, as fs-core's synchronous calls run their own).
        next = ctx.block_on(poll_fn(|cx| {
            bell.listen(cx.waker());
            loop {
                match rx.try_recv() {
                    Ok(Job::Spawn(f)) => spawn(ctx, bell, f(fs, ctx)),
                    Ok(call) => return Poll::Ready(Some(call)),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if exec.live_tasks() == 0 {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        }));
    }
}

/// Runs a synchronous request. A panic in it (an `AsyncFs::call` closure's own, say) ends
/// that request, whose dropped `Reply` answers with an error, and not the thread with every
/// other request it holds. A panic inside one of the executor's tasks is not caught: it
/// ends the thread (see `Reply`'s `Drop` for what the callers then get).
fn call(fs: &Filesystem, ctx: &Context, f: CallFn) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| f(fs, ctx))).is_err() {
        log::error!("bypassfs async handle: a call panicked; its caller gets an error");
    }
}

/// Spawns `task` on the thread's executor. Its end rings the doorbell: the future that
/// `serve` runs in `block_on` must see the last task end (nothing else wakes it then, and
/// `block_on` would find itself stalled).
fn spawn(ctx: &Context, bell: &Arc<Doorbell>, task: LocalTask) {
    let bell = Arc::clone(bell);
    ctx.exec().spawn(async move {
        task.await;
        bell.ring();
    });
}
