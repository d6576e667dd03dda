//! Tests of [`ExecQueue`]: alone, beside futures on the same context, full, refused, dropped
//! busy, and merged with the futures' writes.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};

use super::tests::{dev, merging, read_block, write_block, write_own_block};
use super::*;
use crate::device::{Bufs, Completion, IoQueue, Op};
use crate::dma::DmaBuf;
use crate::error::{IoError, SubmitError};
use crate::types::Lba;

/// Tags far from slot indexes, so a tag mixed up with a slot shows.
const TAG0: u64 = 7_000;

fn filled(byte: u8) -> DmaBuf {
    let mut buf = DmaBuf::alloc(4096, 4096).unwrap();
    buf.fill(byte);
    buf
}

fn write(lba: u64, byte: u8) -> Op {
    Op::Write {
        lba: Lba(lba),
        bufs: Bufs::One(filled(byte)),
        fua: false,
    }
}

fn read(lba: u64) -> Op {
    Op::Read {
        lba: Lba(lba),
        bufs: Bufs::One(filled(0)),
    }
}

/// The single buffer of a finished request.
fn buf_of(op: Op) -> DmaBuf {
    op.into_bufs()
        .and_then(Bufs::into_one)
        .expect("one buffer back")
}

/// Submits `ops` through `q` with tags `TAG0 + i`, polling while it is full, and polls until
/// every one is back; returns the completions in tag order, each tag exactly once.
fn run_all(q: &mut dyn IoQueue, ops: Vec<Op>) -> Vec<Completion> {
    let n = ops.len();
    let mut done = Vec::new();
    for (i, mut op) in ops.into_iter().enumerate() {
        loop {
            match q.submit(TAG0 + i as u64, op) {
                Ok(()) => break,
                Err(r) => {
                    assert!(r.is_queue_full(), "{r}");
                    op = r.op;
                    q.poll(&mut done);
                }
            }
        }
    }
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    done.sort_by_key(|c| c.tag);
    let tags: Vec<u64> = done.iter().map(|c| c.tag).collect();
    assert_eq!(tags, (0..n as u64).map(|i| TAG0 + i).collect::<Vec<_>>());
    done
}

/// The byte block `lba` is filled with by the tests' writes.
fn byte_of(lba: u64) -> u8 {
    (lba as u8).wrapping_add(1)
}

/// Writes blocks `lbas` through `q`, block `l` filled with `byte_of(l)`, reads them back and
/// checks every request came back to its own tag with its own buffer and data.
fn round_trip(q: &mut dyn IoQueue, lbas: &[u64]) {
    let writes = lbas.iter().map(|&l| write(l, byte_of(l))).collect();
    for (c, &l) in run_all(q, writes).into_iter().zip(lbas) {
        assert!(c.result.is_ok(), "write of {l}: {:?}", c.result);
        assert_eq!(c.op.lba(), Some(Lba(l)));
        assert!(buf_of(c.op).iter().all(|&b| b == byte_of(l)), "write {l}");
    }
    let reads = lbas.iter().map(|&l| read(l)).collect();
    for (c, &l) in run_all(q, reads).into_iter().zip(lbas) {
        assert!(c.result.is_ok(), "read of {l}: {:?}", c.result);
        assert_eq!(c.op.lba(), Some(Lba(l)));
        assert!(buf_of(c.op).iter().all(|&b| b == byte_of(l)), "read {l}");
    }
}

#[test]
fn a_queue_alone_round_trips_data() {
    let dev = dev();
    let ctx = Context::new();
    // The view is deeper than the device queue: its surplus waits staged.
    let d = ctx.attach(&dev, 4).unwrap();
    let mut q = ctx.queue(d, 16).unwrap();
    assert_eq!((q.depth(), q.in_flight(), q.merge_limit()), (16, 0, 0));
    let lbas: Vec<u64> = (0..100).map(|i| (i * 37) % 1024).collect();
    round_trip(&mut q, &lbas);
    assert_eq!((q.in_flight(), ctx.in_flight(d)), (0, 0));
    assert_eq!(ctx.submitted(d), 200);
    assert_eq!(ctx.peak_in_flight(d), 4);
    // Nothing in flight: nothing to wait for.
    assert!(!q.wait());
}

#[test]
fn a_queue_polled_inside_a_future_shares_the_context_with_futures_and_tasks() {
    let dev = dev();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 8).unwrap();
    // A task doing I/O on blocks 500.., awaited and (600..) through a view of its own,
    // whenever the executor runs it.
    let task_done = std::rc::Rc::new(std::cell::Cell::new(false));
    {
        let (ctx2, task_done) = (ctx.clone(), task_done.clone());
        ctx.spawn(async move {
            let mut q = ctx2.queue(d, 2).unwrap();
            for i in 0..30u64 {
                round_trip(&mut q, &[600 + i]);
                write_block(&ctx2, d, 500 + i, i as u8).await.unwrap();
                let buf = read_block(&ctx2, d, 500 + i).await.unwrap();
                assert!(buf.iter().all(|&b| b == i as u8), "task's block {i}");
            }
            task_done.set(true);
        });
    }
    // Beside it, one future awaiting requests on blocks 300.. and one doing synchronous I/O
    // through the view on blocks 0.. from inside its poll. The join polls the first before
    // the second, so the view finds the first one's request staged and reaps it for it.
    let reaped_for_futures = std::cell::Cell::new(0);
    let awaiting = async {
        for i in 0..30u64 {
            write_own_block(&ctx, d, 300 + i).await.unwrap();
        }
        0
    };
    let syncing = async {
        let mut q = ctx.queue(d, 4).unwrap();
        for round in 0..30u64 {
            let futures_before = ctx.in_flight(d);
            round_trip(&mut q, &[2 * round, 2 * round + 1]);
            if futures_before > 0 && ctx.in_flight(d) == 0 {
                reaped_for_futures.set(reaped_for_futures.get() + 1);
            }
            yield_now().await;
        }
        1
    };
    let both: Vec<std::pin::Pin<Box<dyn Future<Output = i32>>>> =
        vec![Box::pin(awaiting), Box::pin(syncing)];
    // A future whose completion the view reaped and did not wake would hang here: block_on
    // reports a future that nothing can wake.
    assert_eq!(ctx.block_on(join_all(both)), [0, 1]);
    ctx.run_until_idle();
    assert!(task_done.get());
    assert!(
        reaped_for_futures.get() > 0,
        "the view never reaped a future's request"
    );
    // Every request went to the device once: 60 + 60 by the task, 30 awaited, 120 by the
    // view. A request reaped twice would have panicked in the slot table.
    assert_eq!((ctx.submitted(d), ctx.in_flight(d)), (270, 0));
    assert_eq!(ctx.inner.slots.borrow().in_use(), 0);
    for l in 300..330u64 {
        let buf = ctx.block_on(read_block(&ctx, d, l)).unwrap();
        assert!(buf.iter().all(|&b| b == byte_of(l)), "block {l}");
    }
}

#[test]
fn two_queues_on_one_device_keep_their_requests_and_tags_apart() {
    let dev = dev();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 4).unwrap();
    let (mut a, mut b) = (ctx.queue(d, 8).unwrap(), ctx.queue(d, 8).unwrap());
    // The same tags in both, submitted interleaved; each poll of one turns the context and
    // finishes the other's requests too, which wait in their slots for their own view.
    for i in 0..8u64 {
        a.submit(i, write(100 + i, 0xa0)).unwrap();
        b.submit(i, write(200 + i, 0xb0)).unwrap();
    }
    let (mut da, mut db) = (Vec::new(), Vec::new());
    while a.in_flight() > 0 {
        a.poll(&mut da);
    }
    assert_eq!(ctx.in_flight(d), 0, "a's polls finished b's requests too");
    assert_eq!(b.in_flight(), 8);
    b.poll(&mut db);
    for (done, base, byte) in [(da, 100, 0xa0), (db, 200, 0xb0)] {
        let mut tags: Vec<u64> = done.iter().map(|c| c.tag).collect();
        tags.sort_unstable();
        assert_eq!(tags, (0..8).collect::<Vec<_>>());
        for c in done {
            assert_eq!(c.op.lba(), Some(Lba(base + c.tag)));
            assert!(buf_of(c.op).iter().all(|&x| x == byte));
        }
    }
}

#[test]
fn a_full_queue_gives_the_request_back() {
    let dev = dev();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 16).unwrap();
    let mut q = ctx.queue(d, 3).unwrap();
    for i in 0..3 {
        q.submit(i, write(i, 1)).unwrap();
    }
    let r = q.submit(3, write(3, 1)).unwrap_err();
    assert!(r.is_queue_full(), "{r}");
    assert_eq!((r.tag, r.op.lba()), (3, Some(Lba(3))));
    assert_eq!((q.in_flight(), ctx.in_flight(d)), (3, 3));
    let mut done = Vec::new();
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    assert_eq!(done.len(), 3);
    q.submit(3, r.op).unwrap();
    assert_eq!(q.in_flight(), 1);
}

#[test]
fn an_invalid_request_is_rejected_at_submit() {
    let dev = dev();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 4).unwrap();
    let mut q = ctx.queue(d, 4).unwrap();
    let short = Op::Read {
        lba: Lba(0),
        bufs: Bufs::One(DmaBuf::alloc(512, 4096).unwrap()),
    };
    for (tag, op) in [(1, write(5000, 1)), (2, short)] {
        let r = q.submit(tag, op).unwrap_err();
        assert!(
            matches!(r.error, SubmitError::Rejected(IoError::Invalid(_))),
            "{r}"
        );
        assert_eq!(r.tag, tag);
        assert!(r.op.bufs().is_some(), "the request comes back whole");
    }
    assert_eq!((q.in_flight(), ctx.in_flight(d)), (0, 0));
    assert!(ctx.queue(d, 0).is_err(), "depth 0");
    assert!(ctx.queue(DevId(1), 4).is_err(), "no such device");
}

#[test]
fn a_queue_dropped_busy_abandons_its_requests_and_the_slots_come_back() {
    let dev = dev();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 2).unwrap();
    // Dropped with its requests staged: they still go to the device.
    {
        let mut q = ctx.queue(d, 8).unwrap();
        for i in 0..6 {
            q.submit(i, write(i, 0x40 + i as u8)).unwrap();
        }
    }
    assert_eq!(ctx.in_flight(d), 6);
    while ctx.in_flight(d) > 0 {
        ctx.poll_queues();
    }
    assert_eq!(ctx.inner.slots.borrow().in_use(), 0);
    // Dropped with its requests finished and not taken.
    {
        let mut q = ctx.queue(d, 8).unwrap();
        q.submit(0, write(10, 1)).unwrap();
        q.submit(1, read(0)).unwrap();
        while ctx.in_flight(d) > 0 {
            ctx.poll_queues();
        }
        assert_eq!(q.in_flight(), 2);
    }
    assert_eq!(ctx.inner.slots.borrow().in_use(), 0);
    // The slots are free and serve futures and a new view alike.
    for i in 0..6 {
        let buf = ctx.block_on(read_block(&ctx, d, i)).unwrap();
        assert!(buf.iter().all(|&b| b == 0x40 + i as u8), "block {i}");
    }
    let mut q = ctx.queue(d, 8).unwrap();
    round_trip(&mut q, &[20, 21, 22]);
    let writes = (30..40).map(|l| write_own_block(&ctx, d, l));
    assert!(ctx.block_on(join_all(writes)).iter().all(|r| r.is_ok()));
    assert_eq!(ctx.inner.slots.borrow().in_use(), 0);
}

/// Counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_queue_request_in_a_futures_old_slot_wakes_no_future() {
    let dev = dev();
    let ctx = Context::new();
    let d = ctx.attach(&dev, 4).unwrap();
    let count = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    let mut cx = std::task::Context::from_waker(&waker);
    {
        let mut fut = std::pin::pin!(ctx.io(d, read(1)));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        ctx.poll_queues();
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }
    let woken = count.0.load(Ordering::Relaxed);
    // The view's request takes the slot the future left (with its waker in it).
    let mut q = ctx.queue(d, 1).unwrap();
    round_trip(&mut q, &[1]);
    assert_eq!(count.0.load(Ordering::Relaxed), woken);
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::pin::Pin::new(fut).poll(&mut std::task::Context::from_waker(Waker::noop()))
}

/// Stages writes of blocks 0-1 (futures), 2-3 (the view) and 4 (a future), in that order, on
/// a device that merges up to 4 blocks, and checks that each comes back to its owner.
fn merge_with_futures(fail_lba: Option<u64>) {
    let dev = merging(fail_lba);
    let ctx = Context::new();
    let d = ctx.attach(&dev, 8).unwrap();
    let mut q = ctx.queue(d, 4).unwrap();
    let mut futs: Vec<_> = [0u64, 1, 4]
        .map(|l| Box::pin(write_own_block(&ctx, d, l)))
        .into();
    for f in &mut futs[..2] {
        assert!(poll_once(f).is_pending());
    }
    for l in [2u64, 3] {
        q.submit(TAG0 + l, write(l, byte_of(l))).unwrap();
    }
    assert!(poll_once(&mut futs[2]).is_pending());
    let mut done = Vec::new();
    while q.in_flight() > 0 {
        q.poll(&mut done);
    }
    assert_eq!(*dev.log.lock().unwrap(), [(0, 4), (4, 1)]);
    assert_eq!((ctx.submitted(d), ctx.merged_writes(d)), (5, 4));
    let failed = fail_lba == Some(0);
    done.sort_by_key(|c| c.tag);
    assert_eq!(done.len(), 2);
    for (c, l) in done.into_iter().zip([2u64, 3]) {
        assert_eq!((c.tag, c.op.lba()), (TAG0 + l, Some(Lba(l))));
        assert_eq!(c.result.is_err(), failed, "view's write {l}");
        assert!(buf_of(c.op).iter().all(|&b| b == byte_of(l)), "buffer {l}");
    }
    // write_own_block checks each future got its own block and buffer back.
    for (f, l) in futs.iter_mut().zip([0u64, 1, 4]) {
        let Poll::Ready(r) = poll_once(f) else {
            panic!("future of block {l} not finished")
        };
        assert_eq!(r.is_err(), failed && l < 4, "future's write {l}: {r:?}");
    }
}

#[test]
fn a_queues_writes_merge_with_futures_writes_and_come_back_to_their_owners() {
    merge_with_futures(None);
}

#[test]
fn an_error_of_a_merged_write_reaches_the_queue_and_the_futures() {
    merge_with_futures(Some(0));
}
