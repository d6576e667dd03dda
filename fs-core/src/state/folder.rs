//! [`FolderSignal`]: requests to a mount's folder thread (`durability/background.rs`).

use std::sync::{Condvar, Mutex, MutexGuard};

/// Requests to the folder thread. A leaf lock: nothing else is taken while it is held.
#[derive(Default)]
pub(crate) struct FolderSignal {
    state: Mutex<Requests>,
    wake: Condvar,
}

#[derive(Default)]
struct Requests {
    running: bool,
    wanted: bool,
    stop: bool,
}

impl FolderSignal {
    fn lock(&self) -> MutexGuard<'_, Requests> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a folder thread serves this mount.
    pub fn running(&self) -> bool {
        self.lock().running
    }

    /// Says whether a folder thread serves this mount (set before it starts, cleared when
    /// it could not start).
    pub fn set_running(&self, running: bool) {
        self.lock().running = running;
    }

    /// Asks the folder for a fold (no-op if one is already asked for).
    pub fn request(&self) {
        // Completions ask again and again while the overlay is large; only the first of
        // them needs to wake the folder (std's notify is a futex system call each time).
        let fresh = !std::mem::replace(&mut self.lock().wanted, true);
        if fresh {
            self.wake.notify_one();
        }
    }

    /// Tells the folder to stop after the fold it runs.
    pub fn stop(&self) {
        {
            let mut r = self.lock();
            r.stop = true;
            r.running = false;
        }
        self.wake.notify_all();
    }

    /// Waits for a request; false when the folder is to stop.
    pub fn next(&self) -> bool {
        let r = self.lock();
        let mut r = self
            .wake
            .wait_while(r, |r| !r.wanted && !r.stop)
            .unwrap_or_else(|e| e.into_inner());
        r.wanted = false;
        !r.stop
    }
}
