//! Attributes: fstat, access, and changing them (chmod, chown, utimens, truncate, by path
//! and by open file). stat by path is in `ns.rs`, beside readdir.
//!
//! Changes take the calling thread's context rather than the filesystem: a size change
//! writes data (zeroes) through it, and the others commit through it like a write.

use std::ffi::{c_char, c_int};

use fs_core::{FileType, SetAttr};

use super::ctx;
use super::file::file_in;
use super::guard::{c_str, err, guard_int, CResult};
use super::registry;
use super::types::{bfs_ctx_t, bfs_file_t, bfs_fs_t, bfs_stat};

/// For [`bfs_utimens`]: set this time to the current time.
pub const BFS_UTIME_NOW: i64 = i64::MAX;
/// For [`bfs_utimens`]: leave this time unchanged.
pub const BFS_UTIME_OMIT: i64 = i64::MAX - 1;

/// Applies `attr` to a path (a final symlink followed) or an open file of `ctx`'s
/// filesystem.
fn change(ctx: bfs_ctx_t, target: Target, attr: SetAttr) -> CResult<()> {
    let c = ctx::get(ctx)?;
    let f = registry::fs(c.fs)?;
    match target {
        Target::Path(p) => f.fs.set_attr(&c.ctx, p, &attr),
        Target::File(h) => {
            let file = file_in(&c, h)?;
            f.fs.set_attr_ino(&c.ctx, file.file.ino(), &attr).map(drop)
        }
    }
    .map_err(|e| err(&e))
}

enum Target<'a> {
    Path(&'a str),
    File(bfs_file_t),
}

/// `BFS_UTIME_NOW`, `BFS_UTIME_OMIT` or a time.
fn utime(t: i64, now: i64) -> Option<i64> {
    match t {
        BFS_UTIME_OMIT => None,
        BFS_UTIME_NOW => Some(now),
        t => Some(t),
    }
}

fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX - 2)
}

fn chmod_attr(mode: u32) -> CResult<SetAttr> {
    if mode & !0o7777 != 0 {
        return Err(libc::EINVAL);
    }
    Ok(SetAttr {
        mode: Some(mode),
        ..SetAttr::default()
    })
}

/// `(uid_t)-1` / `(gid_t)-1` leave the owner / group unchanged, as chown(2) says.
fn chown_attr(uid: u32, gid: u32) -> SetAttr {
    SetAttr {
        uid: (uid != u32::MAX).then_some(uid),
        gid: (gid != u32::MAX).then_some(gid),
        ..SetAttr::default()
    }
}

fn utimens_attr(atime_ns: i64, mtime_ns: i64) -> SetAttr {
    let now = now_ns();
    SetAttr {
        atime_ns: utime(atime_ns, now),
        mtime_ns: utime(mtime_ns, now),
        ..SetAttr::default()
    }
}

fn truncate_attr(size: u64) -> CResult<SetAttr> {
    if size > i64::MAX as u64 {
        return Err(libc::EFBIG);
    }
    Ok(SetAttr {
        size: Some(size),
        ..SetAttr::default()
    })
}

/// Attributes of the open `file` (its size includes writes not yet written back).
///
/// # Safety
/// `out` is NULL (→ `-EINVAL`) or writable for one `bfs_stat`.
#[no_mangle]
pub unsafe extern "C" fn bfs_fstat(file: bfs_file_t, out: *mut bfs_stat) -> c_int {
    guard_int(|| {
        if out.is_null() {
            return Err(libc::EINVAL);
        }
        let f = registry::file(file)?;
        let s = f.file.stat().map_err(|e| err(&e))?;
        // SAFETY: non-NULL and writable for one bfs_stat by the caller's promise.
        unsafe { out.write(bfs_stat::from(&s)) };
        Ok(())
    })
}

/// `access(2)`: 0 if `path` (a final symlink followed) exists and allows `mode`: `F_OK`
/// (existence only) or any of `R_OK`, `W_OK`, `X_OK`. The library acts for its process
/// with no user identity, as root would: reading and writing are always allowed, except
/// writing on a read-only mount (`-EROFS`); executing needs an `x` bit or a directory
/// (`-EACCES`). `-ENOENT` if it does not exist; `-EINVAL` for other `mode` bits.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_access(fs: bfs_fs_t, path: *const c_char, mode: c_int) -> c_int {
    guard_int(|| {
        if mode & !(libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        let ino = f.fs.lookup_follow(p).map_err(|e| err(&e))?;
        let st = f.fs.stat_ino(ino).map_err(|e| err(&e))?;
        if mode & libc::W_OK != 0 && f.read_only {
            return Err(libc::EROFS);
        }
        if mode & libc::X_OK != 0 && st.file_type != FileType::Dir && st.mode & 0o111 == 0 {
            return Err(libc::EACCES);
        }
        Ok(())
    })
}

/// Sets the permission bits of `path` (a final symlink followed) to `mode` (`07777` at
/// most, else `-EINVAL`); ctime becomes now. `ctx` is the calling thread's context of the
/// filesystem.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_chmod(ctx: bfs_ctx_t, path: *const c_char, mode: u32) -> c_int {
    guard_int(|| {
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        change(ctx, Target::Path(p), chmod_attr(mode)?)
    })
}

/// [`bfs_chmod`] of the open `file`.
#[no_mangle]
pub extern "C" fn bfs_fchmod(ctx: bfs_ctx_t, file: bfs_file_t, mode: u32) -> c_int {
    guard_int(|| change(ctx, Target::File(file), chmod_attr(mode)?))
}

/// Sets the owner and group of `path` (a final symlink followed); `(uint32_t)-1` leaves
/// either unchanged. The library checks no permissions (see [`bfs_access`]).
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_chown(
    ctx: bfs_ctx_t,
    path: *const c_char,
    uid: u32,
    gid: u32,
) -> c_int {
    guard_int(|| {
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        change(ctx, Target::Path(p), chown_attr(uid, gid))
    })
}

/// [`bfs_chown`] of the open `file`.
#[no_mangle]
pub extern "C" fn bfs_fchown(ctx: bfs_ctx_t, file: bfs_file_t, uid: u32, gid: u32) -> c_int {
    guard_int(|| change(ctx, Target::File(file), chown_attr(uid, gid)))
}

/// Sets the access and modification times of `path` (a final symlink followed), in ns
/// since the epoch; `BFS_UTIME_NOW` sets a time to now, `BFS_UTIME_OMIT` leaves it (as
/// `utimensat(2)`'s `UTIME_NOW` and `UTIME_OMIT`).
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_utimens(
    ctx: bfs_ctx_t,
    path: *const c_char,
    atime_ns: i64,
    mtime_ns: i64,
) -> c_int {
    guard_int(|| {
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        change(ctx, Target::Path(p), utimens_attr(atime_ns, mtime_ns))
    })
}

/// [`bfs_utimens`] of the open `file`.
#[no_mangle]
pub extern "C" fn bfs_futimens(
    ctx: bfs_ctx_t,
    file: bfs_file_t,
    atime_ns: i64,
    mtime_ns: i64,
) -> c_int {
    guard_int(|| change(ctx, Target::File(file), utimens_attr(atime_ns, mtime_ns)))
}

/// Truncates or extends (with zeroes) the regular file `path` (a final symlink followed)
/// to `size` bytes, durable on return; `-EISDIR` for a directory, `-EFBIG` past
/// `INT64_MAX`. `bfs_ftruncate` does it to an open file.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_truncate(ctx: bfs_ctx_t, path: *const c_char, size: u64) -> c_int {
    guard_int(|| {
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        change(ctx, Target::Path(p), truncate_attr(size)?)
    })
}
