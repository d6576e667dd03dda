//! Combinators: [`join_all`] (many futures at once, each woken on its own) and
//! [`yield_now`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Wake, Waker};

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
/// Each child has its own waker, which marks it in a bit set and wakes the join; a poll of
/// the join polls only the marked children. With 128 children and completions arriving in
/// batches, a child is polled once per completion, not once per batch.
pub fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> JoinAll<F> {
    let children: Vec<_> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    let n = children.len();
    // Every child starts woken: the first poll polls them all.
    let bits = (0..n.div_ceil(64))
        .map(|w| AtomicU64::new(low_bits(n - w * 64)))
        .collect();
    let woken = Arc::new(Woken {
        bits,
        notified: AtomicBool::new(false),
        parent: Mutex::new(None),
    });
    let wakers = (0..n)
        .map(|index| {
            Waker::from(Arc::new(ChildWaker {
                index,
                woken: Arc::clone(&woken),
            }))
        })
        .collect();
    JoinAll {
        outputs: children.iter().map(|_| None).collect(),
        pending: n,
        children,
        wakers,
        woken,
    }
}

/// The lowest `n` bits set (all 64 from 64 on).
fn low_bits(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// Which children of a join were woken, and the join's own waker.
struct Woken {
    bits: Box<[AtomicU64]>,
    /// Set by the first child woken since the join last looked: only that one wakes the join.
    notified: AtomicBool,
    parent: Mutex<Option<Waker>>,
}

struct ChildWaker {
    index: usize,
    woken: Arc<Woken>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let w = &self.woken;
        w.bits[self.index / 64].fetch_or(1 << (self.index % 64), Ordering::AcqRel);
        // Most wakes find the join notified already: a load, not a read-modify-write.
        if !w.notified.load(Ordering::Acquire) && !w.notified.swap(true, Ordering::AcqRel) {
            if let Some(parent) = &*w.parent.lock().unwrap_or_else(|e| e.into_inner()) {
                parent.wake_by_ref();
            }
        }
    }
}

/// The future of [`join_all`].
pub struct JoinAll<F: Future> {
    children: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
    pending: usize,
    wakers: Vec<Waker>,
    woken: Arc<Woken>,
}

impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Vec<F::Output>> {
        let this = &mut *self;
        {
            let mut parent = this.woken.parent.lock().unwrap_or_else(|e| e.into_inner());
            if !parent.as_ref().is_some_and(|p| p.will_wake(cx.waker())) {
                *parent = Some(cx.waker().clone());
            }
        }
        // Cleared before looking, so a child woken from now on wakes the join again.
        this.woken.notified.store(false, Ordering::Release);
        for word in 0..this.woken.bits.len() {
            let mut set = this.woken.bits[word].swap(0, Ordering::AcqRel);
            while set != 0 {
                let i = word * 64 + set.trailing_zeros() as usize;
                set &= set - 1;
                this.poll_child(i);
            }
        }
        if this.pending == 0 {
            Poll::Ready(this.outputs.drain(..).map(|o| o.expect("done")).collect())
        } else {
            Poll::Pending
        }
    }
}

impl<F: Future> JoinAll<F> {
    fn poll_child(&mut self, i: usize) {
        let Some(child) = &mut self.children[i] else {
            return;
        };
        let mut cx = std::task::Context::from_waker(&self.wakers[i]);
        if let Poll::Ready(v) = child.as_mut().poll(&mut cx) {
            self.outputs[i] = Some(v);
            self.children[i] = None;
            self.pending -= 1;
        }
    }
}
