//! The block device layer of bypassfs, modelled on SPDK's bdev API.
//!
//! A [`BlockDevice`] describes its [`Geometry`], hands out [`DmaBuf`]s and opens one
//! [`IoQueue`] per thread. A queue never blocks: [`IoQueue::submit`] either accepts a request
//! or gives it back (`QueueFull`, like SPDK's `-ENOMEM`), and [`IoQueue::poll`] reaps
//! completions, each of which returns the request's buffers to the caller.
//!
//! Backends: [`mem`] (RAM, like SPDK's malloc bdev), [`uring`] (a file or block device with
//! `O_DIRECT` and io_uring), and two wrappers for testing, [`fault`] (seeded fault
//! injection) and [`record`] (a write log from which any crash state can be rebuilt).
//! [`config`] builds devices from SPDK's JSON config format. With the `spdk` feature,
//! `spdk` runs any SPDK bdev in poll mode, configured by the same JSON.
//!
//! Invariants every backend keeps:
//! - a request owns its buffers from `submit` until its completion is reaped; no raw pointer
//!   to a [`DmaBuf`] leaves this crate;
//! - a request is validated (block-aligned length, buffer alignment, range) before anything
//!   reaches the media, and a bad one is rejected with a message naming the problem;
//! - steady-state submit and poll do not allocate.

pub mod affinity;
mod device;
mod dma;
mod error;
mod rng;
mod types;
mod validate;

pub mod config;
pub mod exec;
pub mod fault;
pub mod mem;
pub mod record;
#[cfg(feature = "spdk")]
pub mod spdk;
pub mod uring;
pub mod wait;

pub use device::{BlockDevice, Bufs, Completion, IoQueue, Op, OpKind, Rejected};
pub use dma::{hugepages_available, DmaBuf};
pub use error::{BdevError, IoError, SubmitError};
pub use types::{Geometry, Lba};
