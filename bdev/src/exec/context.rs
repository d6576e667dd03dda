//! [`Context`]: the devices of one thread, its spawned tasks, and the loop that runs them.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Wake, Waker};

/// Polls in a row that find nothing to do before `block_on` yields the core once.
const IDLE_POLLS_BEFORE_YIELD: u32 = 64;

/// Polls in a row that find nothing to do before `block_on` sleeps in a deep queue.
const IDLE_POLLS_BEFORE_SLEEP: u32 = 16;

/// Requests in flight on a device from which `block_on`, idle, sleeps until a completion
/// (`IoQueue::wait`) rather than spinning: with this many in flight the next completion is
/// near and the wake-up's latency hides behind the others.
const SLEEP_IN_FLIGHT: usize = 8;

use super::io::{Dev, Outcome, Slots};
use crate::device::{BlockDevice, Completion, Op};
use crate::error::BdevError;
use crate::types::Geometry;

/// A device attached to a [`Context`]: an index into its queue table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevId(pub u16);

/// The per-thread execution context. Cheap to clone (a handle to the same state).
#[derive(Clone)]
pub struct Context {
    pub(super) inner: Rc<Inner>,
}

pub(super) struct Inner {
    pub(super) devs: RefCell<Vec<Dev>>,
    pub(super) slots: RefCell<Slots>,
    tasks: RefCell<Vec<Option<Task>>>,
    free_tasks: RefCell<Vec<usize>>,
    live_tasks: Cell<usize>,
    ready: Arc<ReadyList>,
    /// Reused by `poll_queues` so reaping does not allocate.
    reaped: RefCell<Vec<Completion>>,
    /// Reused by `run_ready` so running tasks does not allocate.
    running: RefCell<Vec<usize>>,
    /// Calls of `poll_queues` that reaped something (`reap_rounds`).
    reap_rounds: Cell<u64>,
}

struct Task {
    fut: Pin<Box<dyn Future<Output = ()>>>,
    tw: Arc<TaskWaker>,
    waker: Waker,
}

/// Task ids woken since the last run. A `Mutex` because `Waker` must be `Send + Sync`; only
/// this thread ever takes it, so it is never contended. `any` is set (under the lock) with
/// every push and cleared when the list is taken: the poll loop reads it instead of locking
/// on every turn (a lock and unlock per idle turn were a tenth of a busy I/O thread's time).
#[derive(Default)]
struct ReadyList {
    ids: Mutex<Vec<usize>>,
    any: AtomicBool,
}

impl ReadyList {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct TaskWaker {
    id: usize,
    queued: AtomicBool,
    ready: Arc<ReadyList>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            let mut ids = self.ready.lock();
            ids.push(self.id);
            self.ready.any.store(true, Ordering::Release);
        }
    }
}

/// The waker of the future given to `block_on`: a flag.
struct FlagWaker(AtomicBool);

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    /// An empty context with no devices.
    pub fn new() -> Context {
        Context {
            inner: Rc::new(Inner {
                devs: RefCell::new(Vec::new()),
                slots: RefCell::new(Slots::default()),
                tasks: RefCell::new(Vec::new()),
                free_tasks: RefCell::new(Vec::new()),
                live_tasks: Cell::new(0),
                ready: Arc::new(ReadyList::default()),
                reaped: RefCell::new(Vec::new()),
                running: RefCell::new(Vec::new()),
                reap_rounds: Cell::new(0),
            }),
        }
    }

    /// Whether `other` is a handle to this same context.
    pub fn same_as(&self, other: &Context) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Opens a queue of `depth` requests on `dev` for this thread.
    pub fn attach(&self, dev: &dyn BlockDevice, depth: usize) -> Result<DevId, BdevError> {
        let mut devs = self.inner.devs.borrow_mut();
        let id = u16::try_from(devs.len())
            .map_err(|_| BdevError::Config("too many devices on one context".into()))?;
        devs.push(Dev::new(
            dev.name().to_owned(),
            dev.geometry(),
            dev.queue(depth)?,
        ));
        self.inner.reaped.borrow_mut().reserve(depth);
        Ok(DevId(id))
    }

    fn dev<T>(&self, dev: DevId, f: impl FnOnce(&mut Dev) -> T) -> T {
        f(&mut self.inner.devs.borrow_mut()[usize::from(dev.0)])
    }

    /// The geometry of an attached device.
    pub fn geometry(&self, dev: DevId) -> Geometry {
        self.dev(dev, |d| d.geometry)
    }

    /// The name of an attached device.
    pub fn device_name(&self, dev: DevId) -> String {
        self.dev(dev, |d| d.name.clone())
    }

    /// Requests in flight on `dev`: made by their futures and not yet handed back (staged
    /// for the end of the turn, or in the queue).
    pub fn in_flight(&self, dev: DevId) -> usize {
        self.dev(dev, |d| d.in_flight())
    }

    /// The most requests that were ever in `dev`'s queue at once (since the last reset).
    pub fn peak_in_flight(&self, dev: DevId) -> usize {
        self.dev(dev, |d| d.peak_in_flight)
    }

    /// Requests accepted by `dev`'s queue so far.
    pub fn submitted(&self, dev: DevId) -> u64 {
        self.dev(dev, |d| d.submitted)
    }

    /// Writes accepted by `dev`'s queue as parts of merged requests so far
    /// ([`crate::IoQueue::merge_limit`]).
    pub fn merged_writes(&self, dev: DevId) -> u64 {
        self.dev(dev, |d| d.merged_writes)
    }

    /// Forgets the peak of [`Context::peak_in_flight`].
    pub fn reset_peak(&self, dev: DevId) {
        self.dev(dev, |d| d.peak_in_flight = 0)
    }

    /// A future that makes the request `op` on `dev` and resolves to the request (with its
    /// buffers) and its outcome. The request goes to the queue at the end of the turn; a full
    /// queue is waited out; a request the queue refuses resolves with the refusal.
    pub fn io(&self, dev: DevId, op: Op) -> IoFuture<'_> {
        IoFuture::new(self, dev, op)
    }

    /// Runs `fut` to completion on this thread, polling the device queues and running spawned
    /// tasks meanwhile. Panics if `fut` can never finish (pending with no request in flight,
    /// no task runnable and nothing woken): that is a bug in the future, not in the I/O.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let flag = Arc::new(FlagWaker(AtomicBool::new(true)));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        let mut idle = 0u32;
        loop {
            if flag.0.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                    return v;
                }
            }
            let ran = self.run_ready();
            let reaped = self.poll_queues();
            if ran != 0 || reaped != 0 || flag.0.load(Ordering::Acquire) {
                idle = 0;
                continue;
            }
            if self.stalled() {
                panic!(
                    "exec: block_on future is pending but nothing can wake it \
                     (no request in flight, no runnable task)"
                );
            }
            // Only waiting for the devices: after a while, offer the core to other threads
            // (a kernel backend's workers, the filesystem's folder) instead of spinning
            // through their time slice.
            idle += 1;
            if idle >= IDLE_POLLS_BEFORE_SLEEP && self.sleep_in_deep_queue() {
                idle = 0;
                continue;
            }
            if idle >= IDLE_POLLS_BEFORE_YIELD {
                idle = 0;
                std::thread::yield_now();
            }
        }
    }

    /// Runs spawned tasks until none is left.
    pub fn run_until_idle(&self) {
        self.block_on(std::future::poll_fn(|cx| {
            if self.inner.live_tasks.get() == 0 {
                Poll::Ready(())
            } else {
                // Asks to be polled again: block_on keeps running tasks and polling queues.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }))
    }

    /// Spawns a background task; it runs while the thread is inside `block_on` or
    /// `run_until_idle`.
    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        let id = match self.inner.free_tasks.borrow_mut().pop() {
            Some(id) => id,
            None => {
                let mut tasks = self.inner.tasks.borrow_mut();
                tasks.push(None);
                tasks.len() - 1
            }
        };
        let tw = Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(false),
            ready: Arc::clone(&self.inner.ready),
        });
        let waker = Waker::from(Arc::clone(&tw));
        waker.wake_by_ref();
        self.inner.tasks.borrow_mut()[id] = Some(Task {
            fut: Box::pin(fut),
            tw,
            waker,
        });
        self.inner.live_tasks.set(self.inner.live_tasks.get() + 1);
    }

    /// Number of spawned tasks not yet finished.
    pub fn live_tasks(&self) -> usize {
        self.inner.live_tasks.get()
    }

    /// Hands the staged requests to their queues, reaps every queue, hands the completions to
    /// their futures and wakes those. Returns how many completions were reaped.
    ///
    /// Re-entrant from inside a future this context polls (an [`ExecQueue`](super::ExecQueue)'s `poll` calls
    /// it there): the borrows it takes (`reaped`, `devs`, `slots`) are held by nothing else
    /// while a future runs. The only code it runs while holding them is the wakers', which
    /// must not call back into the context.
    pub fn poll_queues(&self) -> usize {
        let mut reaped = self.inner.reaped.borrow_mut();
        let mut devs = self.inner.devs.borrow_mut();
        let mut slots = self.inner.slots.borrow_mut();
        let mut total = 0;
        for dev in devs.iter_mut() {
            dev.submit_staged(&mut slots);
            let n = dev.reap(&mut slots, &mut reaped);
            if n > 0 && !dev.staged.is_empty() {
                // Refused as full: there is room now.
                dev.submit_staged(&mut slots);
            }
            total += n;
        }
        if total > 0 {
            self.inner.reap_rounds.set(self.inner.reap_rounds.get() + 1);
        }
        total
    }

    /// How many polls of the queues have reaped completions so far. Tasks woken by the same
    /// round see the same value: a caller timing requests can read the clock once per round
    /// (as a poll-mode loop does) instead of once per request.
    pub fn reap_rounds(&self) -> u64 {
        self.inner.reap_rounds.get()
    }

    /// Polls the woken tasks. Holds `running` while it polls them, and nothing else: a task
    /// may make requests, spawn, and use an [`ExecQueue`](super::ExecQueue), but not call `block_on` or
    /// `run_until_idle` (that would run tasks inside a task).
    fn run_ready(&self) -> usize {
        let ready = &self.inner.ready;
        if !ready.any.load(Ordering::Acquire) {
            // A wake racing with this load is seen on the next turn of the loop.
            return 0;
        }
        let Ok(mut running) = self.inner.running.try_borrow_mut() else {
            panic!("exec: block_on or run_until_idle called from inside a task of its context");
        };
        {
            let mut ids = ready.lock();
            std::mem::swap(&mut *running, &mut *ids);
            ready.any.store(false, Ordering::Release);
        }
        let n = running.len();
        for id in running.drain(..) {
            let task = self.inner.tasks.borrow_mut()[id].take();
            let Some(mut task) = task else { continue };
            // Cleared before polling so a wake during the poll queues the task again.
            task.tw.queued.store(false, Ordering::Release);
            let mut cx = std::task::Context::from_waker(&task.waker);
            match task.fut.as_mut().poll(&mut cx) {
                Poll::Pending => self.inner.tasks.borrow_mut()[id] = Some(task),
                Poll::Ready(()) => {
                    self.inner.free_tasks.borrow_mut().push(id);
                    self.inner.live_tasks.set(self.inner.live_tasks.get() - 1);
                }
            }
        }
        n
    }

    /// Sleeps until a completion if exactly one device has requests in flight, at least
    /// `SLEEP_IN_FLIGHT` of them (each write of a merged request counted) and none staged,
    /// and its queue can sleep; says whether it did.
    fn sleep_in_deep_queue(&self) -> bool {
        let mut devs = self.inner.devs.borrow_mut();
        let mut busy = devs.iter_mut().filter(|d| d.in_flight() > 0);
        let (Some(dev), None) = (busy.next(), busy.next()) else {
            return false;
        };
        if !dev.staged.is_empty() || dev.in_flight() < SLEEP_IN_FLIGHT {
            return false;
        }
        dev.queue.wait()
    }

    fn stalled(&self) -> bool {
        // Requests in flight (the usual reason to be idle) settle it without the lock.
        let nothing_in_flight = self.inner.devs.borrow().iter().all(|d| d.in_flight() == 0);
        nothing_in_flight && self.inner.ready.lock().is_empty()
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
