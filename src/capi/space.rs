//! A file's space: fallocate (preallocate, punch, zero) and finding data and holes.

use std::ffi::c_int;

use fs_core::FallocMode;

use super::ctx;
use super::file::file_in;
use super::guard::{err, guard, guard_int, CResult};
use super::types::{bfs_ctx_t, bfs_file_t};

/// The fallocate(2) modes fs-core has; every other one is `EOPNOTSUPP`, as Linux answers
/// for modes a filesystem lacks (a punch without `FALLOC_FL_KEEP_SIZE` included).
fn falloc_mode(mode: c_int) -> CResult<FallocMode> {
    let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
    match mode & !libc::FALLOC_FL_KEEP_SIZE {
        0 => Ok(FallocMode::Preallocate { keep_size }),
        libc::FALLOC_FL_PUNCH_HOLE if keep_size => Ok(FallocMode::PunchHole),
        libc::FALLOC_FL_ZERO_RANGE => Ok(FallocMode::ZeroRange { keep_size }),
        _ => Err(libc::EOPNOTSUPP),
    }
}

/// `fallocate(2)` on `[offset, offset + len)` of `file` (open for writing), durable on
/// return. `mode` takes the `FALLOC_FL_*` values of `<linux/falloc.h>`:
/// - 0: allocate the holes (they read as zeroes) and grow the file to cover the range;
/// - `FALLOC_FL_KEEP_SIZE`: the same without changing the size;
/// - `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`: free the range, which reads as zeroes;
/// - `FALLOC_FL_ZERO_RANGE` (optionally with `FALLOC_FL_KEEP_SIZE`): make the range read
///   as zeroes, growing the file unless `FALLOC_FL_KEEP_SIZE`.
///
/// Other modes (collapse, insert, unshare, a punch without keeping the size) are
/// `-EOPNOTSUPP`; `len` 0 is `-EINVAL`; `-ENOSPC` when the space is not there; `-EBADF` for
/// a file open read-only.
#[no_mangle]
pub extern "C" fn bfs_fallocate(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    mode: c_int,
    offset: u64,
    len: u64,
) -> c_int {
    guard_int(|| {
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        let m = falloc_mode(mode)?;
        f.file
            .fallocate(&c.ctx, m, offset, len)
            .map_err(|e| err(&e))
    })
}

/// `lseek(2)`'s `SEEK_DATA` and `SEEK_HOLE` on `file`: the offset of the first data byte
/// (`SEEK_DATA`) or hole byte (`SEEK_HOLE`; the end of the file counts as a hole) at or
/// after `offset`. `-ENXIO` when `offset` is at or past the end of the file, or only a
/// hole follows it (`SEEK_DATA`); `-EINVAL` for any other `whence`. Data cached but not
/// written back counts as data.
#[no_mangle]
pub extern "C" fn bfs_seek(ctx: bfs_ctx_t, file: bfs_file_t, offset: u64, whence: c_int) -> i64 {
    guard(|| {
        if whence != libc::SEEK_DATA && whence != libc::SEEK_HOLE {
            return Err(libc::EINVAL);
        }
        let c = ctx::get(ctx)?;
        let f = file_in(&c, file)?;
        let size = f.file.size().map_err(|e| err(&e))?;
        if offset >= size {
            return Err(libc::ENXIO);
        }
        let found = if whence == libc::SEEK_DATA {
            f.file.seek_data(&c.ctx, offset).map_err(|e| err(&e))?
        } else {
            let hole = f.file.seek_hole(&c.ctx, offset).map_err(|e| err(&e))?;
            Some(hole.unwrap_or(size))
        };
        // Both are below the size, which fits in an off_t (fs-core caps it at i64::MAX).
        found.map(|p| p.min(size) as i64).ok_or(libc::ENXIO)
    })
}
