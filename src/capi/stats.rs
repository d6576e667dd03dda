//! Counters a C program can read: how many bytes were copied on their way between its
//! memory and the device, and how many device requests data I/O made.

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use super::guard::guard_int;
use super::registry;
use super::types::bfs_fs_t;

/// Counters of one mounted filesystem since it was mounted (`bfs_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct bfs_stats {
    /// Bytes the C API copied between the caller's memory and the library's DMA buffers:
    /// `bfs_submit_pwrite` copies at submit, `bfs_submit_pread` at `bfs_poll`. The DMA
    /// calls (`bfs_submit_pread_dma`, `bfs_submit_pwrite_dma`) add nothing.
    pub copied_bytes: u64,
    /// Bytes the synchronous `bfs_pread` / `bfs_pwrite` of `O_DIRECT` files copied through
    /// bounce buffers (ordinary memory cannot be given to the device).
    pub bounce_bytes: u64,
    /// Device reads and writes of direct (`O_DIRECT`) I/O.
    pub direct_ios: u64,
    /// Device reads filling the page cache (buffered files).
    pub cache_reads: u64,
    /// Device writes of writeback (buffered files' data on its way to the device).
    pub writeback_writes: u64,
}

/// The counters of `fs` into `*out`. A buffered file's bytes always pass through the page
/// cache, which these do not count as copies; an `O_DIRECT` file's bytes are copied only
/// where `copied_bytes` and `bounce_bytes` say.
///
/// # Safety
/// `out` is NULL (→ `-EINVAL`) or writable for one `bfs_stats`.
#[no_mangle]
pub unsafe extern "C" fn bfs_stats(fs: bfs_fs_t, out: *mut bfs_stats) -> c_int {
    guard_int(|| {
        if out.is_null() {
            return Err(libc::EINVAL);
        }
        let f = registry::fs(fs)?;
        let io = f.fs.io_counters();
        let s = bfs_stats {
            copied_bytes: f.copied_bytes.load(Ordering::Relaxed),
            bounce_bytes: io.bounce_bytes.load(Ordering::Relaxed),
            direct_ios: io.direct_ios.load(Ordering::Relaxed),
            cache_reads: io.cache_reads.load(Ordering::Relaxed),
            writeback_writes: io.writeback_writes.load(Ordering::Relaxed),
        };
        // SAFETY: non-NULL and writable for one bfs_stats by the caller's promise.
        unsafe { out.write(s) };
        Ok(())
    })
}
