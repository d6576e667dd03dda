//! One fs-core [`Context`] per FUSE worker thread and mount, created on first use.

use std::cell::RefCell;
use std::collections::HashMap;

use fs_core::{Context, Filesystem, Result};

thread_local! {
    /// Contexts of this thread, by mount id (a process may serve several mounts).
    static CONTEXTS: RefCell<HashMap<u64, Context>> = RefCell::new(HashMap::new());
}

/// Runs `f` with this thread's context for mount `id` of `fs`.
pub(crate) fn with_ctx<T>(
    id: u64,
    fs: &Filesystem,
    f: impl FnOnce(&Context) -> Result<T>,
) -> Result<T> {
    let ctx = CONTEXTS.with(|m| -> Result<Context> {
        let mut m = m.borrow_mut();
        if let Some(c) = m.get(&id) {
            return Ok(c.clone());
        }
        let c = fs.context()?;
        m.insert(id, c.clone());
        Ok(c)
    })?;
    f(&ctx)
}

/// Drops this thread's context for mount `id` (at the end of a mount).
pub(crate) fn forget(id: u64) {
    CONTEXTS.with(|m| m.borrow_mut().remove(&id));
}
