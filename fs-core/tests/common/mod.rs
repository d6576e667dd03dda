//! Shared test helpers: devices, a fresh filesystem, a seeded RNG.
#![allow(dead_code)]

use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::BlockDevice;
use fs_core::{Context, Filesystem, FormatOptions, MountOptions, OpenFlags};

/// A RAM device of `mib` MiB with 4 KiB blocks.
pub fn mem(mib: u64) -> Arc<MemDevice> {
    Arc::new(MemDevice::new("t", 4096, mib * 256).unwrap())
}

/// Small nodes so trees grow several levels in tests.
pub fn small_format() -> FormatOptions {
    FormatOptions {
        nodesize: 4096,
        block_size: 4096,
    }
}

/// Small caches, and no timed commit: a test decides when things become durable (a commit
/// on a 30 s timer would land at a different point of a long test on every run).
/// `tests/timer.rs` tests the timer.
pub fn mount_opts() -> MountOptions {
    MountOptions {
        cache_bytes: 4 << 20,
        dirty_bytes: 1 << 20,
        commit_interval: None,
        ..MountOptions::default()
    }
}

/// Formats and mounts `dev`.
pub fn fresh(dev: Arc<dyn BlockDevice>) -> (Filesystem, Context) {
    Filesystem::format(dev.clone(), small_format()).unwrap();
    mount(dev)
}

pub fn mount(dev: Arc<dyn BlockDevice>) -> (Filesystem, Context) {
    let fs = Filesystem::mount(dev, mount_opts()).unwrap();
    let ctx = fs.context().unwrap();
    (fs, ctx)
}

pub fn rw() -> OpenFlags {
    OpenFlags::read_write_create()
}

pub fn direct() -> OpenFlags {
    OpenFlags {
        direct: true,
        ..OpenFlags::read_write_create()
    }
}

/// Reads the whole file at `path`.
pub fn read_all(fs: &Filesystem, ctx: &Context, path: &str) -> Vec<u8> {
    let f = fs.open(ctx, path, OpenFlags::read_only(), 0).unwrap();
    let size = f.size().unwrap() as usize;
    let mut v = vec![0u8; size];
    let n = f.read_at(ctx, 0, &mut v).unwrap();
    assert_eq!(n, size, "short read of {path}");
    v
}

/// Asserts fsck finds nothing.
pub fn assert_clean(dev: Arc<dyn BlockDevice>) -> fs_core::FsckReport {
    let rep = fs_core::fsck(dev, &fs_core::FsckOptions::default()).unwrap();
    assert!(rep.is_clean(), "fsck: {:#?}", rep.errors);
    rep
}

/// Every path under the root (directories' contents too), and whether it is a directory.
pub fn listing(fs: &Filesystem) -> std::collections::BTreeMap<String, bool> {
    let mut out = std::collections::BTreeMap::new();
    list(fs, "/", &mut out);
    out
}

fn list(fs: &Filesystem, dir: &str, out: &mut std::collections::BTreeMap<String, bool>) {
    for e in fs.readdir(dir, 0, 1000).unwrap() {
        let p = format!("{}/{}", dir.trim_end_matches('/'), e.name_lossy());
        let is_dir = e.file_type == fs_core::FileType::Dir;
        out.insert(p.clone(), is_dir);
        if is_dir {
            list(fs, &p, out);
        }
    }
}
