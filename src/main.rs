//! `bypassfs`: format, check, inspect and benchmark bypassfs devices.
//!
//! One file per subcommand under `cli/`; this file only parses and dispatches, so a new
//! subcommand is one `Command` variant and one arm in `run`.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cli::error::{exit, CliError};

/// The binaries use mimalloc: the fold's many node-sized allocations ran 15 % slower on
/// glibc's allocator (docs/ARCHITECTURE.md, "Dependencies and why").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AFTER_HELP: &str = "\
DEVICE is an SPDK JSON config (*.json; pick a bdev with --bdev when it has several) or a
regular file or block device, driven through io_uring with O_DIRECT. With --spdk (a build
with --features spdk) the config runs through SPDK itself: any SPDK bdev (aio, NVMe,
NVMe-oF ...); add --no-huge on a host without hugepages.

Exit status (as e2fsck for fsck):
  0  success (fsck: no error found)
  1  bench: some I/O failed (the table shows how many)
  2  wrong command line
  4  fsck: errors found (left uncorrected)
  8  operational error: the device could not be opened or read, the path does not exist, ...

Examples:
  bypassfs bench                          # a short mix on a fresh 1 GiB RAM device
  bypassfs mkfs --size 1G disk.img
  bypassfs put disk.img ./notes.txt /notes.txt
  bypassfs ls disk.img / -l
  bypassfs mount disk.img /mnt/bfs -o threads=4   # until umount or Ctrl-C
  bypassfs fsck disk.img
  bypassfs mkfs --spdk aio.json --bdev Aio0      # an SPDK bdev (bdev_aio_create over a file)";

/// bypassfs: an embeddable, kernel-bypass, copy-on-write filesystem.
#[derive(Parser, Debug)]
#[command(name = "bypassfs", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Format DEVICE as an empty bypassfs.
    Mkfs(cli::mkfs::Args),
    /// Check a bypassfs read-only (exit 0 clean, 4 errors found, 8 operational error).
    Fsck(cli::fsck::Args),
    /// Run a short benchmark mix on a fresh bypassfs (default: on a 1 GiB RAM device).
    Bench(cli::bench::Args),
    /// Serve DEVICE through FUSE at MOUNTPOINT until unmounted (or SIGINT/SIGTERM).
    Mount(cli::mount::Args),
    /// List a directory.
    Ls(cli::ls::Args),
    /// Print a file to stdout.
    Cat(cli::cat::Args),
    /// Copy a local file into the filesystem.
    Put(cli::put::Args),
    /// Copy a file out of the filesystem.
    Get(cli::get::Args),
    /// Show a path's attributes.
    Stat(cli::stat::Args),
}

/// Runs one subcommand; `Ok` carries its exit status.
fn run(command: Command) -> Result<u8, CliError> {
    match command {
        Command::Mkfs(a) => cli::mkfs::run(&a),
        Command::Fsck(a) => cli::fsck::run(&a),
        Command::Bench(a) => cli::bench::run(&a),
        Command::Mount(a) => cli::mount::run(&a),
        Command::Ls(a) => cli::ls::run(&a),
        Command::Cat(a) => cli::cat::run(&a),
        Command::Put(a) => cli::put::run(&a),
        Command::Get(a) => cli::get::run(&a),
        Command::Stat(a) => cli::stat::run(&a),
    }
}

fn main() -> ExitCode {
    cli::log::init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("bypassfs: error: {e}");
            ExitCode::from(exit::OPERATIONAL)
        }
    }
}
