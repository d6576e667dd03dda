//! DEVICE: an SPDK JSON config (`*.json`) or a file / block device (io_uring, `O_DIRECT`),
//! and mounting the filesystem on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bdev::uring::{UringDevice, UringOptions};
use bdev::BlockDevice;
use fs_core::{Context as FsContext, Filesystem, MountOptions};

use crate::cli::error::{CliError, Context, Result};

/// The DEVICE argument and `--bdev`, shared by every subcommand that takes a device.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// An SPDK JSON config (*.json) or a file or block device.
    #[arg(value_name = "DEVICE")]
    pub device: PathBuf,

    /// With a JSON config of several bdevs: the one to use.
    #[arg(long = "bdev", value_name = "NAME")]
    pub bdev: Option<String>,
}

impl DeviceArgs {
    /// Opens the device. `create_bytes`: create (or extend) a regular file of that size
    /// (`mkfs --size`).
    pub fn open(&self, create_bytes: Option<u64>) -> Result<Arc<dyn BlockDevice>> {
        open(&self.device, self.bdev.as_deref(), create_bytes)
    }

    /// Opens the device and mounts it (read-only for commands that only look).
    pub fn mount(&self, read_only: bool) -> Result<(Filesystem, FsContext)> {
        let dev = self.open(None)?;
        let opts = MountOptions {
            read_only,
            ..MountOptions::default()
        };
        let fs = Filesystem::mount(dev, opts).context(|| format!("mounting {}", self.shown()))?;
        let ctx = fs.context().context(|| "opening an I/O context".into())?;
        Ok((fs, ctx))
    }

    /// The device as the user wrote it.
    pub fn shown(&self) -> String {
        self.device.display().to_string()
    }
}

fn is_config(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Opens `path` as a device; see [`DeviceArgs::open`].
pub fn open(
    path: &Path,
    bdev: Option<&str>,
    create_bytes: Option<u64>,
) -> Result<Arc<dyn BlockDevice>> {
    let shown = path.display();
    if is_config(path) {
        if create_bytes.is_some() {
            return Err(CliError(format!(
                "--size creates a file device, but {shown} is a JSON config: size its bdevs \
                 there (num_blocks × block_size)"
            )));
        }
        let devs = bdev::config::open_config_file(path).context(|| format!("opening {shown}"))?;
        return pick(&shown.to_string(), devs, bdev);
    }
    if bdev.is_some() {
        return Err(CliError(format!(
            "--bdev picks a bdev of a JSON config, but {shown} is not a *.json file"
        )));
    }
    if !path.exists() && create_bytes.is_none() {
        return Err(CliError(format!(
            "DEVICE '{shown}' is neither a JSON config nor an existing file: create one with \
             `bypassfs mkfs --size 1G {shown}`"
        )));
    }
    let name = path
        .file_name()
        .map_or_else(|| shown.to_string(), |n| n.to_string_lossy().into_owned());
    let opts = UringOptions {
        block_size: None,
        size_bytes: create_bytes,
    };
    let dev = UringDevice::open(&name, path, opts).context(|| format!("opening {shown}"))?;
    Ok(Arc::new(dev))
}

fn pick(
    config: &str,
    devs: Vec<bdev::config::NamedDevice>,
    want: Option<&str>,
) -> Result<Arc<dyn BlockDevice>> {
    let names = || {
        devs.iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (want, devs.len()) {
        (Some(w), _) => match devs.iter().find(|(n, _)| n == w) {
            Some((_, d)) => Ok(Arc::clone(d)),
            None => Err(CliError(format!(
                "--bdev {w}: {config} has no such bdev (it has: {})",
                names()
            ))),
        },
        (None, 1) => Ok(Arc::clone(&devs[0].1)),
        (None, 0) => Err(CliError(format!(
            "{config} describes no bdev: add a bdev_malloc_create or bdev_uring_create entry"
        ))),
        (None, _) => Err(CliError(format!(
            "{config} has several bdevs ({}): pick one with --bdev NAME",
            names()
        ))),
    }
}

/// Whether `dev` already holds a bypassfs (it mounts read-only).
pub fn holds_bypassfs(dev: &Arc<dyn BlockDevice>) -> bool {
    let opts = MountOptions {
        read_only: true,
        ..MountOptions::default()
    };
    Filesystem::mount(Arc::clone(dev), opts).is_ok()
}

/// Parses a size: `4096`, `64k`, `1M`, `1G` (binary multiples).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    bench::args::parse_size(text).map(|n| n as u64)
}
