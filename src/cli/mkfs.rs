//! `bypassfs mkfs`: format a device.

use bypassfs::device::Access;
use fs_core::{Filesystem, FormatOptions};

use crate::cli::device::{holds_bypassfs, parse_size, DeviceArgs};
use crate::cli::error::{exit, CliError, Context, Result};
use crate::cli::output::out;
use crate::cli::probe::{probe, Found};
use crate::cli::progress;

/// `mkfs DEVICE [--size SIZE] [--node-size SIZE] [--block-size SIZE] [--force]`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// Create the file (or extend it) to this size first: 1G, 512M, …
    #[arg(long = "size", value_name = "SIZE", value_parser = parse_size)]
    pub size: Option<u64>,

    /// Metadata B-tree node size: a power of two from 1 KiB to 64 KiB.
    #[arg(long = "node-size", value_name = "SIZE", value_parser = parse_size, default_value = "16k")]
    pub node_size: u64,

    /// Filesystem block size (allocation and checksum unit): 512 to 4096, at least the
    /// device's block size.
    #[arg(long = "block-size", value_name = "SIZE", value_parser = parse_size, default_value = "4k")]
    pub block_size: u64,

    /// Format even if the device already holds a bypassfs (its contents are lost).
    #[arg(long = "force")]
    pub force: bool,
}

pub fn run(a: &Args) -> Result<u8> {
    let shown = a.device.shown();
    let dev = a.device.open(a.size, Access::ReadWrite)?;
    if !a.force {
        refuse_if_in_use(&dev, &shown)?;
    }
    let opts = FormatOptions {
        nodesize: u32::try_from(a.node_size)
            .map_err(|_| CliError(format!("--node-size {}: too large", a.node_size)))?,
        block_size: u32::try_from(a.block_size)
            .map_err(|_| CliError(format!("--block-size {}: too large", a.block_size)))?,
    };
    let geo = dev.geometry();
    let name = dev.name().to_string();
    if !is_json(&a.device.device) {
        bypassfs::device::wipe_stale_superblocks(&a.device.device, geo.size_bytes())
            .context(|| format!("formatting {shown}"))?;
    }
    let pb = progress::spinner(format!("formatting {shown}"));
    let r = Filesystem::format(dev, opts.clone()).context(|| format!("formatting {shown}"));
    pb.finish_and_clear();
    r?;
    out!(
        "{shown}: formatted a bypassfs of {} MiB (block size {}, node size {})",
        geo.size_bytes() >> 20,
        opts.block_size,
        opts.nodesize
    );
    if is_json(&a.device.device) && is_malloc(&a.device.device, &name) {
        out!(
            "note: a RAM bdev (bdev_malloc_create) forgets the filesystem when this command \
             exits; a bdev over a file (bdev_aio_create, bdev_uring_create) or a drive keeps it"
        );
    }
    Ok(exit::OK)
}

/// Whether the config at `path` makes `name` a RAM bdev (the note is for those only: a bdev
/// over a file or a drive keeps the filesystem).
fn is_malloc(path: &std::path::Path, name: &str) -> bool {
    let Ok(doc) = std::fs::read_to_string(path)
        .map_err(|_| ())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|_| ()))
    else {
        return false;
    };
    let methods = doc["subsystems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["config"].as_array())
        .flatten();
    for m in methods {
        if m["method"] == "bdev_malloc_create" && m["params"]["name"] == name {
            return true;
        }
    }
    false
}

/// Refuses a device that holds a filesystem (as mkfs.ext4/xfs/btrfs do without `-f`).
fn refuse_if_in_use(dev: &std::sync::Arc<dyn bdev::BlockDevice>, shown: &str) -> Result<()> {
    let lost = "add --force to format it anyway (everything on it is lost)";
    if holds_bypassfs(dev) {
        return Err(CliError(format!(
            "{shown} already holds a bypassfs; {lost}"
        )));
    }
    match probe(&**dev)? {
        Found::Nothing => Ok(()),
        Found::Bypassfs(at) => Err(CliError(format!(
            "{shown} holds a damaged bypassfs (superblock magic at {}); `bypassfs fsck {shown}` \
             shows what is left; {lost}",
            at.iter()
                .map(|o| format!("{o:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Found::Other(what) => Err(CliError(format!("{shown} holds {what}; {lost}"))),
    }
}

fn is_json(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}
