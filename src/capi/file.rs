//! Open, close, synchronous reads and writes, fsync and fdatasync, truncate.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use fs_core::OpenFlags;

use super::ctx;
use super::guard::{c_str, err, guard, guard_int, CResult};
use super::registry::{self, new_handle, FileEntry, KIND_FILE};
use super::types::{bfs_ctx_t, bfs_file_t};

pub(crate) fn open_flags(flags: i32) -> CResult<OpenFlags> {
    let acc = flags & libc::O_ACCMODE;
    if acc == libc::O_ACCMODE {
        return Err(libc::EINVAL);
    }
    Ok(OpenFlags {
        read: acc != libc::O_WRONLY,
        write: acc != libc::O_RDONLY,
        direct: flags & libc::O_DIRECT != 0,
        append: flags & libc::O_APPEND != 0,
        create: flags & libc::O_CREAT != 0,
        exclusive: flags & libc::O_EXCL != 0,
        truncate: flags & libc::O_TRUNC != 0,
        sync: flags & libc::O_SYNC == libc::O_SYNC,
        dsync: flags & libc::O_DSYNC != 0,
    })
}

/// The file `f`, which must belong to the filesystem of context `c`.
pub(crate) fn file_in(c: &ctx::CtxEntry, f: bfs_file_t) -> CResult<Arc<FileEntry>> {
    let e = registry::file(f)?;
    if e.fs != c.fs {
        return Err(libc::EBADF);
    }
    Ok(e)
}

/// Opens the regular file `path` (absolute) with `open(2)` flags (`O_RDONLY`, `O_WRONLY`,
/// `O_RDWR`, `O_CREAT`, `O_EXCL`, `O_TRUNC`, `O_APPEND`, `O_DIRECT`, `O_SYNC`, `O_DSYNC`);
/// `mode` is used when it is created. `O_DIRECT` I/O must be aligned to the device block.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable for one
/// `bfs_file_t`.
#[no_mangle]
pub unsafe extern "C" fn bfs_open(
    ctx: bfs_ctx_t,
    path: *const c_char,
    flags: c_int,
    mode: u32,
    out: *mut bfs_file_t,
) -> c_int {
    guard_int(|| {
        if out.is_null() {
            return Err(libc::EINVAL);
        }
        let c = ctx::get(ctx)?;
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { c_str(path) }?;
        let fs = registry::fs(c.fs)?;
        let file = fs
            .fs
            .open(&c.ctx, path, open_flags(flags)?, mode)
            .map_err(|e| err(&e))?;
        let h = new_handle(KIND_FILE);
        let entry = Arc::new(FileEntry { fs: c.fs, file });
        registry::with(|r| r.files.insert(h, entry));
        // SAFETY: non-NULL; the caller promises it is writable for one bfs_file_t.
        unsafe { out.write(h) };
        Ok(())
    })
}

/// Closes `file` (not a durability point: call [`bfs_fsync`] first).
#[no_mangle]
pub extern "C" fn bfs_close(file: bfs_file_t) -> c_int {
    guard_int(|| {
        registry::file(file)?;
        registry::with(|r| r.files.remove(&file))
            .map(drop)
            .ok_or(libc::EBADF)
    })
}

/// Reads up to `len` bytes at `offset` into `buf`; returns the bytes read (0 at the end).
///
/// # Safety
/// `buf` is NULL (→ `-EINVAL`) or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn bfs_pread(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    buf: *mut c_void,
    len: usize,
    offset: u64,
) -> libc::ssize_t {
    guard(|| {
        if buf.is_null() || len > isize::MAX as usize {
            return Err(libc::EINVAL);
        }
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        // SAFETY: non-NULL and writable for `len` bytes by the caller's promise; nothing
        // else in Rust refers to this memory during the call.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        let n = f.file.read_at(&c.ctx, offset, dst).map_err(|e| err(&e))?;
        Ok(n as i64)
    }) as libc::ssize_t
}

/// Writes `len` bytes from `buf` at `offset`; returns the bytes written.
///
/// # Safety
/// `buf` is NULL (→ `-EINVAL`) or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn bfs_pwrite(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    buf: *const c_void,
    len: usize,
    offset: u64,
) -> libc::ssize_t {
    guard(|| {
        if buf.is_null() || len > isize::MAX as usize {
            return Err(libc::EINVAL);
        }
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        // SAFETY: non-NULL and readable for `len` bytes by the caller's promise.
        let src = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
        let n = f.file.write_at(&c.ctx, offset, src).map_err(|e| err(&e))?;
        Ok(n as i64)
    }) as libc::ssize_t
}

/// Makes the file's data and metadata durable.
#[no_mangle]
pub extern "C" fn bfs_fsync(ctx: bfs_ctx_t, file: bfs_file_t) -> c_int {
    guard_int(|| {
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        f.file.fsync(&c.ctx).map_err(|e| err(&e))
    })
}

/// Makes the file's data durable, and of its metadata what reading the data back needs
/// (its size), not its times: cheaper than [`bfs_fsync`] when only times changed.
#[no_mangle]
pub extern "C" fn bfs_fdatasync(ctx: bfs_ctx_t, file: bfs_file_t) -> c_int {
    guard_int(|| {
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        f.file.fdatasync(&c.ctx).map_err(|e| err(&e))
    })
}

/// Truncates or extends `file` to `size` bytes.
#[no_mangle]
pub extern "C" fn bfs_ftruncate(ctx: bfs_ctx_t, file: bfs_file_t, size: u64) -> c_int {
    guard_int(|| {
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        f.file.set_len(&c.ctx, size).map_err(|e| err(&e))
    })
}
