//! An open bdev descriptor, shared by a device and its queues, and its hot-remove flag.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use spdk_sys as sys;

use super::env::SpdkEnv;
use crate::types::Geometry;

/// The I/O types a bdev carries out (SPDK's `io_type_supported`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Supports {
    pub(super) unmap: bool,
    /// Natively or emulated by SPDK with writes of zeroes.
    pub(super) write_zeroes: bool,
}

/// Set by the hot-remove event, read by every submit.
pub(super) struct Removal {
    pub(super) removed: AtomicBool,
    pub(super) name: String,
}

impl Removal {
    pub(super) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }
}

/// An open `spdk_bdev_desc`, shared by the device and its queues; closed on the app thread
/// when the last of them is dropped.
pub(super) struct Desc {
    pub(super) desc: NonNull<sys::spdk_bdev_desc>,
    /// The hot-remove callback's context: an `Arc<Removal>` turned into a raw pointer at
    /// open, turned back and dropped after close.
    pub(super) event_ctx: NonNull<Removal>,
    pub(super) removal: Arc<Removal>,
    pub(super) geometry: Geometry,
    pub(super) supports: Supports,
    /// The name of a refused flush or FUA write in its error: "flush" and "FUA", or, when
    /// only the NVMe bdev's `enable_flush` is missing, a name that says to set it.
    pub(super) refused_flush: &'static str,
    pub(super) refused_fua: &'static str,
    /// Writes must be a multiple of this many blocks (`spdk_bdev_get_write_unit_size`).
    pub(super) write_unit_blocks: u32,
    pub(super) env: Arc<SpdkEnv>,
}

// SAFETY: SPDK lets any SPDK thread get an io channel from a descriptor and submit I/O with
// it on that channel's thread (that is what queues do, each on its own thread); the
// descriptor is opened and closed only on the app thread (`open`, `Drop`), and closed only
// when no queue holds this value any more. `event_ctx` is only turned back into its `Arc`
// after the close. The rest is plain data.
unsafe impl Send for Desc {}
// SAFETY: as above; `&Desc` offers nothing beyond the descriptor pointer for those uses.
unsafe impl Sync for Desc {}

impl Desc {
    pub(super) fn as_ptr(&self) -> *mut sys::spdk_bdev_desc {
        self.desc.as_ptr()
    }
}

impl Drop for Desc {
    fn drop(&mut self) {
        let handle = AppPtrs {
            desc: self.desc,
            ctx: self.event_ctx,
        };
        self.env.on_app(move || {
            // Moved whole: a closure capturing its fields one by one would not be `Send`.
            let handle = handle;
            let AppPtrs { desc, ctx } = handle;
            // SAFETY: on the app thread, where the descriptor was opened; no queue is left
            // to use it (each holds this `Desc`). After the close SPDK delivers no event to
            // it, so its context can be released: it is the `Arc` leaked at open.
            unsafe {
                sys::spdk_bdev_close(desc.as_ptr());
                drop(Arc::from_raw(ctx.as_ptr().cast_const()));
            }
        });
    }
}

/// Pointers carried to the app thread to open or close a descriptor.
struct AppPtrs {
    desc: NonNull<sys::spdk_bdev_desc>,
    ctx: NonNull<Removal>,
}

// SAFETY: carried from one OS thread to the app thread and used only there, by the SPDK
// calls that must run on the app thread.
unsafe impl Send for AppPtrs {}
