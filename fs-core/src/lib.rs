//! The filesystem core of bypassfs: inodes, directories, files, fsync and mount. It
//! implements `iomap`'s operations on top of `cow` and is the only crate that joins the two.
//!
//! Layers, each importing only those below it (`ci/run` checks there is no module cycle):
//! 1. `items/`: the on-disk items (`docs/FORMAT.md` "fs items"); `error.rs`, `types.rs`;
//! 2. `state/`: what a mount shares, `Core`, split into parts that own their locks
//!    (inodes and delalloc, space, the fsync log's overlay, transactions and snapshots);
//! 3. `data/` (file extents and checksums in a transaction), then `namespace/` (inodes,
//!    names, links, rename, xattrs in a transaction or the pending view of group commit);
//! 4. `durability/`: the one commit function, the fsync log's records, fold and replay,
//!    the folder thread;
//! 5. `io/`: the `IomapOps` implementation (delalloc, copy-on-write, completion, read
//!    verification), waiting for space, fallocate;
//! 6. `api/`: [`Filesystem`], [`Context`], [`File`], sync; and [`fsck()`] beside it.
//!
//! Read them in that order.
//!
//! ```
//! use std::sync::Arc;
//! use bdev::{mem::MemDevice, BlockDevice};
//! use fs_core::{Filesystem, FormatOptions, MountOptions, OpenFlags};
//!
//! let dev: Arc<dyn BlockDevice> = Arc::new(MemDevice::new("m", 4096, 4096).unwrap());
//! Filesystem::format(dev.clone(), FormatOptions::default()).unwrap();
//! let fs = Filesystem::mount(dev.clone(), MountOptions::default()).unwrap();
//! let ctx = fs.context().unwrap(); // one per thread
//! fs.mkdir("/docs", 0o755).unwrap();
//! let f = fs.open(&ctx, "/docs/hello.txt", OpenFlags::read_write_create(), 0o644).unwrap();
//! f.write_at(&ctx, 0, b"hello, world").unwrap();
//! f.fsync(&ctx).unwrap(); // durable from here on
//! let mut buf = [0u8; 12];
//! assert_eq!(f.read_at(&ctx, 0, &mut buf).unwrap(), 12);
//! assert_eq!(&buf, b"hello, world");
//! assert_eq!(fs.readdir("/docs", 0, 100).unwrap()[0].name, b"hello.txt");
//! drop(f);
//! fs.unmount(&ctx).unwrap();
//! let report = fs_core::fsck(dev, &fs_core::FsckOptions::default()).unwrap();
//! assert!(report.is_clean(), "{report:?}");
//! ```
#![forbid(unsafe_code)]

mod api;
mod data;
mod durability;
mod error;
mod fsck;
mod io;
pub mod items;
mod namespace;
mod state;
mod threads;
mod types;

pub use api::{
    Clock, ManualClock, SystemClock, DEFAULT_COMMIT_INTERVAL, DEFAULT_FOLDER_NICE,
    DEFAULT_LOOKUP_CACHE_ENTRIES,
};
pub use api::{Context, File, Filesystem, FormatOptions, MemoryUse, MountOptions, OpenFlags};
pub use api::{NewNode, LINK_MAX, SYMLINK_MAX};
pub use error::{Error, Result};
pub use fsck::{
    fsck, fsck_exit_code, FsckOptions, FsckProgress, FsckProgressFn, FsckReport, PHASE_DATA,
    PHASE_METADATA, PHASE_NAMESPACE,
};
pub use io::FallocMode;
pub use items::FileType;
pub use namespace::{RenameFlags, XattrFlags};
pub use types::{DirEntryInfo, SetAttr, Stat, StatFs};
