//! Checks a bypassfs on any SPDK bdev from the command line, one step per process, so that
//! scripts can format, write, remount and check across processes (feature `spdk`):
//!
//! ```text
//! spdk_roundtrip -c CONFIG.json -b BDEV [--no-huge] [-s MB] fsck
//! spdk_roundtrip -c CONFIG.json -b BDEV [--no-huge] [-s MB] write DIR
//! spdk_roundtrip -c CONFIG.json -b BDEV [--no-huge] [-s MB] check DIR
//! ```
//!
//! `fsck` checks the filesystem (exit status as fsck's: 0 clean, 4 errors left). `write`
//! mounts it and builds under DIR the tree of fs-core's SPDK tests (buffered, direct and
//! queued direct writes with overwrites, links, a rename, an xattr; all fsynced), then
//! unmounts. `check` mounts it, reads that tree back both through the page cache and
//! directly and compares it byte for byte, unmounts and runs fsck. Used by
//! `bench/scripts/nvmf-e2e.sh`.

#[path = "../tests/spdk_common/mod.rs"]
mod spdk_common;

use std::process::ExitCode;
use std::sync::Arc;

use bdev::spdk::{SpdkDevice, SpdkEnv, SpdkEnvOptions};
use bdev::BlockDevice;

struct Args {
    config: String,
    bdev: String,
    opts: SpdkEnvOptions,
    command: String,
    dir: Option<String>,
}

const USAGE: &str = "usage: spdk_roundtrip -c CONFIG.json -b BDEV [--no-huge] [-s MB] \
                     (fsck | write DIR | check DIR)";

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut config, mut bdev, mut rest) = (None, None, Vec::new());
    let mut opts = SpdkEnvOptions {
        name: "spdk_roundtrip".into(),
        ..SpdkEnvOptions::default()
    };
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "-c" | "--json" => config = Some(value(&a)?),
            "-b" | "--bdev" => bdev = Some(value(&a)?),
            "--no-huge" => opts.no_huge = true,
            "-s" => {
                let mb = value(&a)?;
                let mb = mb.parse().map_err(|_| format!("-s {mb}: give MiB"))?;
                opts.mem_size_mb = Some(mb);
            }
            _ => rest.push(a),
        }
    }
    let path = config.ok_or("-c CONFIG.json is required")?;
    let config =
        std::fs::read_to_string(&path).map_err(|e| format!("reading config {path}: {e}"))?;
    let mut rest = rest.into_iter();
    let command = rest.next().ok_or("no command")?;
    let dir = rest.next();
    let needs_dir = command == "write" || command == "check";
    if !matches!(command.as_str(), "fsck" | "write" | "check") || needs_dir != dir.is_some() {
        return Err(format!("bad command {command:?}"));
    }
    Ok(Args {
        config,
        bdev: bdev.ok_or("-b BDEV is required")?,
        opts,
        command,
        dir,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("spdk_roundtrip: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let dev: Arc<dyn BlockDevice> = match SpdkEnv::start(&args.config, args.opts.clone())
        .and_then(|env| SpdkDevice::open(&env, &args.bdev))
    {
        Ok(d) => Arc::new(d),
        Err(e) => {
            eprintln!("spdk_roundtrip: {}: {e}", args.bdev);
            return ExitCode::from(2);
        }
    };
    if args.command == "fsck" {
        return fsck(&dev);
    }
    let dir = args.dir.clone().unwrap_or_default();
    // The tree's helpers assert what they read: a mismatch is reported as a failed check.
    // Nothing is used after a panic but the exit status, so unwind safety does not matter.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (fs, ctx) = spdk_common::mount(&dev);
        if args.command == "write" {
            spdk_common::write_tree(&fs, &ctx, &dir);
        } else {
            spdk_common::check_tree(&fs, &ctx, &dir);
        }
        fs.unmount(&ctx).expect("unmount");
    }));
    if ran.is_err() {
        eprintln!(
            "spdk_roundtrip: {} {dir} on {}: FAILED",
            args.command, args.bdev
        );
        return ExitCode::FAILURE;
    }
    println!(
        "spdk_roundtrip: {} {dir} on {}: ok (the tree {})",
        args.command,
        args.bdev,
        if args.command == "write" {
            "is written, fsynced and unmounted"
        } else {
            "read back identical, buffered and direct"
        }
    );
    if args.command == "check" {
        return fsck(&dev);
    }
    ExitCode::SUCCESS
}

fn fsck(dev: &Arc<dyn BlockDevice>) -> ExitCode {
    match fs_core::fsck(Arc::clone(dev), &fs_core::FsckOptions::default()) {
        Ok(rep) if rep.is_clean() => {
            println!(
                "spdk_roundtrip: fsck {}: clean ({} data extents, {} blocks verified)",
                dev.name(),
                rep.data_extents,
                rep.blocks_verified
            );
            ExitCode::SUCCESS
        }
        Ok(rep) => {
            eprintln!("spdk_roundtrip: fsck {}: {:#?}", dev.name(), rep.errors);
            ExitCode::from(rep.exit_code() as u8)
        }
        Err(e) => {
            eprintln!("spdk_roundtrip: fsck {}: {e}", dev.name());
            ExitCode::from(8)
        }
    }
}
