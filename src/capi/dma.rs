//! Zero-copy I/O from C: DMA buffers C allocates once and lends to requests (the rules
//! of lending are `dmabuf.rs`'s invariants). The `DmaBuf` goes to fs-core whole (or split
//! at the request's length and joined again on completion): the bytes the device reads or
//! writes are C's, with no copy.

use std::ffi::{c_int, c_void};

use bdev::{BlockDevice, DmaBuf};

use super::ctx::{self, Done, DoneBuf};
use super::dmabuf;
use super::file::file_in;
use super::guard::{guard_int, CResult};
use super::registry;
use super::types::{bfs_ctx_t, bfs_file_t, bfs_fs_t};

/// Allocates `len` bytes of DMA memory from the device allocator of `fs` (the library's
/// pool of hugepages when the host has them configured, SPDK's memory for a device opened
/// through SPDK), aligned for `O_DIRECT` and zeroed, into `*out`. Use it with
/// [`bfs_submit_pread_dma`] and [`bfs_submit_pwrite_dma`] on files of any mounted
/// filesystem of this process, and free it with [`bfs_dma_free`] (unmounting does not).
/// `-EINVAL` for `len` 0 or `out` NULL, `-ENOMEM` when no memory is left.
///
/// # Safety
/// `out` is NULL or writable for one pointer.
#[no_mangle]
pub unsafe extern "C" fn bfs_dma_alloc(fs: bfs_fs_t, len: usize, out: *mut *mut c_void) -> c_int {
    guard_int(|| {
        if out.is_null() || len == 0 {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        let mut buf = f.dev.alloc_buf(len).map_err(|e| {
            log::error!("bypassfs C API: bfs_dma_alloc of {len} bytes: {e}");
            libc::ENOMEM
        })?;
        // The address C gets, derived from exclusive access to the whole buffer.
        let ptr = buf[..].as_mut_ptr();
        dmabuf::keep(ptr as usize, buf);
        // SAFETY: non-NULL; the caller promises it is writable for one pointer.
        unsafe { out.write(ptr.cast()) };
        Ok(())
    })
}

/// Frees a buffer of [`bfs_dma_alloc`]. `-EINVAL` if `buf` is not one (or was freed
/// already), `-EBUSY` while a request has it (poll its completion first).
#[no_mangle]
pub extern "C" fn bfs_dma_free(buf: *mut c_void) -> c_int {
    guard_int(|| dmabuf::forget(buf as usize).map(drop))
}

/// The checks every DMA submit makes before lending the buffer: a bad handle leaves the
/// buffer with C.
fn prepare(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    buf: *mut c_void,
    len: usize,
) -> CResult<(
    std::rc::Rc<ctx::CtxEntry>,
    std::sync::Arc<registry::FileEntry>,
    DmaBuf,
    DmaBuf,
)> {
    let c = ctx::get(ctx)?;
    let f = file_in(&c, file)?;
    let (head, rest) = dmabuf::lend(buf as usize, len)?;
    Ok((c, f, head, rest))
}

/// Submits a read of `len` bytes at `offset` into the DMA buffer `buf` (from
/// [`bfs_dma_alloc`]; `len` at most its size). The buffer belongs to the request until
/// `bfs_poll` hands out its completion (carrying `user_data` and the bytes read, or a
/// negative errno): on a file opened with `O_DIRECT` the device writes into it directly,
/// with no copy (offset and length aligned to the device block, else the completion is
/// `-EINVAL`). `-EINVAL` at once if `buf` is not a DMA buffer or `len` is 0
/// or too long, `-EBUSY` if another request has it.
///
/// # Safety
/// Between this call and the completion the caller neither reads nor writes `buf`'s
/// memory (the device may be writing it).
#[no_mangle]
pub unsafe extern "C" fn bfs_submit_pread_dma(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    buf: *mut c_void,
    len: usize,
    offset: u64,
    user_data: u64,
) -> c_int {
    submit(ctx, file, buf, len, offset, user_data, false)
}

/// Submits a write of the first `len` bytes of the DMA buffer `buf` at `offset`, as
/// [`bfs_submit_pread_dma`] reads: on an `O_DIRECT` file the device reads the bytes from
/// `buf` itself (and their checksums are computed there). `O_SYNC`/`O_DSYNC` are not
/// applied to asynchronous writes: fsync once the batch completed.
///
/// # Safety
/// Between this call and the completion the caller does not write `buf`'s memory.
#[no_mangle]
pub unsafe extern "C" fn bfs_submit_pwrite_dma(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    buf: *mut c_void,
    len: usize,
    offset: u64,
    user_data: u64,
) -> c_int {
    submit(ctx, file, buf, len, offset, user_data, true)
}

/// The body of [`bfs_submit_pread_dma`] (`write` false) and [`bfs_submit_pwrite_dma`],
/// whose contracts say what the caller does with `buf` meanwhile.
fn submit(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    buf: *mut c_void,
    len: usize,
    offset: u64,
    user_data: u64,
    write: bool,
) -> c_int {
    guard_int(|| {
        let (c, f, head, rest) = prepare(ctx, file, buf, len)?;
        let fc = c.ctx.clone();
        super::aio::spawn(&c, async move {
            let (head, r) = if write {
                f.file.write_at_async(&fc, offset, head).await
            } else {
                f.file.read_at_async(&fc, offset, head).await
            };
            Done {
                user_data,
                result: super::aio::result(r),
                buf: DoneBuf::Dma(dmabuf::rejoin(head, rest)),
            }
        });
        Ok(())
    })
}
