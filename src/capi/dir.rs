//! Directory streams: opendir, readdir one entry at a time, telldir/seekdir by cookie,
//! closedir; and a directory's fsync.
//!
//! A stream holds the directory's inode and the cookie after the last entry it returned;
//! it reads ahead a batch of entries. Cookies come from fs-core and stay valid across
//! concurrent changes to the directory, so a position told is a position that can be
//! sought back to, even after entries around it were added or removed.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int};
use std::sync::{Arc, Mutex};

use fs_core::{DirEntryInfo, FileType};

use super::guard::{c_str, err, guard, guard_int, CResult};
use super::registry::{self, new_handle, DirEntry, DirStream, KIND_DIR};
use super::types::{bfs_dir_t, bfs_dirent, bfs_fs_t, BFS_NAME_MAX};

/// Entries read from fs-core at once.
const BATCH: usize = 64;

pub(crate) fn dirent_of(e: &DirEntryInfo) -> bfs_dirent {
    let mut d = bfs_dirent {
        ino: e.ino,
        next_cookie: e.next_cookie,
        // fs-core's type codes are the DT_* values.
        d_type: u32::from(e.file_type.code()),
        name: [0; BFS_NAME_MAX],
    };
    // Names are at most 255 bytes (fs-core's NAME_MAX), so the NUL always fits.
    let n = e.name.len().min(BFS_NAME_MAX - 1);
    d.name[..n].copy_from_slice(&e.name[..n]);
    d
}

fn stream(dir: bfs_dir_t) -> CResult<Arc<DirEntry>> {
    let d = registry::dir(dir)?;
    registry::fs(d.fs)?;
    Ok(d)
}

/// Makes the entries of the directory `path` (a final symlink followed) durable: names
/// created, removed or renamed in it since the last commit, and its attributes (what
/// `fsync(2)` of a directory does). Returns at once when nothing of it is pending.
/// `-ENOTDIR` if it is not a directory. (A file's own fsync already makes its new names
/// durable.)
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_fsync_dir(fs: bfs_fs_t, path: *const c_char) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        let ino = f.fs.lookup_follow(p).map_err(|e| err(&e))?;
        if f.fs.stat_ino(ino).map_err(|e| err(&e))?.file_type != FileType::Dir {
            return Err(libc::ENOTDIR);
        }
        f.fs.fsync_dir_ino(ino).map_err(|e| err(&e))
    })
}

/// Opens the directory `path` (a final symlink followed) for reading; `*out` is its
/// stream, positioned at the start. `-ENOTDIR` if it is not a directory. A stream keeps its
/// filesystem mounted (`bfs_unmount` is `-EBUSY`) until [`bfs_closedir`]. Streams may be
/// used from any thread, one call at a time each.
///
/// # Safety
/// `path` is NULL (→ `-EINVAL`) or a NUL-terminated string; `out` is NULL (→ `-EINVAL`)
/// or writable for one `bfs_dir_t`.
#[no_mangle]
pub unsafe extern "C" fn bfs_opendir(
    fs: bfs_fs_t,
    path: *const c_char,
    out: *mut bfs_dir_t,
) -> c_int {
    guard_int(|| {
        if out.is_null() {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { c_str(path) }?;
        let ino = f.fs.lookup_follow(p).map_err(|e| err(&e))?;
        if f.fs.stat_ino(ino).map_err(|e| err(&e))?.file_type != FileType::Dir {
            return Err(libc::ENOTDIR);
        }
        let h = new_handle(KIND_DIR);
        let entry = DirEntry {
            fs,
            stream: Mutex::new(DirStream {
                ino,
                pos: 0,
                ahead: VecDeque::new(),
            }),
        };
        registry::with(|r| r.dirs.insert(h, Arc::new(entry)));
        // SAFETY: non-NULL; the caller promises it is writable for one bfs_dir_t.
        unsafe { out.write(h) };
        Ok(())
    })
}

/// The next entry of `dir` into `*out`: returns 1, or 0 at the end (then `*out` is
/// untouched). `.` and `..` are not listed. `-ENOENT` if the directory was removed.
///
/// # Safety
/// `out` is NULL (→ `-EINVAL`) or writable for one `bfs_dirent`.
#[no_mangle]
pub unsafe extern "C" fn bfs_readdir_next(dir: bfs_dir_t, out: *mut bfs_dirent) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(libc::EINVAL);
        }
        let d = stream(dir)?;
        let f = registry::fs(d.fs)?;
        let mut s = d.stream.lock().unwrap_or_else(|p| p.into_inner());
        if s.ahead.is_empty() {
            let v = f.fs.readdir_ino(s.ino, s.pos, BATCH).map_err(|e| err(&e))?;
            s.ahead.extend(v);
        }
        let Some(e) = s.ahead.pop_front() else {
            return Ok(0);
        };
        s.pos = e.next_cookie;
        // SAFETY: non-NULL and writable for one bfs_dirent by the caller's promise.
        unsafe { out.write(dirent_of(&e)) };
        Ok(1)
    }) as c_int
}

/// The position of `dir`: a cookie (≥ 0) that [`bfs_seekdir`] returns to, the next entry
/// read then being the one after those read so far.
#[no_mangle]
pub extern "C" fn bfs_telldir(dir: bfs_dir_t) -> i64 {
    guard(|| {
        let d = stream(dir)?;
        let s = d.stream.lock().unwrap_or_else(|p| p.into_inner());
        i64::try_from(s.pos).map_err(|_| libc::EOVERFLOW)
    })
}

/// Moves `dir` to `cookie`: 0 (the start, as `rewinddir`), a value of [`bfs_telldir`], or
/// an entry's `next_cookie`. `-EINVAL` for a negative cookie.
#[no_mangle]
pub extern "C" fn bfs_seekdir(dir: bfs_dir_t, cookie: i64) -> c_int {
    guard_int(|| {
        let pos = u64::try_from(cookie).map_err(|_| libc::EINVAL)?;
        let d = stream(dir)?;
        let mut s = d.stream.lock().unwrap_or_else(|p| p.into_inner());
        s.pos = pos;
        s.ahead.clear();
        Ok(())
    })
}

/// Closes the stream `dir`.
#[no_mangle]
pub extern "C" fn bfs_closedir(dir: bfs_dir_t) -> c_int {
    guard_int(|| {
        registry::dir(dir)?;
        registry::with(|r| r.dirs.remove(&dir))
            .map(drop)
            .ok_or(libc::EBADF)
    })
}
