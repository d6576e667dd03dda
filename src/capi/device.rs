//! Which device a C caller means: a path, and optionally a bdev choice and SPDK
//! (`struct bfs_device_opts`).

use std::ffi::c_char;
use std::path::Path;
use std::sync::Arc;

use bdev::{BdevError, BlockDevice};

use crate::device::spdk::{SpdkOpenError, SpdkOptions};
use crate::device::Access;

use super::guard::{c_str, CResult};

/// Open the device's SPDK JSON config through SPDK itself (every bdev SPDK knows: NVMe,
/// NVMe-oF, aio, uring …) instead of the native backends. Needs a build with the `spdk`
/// feature (else `-ENOTSUP`).
pub const BFS_DEVICE_SPDK: u32 = 1;
/// With `BFS_DEVICE_SPDK`: run SPDK without hugepages (bdevperf's `--no-huge`), in
/// `spdk_mem_size_mb` of ordinary memory (0: 512 MiB). Fine for aio, uring, malloc and
/// NVMe-oF/TCP bdevs, not for local PCIe NVMe.
pub const BFS_DEVICE_SPDK_NO_HUGE: u32 = 2;

/// How to open a device: which bdev of an SPDK JSON config, and whether through SPDK.
/// Zero-initialise it (`struct bfs_device_opts o = {0};`) and set what you need.
///
/// SPDK starts once per process: every device opened through it must come from the same
/// config with the same `flags`, `spdk_mem_size_mb` and `spdk_core_mask` (several bdevs of
/// one config, or one bdev mounted, unmounted and mounted again, are fine); anything else is
/// `-ENODEV` with the reason in the log.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bfs_device_opts {
    /// With an SPDK JSON config: the bdev to use (as `--bdev`); NULL: the config's only one.
    pub bdev: *const c_char,
    /// 0, or `BFS_DEVICE_SPDK`, optionally with `BFS_DEVICE_SPDK_NO_HUGE`.
    pub flags: u32,
    /// With `BFS_DEVICE_SPDK`: memory for SPDK in MiB (bdevperf's `-s`); 0: the default
    /// (grow on demand with hugepages, 512 MiB without).
    pub spdk_mem_size_mb: u32,
    /// With `BFS_DEVICE_SPDK`: SPDK's core mask (bdevperf's `-m`: "0x1", "[0,2-3]"); NULL:
    /// core 0.
    pub spdk_core_mask: *const c_char,
}

/// What a `bfs_device_opts` says, checked.
pub(crate) struct DeviceChoice {
    bdev: Option<String>,
    spdk: Option<SpdkOptions>,
}

impl DeviceChoice {
    /// No bdev choice, native backends: what `bfs_format` and `bfs_mount` open.
    pub(crate) fn plain() -> Self {
        DeviceChoice {
            bdev: None,
            spdk: None,
        }
    }

    /// Reads `opts` (NULL: [`DeviceChoice::plain`]); `-EINVAL` for unknown flags, SPDK
    /// settings without `BFS_DEVICE_SPDK` or strings that are not UTF-8.
    ///
    /// # Safety
    /// `opts` is NULL or points to a readable `bfs_device_opts` whose strings are NULL or
    /// NUL-terminated, valid during the call.
    pub(crate) unsafe fn from_c(opts: *const bfs_device_opts) -> CResult<Self> {
        if opts.is_null() {
            return Ok(Self::plain());
        }
        // SAFETY: non-NULL, and the caller promises a readable struct.
        let o = unsafe { opts.read() };
        let spdk = o.flags & BFS_DEVICE_SPDK != 0;
        let known = BFS_DEVICE_SPDK | BFS_DEVICE_SPDK_NO_HUGE;
        let spdk_settings = o.flags & BFS_DEVICE_SPDK_NO_HUGE != 0
            || o.spdk_mem_size_mb != 0
            || !o.spdk_core_mask.is_null();
        if o.flags & !known != 0 || (!spdk && spdk_settings) {
            return Err(libc::EINVAL);
        }
        let text = |p: *const c_char| -> CResult<Option<String>> {
            if p.is_null() {
                return Ok(None);
            }
            // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
            unsafe { c_str(p) }.map(|s| Some(s.to_owned()))
        };
        let spdk = if spdk {
            Some(SpdkOptions {
                no_huge: o.flags & BFS_DEVICE_SPDK_NO_HUGE != 0,
                mem_size_mb: (o.spdk_mem_size_mb != 0).then_some(o.spdk_mem_size_mb),
                core_mask: text(o.spdk_core_mask)?,
            })
        } else {
            None
        };
        Ok(DeviceChoice {
            bdev: text(o.bdev)?,
            spdk,
        })
    }

    /// Opens `device` for `access`. The reason of a failure goes to the log; the errno is
    /// `EBUSY` when another opener holds the device (a second writer, or a reader beside a
    /// writer), `ENOTSUP` when SPDK is asked of a build without it, `ENOMEM` when SPDK lacks
    /// hugepages, `ENODEV` for anything else.
    pub(crate) fn open(&self, device: &str, access: Access) -> CResult<Arc<dyn BlockDevice>> {
        let path = Path::new(device);
        let bdev = self.bdev.as_deref();
        let opened = match &self.spdk {
            None => crate::device::open_with(path, bdev, None, access).map_err(SpdkOpenError::from),
            Some(opts) => crate::device::spdk::open(path, bdev, opts),
        };
        opened.map_err(|e| {
            log::error!("bypassfs: opening {device}: {e}");
            match e {
                SpdkOpenError::NotBuilt => libc::ENOTSUP,
                SpdkOpenError::Environment(_) => libc::ENOMEM,
                SpdkOpenError::Device(BdevError::InUse(_)) => libc::EBUSY,
                SpdkOpenError::Device(_) => libc::ENODEV,
            }
        })
    }
}
