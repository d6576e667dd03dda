//! The raw Linux interfaces the uring backend needs besides io_uring itself: block device
//! ioctls and `statx`'s direct-I/O alignment. Each wrapper is safe: it passes the kernel
//! only memory it owns for the duration of the call.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;

// The ioctl numbers libc does not export, encoded as in <linux/fs.h>. The `_IOR`/`_IO`
// layout differs on mips, powerpc and sparc (3 direction bits, "none" = 1).
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
mod nr {
    /// `_IOR(0x12, 114, size_t)`.
    pub(super) const BLKGETSIZE64: u32 = (2 << 30) | (8 << 16) | (0x12 << 8) | 114;
    /// `_IO(0x12, 119)`.
    pub(super) const BLKDISCARD: u32 = (0x12 << 8) | 119;
}
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
mod nr {
    pub(super) const BLKGETSIZE64: u32 = (2 << 29) | (8 << 16) | (0x12 << 8) | 114;
    pub(super) const BLKDISCARD: u32 = (1 << 29) | (0x12 << 8) | 119;
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The logical sector size of a block device (`BLKSSZGET`).
pub(super) fn logical_block_size(dev: &File) -> io::Result<u32> {
    let mut size: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one `int` through the pointer, which points to `size`, alive
    // for the whole call.
    check(unsafe { libc::ioctl(dev.as_raw_fd(), libc::BLKSSZGET, &mut size) })?;
    u32::try_from(size).map_err(|_| io::Error::other(format!("BLKSSZGET returned {size}")))
}

/// The size of a block device in bytes (`BLKGETSIZE64`).
pub(super) fn block_device_bytes(dev: &File) -> io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one `u64` through the pointer, which points to `size`,
    // alive for the whole call.
    check(unsafe { libc::ioctl(dev.as_raw_fd(), nr::BLKGETSIZE64 as libc::Ioctl, &mut size) })?;
    Ok(size)
}

/// Discards `len` bytes at byte offset `off` of a block device (`BLKDISCARD`). Blocks the
/// caller until the device has accepted the discard.
pub(super) fn discard(dev: &File, off: u64, len: u64) -> io::Result<()> {
    let range: [u64; 2] = [off, len];
    // SAFETY: BLKDISCARD reads two `u64`s through the pointer, which points to `range`,
    // alive for the whole call.
    check(unsafe { libc::ioctl(dev.as_raw_fd(), nr::BLKDISCARD as libc::Ioctl, &range) })
}

/// Direct-I/O alignment requirements reported by `statx(STATX_DIOALIGN)` (Linux 6.1+).
#[derive(Clone, Copy, Debug)]
pub(super) struct DioAlign {
    /// Required alignment of buffer addresses, in bytes; 0 means direct I/O is unsupported.
    pub(super) mem: u32,
    /// Required alignment of file offsets and lengths, in bytes; 0 means unsupported.
    pub(super) offset: u32,
}

/// The direct-I/O alignment of an open file, or `None` if the kernel or filesystem does not
/// report it.
pub(super) fn dio_align(file: &File) -> io::Result<Option<DioAlign>> {
    let mut stx = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: the path is a NUL-terminated empty string with AT_EMPTY_PATH, so statx looks
    // only at the fd; it writes at most one `struct statx` into `stx`, which is ours and
    // large enough.
    check(unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            stx.as_mut_ptr(),
        )
    })?;
    // SAFETY: `stx` was zero-initialised, and all-zero bytes are a valid `statx` (plain
    // integers); statx only overwrote fields with integers.
    let stx = unsafe { stx.assume_init() };
    Ok(
        (stx.stx_mask & libc::STATX_DIOALIGN != 0).then_some(DioAlign {
            mem: stx.stx_dio_mem_align,
            offset: stx.stx_dio_offset_align,
        }),
    )
}

/// Whether a `flock` was had, or someone else holds a conflicting one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flock {
    /// The lock is ours until the file is closed.
    Taken,
    /// Another open file holds a conflicting lock (`EWOULDBLOCK`).
    Held,
}

/// Drops `file`'s BSD `flock` now, for every descriptor that shares its open file
/// description (a copy a forking thread's child still holds until it execs, say), which
/// closing our descriptor alone would not do.
pub(super) fn unlock(file: &File) -> io::Result<()> {
    // SAFETY: flock takes only an fd and flags; `file` keeps the fd open for the call.
    check(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) })
}

/// Takes a BSD `flock` on `file` without waiting: exclusive or shared. (std's
/// `File::try_lock` does the same but needs Rust 1.89, beyond the workspace's 1.85.)
pub(super) fn try_flock(file: &File, exclusive: bool) -> io::Result<Flock> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: flock takes only an fd and flags; `file` keeps the fd open for the call.
    match check(unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) }) {
        Ok(()) => Ok(Flock::Taken),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(Flock::Held),
        Err(e) => Err(e),
    }
}

/// Whether `file` lives on tmpfs (`fstatfs`): memory, where a read or write is a copy.
pub(super) fn on_tmpfs(file: &File) -> io::Result<bool> {
    let mut st = MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: fstatfs writes at most one `struct statfs` into `st`, which is ours and large
    // enough; `file` keeps the fd open for the call.
    check(unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: zero-initialised, and all-zero bytes are a valid `statfs` (plain integers);
    // fstatfs only overwrote fields with integers.
    let st = unsafe { st.assume_init() };
    // `f_type`'s integer type differs between targets; the magic fits in 32 bits.
    Ok(st.f_type as u64 == libc::TMPFS_MAGIC as u64)
}

/// Whether reads of `file` refuse `RWF_NOWAIT` (`EOPNOTSUPP`): the file lacks
/// `FMODE_NOWAIT`, so io_uring cannot try its requests inline and hands every one to a
/// kernel worker thread. `buf` (aligned for direct I/O, at least one block, at most the
/// file's length) receives the file's first bytes.
pub(super) fn refuses_nowait(file: &File, buf: &mut [u8]) -> io::Result<bool> {
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we borrow
    // mutably for the whole call; `file` keeps the fd open.
    let r = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, 0, libc::RWF_NOWAIT) };
    if r >= 0 {
        return Ok(false);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => Ok(true),
        // Supported, but this read would have had to wait.
        Some(libc::EAGAIN) => Ok(false),
        _ => Err(e),
    }
}
