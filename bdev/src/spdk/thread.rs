//! An SPDK thread owned and polled by one OS thread: the thread of an I/O queue.

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use spdk_sys as sys;

use super::app;
use crate::error::BdevError;

/// An SPDK thread created for, and polled only by, the OS thread holding this value
/// (`!Send`: it holds a raw pointer). Dropping it exits and destroys the thread, polling it
/// until SPDK lets it go.
pub(super) struct IoThread {
    ptr: NonNull<sys::spdk_thread>,
}

impl IoThread {
    /// Creates an SPDK thread. An `SpdkEnv` must be running (its thread library is).
    pub(super) fn new(name: &str) -> Result<IoThread, BdevError> {
        app::create_own_thread(name)
            .map(|ptr| IoThread { ptr })
            .ok_or_else(|| BdevError::Config(format!("{name}: cannot create an SPDK thread")))
    }

    /// Makes this the current SPDK thread of the calling OS thread: SPDK's I/O functions
    /// act on behalf of the current thread. A plain thread-local store.
    pub(super) fn enter(&self) {
        // SAFETY: the thread is live until `drop`, and only this OS thread uses it.
        unsafe { sys::spdk_set_thread(self.ptr.as_ptr()) };
    }

    /// Runs the thread's messages and pollers (I/O completions among them) once; returns
    /// whether there was work.
    pub(super) fn poll(&self) -> bool {
        // SAFETY: live, and polled only by this OS thread (the value is `!Send`).
        unsafe { sys::spdk_thread_poll(self.ptr.as_ptr(), 0, 0) > 0 }
    }
}

impl Drop for IoThread {
    /// Exits the thread, polls it until its channels are released and its messages run,
    /// then destroys it. The caller has put its channels back first.
    fn drop(&mut self) {
        let t = self.ptr.as_ptr();
        self.enter();
        // SAFETY: a live thread, current on this OS thread as spdk_thread_exit requires.
        unsafe { sys::spdk_thread_exit(t) };
        let since = Instant::now();
        let mut warned = false;
        // SAFETY: polling and querying a live thread from its only OS thread.
        while !unsafe { sys::spdk_thread_is_exited(t) } {
            if !self.poll() {
                std::thread::yield_now();
            }
            if !warned && since.elapsed() > Duration::from_secs(10) {
                log::warn!("bdev spdk: an I/O thread takes more than 10 s to exit");
                warned = true;
            }
        }
        // SAFETY: exited, never used again; then no thread is current on this OS thread
        // (a dangling current thread would be used by the next SPDK call here).
        unsafe {
            sys::spdk_thread_destroy(t);
            sys::spdk_set_thread(std::ptr::null_mut());
        }
    }
}
