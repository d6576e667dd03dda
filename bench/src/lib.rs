//! bfsperf as a library: SPDK bdevperf's jobs, table and JSON for bypassfs block devices and
//! for files of a bypassfs (`fs`), so the `bypassfs bench` subcommand prints the same table.
//!
//! Reading order: `args` (command line) → `engine` (jobs on the bdevs of an SPDK JSON config,
//! built by `bdev::config`; the poll loop; `verify` for the verify workload) → `fs` (jobs on a
//! file through fs-core's asynchronous file API) → `report` (bdevperf's table, JSON).
//! `meta` is the metadata workload of `--fs --meta` (small files, a tree).
//! `cores` runs the jobs of `-m` on pinned threads, one per core. `memcpy` measures the
//! ceiling a RAM bdev is compared against.
#![forbid(unsafe_code)]

pub mod args;
pub mod cores;
pub mod cpustat;
pub mod engine;
pub mod error;
pub mod fs;
pub mod latency;
pub mod memcpy;
pub mod memstat;
pub mod meta;
pub mod report;
mod rng;
mod verify;
