//! The iomap layer of bypassfs, shaped like Linux `fs/iomap`.
//!
//! For a byte range a filesystem's [`IomapOps::begin`] returns a **write map** (where new
//! bytes go) and a **source map** (where the old bytes of a partly overwritten block are
//! read from); [`IomapOps::end`] commits or releases what `begin` reserved (and completes a
//! direct write, whose data went out through [`IomapOps::submit_direct`]) and
//! [`IomapOps::complete`] runs once written-back data is on the device. On that loop ([`iter`])
//! sit a user-space page cache in DMA memory ([`cache`]) and the operations, one module
//! each: buffered read and write, writeback, direct read and write, zero range, truncate,
//! seek data/hole and fiemap. Everything is a future run by a [`bdev::exec::Context`];
//! `blocking.rs` has the synchronous forms.
//!
//! This crate never depends on `cow`: `fs-core` implements [`IomapOps`] on top of it.
#![forbid(unsafe_code)]

pub mod cache;
pub mod iter;

mod align;
mod blocking;
mod buffered_read;
mod buffered_write;
mod counters;
mod direct;
mod direct_read;
mod direct_write;
mod error;
mod fiemap;
mod layer;
mod map;
mod ops;
mod seek;
mod truncate;
mod upcalls;
mod writeback;
mod zero_range;

pub use counters::{Counter, IoCounters, Upcalls};
pub use error::{FsError, IomapError, Result, MAPPING_RETRIES};
pub use fiemap::{FiemapExtent, FiemapFlags};
pub use layer::{Iomap, IomapConfig};
pub use map::{CoreFlags, IoMap, IterFlags, MapFlags, MapKind};
pub use ops::{DirectWrite, Ended, Ino, IoDone, IomapOps, IterArgs, Maps, Submitted};
