//! Asynchronous reads and writes: submit many, then poll the context for completions.
//!
//! Requests run as tasks on the context's executor; they make progress only inside
//! `bfs_poll` (run-to-completion on the caller's thread, as SPDK does).

use std::ffi::c_int;
use std::ffi::c_void;
use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::task::Poll;

use super::ctx::{self, CtxEntry, Done, DoneBuf};
use super::file::file_in;
use super::guard::{err, guard, guard_int};
use super::registry;
use super::types::{bfs_completion, bfs_ctx_t, bfs_file_t};

pub(crate) fn spawn(c: &CtxEntry, fut: impl std::future::Future<Output = Done> + 'static) {
    let done = c.done.clone();
    let in_flight = c.in_flight.clone();
    in_flight.set(in_flight.get() + 1);
    c.ctx.exec().spawn(async move {
        let d = fut.await;
        in_flight.set(in_flight.get() - 1);
        done.borrow_mut().push(d);
    });
}

pub(crate) fn result(r: fs_core::Result<usize>) -> i64 {
    match r {
        Ok(n) => n as i64,
        Err(e) => -i64::from(err(&e)),
    }
}

/// Submits a read of `len` bytes at `offset` into `buf`; its completion carries
/// `user_data`. Returns 0 once queued.
///
/// # Safety
/// `buf` is NULL (→ `-EINVAL`) or writable for `len` bytes, and stays so, untouched by the
/// caller, until `bfs_poll` returns this request's completion (the data is copied there).
#[no_mangle]
pub unsafe extern "C" fn bfs_submit_pread(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    buf: *mut c_void,
    len: usize,
    offset: u64,
    user_data: u64,
) -> c_int {
    guard_int(|| {
        if buf.is_null() || len == 0 {
            return Err(libc::EINVAL);
        }
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        let dma = f.file.alloc_buf(len).map_err(|e| err(&e))?;
        let fc = c.ctx.clone();
        let dst = buf.cast::<u8>();
        spawn(&c, async move {
            let (dma, r) = f.file.read_at_async(&fc, offset, dma).await;
            let buf = if r.is_ok() {
                DoneBuf::CopyOut(dst, dma)
            } else {
                DoneBuf::Nothing
            };
            Done {
                user_data,
                result: result(r),
                buf,
            }
        });
        Ok(())
    })
}

/// Submits a write of `len` bytes from `buf` at `offset` (the bytes are copied before this
/// returns); its completion carries `user_data`.
///
/// # Safety
/// `buf` is NULL (→ `-EINVAL`) or readable for `len` bytes during the call.
#[no_mangle]
pub unsafe extern "C" fn bfs_submit_pwrite(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    buf: *const c_void,
    len: usize,
    offset: u64,
    user_data: u64,
) -> c_int {
    guard_int(|| {
        if buf.is_null() || len == 0 {
            return Err(libc::EINVAL);
        }
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        let fs = registry::fs(c.fs)?;
        let mut dma = f.file.alloc_buf(len).map_err(|e| err(&e))?;
        // SAFETY: non-NULL and readable for `len` bytes by the caller's promise.
        let src = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
        dma[..len].copy_from_slice(src);
        fs.copied_bytes.fetch_add(len as u64, Ordering::Relaxed);
        let fc = c.ctx.clone();
        spawn(&c, async move {
            let (_, r) = f.file.write_at_async(&fc, offset, dma).await;
            Done {
                user_data,
                result: result(r),
                buf: DoneBuf::Nothing,
            }
        });
        Ok(())
    })
}

/// Runs the context until `min` completions are ready (or nothing is in flight), then
/// hands out up to `max` of them; returns how many. `min` 0 polls once without waiting.
///
/// # Safety
/// `out` is NULL (→ `-EINVAL`) or writable for `max` `bfs_completion`s.
#[no_mangle]
pub unsafe extern "C" fn bfs_poll(
    ctx: bfs_ctx_t,
    out: *mut bfs_completion,
    max: usize,
    min: usize,
) -> libc::ssize_t {
    guard(|| {
        if out.is_null() || max == 0 {
            return Err(libc::EINVAL);
        }
        let c = ctx::get(ctx)?;
        let fs = registry::fs(c.fs)?;
        run(&c, min.min(max));
        let mut done = c.done.borrow_mut();
        let n = done.len().min(max);
        for (i, d) in done.drain(..n).enumerate() {
            match d.buf {
                DoneBuf::Nothing => {}
                DoneBuf::CopyOut(dst, dma) => {
                    let len = usize::try_from(d.result).unwrap_or(0).min(dma.len());
                    // SAFETY: `dst` was promised writable for the request's length (≥ the
                    // bytes read, ≤ the DMA buffer) until this completion is handed out,
                    // which is now.
                    unsafe { std::ptr::copy_nonoverlapping(dma[..].as_ptr(), dst, len) };
                    fs.copied_bytes.fetch_add(len as u64, Ordering::Relaxed);
                }
                DoneBuf::Dma(buf) => super::dmabuf::give_back(buf),
            }
            let cpl = bfs_completion {
                user_data: d.user_data,
                result: d.result,
            };
            // SAFETY: i < n ≤ max, and `out` is writable for `max` entries.
            unsafe { out.add(i).write(cpl) };
        }
        Ok(n as i64)
    }) as libc::ssize_t
}

fn run(c: &CtxEntry, min: usize) {
    let exec = c.ctx.exec();
    // One pass of the executor, so `min` 0 still makes progress.
    exec.block_on(bdev::exec::yield_now());
    exec.block_on(poll_fn(|cx| {
        if c.done.borrow().len() >= min || c.in_flight.get() == 0 {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }));
}
