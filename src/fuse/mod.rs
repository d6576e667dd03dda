//! A FUSE mount of a bypassfs filesystem (through the `fuser` crate's pure-Rust mount).
//!
//! Invariants:
//! - fs-core's API is path-based, FUSE's is inode-based: `inodes.rs` keeps, for every inode
//!   the kernel has looked up, the paths it is known by, updated by every namespace change
//!   made through this mount (nothing else changes a mounted filesystem).
//! - Each FUSE worker thread uses its own fs-core `Context` (`ctx.rs`), created on first use.
//! - Files opened with `O_DIRECT` are served by fs-core's direct path (and the kernel is told
//!   `FOPEN_DIRECT_IO`, so its page cache stays out of the way).

mod attr;
mod ctx;
mod handles;
mod inodes;
mod ops;
mod options;
mod session;

pub use options::MountOptions;
pub use session::mount;
