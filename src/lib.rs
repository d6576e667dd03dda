//! bypassfs: an embeddable, kernel-bypass, copy-on-write filesystem library.
//!
//! This root package is the public facade: the filesystem ([`Filesystem`], [`File`],
//! [`fsck()`] …, from [`fs_core`]) and the block device layer ([`bdev`]); it opens devices
//! as the CLI does ([`device`]), exports the C API (`include/bypassfs.h`, module `capi`) and,
//! with the `fuse` feature, serves a filesystem through FUSE (`fuse`). The `bypassfs` binary
//! (mkfs, fsck, bench, mount, ls, cat, put, get, stat) lives in `src/main.rs` and `src/cli/`
//! and needs the `cli` feature (the default, which includes `fuse`). A program that embeds
//! the library depends on it with `default-features = false` and builds none of the binary's
//! dependencies (see `examples/embed`). [`asyncio`] serves a filesystem to async code on any
//! executor (tokio and others) through polling threads.
//!
//! The C API dereferences pointers handed over from C, so it is the one module of this
//! crate allowed `unsafe`; every block in it states its `// SAFETY:` argument.
#![deny(unsafe_code)]

pub use bdev;
pub use fs_core;
pub use fs_core::{
    fsck, fsck_exit_code, Context, DirEntryInfo, Error, FallocMode, File, FileType, Filesystem,
    FormatOptions, FsckOptions, FsckReport, MountOptions, OpenFlags, RenameFlags, Result, SetAttr,
    Stat, StatFs, XattrFlags,
};

pub mod asyncio;
pub mod device;
#[cfg(feature = "fuse")]
pub mod fuse;

#[allow(unsafe_code)]
mod capi;
