//! Handles: integer ids checked against registries, so stale or forged ones are errors.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bdev::BlockDevice;
use fs_core::{DirEntryInfo, File, Filesystem};

/// Kind tags in a handle's top byte: a file handle passed where a filesystem is expected
/// is refused rather than mistaken for another object.
pub(crate) const KIND_FS: u64 = 0xB1;
pub(crate) const KIND_CTX: u64 = 0xB2;
pub(crate) const KIND_FILE: u64 = 0xB3;
pub(crate) const KIND_DIR: u64 = 0xB4;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A fresh handle of `kind`; ids never repeat within a process (2^56 of them).
pub(crate) fn new_handle(kind: u64) -> u64 {
    (kind << 56) | (NEXT.fetch_add(1, Ordering::Relaxed) & ((1 << 56) - 1))
}

pub(crate) fn kind_of(h: u64) -> u64 {
    h >> 56
}

/// A mounted filesystem and what the C API remembers of its mount.
pub(crate) struct FsEntry {
    pub fs: Filesystem,
    /// The device under `fs`, whose allocator `bfs_dma_alloc` uses.
    pub dev: Arc<dyn BlockDevice>,
    /// Mounted with `BFS_MOUNT_RDONLY`.
    pub read_only: bool,
    /// Bytes the copying asynchronous calls copied between C memory and DMA buffers.
    pub copied_bytes: AtomicU64,
}

pub(crate) struct FileEntry {
    pub fs: u64,
    pub file: File,
}

pub(crate) struct DirEntry {
    pub fs: u64,
    pub stream: Mutex<DirStream>,
}

/// Where a directory stream (`dir.rs`) is.
pub(crate) struct DirStream {
    pub ino: u64,
    /// The cookie after the last entry returned (0: the start).
    pub pos: u64,
    /// Entries read ahead, from `pos` on.
    pub ahead: VecDeque<DirEntryInfo>,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub fs: HashMap<u64, Arc<FsEntry>>,
    pub files: HashMap<u64, Arc<FileEntry>>,
    pub dirs: HashMap<u64, Arc<DirEntry>>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Runs `f` on the registry (created on first use).
pub(crate) fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut g: MutexGuard<'_, Option<Registry>> =
        REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Registry::default))
}

pub(crate) fn fs(h: u64) -> Result<Arc<FsEntry>, i32> {
    if kind_of(h) != KIND_FS {
        return Err(libc::EBADF);
    }
    with(|r| r.fs.get(&h).cloned()).ok_or(libc::EBADF)
}

pub(crate) fn file(h: u64) -> Result<Arc<FileEntry>, i32> {
    if kind_of(h) != KIND_FILE {
        return Err(libc::EBADF);
    }
    with(|r| r.files.get(&h).cloned()).ok_or(libc::EBADF)
}

pub(crate) fn dir(h: u64) -> Result<Arc<DirEntry>, i32> {
    if kind_of(h) != KIND_DIR {
        return Err(libc::EBADF);
    }
    with(|r| r.dirs.get(&h).cloned()).ok_or(libc::EBADF)
}
