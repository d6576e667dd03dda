//! A FUSE mount of a bypassfs filesystem (through the `fuser` crate's pure-Rust mount).
//!
//! Invariants:
//! - FUSE addresses inodes by number and so does fs-core's inode API (`lookup_at`,
//!   `set_attr_ino`, …): every operation acts on the inode the kernel named, never on a
//!   path, so a symlink's attributes are its own and an open, unlinked file stays reachable.
//!   FUSE inode numbers are fs-core's, but for the root (`inodes.rs`).
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

pub use options::{CloseSync, MountOptions, DEFAULT_COMMIT};
pub use session::mount;
