//! The namespace: mkdir, unlink, rmdir, rename, stat, readdir (absolute paths).

use std::ffi::c_char;
use std::ffi::c_int;

use fs_core::RenameFlags;

use super::guard::{c_str, err, guard, guard_int};
use super::registry;
use super::types::{bfs_dirent, bfs_fs_t, bfs_stat, BFS_NAME_MAX};

/// Creates directory `path` with permission bits `mode`.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_mkdir(fs: bfs_fs_t, path: *const c_char, mode: u32) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        f.fs.mkdir(p, mode).map(drop).map_err(|e| err(&e))
    })
}

/// Removes the name `path` (not a directory).
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_unlink(fs: bfs_fs_t, path: *const c_char) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        f.fs.unlink(p).map_err(|e| err(&e))
    })
}

/// Removes the empty directory `path`.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_rmdir(fs: bfs_fs_t, path: *const c_char) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        f.fs.rmdir(p).map_err(|e| err(&e))
    })
}

/// Renames `from` to `to` atomically, replacing `to` if it exists.
///
/// # Safety
/// `from` and `to` are NULL (→ `-EINVAL`) or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn bfs_rename(fs: bfs_fs_t, from: *const c_char, to: *const c_char) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let (a, b) = unsafe { (c_str(from)?, c_str(to)?) };
        f.fs.rename(a, b, RenameFlags::default())
            .map_err(|e| err(&e))
    })
}

/// Attributes of what `path` names (a final symlink not followed, as `lstat`).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable for one
/// `bfs_stat`.
#[no_mangle]
pub unsafe extern "C" fn bfs_stat(fs: bfs_fs_t, path: *const c_char, out: *mut bfs_stat) -> c_int {
    guard_int(|| {
        if out.is_null() {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        let s = f.fs.stat(p).map_err(|e| err(&e))?;
        let st = bfs_stat::from(&s);
        // SAFETY: non-NULL and writable for one bfs_stat by the caller's promise.
        unsafe { out.write(st) };
        Ok(())
    })
}

/// Reads up to `max` entries of directory `path` from `*cookie` on (start with 0) into
/// `out`, and advances `*cookie` past them; returns how many (0: the end). `.` and `..`
/// are not listed.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `cookie` is NULL or points to a readable and
/// writable `uint64_t`; `out` is NULL or writable for `max` `bfs_dirent`s.
#[no_mangle]
pub unsafe extern "C" fn bfs_readdir(
    fs: bfs_fs_t,
    path: *const c_char,
    cookie: *mut u64,
    out: *mut bfs_dirent,
    max: usize,
) -> libc::ssize_t {
    guard(|| {
        if cookie.is_null() || out.is_null() || max == 0 {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        // SAFETY: non-NULL and readable by the caller's promise.
        let from = unsafe { cookie.read() };
        let v = f.fs.readdir(p, from, max).map_err(|e| err(&e))?;
        for (i, e) in v.iter().enumerate() {
            let mut d = bfs_dirent {
                ino: e.ino,
                next_cookie: e.next_cookie,
                // fs-core's type codes are the DT_* values.
                d_type: u32::from(e.file_type.code()),
                name: [0; BFS_NAME_MAX],
            };
            let n = e.name.len().min(BFS_NAME_MAX - 1);
            d.name[..n].copy_from_slice(&e.name[..n]);
            // SAFETY: i < v.len() ≤ max, and `out` is writable for `max` entries.
            unsafe { out.add(i).write(d) };
        }
        if let Some(last) = v.last() {
            // SAFETY: non-NULL and writable by the caller's promise.
            unsafe { cookie.write(last.next_cookie) };
        }
        Ok(v.len() as i64)
    }) as libc::ssize_t
}
