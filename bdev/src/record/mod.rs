//! `record`: a wrapper that logs every write and flush of any block device, from which any
//! crash state of a run can be rebuilt (like Linux's dm-log-writes).
//!
//! [`RecordDevice::new`] copies the inner device's content; from then on each request that
//! completes successfully is logged in completion order: writes with a copy of their data,
//! write-zeroes and unmaps as zeroes, flushes with what they cover. A failed request is not
//! logged (if it changed the media partly, the log does not know). Reads are not logged.
//!
//! Crash semantics (the contract upper layers are tested against):
//! - a write is acknowledged when its completion is reaped; its log index is its place in
//!   completion order;
//! - a flush makes durable every write that completed before the flush was *submitted*: the
//!   first `covers` entries of the log. A FUA write is durable on its own;
//! - after the first `p` entries, the durable writes always reached the media; any subset of
//!   the others may have, each possibly torn at block (sector) granularity
//!   ([`CrashPick`]);
//! - writes reach the media in log order. Two writes to the same block that were in flight
//!   at the same time have no defined order on real devices; bypassfs never issues them, and
//!   a log containing them is rebuilt as if completion order were media order.
//!
//! Invariants: the log only grows; entries are appended under one lock, so the log order of
//! entries from different queues is the order in which they were reaped.

mod device;
mod log;
mod queue;

pub use device::RecordDevice;
pub use log::{CrashPick, LogEntry};
