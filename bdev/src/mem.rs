//! `mem`: a RAM block device, like SPDK's malloc bdev.
//!
//! The data lives in one 2 MiB-aligned mapping (hugepages when configured). Requests are
//! carried out during `submit` (a memory copy) and complete at the next `poll`.
//!
//! Concurrent queues on different threads may touch the same bytes, so every copy runs under
//! the lock of the 64 KiB stripe it touches: reads share it, writes take it alone. A request
//! is therefore atomic per stripe-aligned 64 KiB piece, more than any disk promises (only a
//! sector).

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use crate::device::{BlockDevice, Completion, IoQueue, Op, Rejected};
use crate::dma::Mapping;
use crate::error::{BdevError, IoError, SubmitError};
use crate::types::{Geometry, Lba};
use crate::validate;

const STRIPE_SHIFT: u32 = 16;
const STRIPES: usize = 1024;

/// The bytes of a RAM device and the locks that keep concurrent copies race-free.
struct Store {
    mapping: Mapping,
    len: usize,
    stripes: Box<[RwLock<()>]>,
}

impl Store {
    fn new(len: usize) -> Result<Store, BdevError> {
        let mapping = Mapping::aligned(len.next_multiple_of(2 << 20).max(2 << 20))?;
        let stripes = (0..STRIPES).map(|_| RwLock::new(())).collect();
        Ok(Store {
            mapping,
            len,
            stripes,
        })
    }

    fn stripe(&self, off: usize) -> &RwLock<()> {
        &self.stripes[(off >> STRIPE_SHIFT) & (STRIPES - 1)]
    }

    /// Splits `[off, off + len)` at stripe boundaries.
    fn pieces(off: usize, len: usize) -> impl Iterator<Item = (usize, usize)> {
        let end = off + len;
        let mut at = off;
        std::iter::from_fn(move || {
            (at < end).then(|| {
                let next = ((at >> STRIPE_SHIFT) + 1) << STRIPE_SHIFT;
                let piece = (at, next.min(end) - at);
                at = next.min(end);
                piece
            })
        })
    }

    /// Copies device bytes at `off` into `dst`. `off + dst.len() <= self.len`.
    fn read(&self, off: usize, dst: &mut [u8]) {
        assert!(off + dst.len() <= self.len);
        let mut done = 0;
        for (at, n) in Self::pieces(off, dst.len()) {
            let _guard = self.stripe(at).read().unwrap_or_else(|e| e.into_inner());
            // SAFETY: `at + n <= self.len` (asserted above) lies inside the mapping; the stripe
            // read lock excludes writers of these bytes; `dst` is a distinct allocation.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.mapping.as_ptr().add(at),
                    dst[done..].as_mut_ptr(),
                    n,
                );
            }
            done += n;
        }
    }

    /// Copies `src` to device bytes at `off`, or zeroes them when `src` is `None`.
    fn write(&self, off: usize, len: usize, src: Option<&[u8]>) {
        assert!(off + len <= self.len && src.is_none_or(|s| s.len() == len));
        let mut done = 0;
        for (at, n) in Self::pieces(off, len) {
            let _guard = self.stripe(at).write().unwrap_or_else(|e| e.into_inner());
            // SAFETY: `at + n <= self.len` lies inside the mapping; the stripe write lock
            // excludes every other access to these bytes; `src` is a distinct allocation.
            unsafe {
                let dst = self.mapping.as_ptr().add(at);
                match src {
                    Some(s) => std::ptr::copy_nonoverlapping(s[done..].as_ptr(), dst, n),
                    None => std::ptr::write_bytes(dst, 0, n),
                }
            }
            done += n;
        }
    }
}

/// A RAM block device.
pub struct MemDevice {
    name: String,
    geometry: Geometry,
    store: Arc<Store>,
}

impl MemDevice {
    /// A zeroed device of `block_count` blocks of `block_size` bytes (a power of two, 512 to
    /// 64 KiB).
    pub fn new(name: &str, block_size: u32, block_count: u64) -> Result<MemDevice, BdevError> {
        if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
            return Err(BdevError::Config(format!(
                "{name}: block size {block_size} must be a power of two from 512 to 65536"
            )));
        }
        let len = block_count
            .checked_mul(u64::from(block_size))
            .filter(|&l| l > 0 && l <= isize::MAX as u64)
            .ok_or_else(|| {
                BdevError::Config(format!(
                    "{name}: {block_count} blocks of {block_size} bytes is not a valid size"
                ))
            })? as usize;
        let geometry = Geometry {
            block_size,
            block_count,
            buf_align: block_size.min(4096) as usize,
            optimal_io_boundary_blocks: 0,
            volatile_write_cache: false,
            flush_honoured: true,
            fua_honoured: true,
        };
        Ok(MemDevice {
            name: name.to_owned(),
            geometry,
            store: Arc::new(Store::new(len)?),
        })
    }

    /// A device holding a copy of `image` (its length a multiple of `block_size`).
    pub fn from_image(name: &str, block_size: u32, image: &[u8]) -> Result<MemDevice, BdevError> {
        if image.len() % block_size as usize != 0 {
            return Err(BdevError::Config(format!(
                "{name}: image of {} bytes is not a whole number of {block_size}-byte blocks",
                image.len()
            )));
        }
        let dev = MemDevice::new(name, block_size, (image.len() / block_size as usize) as u64)?;
        dev.store.write(0, image.len(), Some(image));
        Ok(dev)
    }

    /// A copy of the whole device content.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = vec![0; self.store.len];
        self.store.read(0, &mut out);
        out
    }

    /// Copies `dst.len()` bytes at byte offset `off` out of the device, bypassing queues
    /// (for tests and tools). Errors if the range is outside the device.
    pub fn read_bytes(&self, off: u64, dst: &mut [u8]) -> Result<(), IoError> {
        let off = self.byte_range(off, dst.len())?;
        self.store.read(off, dst);
        Ok(())
    }

    /// Overwrites bytes at byte offset `off`, bypassing queues (to corrupt images in tests).
    pub fn write_bytes(&self, off: u64, src: &[u8]) -> Result<(), IoError> {
        let off = self.byte_range(off, src.len())?;
        self.store.write(off, src.len(), Some(src));
        Ok(())
    }

    fn byte_range(&self, off: u64, len: usize) -> Result<usize, IoError> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.store.len as u64 => Ok(off as usize),
            _ => Err(IoError::Invalid(format!(
                "bytes {off}..+{len} are outside the {}-byte device",
                self.store.len
            ))),
        }
    }
}

impl BlockDevice for MemDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        if depth == 0 {
            return Err(BdevError::Config(format!(
                "{}: queue depth must be positive",
                self.name
            )));
        }
        Ok(Box::new(MemQueue {
            store: Arc::clone(&self.store),
            geometry: self.geometry,
            depth,
            done: VecDeque::with_capacity(depth),
        }))
    }
}

struct MemQueue {
    store: Arc<Store>,
    geometry: Geometry,
    depth: usize,
    /// Requests carried out and not yet reaped.
    done: VecDeque<Completion>,
}

impl MemQueue {
    fn execute(&self, op: &mut Op) {
        let bs = self.geometry.block_size as usize;
        match op {
            Op::Read { lba, bufs } => {
                let mut off = lba.0 as usize * bs;
                for seg in bufs.segments_mut() {
                    self.store.read(off, seg);
                    off += seg.len();
                }
            }
            Op::Write { lba, bufs, .. } => {
                let mut off = lba.0 as usize * bs;
                for seg in bufs.segments() {
                    self.store.write(off, seg.len(), Some(seg));
                    off += seg.len();
                }
            }
            Op::Unmap {
                lba: Lba(lba),
                blocks,
            }
            | Op::WriteZeroes {
                lba: Lba(lba),
                blocks,
                ..
            } => {
                self.store
                    .write(*lba as usize * bs, *blocks as usize * bs, None);
            }
            Op::Flush => {}
        }
    }
}

impl IoQueue for MemQueue {
    fn submit(&mut self, tag: u64, mut op: Op) -> Result<(), Rejected> {
        if self.done.len() >= self.depth {
            return Err(Rejected {
                tag,
                op,
                error: SubmitError::QueueFull,
            });
        }
        if let Err(e) = validate::check(&self.geometry, &op) {
            return Err(Rejected {
                tag,
                op,
                error: e.into(),
            });
        }
        self.execute(&mut op);
        self.done.push_back(Completion {
            tag,
            op,
            result: Ok(()),
        });
        Ok(())
    }

    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        let n = self.done.len();
        done.extend(self.done.drain(..));
        n
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }

    fn depth(&self) -> usize {
        self.depth
    }
}
