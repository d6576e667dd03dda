//! The per-thread [`Context`]: the filesystem device's queue and the local executor.

use crate::api::Filesystem;
use crate::error::Result;

pub(crate) use crate::state::DEV;

/// One thread's I/O context for one filesystem (`!Send`): create one per thread with
/// [`Filesystem::context`]. Synchronous calls run their I/O to completion on it; the
/// asynchronous forms return futures to run with [`Context::block_on`] or
/// [`Context::exec`]'s executor, so one thread keeps many requests in flight.
#[derive(Clone)]
pub struct Context {
    exec: bdev::exec::Context,
}

impl Context {
    /// A fresh context for `fs` on this thread. It also becomes the thread's I/O engine for
    /// `fs`'s metadata (B-tree reads, commits, fsync records), so one thread's data and
    /// metadata requests share one device queue and one poll loop.
    pub fn new(fs: &Filesystem) -> Result<Context> {
        let exec = crate::state::new_exec(&**fs.core().dev())?;
        fs.core().adopt_engine(&exec);
        Ok(Context { exec })
    }

    /// The underlying executor (to spawn or poll futures).
    pub fn exec(&self) -> &bdev::exec::Context {
        &self.exec
    }

    /// Runs `fut` to completion on this thread, polling the device meanwhile.
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.exec.block_on(fut)
    }
}
