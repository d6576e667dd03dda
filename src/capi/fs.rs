//! Format, mount, unmount; statfs and sync, which concern the whole filesystem.

use std::ffi::c_char;
use std::ffi::c_int;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use fs_core::{Filesystem, FormatOptions, MountOptions};

use crate::device::Access;

use super::device::{bfs_device_opts, DeviceChoice};
use super::guard::{c_str, err, guard_int};
use super::registry::{self, new_handle, FsEntry, KIND_FS};
use super::types::{bfs_ctx_t, bfs_fs_t, bfs_statfs};

/// Mount read-only.
pub const BFS_MOUNT_RDONLY: u32 = 1;
/// Mount read-write although the device says another host has it mounted and did not
/// unmount: the caller vouches that the other host is down (`MountOptions::take_over`).
pub const BFS_MOUNT_TAKEOVER: u32 = 2;
/// Make every namespace, attribute and xattr change durable before its call returns (as
/// `mount -o dirsync`; `MountOptions::dirsync`). Without it such a change is atomic at
/// once and durable at the next commit: an fsync of the file that needs it,
/// `bfs_fsync_dir`, `bfs_sync` or unmount.
pub const BFS_MOUNT_DIRSYNC: u32 = 4;

/// Formats `device` (an image file or block device path, or an SPDK JSON config ending in
/// `.json`) as an empty filesystem. Destroys what was on it. `-EBUSY` while another opener
/// (a mount, in this or another process) holds the device. [`bfs_format_with`] picks a bdev
/// of a config and can open it through SPDK.
///
/// # Safety
/// `device` is NULL (→ `-EINVAL`) or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bfs_format(device: *const c_char) -> c_int {
    // SAFETY: forwarded from this function's contract; no options.
    unsafe { bfs_format_with(device, std::ptr::null()) }
}

/// [`bfs_format`] with device options: `opts->bdev` picks a bdev of an SPDK JSON config,
/// `BFS_DEVICE_SPDK` in `opts->flags` opens it through SPDK (see `struct bfs_device_opts`).
/// `opts` may be NULL (then this is `bfs_format`). Besides `bfs_format`'s errors:
/// `-ENOTSUP` when SPDK is asked of a build without it (rebuild with `--features spdk`),
/// `-ENOMEM` when SPDK finds no free hugepages (reserve some, or set
/// `BFS_DEVICE_SPDK_NO_HUGE`), `-ENODEV` for an unknown bdev (the log lists the config's).
///
/// # Safety
/// `device` is NULL or a NUL-terminated string; `opts` is NULL or points to a readable
/// `struct bfs_device_opts` whose strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn bfs_format_with(
    device: *const c_char,
    opts: *const bfs_device_opts,
) -> c_int {
    guard_int(|| {
        // SAFETY: forwarded from this function's contract.
        let (device, choice) = unsafe { (c_str(device)?, DeviceChoice::from_c(opts)?) };
        let dev = choice.open(device, Access::ReadWrite)?;
        Filesystem::format(dev, FormatOptions::default()).map_err(|e| err(&e))
    })
}

/// Mounts the filesystem on `device` (as for [`bfs_format`]); `flags`: 0, or
/// `BFS_MOUNT_RDONLY`, or `BFS_MOUNT_TAKEOVER` and `BFS_MOUNT_DIRSYNC` or-ed together. On
/// success `*out` is the filesystem's handle. A read-write mount commits whatever is
/// unsynced every 30 s from a thread of its own (fs-core's timed commit), so nothing stays
/// only in memory for longer; fsync, `bfs_sync` and unmount make things durable at once.
/// A read-write mount holds the device exclusively until unmounted, a read-only one
/// shares it with other readers; `-EBUSY` when that conflicts with another opener, or when
/// the device's mount claim names a live mount (of this host) or another host's mount that
/// was never unmounted (`BFS_MOUNT_TAKEOVER` takes that one over). [`bfs_mount_with`] picks
/// a bdev of a config and can open it through SPDK.
///
/// # Safety
/// `device` is NULL or a NUL-terminated string; `out` is NULL or writable for one
/// `bfs_fs_t`.
#[no_mangle]
pub unsafe extern "C" fn bfs_mount(device: *const c_char, flags: u32, out: *mut bfs_fs_t) -> c_int {
    // SAFETY: forwarded from this function's contract; no options.
    unsafe { bfs_mount_with(device, std::ptr::null(), flags, out) }
}

/// [`bfs_mount`] with device options, as [`bfs_format_with`] takes them (`opts` may be
/// NULL), and with its errors.
///
/// # Safety
/// As for [`bfs_mount`] and [`bfs_format_with`].
#[no_mangle]
pub unsafe extern "C" fn bfs_mount_with(
    device: *const c_char,
    opts: *const bfs_device_opts,
    flags: u32,
    out: *mut bfs_fs_t,
) -> c_int {
    guard_int(|| {
        let known = BFS_MOUNT_RDONLY | BFS_MOUNT_TAKEOVER | BFS_MOUNT_DIRSYNC;
        if out.is_null() || flags & !known != 0 {
            return Err(libc::EINVAL);
        }
        let read_only = flags & BFS_MOUNT_RDONLY != 0;
        let access = if read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        // SAFETY: forwarded from this function's contract.
        let (device, choice) = unsafe { (c_str(device)?, DeviceChoice::from_c(opts)?) };
        let dev = choice.open(device, access)?;
        let opts = MountOptions {
            read_only,
            take_over: flags & BFS_MOUNT_TAKEOVER != 0,
            dirsync: flags & BFS_MOUNT_DIRSYNC != 0,
            ..MountOptions::default()
        };
        let fs = Filesystem::mount(dev.clone(), opts).map_err(|e| err(&e))?;
        let h = new_handle(KIND_FS);
        let entry = FsEntry {
            fs,
            dev,
            read_only,
            copied_bytes: AtomicU64::new(0),
        };
        registry::with(|r| r.fs.insert(h, Arc::new(entry)));
        // SAFETY: non-NULL; the caller promises it is writable for one bfs_fs_t.
        unsafe { out.write(h) };
        Ok(())
    })
}

/// Writes everything back, commits and flushes, then forgets the handle. `-EBUSY` while a
/// file or directory stream of it is open. The calling thread's contexts of it are
/// destroyed; other threads' contexts become invalid (`-EBADF`) and keep the device open
/// until those threads destroy them, so destroy them first when the device is to be
/// mounted again.
#[no_mangle]
pub extern "C" fn bfs_unmount(fs: bfs_fs_t) -> c_int {
    guard_int(|| {
        let f = registry::fs(fs)?;
        let taken = registry::with(|r| {
            if r.files.values().any(|e| e.fs == fs) || r.dirs.values().any(|d| d.fs == fs) {
                return Err(libc::EBUSY);
            }
            r.fs.remove(&fs).ok_or(libc::EBADF)
        })?;
        drop(taken);
        super::ctx::destroy_own_of(fs);
        let ctx = f.fs.context().map_err(|e| err(&e))?;
        f.fs.clone().unmount(&ctx).map_err(|e| err(&e))
    })
}

/// Space and limits of the filesystem into `*out`.
///
/// # Safety
/// `out` is NULL (→ `-EINVAL`) or writable for one `bfs_statfs`.
#[no_mangle]
pub unsafe extern "C" fn bfs_statfs(fs: bfs_fs_t, out: *mut bfs_statfs) -> c_int {
    guard_int(|| {
        if out.is_null() {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        let s = f.fs.statfs().map_err(|e| err(&e))?;
        // SAFETY: non-NULL and writable for one bfs_statfs by the caller's promise.
        unsafe { out.write(bfs_statfs::from(&s)) };
        Ok(())
    })
}

/// Writes back every file and commits: everything written before the call, through any
/// thread, is durable on return (`sync(2)`). `ctx` is the calling thread's context of the
/// filesystem.
#[no_mangle]
pub extern "C" fn bfs_sync(ctx: bfs_ctx_t) -> c_int {
    guard_int(|| {
        let c = super::ctx::get(ctx)?;
        let f = registry::fs(c.fs)?;
        f.fs.sync(&c.ctx).map_err(|e| err(&e))
    })
}
