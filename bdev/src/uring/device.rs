//! Opening a file or block device for direct I/O and deciding its geometry.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use super::lock::{self, Access, LockedFile};
use super::queue::UringQueue;
use super::slot::{Backing, Dispatch};
use super::sys;
use crate::device::{BlockDevice, IoQueue};
use crate::dma::DmaBuf;
use crate::error::BdevError;
use crate::types::Geometry;

/// The block size of a regular file when the caller gives none: the page size, which every
/// filesystem that supports `O_DIRECT` accepts as an alignment.
const FILE_BLOCK_SIZE: u32 = 4096;

/// io_uring's limit on ring entries (`IORING_MAX_ENTRIES`), so the largest queue depth.
const MAX_DEPTH: usize = 32768;

/// How [`UringDevice::open`] sizes the device.
#[derive(Clone, Debug, Default)]
pub struct UringOptions {
    /// Logical block size in bytes, a power of two from 512 to 65536. `None`: the logical
    /// sector size (`BLKSSZGET`) of a block device, 4096 for a regular file. A smaller size
    /// than the filesystem or device accepts for direct I/O is refused at open.
    pub block_size: Option<u32>,
    /// Device size in bytes, a positive multiple of the block size. A regular file is
    /// created if missing and extended (sparsely) if shorter; only its first `size_bytes`
    /// are used if it is longer. A block device must be at least this large. `None`: the
    /// whole file (which must then be a non-empty multiple of the block size) or the whole
    /// block device (rounded down to a whole block).
    pub size_bytes: Option<u64>,
    /// Read-write (exclusive) or read-only (shared with other readers): see
    /// [`Access`] and the locking rules in `uring/lock.rs`.
    pub access: Access,
    /// How queues carry requests out; [`Dispatch::Auto`] unless a test needs one way.
    pub dispatch: Dispatch,
}

/// A regular file or block device driven with `O_DIRECT` through one io_uring per queue.
pub struct UringDevice {
    name: String,
    geometry: Geometry,
    file: Arc<LockedFile>,
    backing: Backing,
    /// Resolved at open: never `Auto`.
    dispatch: Dispatch,
}

impl UringDevice {
    /// Opens `path` (`O_DIRECT`, read-write or read-only as `opts.access` says) as the
    /// device `name`, locked against conflicting openers (`uring/lock.rs`) until the device
    /// and its queues are dropped. A filesystem that refuses direct I/O is an error: this
    /// backend never falls back to buffered I/O, whose page cache would make flush and FUA
    /// lie about what is durable.
    pub fn open(name: &str, path: &Path, opts: UringOptions) -> Result<UringDevice, BdevError> {
        let at = format!("{name}: {}", path.display());
        if opts.access == Access::ReadOnly && opts.size_bytes.is_some() {
            return Err(BdevError::Config(format!(
                "{at}: a read-only open cannot create or size the file"
            )));
        }
        let file = open_direct(&at, path, opts.size_bytes.is_some(), opts.access)?;
        let file = lock::lock(file, path, opts.access)?;
        let file_type = file
            .metadata()
            .map_err(|e| BdevError::os(format!("{at}: stat"), e))?
            .file_type();
        let backing = if file_type.is_block_device() {
            Backing::BlockDevice
        } else if file_type.is_file() {
            Backing::File
        } else {
            return Err(BdevError::Config(format!(
                "{at} is neither a regular file nor a block device"
            )));
        };
        let block_size = block_size(&at, &file, backing, opts.block_size)?;
        let buf_align = buf_align(&at, &file, block_size)?;
        let size = size_bytes(&at, &file, backing, block_size, opts.size_bytes)?;
        let dispatch = match opts.dispatch {
            Dispatch::Auto => auto_dispatch(&at, &file, backing, block_size, buf_align)?,
            chosen => chosen,
        };
        let geometry = Geometry {
            block_size,
            block_count: size / u64::from(block_size),
            buf_align,
            optimal_io_boundary_blocks: 0,
            // O_DIRECT skips the page cache, but the disk below may cache writes and we
            // cannot tell from here; so assume it does and always send flush and FUA.
            volatile_write_cache: true,
            flush_honoured: true,
            fua_honoured: true,
        };
        Ok(UringDevice {
            name: name.to_owned(),
            geometry,
            file: Arc::new(file),
            backing,
            dispatch,
        })
    }

    /// How this device's queues carry requests out ([`Dispatch::Auto`] resolved).
    pub fn dispatch(&self) -> Dispatch {
        self.dispatch
    }
}

/// [`Dispatch::InlineWhenIdle`] for a regular file on tmpfs that io_uring cannot drive without a
/// worker thread (reads refuse `RWF_NOWAIT`); should a kernel give tmpfs non-blocking I/O,
/// the probe fails and the ring, which would then copy inline itself, is used again.
fn auto_dispatch(
    at: &str,
    file: &File,
    backing: Backing,
    block_size: u32,
    buf_align: usize,
) -> Result<Dispatch, BdevError> {
    if backing != Backing::File
        || !sys::on_tmpfs(file).map_err(|e| BdevError::os(format!("{at}: fstatfs"), e))?
    {
        return Ok(Dispatch::Ring);
    }
    let mut probe = DmaBuf::alloc(block_size as usize, buf_align)?;
    let refuses = sys::refuses_nowait(file, &mut probe)
        .map_err(|e| BdevError::os(format!("{at}: probe read with RWF_NOWAIT"), e))?;
    Ok(if refuses {
        Dispatch::InlineWhenIdle
    } else {
        Dispatch::Ring
    })
}

fn open_direct(at: &str, path: &Path, create: bool, access: Access) -> Result<File, BdevError> {
    let write = access == Access::ReadWrite;
    // O_EXCL on a block device is the kernel's own claim: refused while it is mounted or
    // held by another exclusive opener. (On a regular file it would mean "must not exist".)
    let is_block = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
    let excl = if write && is_block { libc::O_EXCL } else { 0 };
    OpenOptions::new()
        .read(true)
        .write(write)
        .create(create)
        .custom_flags(libc::O_DIRECT | excl)
        .open(path)
        .map_err(|e| {
            if excl != 0 && e.raw_os_error() == Some(libc::EBUSY) {
                return BdevError::InUse(format!(
                    "{} is in use: the kernel holds it (mounted, or opened exclusively by \
                     another program); unmount it first",
                    path.display()
                ));
            }
            let context = if e.raw_os_error() == Some(libc::EINVAL) {
                format!(
                    "{at}: open with O_DIRECT refused (the filesystem does not support direct \
                     I/O; bypassfs does not fall back to buffered I/O)"
                )
            } else {
                format!("{at}: open with O_DIRECT")
            };
            BdevError::os(context, e)
        })
}

fn block_size(
    at: &str,
    file: &File,
    backing: Backing,
    wanted: Option<u32>,
) -> Result<u32, BdevError> {
    let sector = match backing {
        Backing::BlockDevice => sys::logical_block_size(file)
            .map_err(|e| BdevError::os(format!("{at}: BLKSSZGET"), e))?,
        Backing::File => 512,
    };
    let bs = wanted.unwrap_or(match backing {
        Backing::BlockDevice => sector,
        Backing::File => FILE_BLOCK_SIZE,
    });
    if !bs.is_power_of_two() || !(512..=65536).contains(&bs) {
        return Err(BdevError::Config(format!(
            "{at}: block size {bs} must be a power of two from 512 to 65536"
        )));
    }
    if bs < sector {
        return Err(BdevError::Config(format!(
            "{at}: block size {bs} is smaller than the device's {sector}-byte logical sector"
        )));
    }
    Ok(bs)
}

/// The buffer alignment: `min(block size, 4096)`, or more if the kernel reports that direct
/// I/O on this file needs more. Also refuses a block size direct I/O cannot use.
fn buf_align(at: &str, file: &File, bs: u32) -> Result<usize, BdevError> {
    let base = bs.min(4096) as usize;
    let Some(dio) = sys::dio_align(file).map_err(|e| BdevError::os(format!("{at}: statx"), e))?
    else {
        return Ok(base);
    };
    if dio.offset == 0 || dio.mem == 0 {
        return Err(BdevError::Config(format!(
            "{at}: the filesystem does not support direct I/O on this file (statx reports no \
             O_DIRECT alignment); bypassfs does not fall back to buffered I/O"
        )));
    }
    if bs % dio.offset != 0 {
        return Err(BdevError::Config(format!(
            "{at}: block size {bs} is not a multiple of the {}-byte alignment direct I/O \
             needs here",
            dio.offset
        )));
    }
    Ok(base.max(dio.mem as usize))
}

fn size_bytes(
    at: &str,
    file: &File,
    backing: Backing,
    bs: u32,
    wanted: Option<u64>,
) -> Result<u64, BdevError> {
    let bs = u64::from(bs);
    if let Some(want) = wanted {
        if want == 0 || want % bs != 0 {
            return Err(BdevError::Config(format!(
                "{at}: size {want} is not a positive multiple of the {bs}-byte block size"
            )));
        }
    }
    let size = match backing {
        Backing::BlockDevice => {
            let have = sys::block_device_bytes(file)
                .map_err(|e| BdevError::os(format!("{at}: BLKGETSIZE64"), e))?;
            match wanted {
                Some(want) if want > have => {
                    return Err(BdevError::Config(format!(
                        "{at}: size {want} exceeds the block device's {have} bytes"
                    )))
                }
                Some(want) => want,
                None => have - have % bs,
            }
        }
        Backing::File => file_size(at, file, bs, wanted)?,
    };
    if size == 0 {
        return Err(BdevError::Config(format!(
            "{at}: smaller than one {bs}-byte block"
        )));
    }
    Ok(size)
}

fn file_size(at: &str, file: &File, bs: u64, wanted: Option<u64>) -> Result<u64, BdevError> {
    let len = file
        .metadata()
        .map_err(|e| BdevError::os(format!("{at}: stat"), e))?
        .len();
    match wanted {
        Some(want) if len < want => {
            file.set_len(want)
                .map_err(|e| BdevError::os(format!("{at}: extend to {want} bytes"), e))?;
            Ok(want)
        }
        Some(want) => Ok(want),
        None if len == 0 => Err(BdevError::Config(format!(
            "{at}: the file is empty; give UringOptions::size_bytes to size it"
        ))),
        None if len % bs != 0 => Err(BdevError::Config(format!(
            "{at}: the file's {len} bytes are not a whole number of {bs}-byte blocks; give \
             UringOptions::size_bytes (a multiple of {bs}) to use a prefix or extend it"
        ))),
        None => Ok(len),
    }
}

impl BlockDevice for UringDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        if depth == 0 || depth > MAX_DEPTH {
            return Err(BdevError::Config(format!(
                "{}: queue depth {depth} must be from 1 to {MAX_DEPTH}",
                self.name
            )));
        }
        let queue = UringQueue::new(
            Arc::clone(&self.file),
            self.backing,
            self.geometry,
            depth,
            self.dispatch,
        )
        .map_err(|e: io::Error| BdevError::os(format!("{}: io_uring_setup", self.name), e))?;
        Ok(Box::new(queue))
    }
}
