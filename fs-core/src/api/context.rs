//! The per-thread [`Context`]: the filesystem device's queue and the local executor.

pub(crate) use crate::state::DEV;

/// One thread's I/O context for one filesystem (`!Send`): create one per thread with
/// [`Filesystem::context`](crate::Filesystem::context). Synchronous calls run their I/O to
/// completion on it; the asynchronous forms return futures to run with [`Context::block_on`] or
/// [`Context::exec`]'s executor, so one thread keeps many requests in flight.
#[derive(Clone)]
pub struct Context {
    exec: bdev::exec::Context,
}

impl Context {
    /// A context running on `exec` (whose device `DEV` is the filesystem's).
    pub(crate) fn on(exec: bdev::exec::Context) -> Context {
        Context { exec }
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
