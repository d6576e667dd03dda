//! `uring`: a regular file or block device driven with `O_DIRECT` through io_uring, like
//! SPDK's uring bdev. Flush is `fdatasync`; a FUA write carries `RWF_DSYNC`; write-zeroes
//! is `fallocate(ZERO_RANGE)` (a punched hole where the filesystem refuses that); unmap
//! punches a hole in a file and is a `BLKDISCARD` on a block device.
//!
//! Each queue owns one ring. `submit` only lines requests up; `poll` dispatches them as one
//! batch, makes at most one `io_uring_enter` (submitting SQEs, and collecting completions
//! the kernel left for this thread) and then reaps the completion ring without a system
//! call. An idle queue polls without entering the kernel at all. On tmpfs, where io_uring
//! would hand every request to a kernel worker thread, a small batch found while the ring
//! is idle is carried out in `poll` with plain system calls instead ([`Dispatch`]; why:
//! `docs/decisions/uring-inline-on-tmpfs.md`).
//!
//! Invariants (the soundness of the `unsafe` SQE pushes rests on them):
//! - a request, with its `DmaBuf`s and its slot's iovec array, stays in the queue's slot
//!   table from `submit` until the CQE of its last SQE is reaped; the slot is not reused,
//!   the buffers are not reachable by the caller and the iovec array is not resized
//!   before then;
//! - a slot has at most one SQE queued or in the kernel at a time, so the ring (at least
//!   `depth` entries) never refuses a push;
//! - a request runs inline only as a whole (every stage, in `poll`, `wait` or `drop`), so it
//!   never has an SQE, and its buffers are borrowed by the kernel only during each call;
//! - dropping a queue carries out what is lined up and blocks until every request on the
//!   ring has completed (or, if the ring fails, leaks their buffers): the kernel never
//!   writes freed memory.
//!
//! A block-device unmap runs its `BLKDISCARD` synchronously in `submit`, the one place a
//! queue blocks. Short transfers are resumed where they stopped; a read that reaches the
//! end of a file (shorter than the device: truncated behind our back) is a media error.
//!
//! Opening locks the file or block device: one read-write opener, or any number of
//! read-only ones (`lock.rs` says how and what the locks cannot see).

mod device;
mod lock;
mod queue;
mod slot;
mod sys;

pub use device::{UringDevice, UringOptions};
pub use lock::Access;
pub use slot::Dispatch;
