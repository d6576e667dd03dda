//! bypassfs: an embeddable, kernel-bypass, copy-on-write filesystem library.
//!
//! This root package is the public facade. Today it re-exports the block device layer
//! ([`bdev`]); the filesystem facade, the CLI and the C API arrive with the fs-core and
//! interfaces work (see `docs/ARCHITECTURE.md`).
#![forbid(unsafe_code)]

pub use bdev;
