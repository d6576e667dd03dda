//! The namespace: mkdir, unlink, rmdir, rename, links and symlinks, stat, readdir by cookie
//! (absolute paths).

use std::ffi::c_char;
use std::ffi::c_int;

use fs_core::{NewNode, RenameFlags};

use super::dir::dirent_of;
use super::guard::{c_str, err, guard, guard_int, CResult};
use super::registry;
use super::types::{bfs_dirent, bfs_fs_t, bfs_stat};

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

/// Creates the node `path`: `mode` is its type (`S_IFREG`, the default when no type is
/// given, `S_IFIFO`, `S_IFSOCK`, `S_IFCHR`, `S_IFBLK`) and permission bits; `rdev` is the
/// device number of a character or block device (Linux's encoding, as `makedev`), else 0.
/// Owned by uid and gid 0. `-EINVAL` for `S_IFDIR` (use [`bfs_mkdir`]), `S_IFLNK` (use
/// [`bfs_symlink`]) or an unknown type; `-EEXIST` if `path` exists.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_mknod(
    fs: bfs_fs_t,
    path: *const c_char,
    mode: u32,
    rdev: u64,
) -> c_int {
    guard_int(|| {
        let mode = match mode & libc::S_IFMT {
            0 => mode | libc::S_IFREG,
            libc::S_IFDIR | libc::S_IFLNK => return Err(libc::EINVAL),
            _ => mode,
        };
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        let (dir, name) = f.fs.lookup_parent(p).map_err(|e| err(&e))?;
        let node = NewNode {
            mode,
            uid: 0,
            gid: 0,
            rdev,
        };
        f.fs.mknod_at(dir, name.as_bytes(), &node)
            .map(drop)
            .map_err(|e| err(&e))
    })
}

/// Creates the empty regular file `path` (permission bits `mode`) as NOCOW: overwrites of
/// its blocks that no snapshot or clone shares happen in place, and its data has no
/// checksums (a database that checksums its own pages may want this). Open it with
/// `bfs_open`. `-EEXIST` if `path` exists.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_create_nocow(fs: bfs_fs_t, path: *const c_char, mode: u32) -> c_int {
    guard_int(|| {
        if mode & !0o7777 != 0 {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        f.fs.create_nocow(p, mode).map(drop).map_err(|e| err(&e))
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

/// `renameat2(2)` flag: fail with `-EEXIST` if `to` exists (Linux's `RENAME_NOREPLACE`).
pub const BFS_RENAME_NOREPLACE: u32 = 1;
/// `renameat2(2)` flag: swap `from` and `to`, which must both exist (Linux's
/// `RENAME_EXCHANGE`).
pub const BFS_RENAME_EXCHANGE: u32 = 2;

/// [`bfs_rename`] with `flags`: 0, `BFS_RENAME_NOREPLACE` or `BFS_RENAME_EXCHANGE`
/// (`-EINVAL` for both or any other bit). `-ENOENT` if `from` (or, exchanging, `to`) does not
/// exist; `-EEXIST` if `to` exists under `BFS_RENAME_NOREPLACE`; `-EINVAL` for moving a
/// directory below itself; `-ENOTEMPTY` when replacing a non-empty directory; `-EISDIR` /
/// `-ENOTDIR` when replacing one kind with the other.
///
/// # Safety
/// `from` and `to` are NULL (→ `-EINVAL`) or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn bfs_rename2(
    fs: bfs_fs_t,
    from: *const c_char,
    to: *const c_char,
    flags: u32,
) -> c_int {
    guard_int(|| {
        let known = BFS_RENAME_NOREPLACE | BFS_RENAME_EXCHANGE;
        if flags & !known != 0 || flags == known {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let (a, b) = unsafe { (c_str(from)?, c_str(to)?) };
        let flags = RenameFlags {
            noreplace: flags & BFS_RENAME_NOREPLACE != 0,
            exchange: flags & BFS_RENAME_EXCHANGE != 0,
        };
        f.fs.rename(a, b, flags).map_err(|e| err(&e))
    })
}

/// A new name `to` for the file `from` (hard link; a final symlink in `from` is not
/// followed). `-EPERM` for a directory, `-EEXIST` if `to` exists, `-EMLINK` past
/// `LINK_MAX` names.
///
/// # Safety
/// `from` and `to` are NULL (→ `-EINVAL`) or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn bfs_link(fs: bfs_fs_t, from: *const c_char, to: *const c_char) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let (a, b) = unsafe { (c_str(from)?, c_str(to)?) };
        f.fs.link(a, b).map_err(|e| err(&e))
    })
}

/// Creates the symbolic link `path` pointing to `target` (stored as given, not resolved;
/// at most 4095 bytes, else `-ENAMETOOLONG`; empty: `-ENOENT`). `-EEXIST` if `path`
/// exists.
///
/// # Safety
/// `target` and `path` are NULL (→ `-EINVAL`) or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn bfs_symlink(
    fs: bfs_fs_t,
    target: *const c_char,
    path: *const c_char,
) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let (t, p) = unsafe { (c_str(target)?, c_str(path)?) };
        f.fs.symlink(t, p).map(drop).map_err(|e| err(&e))
    })
}

/// The target of the symlink `path` into `buf` (no NUL added); returns its length. With
/// `size` 0 only the length is returned (`buf` may be NULL); a target longer than `size`
/// is `-ERANGE`, never cut short. `-EINVAL` if `path` is not a symlink.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string; `buf` is writable for `size`
/// bytes (NULL with `size` > 0 is `-EINVAL`).
#[no_mangle]
pub unsafe extern "C" fn bfs_readlink(
    fs: bfs_fs_t,
    path: *const c_char,
    buf: *mut c_char,
    size: usize,
) -> libc::ssize_t {
    guard(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        let ino = f.fs.lookup(p).map_err(|e| err(&e))?;
        let target = f.fs.readlink_ino(ino).map_err(|e| err(&e))?;
        // SAFETY: forwarded from this function's contract.
        unsafe { copy_out(&target, buf.cast(), size) }
    }) as libc::ssize_t
}

/// Copies `bytes` to `buf` (`size` bytes writable) in the getxattr(2) manner: `size` 0
/// asks for the length only, a `buf` too small is `ERANGE`; returns the length.
///
/// # Safety
/// `buf` is NULL or writable for `size` bytes.
pub(crate) unsafe fn copy_out(bytes: &[u8], buf: *mut u8, size: usize) -> CResult<i64> {
    if size == 0 {
        return Ok(bytes.len() as i64);
    }
    if buf.is_null() {
        return Err(libc::EINVAL);
    }
    if bytes.len() > size {
        return Err(libc::ERANGE);
    }
    // SAFETY: `buf` is non-NULL and writable for `size` ≥ `bytes.len()` bytes by the
    // caller's promise, and no Rust reference points into C's buffer.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len()) };
    Ok(bytes.len() as i64)
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
            let d = dirent_of(e);
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
