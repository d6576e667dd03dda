//! Extended attributes of a path (a final symlink followed): get, set, list, remove, with
//! the getxattr(2) family's conventions for buffers.

use std::ffi::{c_char, c_int, c_void};

use fs_core::XattrFlags;

use super::guard::{c_str, err, guard, guard_int};
use super::ns::copy_out;
use super::registry;
use super::types::bfs_fs_t;

/// The value of extended attribute `name` of `path` into `value`; returns its length.
/// With `size` 0 only the length is returned (`value` may be NULL); a value longer than
/// `size` is `-ERANGE`. `-ENODATA` if `path` has no such attribute.
///
/// # Safety
/// `path` and `name` are NULL (→ `-EINVAL`) or NUL-terminated strings; `value` is writable
/// for `size` bytes (NULL with `size` > 0 is `-EINVAL`).
#[no_mangle]
pub unsafe extern "C" fn bfs_getxattr(
    fs: bfs_fs_t,
    path: *const c_char,
    name: *const c_char,
    value: *mut c_void,
    size: usize,
) -> libc::ssize_t {
    guard(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let (p, n) = unsafe { (c_str(path)?, c_str(name)?) };
        let v = f.fs.get_xattr(p, n).map_err(|e| err(&e))?;
        // SAFETY: forwarded from this function's contract.
        unsafe { copy_out(&v, value.cast(), size) }
    }) as libc::ssize_t
}

/// Sets extended attribute `name` of `path` to the `size` bytes at `value`: at most 2048
/// bytes (else `-ENOSPC`, as ext4 answers), a name of 1 to 255 bytes (else
/// `-ENAMETOOLONG`). `flags`: 0, `XATTR_CREATE` (`-EEXIST`
/// if it exists) or `XATTR_REPLACE` (`-ENODATA` if it does not); other bits or both are
/// `-EINVAL`. `system.*` names (POSIX ACLs) are `-EOPNOTSUPP`.
///
/// # Safety
/// `path` and `name` are NULL (→ `-EINVAL`) or NUL-terminated strings; `value` is
/// readable for `size` bytes (NULL only with `size` 0).
#[no_mangle]
pub unsafe extern "C" fn bfs_setxattr(
    fs: bfs_fs_t,
    path: *const c_char,
    name: *const c_char,
    value: *const c_void,
    size: usize,
    flags: c_int,
) -> c_int {
    guard_int(|| {
        let known = libc::XATTR_CREATE | libc::XATTR_REPLACE;
        if flags & !known != 0 || flags == known || (value.is_null() && size > 0) {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let (p, n) = unsafe { (c_str(path)?, c_str(name)?) };
        let v: &[u8] = if size == 0 {
            &[]
        } else {
            // SAFETY: non-NULL and readable for `size` bytes by the caller's promise.
            unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }
        };
        let flags = XattrFlags {
            create: flags & libc::XATTR_CREATE != 0,
            replace: flags & libc::XATTR_REPLACE != 0,
        };
        f.fs.set_xattr(p, n, v, flags).map_err(|e| err(&e))
    })
}

/// The names of the extended attributes of `path`, each followed by a NUL, sorted, into
/// `list`; returns the bytes that takes (0: none). `size` 0 and `-ERANGE` as for
/// [`bfs_getxattr`].
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string; `list` is writable for `size`
/// bytes (NULL with `size` > 0 is `-EINVAL`).
#[no_mangle]
pub unsafe extern "C" fn bfs_listxattr(
    fs: bfs_fs_t,
    path: *const c_char,
    list: *mut c_char,
    size: usize,
) -> libc::ssize_t {
    guard(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        let ino = f.fs.lookup_follow(p).map_err(|e| err(&e))?;
        let names = f.fs.list_xattr_ino(ino).map_err(|e| err(&e))?;
        let mut all = Vec::new();
        for n in names {
            all.extend_from_slice(&n);
            all.push(0);
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { copy_out(&all, list.cast(), size) }
    }) as libc::ssize_t
}

/// Removes extended attribute `name` of `path`; `-ENODATA` if it has none.
///
/// # Safety
/// `path` and `name` are NULL (→ `-EINVAL`) or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn bfs_removexattr(
    fs: bfs_fs_t,
    path: *const c_char,
    name: *const c_char,
) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let (p, n) = unsafe { (c_str(path)?, c_str(name)?) };
        f.fs.remove_xattr(p, n).map_err(|e| err(&e))
    })
}
