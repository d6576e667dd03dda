//! `spdk` (feature `spdk`): any SPDK bdev (malloc, NVMe, NVMe-oF, uring, aio, lvol, raid …)
//! as a [`BlockDevice`](crate::BlockDevice), driven in poll mode by the caller's thread.
//!
//! SPDK runs in library mode inside the process: [`SpdkEnv::start`] initialises its
//! environment (DPDK, hugepages or `no_huge`), its thread library and its subsystems from the
//! same SPDK JSON config the native backends read, so every method SPDK knows works.
//! [`SpdkDevice::open`] opens one bdev; [`open_config`] opens every unclaimed one.
//!
//! Threads. A management OS thread ("spdk-app") owns SPDK's app thread: it runs start-up,
//! opens and closes descriptors, receives hot-remove events, and polls any SPDK thread a
//! module creates for itself. It is off the I/O path and sleeps when idle. Each
//! [`IoQueue`](crate::IoQueue) is an SPDK thread plus an io channel, created on and polled by
//! the OS thread that opened the queue (the queue is `!Send`); submit and poll take no lock.
//!
//! Invariants (the soundness of the FFI calls rests on them):
//! - a request, with its `DmaBuf`s and its slot's iovec array, stays in its queue's slot
//!   table from `submit` until SPDK's completion callback for its last bdev I/O has run;
//! - the callback's argument points into a per-queue allocation that lives until every I/O
//!   of the queue has completed (dropping a queue polls until then);
//! - a queue's channel is put and its SPDK thread exited and destroyed on the OS thread that
//!   polls it, after its last completion;
//! - a descriptor is opened and closed on the app thread, and closed only once no queue can
//!   use it (every queue holds the descriptor's `Arc`).
//!
//! Durability is reported as it is, not as SPDK's `io_type_supported` suggests: see
//! [`geometry`] for the rules (uring, null and lvol bdevs cannot flush; the NVMe bdev drops
//! flushes unless `bdev_nvme_set_options` sets `enable_flush`).

mod app;
mod config;
mod desc;
mod device;
mod env;
pub mod geometry;
mod open;
mod options;
mod queue;
mod slot;
mod thread;

pub use device::SpdkDevice;
pub use env::SpdkEnv;
pub use open::{open_config, open_config_file};
pub use options::SpdkEnvOptions;
