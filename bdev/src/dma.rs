//! DMA memory: owned, aligned buffers that a device may read or write while a request is in
//! flight.
//!
//! Invariants:
//! - every [`DmaBuf`] is a view of bytes no other `DmaBuf` can see: views only come from an
//!   allocation (ours, or another allocator's handed over whole to `from_foreign`, as the
//!   SPDK backend does with `spdk_zmalloc`) or from splitting a view, and splitting hands
//!   each byte to exactly one side;
//! - the memory behind a view stays mapped while any view of its allocation lives (each view
//!   holds an `Arc` of the allocation's [`Region`]);
//! - memory is initialised (zeroed at allocation), so viewing it as `[u8]` is sound.
//!
//! Buffers up to 2 MiB come from a process-wide pool of power-of-two size classes carved from
//! 2 MiB chunks, which are hugepages (`MAP_HUGETLB`) when the host has them configured and
//! ordinary pages otherwise (with one warning). Larger buffers get their own mapping. The
//! pool never returns chunks to the OS, like SPDK's mempools: a steady-state workload reuses
//! its buffers and allocates nothing.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Once, OnceLock};

use crate::error::BdevError;

const CHUNK: usize = 2 << 20;
const MIN_CLASS_SHIFT: u32 = 12;
const MAX_CLASS_SHIFT: u32 = 21;
const CLASSES: usize = (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1) as usize;

static NO_HUGEPAGES_WARNING: Once = Once::new();

/// Whether 2 MiB hugepages can be mapped on this host (tried once, then remembered).
pub fn hugepages_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| Mapping::huge(CHUNK).is_ok())
}

fn warn_no_hugepages() {
    NO_HUGEPAGES_WARNING.call_once(|| {
        log::warn!(
            "bdev: no 2 MiB hugepages available; DMA memory falls back to ordinary pages \
             (slower, more TLB misses). Configure hugepages with \
             `echo 1024 > /proc/sys/vm/nr_hugepages` (2 GiB) and \
             `mount -t hugetlbfs nodev /dev/hugepages`."
        )
    });
}

/// An anonymous memory mapping, unmapped on drop.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Mapping is a plain owned allocation; it has no thread affinity and is only read
// or written through views whose exclusivity the owners guarantee.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` exposes no access to the bytes.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes (a multiple of 2 MiB) of hugepages.
    fn huge(len: usize) -> Result<Mapping, BdevError> {
        Self::map(len, libc::MAP_HUGETLB | (21 << libc::MAP_HUGE_SHIFT))
    }

    fn map(len: usize, extra_flags: libc::c_int) -> Result<Mapping, BdevError> {
        // SAFETY: an anonymous private mapping with no address hint touches no existing
        // memory; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(BdevError::NoMemory {
                len,
                reason: std::io::Error::last_os_error().to_string(),
            });
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap never returns null on success");
        Ok(Mapping { ptr, len })
    }

    /// Maps `len` bytes (a multiple of 2 MiB) aligned to 2 MiB: hugepages when possible,
    /// else ordinary pages advised to become transparent hugepages.
    pub(crate) fn aligned(len: usize) -> Result<Mapping, BdevError> {
        debug_assert!(len % CHUNK == 0);
        if hugepages_available() {
            if let Ok(m) = Self::huge(len) {
                return Ok(m);
            }
        }
        warn_no_hugepages();
        let over = Self::map(len + CHUNK, 0)?;
        let base = over.ptr.as_ptr() as usize;
        let head = base.next_multiple_of(CHUNK) - base;
        let tail = CHUNK - head;
        let (ptr, total) = (over.ptr, over.len);
        std::mem::forget(over);
        // SAFETY: `head` and `tail` bytes at the two ends lie inside the mapping just made,
        // which nothing references yet; unmapping them leaves the aligned middle mapped.
        unsafe {
            if head > 0 {
                libc::munmap(ptr.as_ptr().cast(), head);
            }
            if tail > 0 {
                libc::munmap(ptr.as_ptr().add(head + len).cast(), tail);
            }
            debug_assert_eq!(head + len + tail, total);
            libc::madvise(ptr.as_ptr().add(head).cast(), len, libc::MADV_HUGEPAGE);
        }
        // SAFETY: `head < CHUNK <= total`, so the pointer stays inside the mapping.
        let aligned = unsafe { ptr.add(head) };
        Ok(Mapping { ptr: aligned, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `map` with this length and nothing refers to it
        // any more (views keep their Region, and with it this Mapping, alive).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The process-wide pool of size classes.
struct Pool {
    /// Free blocks of each class, as addresses (the chunks they live in are never unmapped).
    free: [Mutex<Vec<usize>>; CLASSES],
    chunks: Mutex<Vec<Mapping>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        free: std::array::from_fn(|_| Mutex::new(Vec::new())),
        chunks: Mutex::new(Vec::new()),
    })
}

impl Pool {
    fn take(&self, class: usize) -> Result<NonNull<u8>, BdevError> {
        let size = 1usize << (class as u32 + MIN_CLASS_SHIFT);
        let mut free = self.free[class].lock().unwrap_or_else(|e| e.into_inner());
        if free.is_empty() {
            let chunk = Mapping::aligned(CHUNK)?;
            let base = chunk.as_ptr() as usize;
            free.extend((0..CHUNK / size).rev().map(|i| base + i * size));
            self.chunks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(chunk);
        }
        let addr = free.pop().expect("refilled above");
        Ok(NonNull::new(addr as *mut u8).expect("pool addresses are never null"))
    }

    fn give_back(&self, class: usize, ptr: NonNull<u8>) {
        let mut free = self.free[class].lock().unwrap_or_else(|e| e.into_inner());
        free.push(ptr.as_ptr() as usize);
    }
}

enum Origin {
    Pooled {
        class: usize,
    },
    Mapped(#[allow(dead_code)] Mapping),
    /// Memory of another allocator (SPDK's `spdk_zmalloc`), handed back to it by `free`.
    #[cfg_attr(not(feature = "spdk"), allow(dead_code))]
    Foreign {
        free: unsafe fn(NonNull<u8>),
    },
}

/// One allocation; views share it and it goes back to the pool when the last one drops.
struct Region {
    ptr: NonNull<u8>,
    origin: Origin,
}

// SAFETY: a Region only owns memory; bytes are reached only through DmaBuf views, whose
// exclusivity is the DmaBuf invariant.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` gives no access to the bytes.
unsafe impl Sync for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        match self.origin {
            Origin::Pooled { class } => pool().give_back(class, self.ptr),
            Origin::Mapped(_) => {}
            // SAFETY: `from_foreign`'s contract: `free` releases exactly this allocation,
            // and this is the only call (the last view of the region is gone).
            Origin::Foreign { free } => unsafe { free(self.ptr) },
        }
    }
}

/// An owned, aligned buffer of DMA memory.
///
/// It dereferences to `[u8]`. A request takes its `DmaBuf`s by value and returns them on
/// completion, so the bytes cannot change while the device uses them. A buffer can be split
/// into disjoint owned parts (to send pieces of one buffer to different places at once) and
/// joined again.
pub struct DmaBuf {
    region: Arc<Region>,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a DmaBuf is the only handle to its bytes (module invariant) and its Region is Send
// + Sync, so moving it to another thread moves the exclusive access with it.
unsafe impl Send for DmaBuf {}
// SAFETY: `&DmaBuf` only yields `&[u8]`, and no one can write the bytes without `&mut`.
unsafe impl Sync for DmaBuf {}

impl DmaBuf {
    /// Allocates `len` zeroed bytes whose address is a multiple of `align` (a power of two,
    /// at most 2 MiB).
    pub fn alloc(len: usize, align: usize) -> Result<DmaBuf, BdevError> {
        if len == 0 || !align.is_power_of_two() || align > CHUNK {
            return Err(BdevError::NoMemory {
                len,
                reason: format!(
                    "length must be positive and alignment a power of two up to 2 MiB (align {align})"
                ),
            });
        }
        let want = len.max(align);
        let region = if want <= CHUNK {
            let class = (want
                .next_power_of_two()
                .trailing_zeros()
                .max(MIN_CLASS_SHIFT)
                - MIN_CLASS_SHIFT) as usize;
            let ptr = pool().take(class)?;
            Region {
                ptr,
                origin: Origin::Pooled { class },
            }
        } else {
            let len = want.next_multiple_of(CHUNK);
            let mapping = Mapping::aligned(len)?;
            let ptr = NonNull::new(mapping.as_ptr()).expect("mapping is not null");
            Region {
                ptr,
                origin: Origin::Mapped(mapping),
            }
        };
        let mut buf = DmaBuf {
            ptr: region.ptr,
            region: Arc::new(region),
            len,
        };
        buf.fill(0);
        Ok(buf)
    }

    /// Wraps `len` bytes of another allocator's DMA memory at `ptr`; `free(ptr)` is called
    /// once, when the last view of it drops.
    ///
    /// # Safety
    ///
    /// `ptr` must point to `len` initialised bytes, valid for reads and writes from any
    /// thread, that nothing else reads, writes or frees until `free(ptr)` is called; `free`
    /// must be sound to call once with `ptr` from any thread.
    #[cfg_attr(not(feature = "spdk"), allow(dead_code))]
    pub(crate) unsafe fn from_foreign(
        ptr: NonNull<u8>,
        len: usize,
        free: unsafe fn(NonNull<u8>),
    ) -> DmaBuf {
        let region = Region {
            ptr,
            origin: Origin::Foreign { free },
        };
        DmaBuf {
            ptr,
            region: Arc::new(region),
            len,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty (only a split at the end can make one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the address is a multiple of `align`.
    pub fn is_aligned(&self, align: usize) -> bool {
        (self.ptr.as_ptr() as usize) % align == 0
    }

    /// Splits off the bytes from `at` to the end as a separate buffer; `self` keeps
    /// `[0, at)`. Panics if `at > len`, like `Vec::split_off`.
    pub fn split_off(&mut self, at: usize) -> DmaBuf {
        assert!(
            at <= self.len,
            "split_off at {at} beyond length {}",
            self.len
        );
        // SAFETY: `at <= len`, so the pointer stays within (or one past) this view.
        let tail_ptr = unsafe { self.ptr.add(at) };
        let tail = DmaBuf {
            region: Arc::clone(&self.region),
            ptr: tail_ptr,
            len: self.len - at,
        };
        self.len = at;
        tail
    }

    /// Joins `other` back onto the end of `self` if it is the adjacent part of the same
    /// allocation; otherwise gives it back.
    pub fn unsplit(&mut self, other: DmaBuf) -> Result<(), DmaBuf> {
        let end = self.ptr.as_ptr() as usize + self.len;
        if Arc::ptr_eq(&self.region, &other.region) && other.ptr.as_ptr() as usize == end {
            self.len += other.len;
            Ok(())
        } else {
            Err(other)
        }
    }

    /// Shortens the view to `len` bytes (no effect if it is already shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Deref for DmaBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the view is initialised, mapped while `region` lives, and exclusively ours.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for DmaBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and `&mut self` proves no other borrow of the view exists.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl std::fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaBuf")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_is_zeroed_and_aligned() {
        for (len, align) in [
            (1, 1),
            (512, 512),
            (4096, 4096),
            (12288, 4096),
            (3 << 20, 4096),
        ] {
            let mut b = DmaBuf::alloc(len, align).unwrap();
            assert_eq!(b.len(), len);
            assert!(b.is_aligned(align));
            assert!(b.iter().all(|&x| x == 0));
            b.fill(0xab);
            drop(b);
        }
        // Reused pool memory is zeroed again.
        let b = DmaBuf::alloc(4096, 4096).unwrap();
        assert!(b.iter().all(|&x| x == 0));
    }

    #[test]
    fn bad_alloc_arguments_are_errors() {
        assert!(DmaBuf::alloc(0, 4096).is_err());
        assert!(DmaBuf::alloc(4096, 3).is_err());
        assert!(DmaBuf::alloc(4096, 4 << 20).is_err());
    }

    #[test]
    fn split_and_unsplit() {
        let mut a = DmaBuf::alloc(8192, 4096).unwrap();
        let mut b = a.split_off(4096);
        a.fill(1);
        b.fill(2);
        assert_eq!((a.len(), b.len()), (4096, 4096));
        let c = DmaBuf::alloc(4096, 4096).unwrap();
        let c = a.unsplit(c).unwrap_err();
        drop(c);
        a.unsplit(b).unwrap();
        assert_eq!(a.len(), 8192);
        assert!(a[..4096].iter().all(|&x| x == 1) && a[4096..].iter().all(|&x| x == 2));
        // Joining in the wrong order is refused.
        let tail = a.split_off(4096);
        let mut tail = tail;
        assert!(tail.unsplit(a).is_err());
    }

    #[test]
    fn buffers_move_across_threads() {
        let mut b = DmaBuf::alloc(4096, 4096).unwrap();
        b[0] = 7;
        let b = std::thread::spawn(move || {
            let mut b = b;
            b[1] = 8;
            b
        })
        .join()
        .unwrap();
        assert_eq!(&b[..2], &[7, 8]);
    }
}
