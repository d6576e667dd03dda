//! Attributes: fstat and access (stat by path is in `ns.rs`, beside readdir).

use std::ffi::{c_char, c_int};

use fs_core::FileType;

use super::guard::{c_str, err, guard_int};
use super::registry;
use super::types::{bfs_file_t, bfs_fs_t, bfs_stat};

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
