//! `SpdkDevice`: an open descriptor of one SPDK bdev, its geometry, and hot-remove events.

use std::ffi::{c_void, CString};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use spdk_sys as sys;

use super::app;
use super::desc::{Desc, Removal, Supports};
use super::env::SpdkEnv;
use super::geometry::{self, BdevFacts, FlushContext};
use super::queue::SpdkQueue;
use crate::device::{BlockDevice, IoQueue};
use crate::dma::DmaBuf;
use crate::error::BdevError;
use crate::types::Geometry;

/// The most requests one queue may have in flight (SPDK's default bdev I/O pool is 65535).
const MAX_DEPTH: usize = 65536;

/// One SPDK bdev, opened read-write.
pub struct SpdkDevice {
    /// The name it was opened by: its own, or one of its aliases.
    name: String,
    /// SPDK's own name of the bdev, the same whichever alias opened it.
    bdev_name: String,
    product: String,
    module: String,
    desc: Arc<Desc>,
}

impl SpdkDevice {
    /// Opens bdev `name` of the running environment for reading and writing. Fails if no
    /// such bdev exists or another module has claimed it (a bdev some wrapper sits on).
    pub fn open(env: &Arc<SpdkEnv>, name: &str) -> Result<SpdkDevice, BdevError> {
        let c_name = CString::new(name)
            .map_err(|_| BdevError::Config(format!("bdev name {name:?} contains a NUL")))?;
        let removal = Arc::new(Removal {
            removed: AtomicBool::new(false),
            name: name.to_owned(),
        });
        // The event callback's reference, released by `Desc::drop` after the close (or
        // below if the open fails).
        let ctx = CtxPtr(
            NonNull::new(Arc::into_raw(Arc::clone(&removal)).cast_mut())
                .expect("Arc pointers are not null"),
        );
        let nvme_flush_enabled = env.nvme_flush_enabled();
        // SAFETY: `ctx` stands for a reference to `removal` that is released only after the
        // descriptor is closed (`Desc::drop`), or below if the open fails.
        let opened = env.on_app(move || unsafe { open_on_app(&c_name, ctx, nvme_flush_enabled) });
        let opened = match opened {
            Ok(o) => o,
            Err(rc) => {
                // SAFETY: the open failed, so SPDK never kept the context; this is the
                // reference `into_raw` leaked above, released once.
                drop(unsafe { Arc::from_raw(ctx.0.as_ptr().cast_const()) });
                return Err(open_error(env, name, rc));
            }
        };
        let drops = geometry::nvme_drops_flushes(&opened.facts, opened.flush_context);
        if drops {
            log::warn!(
                "bdev spdk: {name}: {} is not supported",
                geometry::NVME_FLUSH_OFF
            );
        }
        let (refused_flush, refused_fua) = if drops {
            (geometry::NVME_FLUSH_OFF, geometry::NVME_FLUSH_OFF)
        } else {
            ("flush", "FUA")
        };
        let desc = Arc::new(Desc {
            desc: opened.desc.0,
            event_ctx: ctx.0,
            removal,
            geometry: geometry::geometry(&opened.facts, opened.flush_context),
            supports: opened.supports,
            refused_flush,
            refused_fua,
            write_unit_blocks: opened.write_unit_blocks,
            env: Arc::clone(env),
        });
        // From here on, dropping `desc` closes the descriptor.
        if opened.md_size != 0 {
            return Err(BdevError::Config(format!(
                "{name}: bdevs with per-block metadata ({} bytes) are not supported",
                opened.md_size
            )));
        }
        let geo = desc.geometry;
        if geo.block_count == 0 || !geo.block_size.is_power_of_two() {
            return Err(BdevError::Config(format!(
                "{name}: {} blocks of {} bytes is not a usable geometry",
                geo.block_count, geo.block_size
            )));
        }
        Ok(SpdkDevice {
            name: name.to_owned(),
            bdev_name: opened.bdev_name,
            product: opened.product,
            module: opened.facts.module,
            desc,
        })
    }

    /// SPDK's product name of the bdev ("Malloc disk", "NVMe disk", "URING bdev" …).
    pub fn product_name(&self) -> &str {
        &self.product
    }

    /// The SPDK module that registered the bdev ("malloc", "nvme", "uring" …).
    pub fn module_name(&self) -> &str {
        &self.module
    }

    /// Whether SPDK reported the bdev hot-removed. Queues then fail every new request with
    /// [`IoError::Removed`](crate::IoError::Removed); drop them and the device to let SPDK
    /// finish the removal.
    pub fn is_removed(&self) -> bool {
        self.desc.removal.is_removed()
    }
}

/// A descriptor pointer moved back from the app thread.
struct DescPtr(NonNull<sys::spdk_bdev_desc>);
// SAFETY: see `AppPtrs`; the receiver wraps it in `Desc` at once.
unsafe impl Send for DescPtr {}

/// The hot-remove context moved to the app thread for the open.
#[derive(Clone, Copy)]
struct CtxPtr(NonNull<Removal>);
// SAFETY: it points to a `Removal` (`Sync`) kept alive by the reference it stands for.
unsafe impl Send for CtxPtr {}

/// A descriptor just opened and what SPDK says about its bdev.
struct Opened {
    desc: DescPtr,
    facts: BdevFacts,
    flush_context: FlushContext,
    supports: Supports,
    write_unit_blocks: u32,
    /// `spdk_bdev_get_name`: the bdev's own name, whichever alias was opened.
    bdev_name: String,
    product: String,
    md_size: u32,
}

/// Opens the descriptor and reads the bdev's facts, on the app thread.
///
/// # Safety
/// On the app thread. `ctx` must point to a `Removal` that stays alive until the descriptor
/// is closed: SPDK hands it to `bdev_event` until then.
unsafe fn open_on_app(
    name: &CString,
    ctx: CtxPtr,
    nvme_flush_enabled: bool,
) -> Result<Opened, i32> {
    let mut desc: *mut sys::spdk_bdev_desc = std::ptr::null_mut();
    // SAFETY: on the app thread, as opening requires (the caller's contract, like `ctx`'s
    // lifetime); `name` is NUL-terminated; `desc` is written on success.
    let rc = unsafe {
        sys::spdk_bdev_open_ext(
            name.as_ptr(),
            true,
            Some(bdev_event),
            ctx.0.as_ptr().cast(),
            &mut desc,
        )
    };
    let desc = match (rc, NonNull::new(desc)) {
        (0, Some(d)) => d,
        (0, None) => return Err(-libc::EIO),
        (e, _) => return Err(e),
    };
    // SAFETY: an open descriptor names a live bdev; the getters only read it; strings are
    // NUL-terminated and copied at once.
    unsafe {
        let bdev = sys::spdk_bdev_desc_get_bdev(desc.as_ptr());
        let supported = |t| sys::spdk_bdev_io_type_supported(bdev, t);
        let facts = BdevFacts {
            module: app::c_str(sys::spdk_bdev_get_module_name(bdev)),
            block_size: sys::spdk_bdev_get_block_size(bdev),
            num_blocks: sys::spdk_bdev_get_num_blocks(bdev),
            buf_align: sys::spdk_bdev_get_buf_align(bdev),
            optimal_io_boundary: sys::spdk_bdev_get_optimal_io_boundary(bdev),
            write_cache: sys::spdk_bdev_has_write_cache(bdev),
            flush: supported(sys::SPDK_BDEV_IO_TYPE_FLUSH),
        };
        let supports = Supports {
            unmap: supported(sys::SPDK_BDEV_IO_TYPE_UNMAP),
            write_zeroes: supported(sys::SPDK_BDEV_IO_TYPE_WRITE_ZEROES)
                || supported(sys::SPDK_BDEV_IO_TYPE_WRITE),
        };
        Ok(Opened {
            desc: DescPtr(desc),
            facts,
            flush_context: FlushContext {
                nvme_flush_enabled,
                nvme_bdev_present: nvme_bdev_present(),
            },
            supports,
            write_unit_blocks: sys::spdk_bdev_get_write_unit_size(bdev).max(1),
            bdev_name: app::c_str(sys::spdk_bdev_get_name(bdev)),
            product: app::c_str(sys::spdk_bdev_get_product_name(bdev)),
            md_size: sys::spdk_bdev_get_md_size(bdev),
        })
    }
}

/// Whether any registered bdev is an NVMe bdev. Runs on the app thread.
fn nvme_bdev_present() -> bool {
    // SAFETY: on the app thread the bdev list is stable between these calls; module names
    // are static strings.
    unsafe {
        let mut bdev = sys::spdk_bdev_first();
        while !bdev.is_null() {
            if app::c_str(sys::spdk_bdev_get_module_name(bdev)) == geometry::NVME_MODULE {
                return true;
            }
            bdev = sys::spdk_bdev_next(bdev);
        }
    }
    false
}

fn open_error(env: &SpdkEnv, name: &str, rc: i32) -> BdevError {
    match -rc {
        libc::ENODEV => BdevError::Config(format!(
            "no SPDK bdev named \"{name}\" (unclaimed bdevs: {})",
            env.bdev_names().join(", ")
        )),
        libc::EPERM => BdevError::Config(format!(
            "SPDK bdev \"{name}\" is claimed by another bdev (open the one on top of it)"
        )),
        e => BdevError::os(
            format!("opening SPDK bdev {name}"),
            std::io::Error::from_raw_os_error(e),
        ),
    }
}

/// SPDK's descriptor event callback; runs on the app thread.
unsafe extern "C" fn bdev_event(
    kind: sys::spdk_bdev_event_type,
    _bdev: *mut sys::spdk_bdev,
    ctx: *mut c_void,
) {
    // SAFETY: `ctx` is the `Removal` leaked at open, alive until after the descriptor is
    // closed, and SPDK calls this only for an open descriptor.
    let removal = unsafe { &*ctx.cast::<Removal>() };
    if kind == sys::SPDK_BDEV_EVENT_REMOVE {
        removal.removed.store(true, Ordering::Relaxed);
        log::warn!(
            "bdev spdk: {} was hot-removed; its queues now fail new requests",
            removal.name
        );
    }
}

impl BlockDevice for SpdkDevice {
    fn name(&self) -> &str {
        &self.name
    }

    /// The bdev's own name, unique in the SPDK application, not the name it was opened by:
    /// an alias (an lvol's `lvs/lvol` or its UUID) opens the same bdev under another name.
    fn storage_id(&self) -> Option<String> {
        Some(format!("spdk bdev {}", self.bdev_name))
    }

    fn geometry(&self) -> Geometry {
        self.desc.geometry
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        if depth == 0 || depth > MAX_DEPTH {
            return Err(BdevError::Config(format!(
                "{}: queue depth {depth} must be from 1 to {MAX_DEPTH}",
                self.name
            )));
        }
        Ok(Box::new(SpdkQueue::new(
            &self.name,
            Arc::clone(&self.desc),
            depth,
        )?))
    }

    /// DMA memory from SPDK's allocator (`spdk_zmalloc`): registered for the device's DMA,
    /// which buffers of [`DmaBuf::alloc`] are not (local PCIe NVMe needs this; other bdevs
    /// accept either).
    fn alloc_buf(&self, len: usize) -> Result<DmaBuf, BdevError> {
        let align = self.desc.geometry.buf_align;
        if len == 0 {
            return Err(BdevError::NoMemory {
                len,
                reason: "length must be positive".into(),
            });
        }
        // SAFETY: allocation only; the result is checked for null.
        let ptr = unsafe {
            sys::spdk_zmalloc(
                len,
                align,
                std::ptr::null_mut(),
                sys::SPDK_ENV_NUMA_ID_ANY,
                sys::SPDK_MALLOC_DMA,
            )
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| BdevError::NoMemory {
            len,
            reason: "SPDK's DMA memory is exhausted (give SPDK more hugepages, or a larger \
                     mem_size_mb)"
                .into(),
        })?;
        // SAFETY: `spdk_zmalloc` returned `len` zeroed bytes that only this buffer uses;
        // SPDK's allocator is thread-safe and `spdk_free` releases the block once.
        Ok(unsafe { DmaBuf::from_foreign(ptr, len, spdk_free) })
    }
}

/// Gives memory of `spdk_zmalloc` back.
///
/// # Safety
/// `ptr` came from `spdk_zmalloc` and is freed once.
unsafe fn spdk_free(ptr: NonNull<u8>) {
    // SAFETY: the caller's contract.
    unsafe { sys::spdk_free(ptr.as_ptr().cast()) }
}

impl std::fmt::Debug for SpdkDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpdkDevice")
            .field("name", &self.name)
            .field("product", &self.product)
            .field("geometry", &self.desc.geometry)
            .finish_non_exhaustive()
    }
}
