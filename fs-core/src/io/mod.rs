//! fs-core's side of the iomap layer: `IomapOps` over cow (mapping, delalloc reservation,
//! copy-on-write allocation, completion into the fsync log's overlay or a commit, read
//! verification), waiting for space, and fallocate.
//!
//! Invariants:
//! - new data goes to space reserved with `Volume::reserve_data` in `begin` and is
//!   referenced only in `complete`, after the device acknowledged it: a crash before the
//!   commit leaves the old extents in place and the new space free;
//! - every block of a regular extent of a COW file has a crc32c, inserted in the same
//!   transaction as the extent (or logged with it); reads check it (`verify_read`);
//! - NOCOW files overwrite unshared regular extents in place and have no checksums.

mod complete;
mod fallocate;
mod iomap_ops;
mod private;
mod space;
mod verify;

pub(crate) use fallocate::fallocate_file;
pub use fallocate::FallocMode;
pub(crate) use iomap_ops::DataOps;
