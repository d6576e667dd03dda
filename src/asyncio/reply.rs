//! One answer from a polling thread to the task awaiting it: [`Reply`] (the polling thread's
//! end) and [`Pending`] (the caller's future). A mutex-guarded slot, not a lock-free cell:
//! it is taken twice per request (answer, then poll), never contended for long, and keeps
//! this module free of `unsafe`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use fs_core::{Error, Result};

enum State<T> {
    /// No answer yet; the waker of the last poll, if polled.
    Waiting(Option<Waker>),
    Answered(Result<T>),
    /// The answer was handed out.
    Taken,
}

struct Slot<T> {
    state: Mutex<State<T>>,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves a valid state (every write is one
        // assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes the two ends of one answer.
pub(crate) fn pair<T>() -> (Reply<T>, Pending<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting(None)),
    });
    (
        Reply {
            slot: Some(Arc::clone(&slot)),
        },
        Pending { slot },
    )
}

/// The polling thread's end: answers once. Dropped unanswered (a request that panicked, or
/// never ran because its thread is gone) it answers with an error, so no caller waits
/// forever.
pub(crate) struct Reply<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> Reply<T> {
    pub(crate) fn send(mut self, answer: Result<T>) {
        if let Some(slot) = self.slot.take() {
            answer_with(&slot, answer);
        }
    }
}

fn answer_with<T>(slot: &Slot<T>, answer: Result<T>) {
    let old = std::mem::replace(&mut *slot.lock(), State::Answered(answer));
    // Woken after the lock is released, so the woken task never finds it held.
    if let State::Waiting(Some(w)) = old {
        w.wake();
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            answer_with(
                &slot,
                Err(Error::Io(
                    "bypassfs async handle: the request panicked, or its polling thread \
                     ended (panicked) before answering"
                        .into(),
                )),
            );
        }
    }
}

/// The answer to one request of an [`AsyncFs`](super::AsyncFs) or
/// [`AsyncFile`](super::AsyncFile): a future that any executor can poll (`Send` when `T` is,
/// `Unpin`, `'static`).
///
/// The request was sent when the call that returned this was made; the future only waits for
/// its answer. Dropping it does not cancel the request: it runs to completion on its polling
/// thread, and its answer (owned buffers included) is dropped there.
#[must_use = "the request runs anyway; await this to learn its outcome"]
pub struct Pending<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Result<T>> {
        let mut state = self.slot.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Answered(r) => Poll::Ready(r),
            State::Waiting(w) => {
                let w = match w {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *state = State::Waiting(Some(w));
                Poll::Pending
            }
            State::Taken => panic!("bypassfs async handle: Pending polled after it returned"),
        }
    }
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &*self.slot.lock() {
            State::Waiting(_) => "waiting",
            State::Answered(_) => "answered",
            State::Taken => "taken",
        };
        f.debug_struct("Pending").field("state", &state).finish()
    }
}
