//! `exec`: the per-thread execution context and its small local executor.
//!
//! A [`Context`] owns one [`IoQueue`] per attached device and drives Rust futures on the
//! caller's thread, run-to-completion like an SPDK reactor: no helper threads, no interrupts,
//! the thread polls its own queues. [`Context::io`] turns one request into a future;
//! [`Context::block_on`] runs a future (and every spawned task) until it is done, polling the
//! queues in between, so a synchronous call is `ctx.block_on(op_future)` and one thread keeps
//! as many requests in flight as it has futures (128 concurrent futures: queue depth 128).
//!
//! Invariants:
//! - every submitted request owns one slot of the slot table, found again by its tag; the slot
//!   is freed only when the completion has been handed to its future, or dropped if the future
//!   went away first (the buffers are then released after the device is done with them);
//! - a request refused with `QueueFull` is kept by its future, whose waker waits on the
//!   device's waiter list and is woken when that device reaps a completion;
//! - nothing here holds a `RefCell` borrow while polling a user future, so futures may call
//!   back into the context (submit, spawn) freely;
//! - steady state allocates nothing per I/O: slots and waker lists are reused, the waker of a
//!   future is cloned only when it changes.
//!
//! `Context` is `!Send` (it holds `Rc`s and the queues, which belong to one thread).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Wake, Waker};

use crate::device::{BlockDevice, Completion, IoQueue, Op};
use crate::error::{BdevError, IoError, SubmitError};
use crate::types::Geometry;

/// A device attached to a [`Context`]: an index into its queue table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevId(pub u16);

/// The per-thread execution context. Cheap to clone (a handle to the same state).
#[derive(Clone)]
pub struct Context {
    inner: Rc<Inner>,
}

struct Inner {
    devs: RefCell<Vec<Dev>>,
    slots: RefCell<Slots>,
    tasks: RefCell<Vec<Option<Task>>>,
    free_tasks: RefCell<Vec<usize>>,
    live_tasks: Cell<usize>,
    ready: Arc<ReadyList>,
    /// Reused by `poll_queues` so reaping does not allocate.
    reaped: RefCell<Vec<Completion>>,
    /// Reused by `run_ready` so running tasks does not allocate.
    running: RefCell<Vec<usize>>,
}

struct Dev {
    name: String,
    geometry: Geometry,
    queue: Box<dyn IoQueue>,
    /// Futures whose request was refused with `QueueFull`.
    waiters: Vec<Waker>,
    peak_in_flight: usize,
    submitted: u64,
}

enum Slot {
    Free,
    InFlight(Option<Waker>),
    Done(Op, Result<(), IoError>),
    /// The future was dropped while its request was in flight.
    Abandoned,
}

#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

impl Slots {
    fn alloc(&mut self) -> usize {
        match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::Free);
                self.slots.len() - 1
            }
        }
    }

    fn release(&mut self, i: usize) {
        self.slots[i] = Slot::Free;
        self.free.push(i);
    }
}

struct Task {
    fut: Pin<Box<dyn Future<Output = ()>>>,
    tw: Arc<TaskWaker>,
    waker: Waker,
}

/// Task ids woken since the last run. A `Mutex` because `Waker` must be `Send + Sync`; only
/// this thread ever takes it, so it is never contended.
#[derive(Default)]
struct ReadyList {
    ids: Mutex<Vec<usize>>,
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
            self.ready
                .ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.id);
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
            }),
        }
    }

    /// Opens a queue of `depth` requests on `dev` for this thread.
    pub fn attach(&self, dev: &dyn BlockDevice, depth: usize) -> Result<DevId, BdevError> {
        let mut devs = self.inner.devs.borrow_mut();
        let id = u16::try_from(devs.len())
            .map_err(|_| BdevError::Config("too many devices on one context".into()))?;
        devs.push(Dev {
            name: dev.name().to_owned(),
            geometry: dev.geometry(),
            queue: dev.queue(depth)?,
            waiters: Vec::new(),
            peak_in_flight: 0,
            submitted: 0,
        });
        self.inner.reaped.borrow_mut().reserve(depth);
        Ok(DevId(id))
    }

    /// The geometry of an attached device.
    pub fn geometry(&self, dev: DevId) -> Geometry {
        self.inner.devs.borrow()[usize::from(dev.0)].geometry
    }

    /// The name of an attached device.
    pub fn device_name(&self, dev: DevId) -> String {
        self.inner.devs.borrow()[usize::from(dev.0)].name.clone()
    }

    /// Requests in flight on `dev` (submitted, not yet handed to their futures).
    pub fn in_flight(&self, dev: DevId) -> usize {
        self.inner.devs.borrow()[usize::from(dev.0)]
            .queue
            .in_flight()
    }

    /// The most requests that were ever in flight at once on `dev` (since the last reset).
    pub fn peak_in_flight(&self, dev: DevId) -> usize {
        self.inner.devs.borrow()[usize::from(dev.0)].peak_in_flight
    }

    /// Requests accepted by `dev`'s queue so far.
    pub fn submitted(&self, dev: DevId) -> u64 {
        self.inner.devs.borrow()[usize::from(dev.0)].submitted
    }

    /// Forgets the peak of [`Context::peak_in_flight`].
    pub fn reset_peak(&self, dev: DevId) {
        self.inner.devs.borrow_mut()[usize::from(dev.0)].peak_in_flight = 0;
    }

    /// A future that submits `op` to `dev` and resolves to the request (with its buffers)
    /// and its outcome. A full queue is waited out; a refused request resolves at once.
    pub fn io(&self, dev: DevId, op: Op) -> IoFuture<'_> {
        IoFuture {
            ctx: self,
            dev,
            state: IoState::Unsubmitted(Some(op)),
        }
    }

    /// Runs `fut` to completion on this thread, polling the device queues and running spawned
    /// tasks meanwhile. Panics if `fut` can never finish (pending with no request in flight,
    /// no task runnable and nothing woken): that is a bug in the future, not in the I/O.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let flag = Arc::new(FlagWaker(AtomicBool::new(true)));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if flag.0.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                    return v;
                }
            }
            let ran = self.run_ready();
            let reaped = self.poll_queues();
            if ran == 0 && reaped == 0 && !flag.0.load(Ordering::Acquire) && self.stalled() {
                panic!(
                    "exec: block_on future is pending but nothing can wake it \
                     (no request in flight, no runnable task)"
                );
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

    /// Reaps completions from every queue, hands them to their futures and wakes those.
    /// Returns how many completions were reaped.
    pub fn poll_queues(&self) -> usize {
        let mut reaped = self.inner.reaped.borrow_mut();
        let mut devs = self.inner.devs.borrow_mut();
        let mut total = 0;
        for dev in devs.iter_mut() {
            let n = dev.queue.poll(&mut reaped);
            if n == 0 {
                continue;
            }
            total += n;
            let mut slots = self.inner.slots.borrow_mut();
            for c in reaped.drain(..) {
                route(&mut slots, c);
            }
            for w in dev.waiters.drain(..) {
                w.wake();
            }
        }
        total
    }

    fn run_ready(&self) -> usize {
        let mut running = self.inner.running.borrow_mut();
        std::mem::swap(
            &mut *running,
            &mut *self
                .inner
                .ready
                .ids
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
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

    fn stalled(&self) -> bool {
        let nothing_in_flight = self
            .inner
            .devs
            .borrow()
            .iter()
            .all(|d| d.queue.in_flight() == 0);
        let nothing_ready = self
            .inner
            .ready
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        nothing_in_flight && nothing_ready
    }
}

/// Hands a completion to the slot its tag names.
fn route(slots: &mut Slots, c: Completion) {
    let i = c.tag as usize;
    match std::mem::replace(&mut slots.slots[i], Slot::Free) {
        Slot::InFlight(w) => {
            slots.slots[i] = Slot::Done(c.op, c.result);
            if let Some(w) = w {
                w.wake();
            }
        }
        Slot::Abandoned => slots.release(i),
        Slot::Free | Slot::Done(..) => {
            panic!("exec: completion for tag {i}, which has no request in flight")
        }
    }
}

enum IoState {
    Unsubmitted(Option<Op>),
    InFlight(usize),
    Finished,
}

/// The future of one request; see [`Context::io`].
pub struct IoFuture<'a> {
    ctx: &'a Context,
    dev: DevId,
    state: IoState,
}

impl Future for IoFuture<'_> {
    type Output = (Op, Result<(), IoError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match &mut this.state {
            IoState::Unsubmitted(op) => {
                let op = op.take().expect("an unsubmitted request has its op");
                this.submit(op, cx)
            }
            IoState::InFlight(i) => {
                let i = *i;
                let mut slots = this.ctx.inner.slots.borrow_mut();
                match &mut slots.slots[i] {
                    Slot::InFlight(w) => {
                        match w {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            _ => *w = Some(cx.waker().clone()),
                        }
                        Poll::Pending
                    }
                    Slot::Done(..) => {
                        let Slot::Done(op, result) =
                            std::mem::replace(&mut slots.slots[i], Slot::Free)
                        else {
                            unreachable!()
                        };
                        slots.release(i);
                        this.state = IoState::Finished;
                        Poll::Ready((op, result))
                    }
                    Slot::Free | Slot::Abandoned => panic!("exec: slot {i} lost its request"),
                }
            }
            IoState::Finished => panic!("IoFuture polled after completion"),
        }
    }
}

impl IoFuture<'_> {
    fn submit(
        &mut self,
        op: Op,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<(Op, Result<(), IoError>)> {
        let inner = &self.ctx.inner;
        let i = inner.slots.borrow_mut().alloc();
        inner.slots.borrow_mut().slots[i] = Slot::InFlight(Some(cx.waker().clone()));
        let mut devs = inner.devs.borrow_mut();
        let dev = &mut devs[usize::from(self.dev.0)];
        match dev.queue.submit(i as u64, op) {
            Ok(()) => {
                dev.submitted += 1;
                dev.peak_in_flight = dev.peak_in_flight.max(dev.queue.in_flight());
                self.state = IoState::InFlight(i);
                Poll::Pending
            }
            Err(r) => {
                inner.slots.borrow_mut().release(i);
                match r.error {
                    SubmitError::QueueFull => {
                        dev.waiters.push(cx.waker().clone());
                        self.state = IoState::Unsubmitted(Some(r.op));
                        Poll::Pending
                    }
                    SubmitError::Rejected(e) => {
                        self.state = IoState::Finished;
                        Poll::Ready((r.op, Err(e)))
                    }
                }
            }
        }
    }
}

impl Drop for IoFuture<'_> {
    fn drop(&mut self) {
        if let IoState::InFlight(i) = self.state {
            let mut slots = self.ctx.inner.slots.borrow_mut();
            match slots.slots[i] {
                Slot::Done(..) => slots.release(i),
                _ => slots.slots[i] = Slot::Abandoned,
            }
        }
    }
}

/// A future that yields once: lets other futures and the queues make progress.
pub fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// Runs all `futs` concurrently and resolves to their outputs, in order.
///
/// Every pending child is polled whenever the join is polled; with completions arriving in
/// batches (one queue poll reaps many) that costs about one poll per completion.
pub fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> JoinAll<F> {
    let children: Vec<_> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    let outputs = children.iter().map(|_| None).collect();
    JoinAll {
        pending: children.len(),
        children,
        outputs,
    }
}

/// The future of [`join_all`].
pub struct JoinAll<F: Future> {
    children: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
    pending: usize,
}

impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Vec<F::Output>> {
        let this = &mut *self;
        for (child, out) in this.children.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(f) = child {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    *out = Some(v);
                    *child = None;
                    this.pending -= 1;
                }
            }
        }
        if this.pending == 0 {
            Poll::Ready(this.outputs.drain(..).map(|o| o.expect("done")).collect())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{Bufs, Rejected};
    use crate::mem::MemDevice;
    use crate::types::Lba;

    fn dev() -> MemDevice {
        MemDevice::new("exec-test", 4096, 1024).unwrap()
    }

    async fn write_block(ctx: &Context, d: DevId, lba: u64, byte: u8) -> Result<(), IoError> {
        let mut buf = DmaBuf::alloc(4096, 4096).unwrap();
        buf.fill(byte);
        let op = Op::Write {
            lba: Lba(lba),
            bufs: Bufs::One(buf),
            fua: false,
        };
        ctx.io(d, op).await.1
    }

    async fn read_block(ctx: &Context, d: DevId, lba: u64) -> Result<DmaBuf, IoError> {
        let buf = DmaBuf::alloc(4096, 4096).unwrap();
        let (op, r) = ctx
            .io(
                d,
                Op::Read {
                    lba: Lba(lba),
                    bufs: Bufs::One(buf),
                },
            )
            .await;
        r.map(|()| op.into_bufs().and_then(Bufs::into_one).unwrap())
    }

    use crate::dma::DmaBuf;

    #[test]
    fn block_on_runs_one_request() {
        let dev = dev();
        let ctx = Context::new();
        let d = ctx.attach(&dev, 4).unwrap();
        ctx.block_on(write_block(&ctx, d, 3, 0x5a)).unwrap();
        let buf = ctx.block_on(read_block(&ctx, d, 3)).unwrap();
        assert!(buf.iter().all(|&b| b == 0x5a));
        assert_eq!(ctx.in_flight(d), 0);
    }

    #[test]
    fn many_futures_keep_the_queue_full_and_get_their_own_completions() {
        let dev = dev();
        let ctx = Context::new();
        let d = ctx.attach(&dev, 128).unwrap();
        // 300 futures on a 128-deep queue: the surplus waits on QueueFull.
        let writes = (0..300u64).map(|i| write_block(&ctx, d, i, i as u8));
        let results = ctx.block_on(join_all(writes));
        assert!(results.iter().all(|r| r.is_ok()));
        assert_eq!(ctx.peak_in_flight(d), 128);
        ctx.reset_peak(d);
        let reads = (0..300u64).map(|i| read_block(&ctx, d, i));
        for (i, r) in ctx.block_on(join_all(reads)).into_iter().enumerate() {
            let buf = r.unwrap();
            assert!(buf.iter().all(|&b| b == i as u8), "block {i} misrouted");
        }
        assert_eq!(ctx.peak_in_flight(d), 128);
        assert_eq!(ctx.submitted(d), 600);
    }

    #[test]
    fn rejected_request_resolves_with_its_error() {
        let dev = dev();
        let ctx = Context::new();
        let d = ctx.attach(&dev, 4).unwrap();
        let err = ctx.block_on(write_block(&ctx, d, 5000, 1)).unwrap_err();
        assert!(matches!(err, IoError::Invalid(_)), "{err}");
    }

    /// Fails every read of LBA 7 with a media error.
    struct Flaky(Box<dyn IoQueue>, Vec<Completion>);

    impl IoQueue for Flaky {
        fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
            self.0.submit(tag, op)
        }
        fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
            self.0.poll(&mut self.1);
            let n = self.1.len();
            for mut c in self.1.drain(..) {
                if c.op.kind() == crate::OpKind::Read && c.op.lba() == Some(Lba(7)) {
                    c.result = Err(c.op.media_error());
                }
                done.push(c);
            }
            n
        }
        fn in_flight(&self) -> usize {
            self.0.in_flight()
        }
        fn depth(&self) -> usize {
            self.0.depth()
        }
    }

    struct FlakyDev(MemDevice);

    impl BlockDevice for FlakyDev {
        fn name(&self) -> &str {
            "flaky"
        }
        fn geometry(&self) -> Geometry {
            self.0.geometry()
        }
        fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
            Ok(Box::new(Flaky(self.0.queue(depth)?, Vec::new())))
        }
    }

    #[test]
    fn media_errors_reach_the_right_future() {
        let dev = FlakyDev(dev());
        let ctx = Context::new();
        let d = ctx.attach(&dev, 8).unwrap();
        let reads = (0..16u64).map(|i| read_block(&ctx, d, i));
        for (i, r) in ctx.block_on(join_all(reads)).into_iter().enumerate() {
            assert_eq!(r.is_err(), i == 7, "block {i}");
        }
    }

    #[test]
    fn spawned_tasks_run_until_idle() {
        let dev = dev();
        let ctx = Context::new();
        let d = ctx.attach(&dev, 16).unwrap();
        let done = Rc::new(Cell::new(0));
        for i in 0..40u64 {
            let (ctx2, done) = (ctx.clone(), Rc::clone(&done));
            ctx.spawn(async move {
                write_block(&ctx2, d, i, 1).await.unwrap();
                yield_now().await;
                read_block(&ctx2, d, i).await.unwrap();
                done.set(done.get() + 1);
            });
        }
        assert_eq!(ctx.live_tasks(), 40);
        ctx.run_until_idle();
        assert_eq!((done.get(), ctx.live_tasks()), (40, 0));
        assert_eq!(ctx.peak_in_flight(d), 16);
    }

    #[test]
    fn a_dropped_future_releases_its_slot_after_completion() {
        let dev = dev();
        let ctx = Context::new();
        let d = ctx.attach(&dev, 2).unwrap();
        {
            let mut fut = std::pin::pin!(write_block(&ctx, d, 1, 9));
            let waker = Waker::from(Arc::new(FlagWaker(AtomicBool::new(false))));
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(ctx.in_flight(d), 1);
        }
        assert_eq!(ctx.poll_queues(), 1);
        let buf = ctx.block_on(read_block(&ctx, d, 1)).unwrap();
        assert!(buf.iter().all(|&b| b == 9));
    }

    #[test]
    #[should_panic(expected = "nothing can wake it")]
    fn a_future_that_can_never_finish_is_reported() {
        Context::new().block_on(std::future::pending::<()>());
    }
}
