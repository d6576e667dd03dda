//! `fault`: a wrapper that injects seeded faults into any block device, for tests (in the
//! spirit of TigerBeetle's storage simulator and SPDK's error and delay bdevs).
//!
//! It can fail requests by rule ([`ErrorRule`]: the n-th or a random request of a kind,
//! once or from then on, optionally only in an LBA range), hold completions back
//! ([`Latency`]), flip bytes of read data, tear or misdirect writes, and simulate a volatile
//! write cache that a [`FaultDevice::crash`] can lose.
//!
//! Invariants:
//! - determinism: every random decision is drawn from one splitmix64 stream seeded by
//!   [`FaultConfig::seed`], at submission, in submission order. The same seed, the same
//!   configuration and the same sequence of submissions give the same faults and the same
//!   corrupted bytes, whatever order the inner device completes in. (Requests submitted
//!   concurrently from several threads interleave in lock order, which a test must fix
//!   itself if it wants reproducibility.)
//! - nothing vanishes: every accepted request completes exactly once, an injected failure
//!   as [`IoError::Media`](crate::IoError::Media), after a crash as
//!   [`IoError::Removed`](crate::IoError::Removed). Invalid requests are rejected at
//!   submission as on any device, before any fault is considered.
//! - a failed request never reached the media. Torn and misdirected writes report success:
//!   they model the device lying, which only checksums and self-addressed blocks can catch.
//! - volatile cache: a write is in the cache (and visible to reads) from its submission; a
//!   flush writes back what is cached when it is submitted and only then flushes the inner
//!   device; a FUA write goes straight to the inner device and supersedes cached copies.
//!   Write-backs take their data from the cache at the moment they enter the inner queue,
//!   under the device lock, so an older version never overwrites a newer one on an inner
//!   device that executes requests in submission order (RAM, and io_uring for
//!   non-overlapping requests).
//! - with nothing configured ([`FaultConfig::default`]) the queue is a pass-through that
//!   takes no lock and allocates nothing.

mod cache;
mod config;
mod device;
mod plan;
mod queue;

pub use config::{CrashKeep, ErrorRule, FaultConfig, Latency, Persistence, Trigger};
pub use device::FaultDevice;
pub use plan::FaultStats;
