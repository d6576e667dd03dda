//! Tests of the executor: routing, queue-full waits, staging, dropped futures, tasks.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use super::*;
use crate::device::{BlockDevice, Bufs, Completion, IoQueue, Op, Rejected};
use crate::dma::DmaBuf;
use crate::error::{BdevError, IoError};
use crate::mem::MemDevice;
use crate::types::{Geometry, Lba};

pub(super) fn dev() -> MemDevice {
    MemDevice::new("exec-test", 4096, 1024).unwrap()
}

pub(super) async fn write_block(
    ctx: &Context,
    d: DevId,
    lba: u64,
    byte: u8,
) -> Result<(), IoError> {
    let mut buf = DmaBuf::alloc(4096, 4096).unwrap();
    buf.fill(byte);
    let op = Op::Write {
        lba: Lba(lba),
        bufs: Bufs::One(buf),
        fua: false,
    };
    ctx.io(d, op).await.1
}

pub(super) async fn read_block(ctx: &Context, d: DevId, lba: u64) -> Result<DmaBuf, IoError> {
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

/// Logs the first LBA of every request its queues accept, in order.
struct Logged(MemDevice, Arc<Mutex<Vec<u64>>>);
struct LoggedQueue(Box<dyn IoQueue>, Arc<Mutex<Vec<u64>>>);

impl IoQueue for LoggedQueue {
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
        let lba = op.lba().map_or(u64::MAX, |l| l.0);
        self.0.submit(tag, op)?;
        self.1.lock().unwrap().push(lba);
        Ok(())
    }
    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        self.0.poll(done)
    }
    fn in_flight(&self) -> usize {
        self.0.in_flight()
    }
    fn depth(&self) -> usize {
        self.0.depth()
    }
}

impl BlockDevice for Logged {
    fn name(&self) -> &str {
        "logged"
    }
    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        Ok(Box::new(LoggedQueue(
            self.0.queue(depth)?,
            Arc::clone(&self.1),
        )))
    }
}

#[test]
fn requests_reach_the_queue_at_the_end_of_the_turn_in_order() {
    let dev = Logged(dev(), Arc::default());
    let ctx = Context::new();
    let d = ctx.attach(&dev, 4).unwrap();
    {
        let mut fut = std::pin::pin!(read_block(&ctx, d, 42));
        let mut cx = std::task::Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        // Made, not yet submitted: staged until the turn ends.
        assert_eq!((ctx.in_flight(d), dev.1.lock().unwrap().len()), (1, 0));
        ctx.poll_queues();
        assert_eq!(*dev.1.lock().unwrap(), [42]);
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }
    dev.1.lock().unwrap().clear();
    // 10 requests on a 4-deep queue: those refused as full keep their place in line.
    let reads = (0..10u64).map(|i| read_block(&ctx, d, i));
    assert!(ctx.block_on(join_all(reads)).iter().all(|r| r.is_ok()));
    assert_eq!(*dev.1.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn join_all_polls_only_the_children_that_were_woken() {
    let dev = dev();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 16).unwrap();
    // 100 children (two words of the bit set), each one request, completing 16 at a time:
    // each is polled to make its request and once more when it completes, not whenever
    // some other child completes.
    let polls: Vec<Cell<u32>> = (0..100).map(|_| Cell::new(0)).collect();
    let children = polls.iter().enumerate().map(|(i, n)| {
        let mut read = Box::pin(read_block(&ctx, d, i as u64));
        std::future::poll_fn(move |cx| {
            n.set(n.get() + 1);
            read.as_mut().poll(cx)
        })
    });
    assert!(ctx.block_on(join_all(children)).iter().all(|r| r.is_ok()));
    assert!(polls.iter().all(|n| n.get() == 2), "{polls:?}");
}

#[test]
fn a_dropped_future_releases_its_slot_after_completion() {
    let dev = dev();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 2).unwrap();
    {
        let mut fut = std::pin::pin!(write_block(&ctx, d, 1, 9));
        let mut cx = std::task::Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(ctx.in_flight(d), 1);
    }
    // The request was made before the future went away: it still goes to the device.
    assert_eq!(ctx.poll_queues(), 1);
    let buf = ctx.block_on(read_block(&ctx, d, 1)).unwrap();
    assert!(buf.iter().all(|&b| b == 9));
}

#[test]
#[should_panic(expected = "nothing can wake it")]
fn a_future_that_can_never_finish_is_reported() {
    Context::new().block_on(std::future::pending::<()>());
}

/// Merges writes up to 4 blocks, logs `(first LBA, buffers)` of every request its queues
/// accept, and fails the writes that start at `fail_lba` with a media error.
pub(super) struct Merging {
    mem: MemDevice,
    pub(super) log: Arc<Mutex<Vec<(u64, usize)>>>,
    fail_lba: Option<u64>,
}
struct MergingQueue(Box<dyn IoQueue>, Arc<Mutex<Vec<(u64, usize)>>>, Option<u64>);

impl IoQueue for MergingQueue {
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
        let entry = (
            op.lba().map_or(u64::MAX, |l| l.0),
            op.bufs().map_or(0, |b| b.segments().len()),
        );
        self.0.submit(tag, op)?;
        self.1.lock().unwrap().push(entry);
        Ok(())
    }
    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        let from = done.len();
        let n = self.0.poll(done);
        for c in &mut done[from..] {
            if c.op.kind() == crate::OpKind::Write && c.op.lba().map(|l| l.0) == self.2 {
                c.result = Err(c.op.media_error());
            }
        }
        n
    }
    fn in_flight(&self) -> usize {
        self.0.in_flight()
    }
    fn depth(&self) -> usize {
        self.0.depth()
    }
    fn merge_limit(&self) -> usize {
        4 * 4096
    }
}

impl BlockDevice for Merging {
    fn name(&self) -> &str {
        "merging"
    }
    fn geometry(&self) -> Geometry {
        self.mem.geometry()
    }
    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        Ok(Box::new(MergingQueue(
            self.mem.queue(depth)?,
            Arc::clone(&self.log),
            self.fail_lba,
        )))
    }
}

pub(super) fn merging(fail_lba: Option<u64>) -> Merging {
    Merging {
        mem: dev(),
        log: Arc::default(),
        fail_lba,
    }
}

/// Writes block `lba` filled with `lba + 1` and checks that the request comes back to its
/// own future: its block address and its buffer.
pub(super) async fn write_own_block(ctx: &Context, d: DevId, lba: u64) -> Result<(), IoError> {
    let mut buf = DmaBuf::alloc(4096, 4096).unwrap();
    buf.fill(lba as u8 + 1);
    let op = Op::Write {
        lba: Lba(lba),
        bufs: Bufs::One(buf),
        fua: false,
    };
    let (op, r) = ctx.io(d, op).await;
    assert_eq!(op.lba(), Some(Lba(lba)));
    let buf = op
        .into_bufs()
        .and_then(Bufs::into_one)
        .expect("one buffer back");
    assert!(
        buf.iter().all(|&b| b == lba as u8 + 1),
        "block {lba} got another buffer"
    );
    r
}

#[test]
fn adjacent_writes_go_merged_and_come_back_to_their_own_futures() {
    let dev = merging(None);
    let ctx = Context::new();
    let d = ctx.attach(&dev, 8).unwrap();
    // Staged in this order: 0-5 follow each other (two requests, at most 4 blocks each), 20
    // does not follow 5, and 7-8 follow each other but not 20.
    let order = [0u64, 1, 2, 3, 4, 5, 20, 7, 8];
    let writes = order.iter().map(|&l| write_own_block(&ctx, d, l));
    assert!(ctx.block_on(join_all(writes)).iter().all(|r| r.is_ok()));
    assert_eq!(*dev.log.lock().unwrap(), [(0, 4), (4, 2), (20, 1), (7, 2)]);
    assert_eq!((ctx.submitted(d), ctx.merged_writes(d)), (9, 8));
    assert_eq!((ctx.in_flight(d), ctx.peak_in_flight(d)), (0, 9));
    for l in order {
        let buf = ctx.block_on(read_block(&ctx, d, l)).unwrap();
        assert!(
            buf.iter().all(|&b| b == l as u8 + 1),
            "block {l} on the device"
        );
    }
}

#[test]
fn an_error_of_a_merged_write_reaches_every_part() {
    let dev = merging(Some(10));
    let ctx = Context::new();
    let d = ctx.attach(&dev, 8).unwrap();
    let writes = (10..16u64).map(|l| write_own_block(&ctx, d, l));
    let failed: Vec<bool> = ctx
        .block_on(join_all(writes))
        .iter()
        .map(|r| r.is_err())
        .collect();
    // 10-13 went as one request, which failed; 14-15 as another.
    assert_eq!(failed, [true, true, true, true, false, false]);
    assert_eq!(*dev.log.lock().unwrap(), [(10, 4), (14, 2)]);
}

#[test]
fn a_merged_write_refused_as_full_keeps_its_parts_in_line() {
    let dev = merging(None);
    let ctx = Context::new();
    // One request at a time: the second merge is refused until the first completes, and
    // then made again from the same writes.
    let d = ctx.attach(&dev, 1).unwrap();
    let writes = (0..10u64).map(|l| write_own_block(&ctx, d, l));
    assert!(ctx.block_on(join_all(writes)).iter().all(|r| r.is_ok()));
    assert_eq!(*dev.log.lock().unwrap(), [(0, 4), (4, 4), (8, 2)]);
    assert_eq!((ctx.submitted(d), ctx.merged_writes(d)), (10, 10));
    for l in 0..10 {
        let buf = ctx.block_on(read_block(&ctx, d, l)).unwrap();
        assert!(
            buf.iter().all(|&b| b == l as u8 + 1),
            "block {l} on the device"
        );
    }
}
