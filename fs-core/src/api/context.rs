//! The per-thread [`Context`]: the filesystem device's queue and the local executor.

use crate::error::{Error, Result};
use bdev::exec::DevId;

use crate::api::Filesystem;

/// The device's queue in every context of a filesystem (attached first).
pub(crate) const DEV: DevId = DevId(0);

/// Queue depth of a context's data queue.
const DEPTH: usize = 256;

/// One thread's I/O context for one filesystem (`!Send`): create one per thread with
/// [`Filesystem::context`]. Synchronous calls run their I/O to completion on it; the
/// asynchronous forms return futures to run with [`Context::block_on`] or
/// [`Context::exec`]'s executor, so one thread keeps many requests in flight.
#[derive(Clone)]
pub struct Context {
    exec: bdev::exec::Context,
}

impl Context {
    /// A fresh context for `fs` on this thread.
    pub fn new(fs: &Filesystem) -> Result<Context> {
        let exec = bdev::exec::Context::new();
        let id = exec.attach(&**fs.core().dev(), DEPTH)?;
        if id != DEV {
            return Err(Error::Invalid(
                "a fresh context attached the device twice".into(),
            ));
        }
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
