//! The filesystem core of bypassfs: inodes, directories, files, fsync and mount. It
//! implements `iomap`'s operations on top of `cow` and is the only crate that joins the two.
//!
//! Reading order: `items/` (the on-disk items, `docs/FORMAT.md` "fs items"), `core.rs`
//! (shared state, one transaction per change), `namespace/`, `data/` (the `IomapOps`
//! implementation: delalloc, copy-on-write, checksums), `durability/`, then the API:
//! [`Filesystem`], [`Context`], [`File`], and [`fsck()`].
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

mod context;
mod core;
mod data;
mod durability;
mod error;
mod file;
mod fs;
mod fsck;
pub mod items;
mod namespace;
mod types;

pub use context::Context;
pub use data::FallocMode;
pub use error::{Error, Result};
pub use file::{File, OpenFlags};
pub use fs::{Filesystem, FormatOptions, MountOptions};
pub use fsck::{
    fsck, fsck_exit_code, FsckOptions, FsckProgress, FsckProgressFn, FsckReport, PHASE_DATA,
    PHASE_METADATA, PHASE_NAMESPACE,
};
pub use items::FileType;
pub use namespace::{NewNode, RenameFlags, XattrFlags, LINK_MAX, SYMLINK_MAX};
pub use types::{DirEntryInfo, SetAttr, Stat, StatFs};
