//! Contexts: one thread's I/O context for one filesystem, kept in a thread-local table.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_int;
use std::rc::Rc;

use bdev::DmaBuf;
use fs_core::Context;

use super::guard::{err, guard_int, CResult};
use super::registry::{self, new_handle, KIND_CTX};
use super::types::{bfs_ctx_t, bfs_fs_t};

/// A finished asynchronous request, waiting for `bfs_poll`.
pub(crate) struct Done {
    pub user_data: u64,
    pub result: i64,
    pub buf: DoneBuf,
}

/// What a finished request hands back with its completion.
pub(crate) enum DoneBuf {
    /// Nothing (a copying write: its bytes were copied at submit).
    Nothing,
    /// A copying read's data and where C wants it (copied at `bfs_poll`).
    CopyOut(*mut u8, DmaBuf),
    /// A DMA buffer of C's (`bfs_dma_alloc`), C's again once the completion is handed out.
    Dma(DmaBuf),
}

pub(crate) struct CtxEntry {
    pub fs: u64,
    pub ctx: Context,
    pub done: Rc<RefCell<Vec<Done>>>,
    pub in_flight: Rc<Cell<usize>>,
}

thread_local! {
    static CONTEXTS: RefCell<HashMap<u64, Rc<CtxEntry>>> = RefCell::new(HashMap::new());
}

/// This thread's context `h`, whose filesystem must still be mounted.
pub(crate) fn get(h: bfs_ctx_t) -> CResult<Rc<CtxEntry>> {
    if registry::kind_of(h) != KIND_CTX {
        return Err(libc::EBADF);
    }
    // `try_with`: called from an `atexit` handler or a thread's TLS destructors, after this
    // table is gone, the handle is simply unknown here, not a panic.
    let e = CONTEXTS
        .try_with(|m| m.borrow().get(&h).cloned())
        .ok()
        .flatten()
        .ok_or(libc::EBADF)?;
    registry::fs(e.fs)?;
    Ok(e)
}

/// Creates a context for `fs` on the calling thread; use it only on this thread.
///
/// # Safety
/// `out` is NULL (→ `-EINVAL`) or points to writable memory for one `bfs_ctx_t`.
#[no_mangle]
pub unsafe extern "C" fn bfs_ctx_create(fs: bfs_fs_t, out: *mut bfs_ctx_t) -> c_int {
    guard_int(|| {
        if out.is_null() {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        let ctx = f.fs.context().map_err(|e| err(&e))?;
        let h = new_handle(KIND_CTX);
        let e = CtxEntry {
            fs,
            ctx,
            done: Rc::default(),
            in_flight: Rc::default(),
        };
        CONTEXTS
            .try_with(|m| m.borrow_mut().insert(h, Rc::new(e)))
            .map_err(|_| libc::EBADF)?;
        // SAFETY: non-NULL; the caller promises it is writable for one bfs_ctx_t.
        unsafe { out.write(h) };
        Ok(())
    })
}

/// Destroys a context of the calling thread, after its asynchronous requests finished
/// (their completions are discarded; DMA buffers they held are the caller's again, for
/// `bfs_dma_free` or another request). `-EBADF` if unknown here.
#[no_mangle]
pub extern "C" fn bfs_ctx_destroy(ctx: bfs_ctx_t) -> c_int {
    guard_int(|| {
        if registry::kind_of(ctx) != KIND_CTX {
            return Err(libc::EBADF);
        }
        let e = CONTEXTS
            .try_with(|m| m.borrow_mut().remove(&ctx))
            .ok()
            .flatten()
            .ok_or(libc::EBADF)?;
        retire(&e);
        Ok(())
    })
}

/// Destroys the calling thread's contexts of `fs` (at its unmount: a context holds the
/// device open, so one left behind would keep a later mount of the device `-EBUSY`).
/// Contexts of other threads stay until those threads destroy them.
pub(crate) fn destroy_own_of(fs: bfs_fs_t) {
    let mine: Vec<Rc<CtxEntry>> = CONTEXTS
        .try_with(|m| {
            let mut m = m.borrow_mut();
            let hs: Vec<u64> = m
                .iter()
                .filter(|(_, e)| e.fs == fs)
                .map(|(h, _)| *h)
                .collect();
            hs.iter().filter_map(|h| m.remove(h)).collect()
        })
        .unwrap_or_default();
    for e in &mine {
        retire(e);
    }
}

/// Finishes a removed context's requests; completions nobody will poll give their DMA
/// buffers back to C all the same.
fn retire(e: &CtxEntry) {
    e.ctx.exec().run_until_idle();
    for d in e.done.borrow_mut().drain(..) {
        if let DoneBuf::Dma(buf) = d.buf {
            super::dmabuf::give_back(buf);
        }
    }
}
