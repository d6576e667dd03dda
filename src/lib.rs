//! bypassfs: an embeddable, kernel-bypass, copy-on-write filesystem library.
//!
//! This root package is the public facade: the filesystem ([`Filesystem`], [`File`],
//! [`fsck()`] …, from fs-core) and the block device layer ([`bdev`]). The `bypassfs` binary
//! (mkfs, fsck, bench, ls, cat, put, get, stat) lives in `src/main.rs` and `src/cli/`.
#![forbid(unsafe_code)]

pub use bdev;
pub use fs_core::{
    fsck, fsck_exit_code, Context, DirEntryInfo, Error, FallocMode, File, FileType, Filesystem,
    FormatOptions, FsckOptions, FsckReport, MountOptions, OpenFlags, RenameFlags, Result, SetAttr,
    Stat, StatFs, XattrFlags,
};
