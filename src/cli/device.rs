//! DEVICE: an SPDK JSON config (`*.json`, served by the native backends, or with `--spdk` by
//! SPDK itself) or a file / block device (io_uring, `O_DIRECT`), and mounting the filesystem
//! on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bdev::BlockDevice;
use bypassfs::device::spdk::{SpdkOpenError, SpdkOptions};
use bypassfs::device::Access;
use fs_core::{Context as FsContext, Filesystem, MountOptions};

use crate::cli::error::{CliError, Context, Result};
use crate::cli::probe::{probe, Found};
use crate::cli::spdk::SpdkArgs;

/// The DEVICE argument and `--bdev`, shared by every subcommand that takes a device.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// An SPDK JSON config (*.json) or a file or block device.
    #[arg(value_name = "DEVICE")]
    pub device: PathBuf,

    /// With a JSON config of several bdevs: the one to use.
    #[arg(long = "bdev", value_name = "NAME")]
    pub bdev: Option<String>,

    #[command(flatten)]
    pub spdk: SpdkArgs,
}

impl DeviceArgs {
    /// Opens the device for `access` (read-only: shared with other readers; read-write:
    /// exclusive). `create_bytes`: create (or extend) a regular file of that size
    /// (`mkfs --size`).
    pub fn open(&self, create_bytes: Option<u64>, access: Access) -> Result<Arc<dyn BlockDevice>> {
        match self.spdk.options() {
            None => open(&self.device, self.bdev.as_deref(), create_bytes, access),
            Some(opts) => {
                let dev = open_spdk(&self.device, self.bdev.as_deref(), create_bytes, &opts)?;
                if access == Access::ReadWrite && dev.geometry().durability_unknowable() {
                    return Err(cannot_flush(dev.name(), &self.shown()));
                }
                Ok(dev)
            }
        }
    }

    /// Opens the device and mounts it (read-only for commands that only look, which then
    /// share the device with other readers but not with a writer).
    pub fn mount(&self, read_only: bool) -> Result<(Filesystem, FsContext)> {
        self.mount_with(MountOptions {
            read_only,
            ..MountOptions::default()
        })
    }

    /// [`DeviceArgs::mount`] with every fs-core mount option.
    pub fn mount_with(&self, opts: MountOptions) -> Result<(Filesystem, FsContext)> {
        let access = if opts.read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        let dev = self.open(None, access)?;
        let fs = match Filesystem::mount(Arc::clone(&dev), opts) {
            Ok(fs) => fs,
            Err(e @ fs_core::Error::Corrupt(_)) => {
                return Err(not_mountable(&dev, &self.shown(), e))
            }
            Err(e) => return Err(e).context(|| format!("mounting {}", self.shown())),
        };
        let ctx = fs.context().context(|| "opening an I/O context".into())?;
        Ok((fs, ctx))
    }

    /// The device as the user wrote it.
    pub fn shown(&self) -> String {
        self.device.display().to_string()
    }
}

/// Opens `path` as a device; see [`bypassfs::device::open_with`].
pub fn open(
    path: &Path,
    bdev: Option<&str>,
    create_bytes: Option<u64>,
    access: Access,
) -> Result<Arc<dyn BlockDevice>> {
    bypassfs::device::open_with(path, bdev, create_bytes, access).map_err(|e| match e {
        // Already phrased for the user, naming the device.
        bdev::BdevError::Config(msg) | bdev::BdevError::InUse(msg) => CliError(msg),
        other => CliError(format!("opening {}: {other}", path.display())),
    })
}

/// Opens bdev `bdev` of the SPDK JSON config `path` through SPDK (`--spdk`); see
/// [`bypassfs::device::spdk::open`].
fn open_spdk(
    path: &Path,
    bdev: Option<&str>,
    create_bytes: Option<u64>,
    opts: &SpdkOptions,
) -> Result<Arc<dyn BlockDevice>> {
    if create_bytes.is_some() {
        return Err(CliError(format!(
            "--size creates a file device; with --spdk, size the bdev in {} (an aio or uring \
             bdev takes its file's size: `truncate -s 1G FILE`)",
            path.display()
        )));
    }
    bypassfs::device::spdk::open(path, bdev, opts).map_err(|e| match e {
        SpdkOpenError::Device(
            bdev::BdevError::Os { .. } | bdev::BdevError::NoMemory { .. } | bdev::BdevError::Io(_),
        ) => CliError(format!("opening {} through SPDK: {e}", path.display())),
        // Already phrased for the user, naming the config.
        other => CliError(other.to_string()),
    })
}

/// Writing is refused on an SPDK bdev that cannot make writes durable (the filesystem would
/// fail at its first commit, or refuse the mount): say which bdevs can.
fn cannot_flush(name: &str, config: &str) -> CliError {
    CliError(format!(
        "{name} (in {config}) cannot make writes durable: SPDK's uring, null and lvol bdevs \
         cannot flush, and its NVMe bdev drops flushes unless bdev_nvme_set_options sets \
         \"enable_flush\": true. Over a file, use bdev_aio_create instead (it fsyncs); reading \
         (fsck, ls, cat, get, stat, mount -o ro) works as it is"
    ))
}

/// A mount refused for what is on the device, with advice that fits what is there: never
/// `mkfs` for a device that holds a bypassfs, however damaged (formatting destroys it).
fn not_mountable(dev: &Arc<dyn BlockDevice>, shown: &str, e: fs_core::Error) -> CliError {
    let advice = match probe(&**dev) {
        Ok(Found::Bypassfs(_)) | Err(_) => {
            "; `bypassfs fsck DEVICE` lists what is wrong (do not format it: that destroys \
             what is left)"
                .to_string()
        }
        Ok(Found::Other(what)) => format!("; it holds {what}, not a bypassfs"),
        Ok(Found::Nothing) => "; no bypassfs superblock is left on it: if it never held a \
             bypassfs, `bypassfs mkfs DEVICE` formats it; if it did, formatting destroys what \
             is left, so run `bypassfs fsck DEVICE` first"
            .to_string(),
    };
    CliError(format!("mounting {shown}: {e}{advice}"))
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
