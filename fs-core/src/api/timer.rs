//! The timed commit: a read-write mount's thread `bypassfs-commit` syncs the filesystem
//! every [`MountOptions::commit_interval`](super::MountOptions::commit_interval) (default
//! 30 s, as btrfs's `commit=` and Linux's `dirty_expire_centisecs`), so that no dirty page,
//! unfolded log entry or pending namespace change stays only in memory for longer than that
//! (plus the sync's own time) when nobody calls fsync or sync. An embedding program has no
//! other timer: without this thread a file created and written without fsync stayed in
//! memory until unmount.
//!
//! Invariants:
//! - The thread holds the filesystem weakly (through the mount's `tick`, `api/fs.rs`) and
//!   upgrades it only for a sync, so it never keeps a mount alive; it ends when the mount's last handle drops (`CommitTimer`'s
//!   drop wakes and joins it, unless that drop runs on the thread itself, which happens when
//!   the thread held the last strong handle during its sync: then it just ends).
//! - A tick with nothing unsynced writes nothing (no commit of an idle filesystem).
//! - Time comes from a [`Clock`]: the system's, or a [`ManualClock`] that tests advance, which
//!   wakes the thread on every change so that a test need not wait in real time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Result;

/// A source of time for the timed commit.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since some fixed start.
    fn now(&self) -> Duration;
    /// Asks the clock to call `wake` whenever its time changes other than by real time
    /// passing (a [`ManualClock`]'s `advance`). The system clock needs nothing.
    fn on_advance(&self, wake: Weak<dyn Fn() + Send + Sync>) {
        let _ = wake;
    }
}

/// Real time.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock that moves only when told to ([`ManualClock::advance`]): for tests of what
/// happens after an interval, without waiting for it.
#[derive(Default)]
pub struct ManualClock {
    now: Mutex<Duration>,
    wakers: Mutex<Vec<Weak<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

impl ManualClock {
    /// Moves the time forward by `by` and wakes whoever waits on it.
    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
        let wakers: Vec<_> = {
            let mut w = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            w.retain(|f| f.strong_count() > 0);
            w.clone()
        };
        for f in wakers.iter().filter_map(Weak::upgrade) {
            f();
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_advance(&self, wake: Weak<dyn Fn() + Send + Sync>) {
        self.wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(wake);
    }
}

/// The longest real wait between looks at the clock: a bound on how late a tick can be if
/// a clock's time moves without a wake (it never should).
const MAX_REAL_WAIT: Duration = Duration::from_secs(1);

/// What the mount and its timer thread share.
#[derive(Default)]
struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
    /// Ticks that found something unsynced and synced it (successfully or not).
    syncs: AtomicU64,
}

/// What one tick did (the mount's `tick` callback, `api/fs.rs`, says).
pub(crate) enum Tick {
    /// The mount is gone: the thread ends.
    Gone,
    /// Nothing was unsynced.
    Idle,
    /// A sync ran, with this result.
    Synced(Result<()>),
}

/// The running timer of a mount; dropping it stops the thread.
pub(crate) struct CommitTimer {
    shared: Arc<Shared>,
    /// Keeps the clock's wake callback alive (the clock holds it weakly).
    _waker: Arc<dyn Fn() + Send + Sync>,
    thread: Option<JoinHandle<()>>,
}

impl CommitTimer {
    /// Starts the thread, which makes its tick with `make_tick` (on the thread: a tick
    /// may keep a context, which stays on its thread) and runs it once every `interval` of
    /// `clock`'s time. The tick must hold the mount only weakly, and only while it runs.
    pub fn start<M, T>(
        interval: Duration,
        clock: Arc<dyn Clock>,
        cpus: Option<&[usize]>,
        make_tick: M,
    ) -> std::io::Result<CommitTimer>
    where
        M: FnOnce() -> T + Send + 'static,
        T: FnMut() -> Tick,
    {
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            // Taking the lock orders the wake after a waiter's look at the clock.
            drop(s.stop.lock().unwrap_or_else(|e| e.into_inner()));
            s.wake.notify_all();
        });
        clock.on_advance(Arc::downgrade(&waker));
        let s = Arc::clone(&shared);
        // The first interval counts from the mount, not from whenever the thread starts.
        let first = clock.now() + interval;
        let thread = crate::threads::spawn_on("bypassfs-commit", cpus, move || {
            run(&s, first, interval, &*clock, make_tick())
        })?;
        Ok(CommitTimer {
            shared,
            _waker: waker,
            thread: Some(thread),
        })
    }

    /// Syncs done by the timer so far.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::SeqCst)
    }
}

impl Drop for CommitTimer {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            if t.thread().id() == std::thread::current().id() {
                return; // the thread dropped the last handle itself; it ends on return
            }
            if t.join().is_err() {
                log::error!("fs-core: the timed commit thread panicked");
            }
        }
    }
}

/// The thread: waits out each interval, then ticks.
fn run(
    shared: &Shared,
    mut due: Duration,
    interval: Duration,
    clock: &dyn Clock,
    mut tick: impl FnMut() -> Tick,
) {
    let mut last_error: Option<String> = None;
    loop {
        {
            let mut stop = shared.stop.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if *stop {
                    return;
                }
                let now = clock.now();
                if now >= due {
                    break;
                }
                let wait = (due - now).min(MAX_REAL_WAIT);
                stop = shared
                    .wake
                    .wait_timeout(stop, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        match tick() {
            Tick::Gone => return,
            Tick::Idle => {}
            Tick::Synced(r) => {
                report(r, &mut last_error);
                shared.syncs.fetch_add(1, Ordering::SeqCst);
            }
        }
        due = clock.now() + interval;
    }
}

/// Logs a failed sync once per distinct error (a filesystem made read-only by an I/O error
/// fails every sync after it the same way).
fn report(r: Result<()>, last_error: &mut Option<String>) {
    match r {
        Ok(()) => *last_error = None,
        Err(e) => {
            let msg = e.to_string();
            if last_error.as_deref() != Some(msg.as_str()) {
                log::error!("fs-core: timed commit failed: {msg}");
                *last_error = Some(msg);
            }
        }
    }
}
