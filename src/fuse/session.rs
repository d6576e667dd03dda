//! [`mount`]: serve a filesystem at a mountpoint until it is unmounted or a signal comes.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fs_core::Filesystem;
use fuser::{Config, MountOption, SessionACL};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::ops::Fuse;
use super::options::MountOptions;

/// Distinguishes mounts in the per-thread context table.
static NEXT_MOUNT: AtomicU64 = AtomicU64::new(1);

fn fail(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Mounts `fs` at `mountpoint` through FUSE and serves it until it is unmounted
/// (`fusermount3 -u`, `umount`) or, with `handle_signals`, SIGINT or SIGTERM arrives (then
/// everything is synced and the mount removed). Meanwhile the filesystem's own timed commit
/// (`fs_core::MountOptions::commit_interval`, as `fs` was mounted) bounds what a crash of
/// the process loses. On return every open file is closed and the filesystem is synced
/// (not unmounted: the caller owns `fs`).
pub fn mount(fs: Arc<Filesystem>, mountpoint: &Path, opts: MountOptions) -> io::Result<()> {
    let id = NEXT_MOUNT.fetch_add(1, Ordering::Relaxed);
    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::FSName(opts.fsname.clone()),
        MountOption::Subtype("bypassfs".into()),
        MountOption::DefaultPermissions,
        if opts.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    if opts.allow_other {
        cfg.acl = SessionACL::All;
    }
    cfg.n_threads = Some(opts.threads.max(1));
    let close_sync = if opts.read_only {
        super::options::CloseSync::Never
    } else {
        opts.close_sync
    };
    let ops = Fuse::new(Arc::clone(&fs), id, close_sync);
    let mut session = fuser::Session::new(ops, mountpoint, &cfg)
        .map_err(|e| fail(&format!("mounting at {}", mountpoint.display()), e))?;
    let signals = if opts.handle_signals {
        let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| fail("signals", e))?;
        let handle = signals.handle();
        let mut unmounter = session.unmount_callable();
        let sfs = Arc::clone(&fs);
        let at = mountpoint.display().to_string();
        let read_only = opts.read_only;
        let t = std::thread::Builder::new()
            .name("bypassfs-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    log::info!("bypassfs: signal {sig}: syncing and unmounting {at}");
                    if !read_only {
                        if let Err(e) = sfs.context().and_then(|c| sfs.sync(&c)) {
                            log::error!("bypassfs: sync before unmount: {e}");
                        }
                    }
                    if let Err(e) = unmounter.unmount() {
                        log::error!("bypassfs: unmounting {at}: {e}");
                    }
                }
            })?;
        Some((handle, t))
    } else {
        None
    };
    let served = session.run();
    if let Some((handle, t)) = signals {
        handle.close();
        let _ = t.join();
    }
    // A read-only mount has nothing to sync, and fs-core refuses a sync of one.
    let synced = if opts.read_only {
        Ok(())
    } else {
        fs.context().and_then(|c| fs.sync(&c))
    };
    super::ctx::forget(id);
    served?;
    synced.map_err(|e| fail("final sync", e))
}
