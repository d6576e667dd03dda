//! `bypassfs mount`: serve a bypassfs through FUSE until it is unmounted or signalled.

use std::path::PathBuf;
use std::sync::Arc;

use bypassfs::fuse::MountOptions;

use crate::cli::device::DeviceArgs;
use crate::cli::error::{exit, CliError, Context, Result};

/// `mount DEVICE MOUNTPOINT [-o OPTIONS]`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// An existing, empty directory.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,

    /// Comma-separated: ro, allow_other, threads=N (default 4), fsname=NAME, nosignals,
    /// accept_log_loss (mount although a damaged fsync-log record hides later ones),
    /// takeover (mount although the device says another host has it mounted: only if that
    /// host is down), auto_da_alloc (default: a file replaced by rewriting after O_TRUNC or
    /// by a rename over it is synced at its close or before the rename), noauto_da_alloc,
    /// sync_on_close (sync at every close of a handle that wrote),
    /// commit=SECONDS (default 30; 0 = off): sync everything this often, since sync(1) and
    /// syncfs(2) are not passed to a FUSE server. `sync MOUNTPOINT` (fsync of the root
    /// directory) syncs everything at once; fsync of a file makes that file durable under
    /// its names, fsync of a directory its entries. dirsync: every namespace change
    /// (create, mkdir, link, unlink, rename, chmod, xattrs) durable on return; by default
    /// it is atomic at once and durable at the next commit. metadata_cache=SIZE (default
    /// 256m) and overlay_budget=SIZE (default 64m): the memory budgets of the B-tree node
    /// cache and of the writes not yet folded into the trees.
    /// Permissions are always checked by the kernel (default_permissions).
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Option<String>,
}

pub fn run(a: &Args) -> Result<u8> {
    let opts = MountOptions::parse(a.options.as_deref().unwrap_or(""))
        .map_err(|e| CliError(format!("-o: {e}")))?;
    let defaults = fs_core::MountOptions::default();
    let (fs, ctx) = a.device.mount_with(fs_core::MountOptions {
        read_only: opts.read_only,
        accept_log_loss: opts.accept_log_loss,
        take_over: opts.take_over,
        dirsync: opts.dirsync,
        commit_interval: opts.commit,
        metadata_cache_bytes: opts
            .metadata_cache_bytes
            .unwrap_or(defaults.metadata_cache_bytes),
        overlay_bytes: opts.overlay_bytes.unwrap_or(defaults.overlay_bytes),
        cache_bytes: opts.page_cache_bytes.unwrap_or(defaults.cache_bytes),
        dirty_bytes: opts
            .page_cache_bytes
            .map_or(defaults.dirty_bytes, |c| c / 4),
        ..defaults
    })?;
    let fs = Arc::new(fs);
    let shown = a.mountpoint.display().to_string();
    bypassfs::fuse::mount(Arc::clone(&fs), &a.mountpoint, opts)
        .map_err(|e| CliError(format!("serving {shown} through FUSE: {e} (is /dev/fuse there, and the mountpoint an existing directory?)")))?;
    // The FUSE session has ended and released its handles; unmount the filesystem cleanly.
    let fs = Arc::try_unwrap(fs).map_err(|_| {
        CliError("the filesystem is still in use after the FUSE session ended".into())
    })?;
    fs.unmount(&ctx)
        .context(|| format!("unmounting {}", a.device.shown()))?;
    Ok(exit::OK)
}
