//! The periodic commit of a FUSE mount (`commit=SECONDS`, as btrfs's `commit=`).
//!
//! Why it exists: the kernel does not forward `sync(2)` or `syncfs(2)` to an ordinary FUSE
//! server, and written data sits in fs-core's page cache (or the fsync log's overlay) until
//! something commits it. Without a timer, `cp f m/; sync; kill -9` of the mount loses `f`
//! however long it waited. Every interval this thread runs [`Filesystem::sync`], so a crash
//! loses at most the last interval of writes nobody fsync'd.
//!
//! Invariants:
//! - The thread owns its fs-core context (created on the thread, dropped on it).
//! - [`Committer::stop`] (or dropping the `Committer`, as an early return does) returns only
//!   after the thread has ended, so the caller's `Arc<Filesystem>` is unique again once the
//!   session and the committer are gone.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fs_core::{Context, Filesystem};

/// A running periodic commit; dropping it stops it (and waits for the thread).
pub(crate) struct Committer {
    /// Dropping it wakes the thread and ends it.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts a thread that syncs `fs` every `interval`.
    pub(crate) fn start(fs: Arc<Filesystem>, interval: Duration) -> std::io::Result<Committer> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bypassfs-commit".into())
            .spawn(move || {
                let mut ctx: Option<Context> = None;
                let mut last_error: Option<String> = None;
                // Anything received, or the sender dropped, means stop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let r = match &ctx {
                        Some(c) => fs.sync(c),
                        None => fs.context().and_then(|c| fs.sync(ctx.insert(c))),
                    };
                    report(r, &mut last_error);
                }
            })?;
        Ok(Committer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Ends the thread, waiting for a commit in progress to finish.
    pub(crate) fn stop(self) {
        drop(self);
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("bypassfs: the periodic commit thread panicked");
            }
        }
    }
}

/// Logs a failed commit once per distinct error (a filesystem made read-only by an I/O error
/// fails every commit after it the same way; one line says so, not one every interval).
fn report(r: fs_core::Result<()>, last_error: &mut Option<String>) {
    match r {
        Ok(()) => *last_error = None,
        Err(e) => {
            let msg = e.to_string();
            if last_error.as_deref() != Some(msg.as_str()) {
                log::error!("bypassfs: periodic commit failed: {msg}");
                *last_error = Some(msg);
            }
        }
    }
}
