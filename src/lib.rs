//! bypassfs: an embeddable, kernel-bypass, copy-on-write filesystem library.
//!
//! This root package is the public facade: it re-exports the block device layer
//! ([`bdev`]) and the filesystem ([`fs_core`]), serves a filesystem through FUSE
//! ([`fuse`]) and exports the C API (`include/bypassfs.h`, module `capi`).
//!
//! The C API dereferences pointers handed over from C, so it is the one module of this
//! crate allowed `unsafe`; every block in it states its `// SAFETY:` argument.
#![deny(unsafe_code)]

pub use bdev;
pub use fs_core;

pub mod device;
pub mod fuse;

#[allow(unsafe_code)]
mod capi;
