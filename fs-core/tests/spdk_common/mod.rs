//! What fs-core's SPDK tests share: how SPDK's environment starts, and a tree of files that
//! one process (or one mount) writes and another checks.
//!
//! SPDK starts once per process and cannot be restarted, so each test binary starts it once
//! (`start`), from one config holding every bdev its tests use. Hugepages are used when at
//! least 512 MiB of them are free, else ordinary memory (`no_huge`, 512 MiB);
//! `FS_SPDK_TEST_NO_HUGE=1` forces the latter.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::spdk::{SpdkDevice, SpdkEnv, SpdkEnvOptions};
use bdev::BlockDevice;
use fs_core::{Context, Filesystem, MountOptions, OpenFlags, RenameFlags};

/// Starts SPDK in this process from `config` (a JSON config), once.
pub fn start(name: &str, config: &str) -> Arc<SpdkEnv> {
    let opts = env_options(name);
    eprintln!(
        "SPDK test environment: {}",
        if opts.no_huge {
            "no hugepages (512 MiB of ordinary memory)"
        } else {
            "hugepages"
        }
    );
    SpdkEnv::start(config, opts).unwrap_or_else(|e| panic!("starting SPDK: {e}"))
}

fn env_options(name: &str) -> SpdkEnvOptions {
    let forced = std::env::var_os("FS_SPDK_TEST_NO_HUGE").is_some_and(|v| v == "1");
    let no_huge = forced || hugepages_free_mib() < 512;
    SpdkEnvOptions {
        name: name.into(),
        no_huge,
        mem_size_mb: no_huge.then_some(512),
        ..SpdkEnvOptions::default()
    }
}

fn hugepages_free_mib() -> u64 {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    let field = |name: &str| -> Option<u64> {
        info.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    field("HugePages_Free:")
        .zip(field("Hugepagesize:"))
        .map_or(0, |(n, kib)| n * kib / 1024)
}

/// Opens bdev `name` of the running environment.
pub fn open(env: &Arc<SpdkEnv>, name: &str) -> Arc<dyn BlockDevice> {
    Arc::new(SpdkDevice::open(env, name).unwrap_or_else(|e| panic!("opening {name}: {e}")))
}

pub fn mount(dev: &Arc<dyn BlockDevice>) -> (Filesystem, Context) {
    let fs = Filesystem::mount(Arc::clone(dev), MountOptions::default())
        .unwrap_or_else(|e| panic!("mounting {}: {e}", dev.name()));
    let ctx = fs.context().unwrap();
    (fs, ctx)
}

/// Asserts fsck finds nothing wrong.
pub fn assert_clean(dev: &Arc<dyn BlockDevice>) -> fs_core::FsckReport {
    let rep = fs_core::fsck(Arc::clone(dev), &fs_core::FsckOptions::default()).unwrap();
    assert!(rep.is_clean(), "fsck of {}: {:#?}", dev.name(), rep.errors);
    rep
}

/// Bytes that differ with `seed` and with the position (so a block written to the wrong
/// place or twice shows).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(31) as usize + i / 7 + i % 251) as u8)
        .collect()
}

fn direct() -> OpenFlags {
    OpenFlags {
        direct: true,
        ..OpenFlags::read_write_create()
    }
}

/// The regular files [`write_tree`] leaves under `dir`, with their contents.
pub fn tree_files(dir: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    // Buffered, unaligned, then overwritten in the middle (copy-on-write of part of it).
    let mut buffered = vec![0u8; 1234];
    buffered.extend_from_slice(&pattern(1, 300_000));
    buffered[50_000..55_000].copy_from_slice(&pattern(3, 5000));
    files.insert(format!("{dir}/buffered"), buffered);
    // Direct, block-aligned, with a hole before it and an overwrite inside it.
    let mut direct = vec![0u8; 8192];
    direct.extend_from_slice(&pattern(2, 256 << 10));
    direct[65536..65536 + 8192].copy_from_slice(&pattern(4, 8192));
    files.insert(format!("{dir}/sub/direct"), direct.clone());
    files.insert(format!("{dir}/sub/hardlink"), direct);
    // 32 direct writes in flight at once, 8 KiB each.
    let queued: Vec<u8> = (0..32u64).flat_map(|i| pattern(100 + i, 8192)).collect();
    files.insert(format!("{dir}/queued"), queued);
    files.insert(format!("{dir}/renamed"), b"moved".to_vec());
    files.insert(format!("{dir}/tiny"), b"inline".to_vec());
    files
}

/// Builds a tree under `dir` (which must not exist): buffered, direct and queued direct
/// writes with overwrites, a hard link, a symlink, a rename, an unlink, an xattr; every
/// file fsynced. What it leaves is [`tree_files`] plus `link` -> `sub/direct` and the
/// xattr `user.k` = `v` on `buffered`.
pub fn write_tree(fs: &Filesystem, ctx: &Context, dir: &str) {
    let want = tree_files(dir);
    fs.mkdir(dir, 0o755).unwrap();
    fs.mkdir(&format!("{dir}/sub"), 0o755).unwrap();

    let b = fs
        .open(
            ctx,
            &format!("{dir}/buffered"),
            OpenFlags::read_write_create(),
            0o644,
        )
        .unwrap();
    b.write_at(ctx, 1234, &pattern(1, 300_000)).unwrap();
    b.write_at(ctx, 50_000, &pattern(3, 5000)).unwrap();
    b.fsync(ctx).unwrap();

    let d = fs
        .open(ctx, &format!("{dir}/sub/direct"), direct(), 0o644)
        .unwrap();
    d.write_at(ctx, 8192, &pattern(2, 256 << 10)).unwrap();
    d.write_at(ctx, 65536, &pattern(4, 8192)).unwrap();
    d.fsync(ctx).unwrap();
    fs.link(&format!("{dir}/sub/direct"), &format!("{dir}/sub/hardlink"))
        .unwrap();

    let q = Arc::new(
        fs.open(ctx, &format!("{dir}/queued"), direct(), 0o644)
            .unwrap(),
    );
    let writes = (0..32u64).map(|i| {
        let (q, ctx2) = (Arc::clone(&q), ctx.clone());
        let mut buf = q.alloc_buf(8192).unwrap();
        buf.copy_from_slice(&pattern(100 + i, 8192));
        async move {
            let (_, r) = q.write_at_async(&ctx2, i * 8192, buf).await;
            assert_eq!(r.unwrap(), 8192, "queued write {i}");
        }
    });
    ctx.block_on(bdev::exec::join_all(writes));
    q.fsync(ctx).unwrap();

    for (name, data) in [("tmp", &b"moved"[..]), ("tiny", b"inline"), ("gone", b"x")] {
        let f = fs
            .open(
                ctx,
                &format!("{dir}/{name}"),
                OpenFlags::read_write_create(),
                0o644,
            )
            .unwrap();
        f.write_at(ctx, 0, data).unwrap();
        f.fsync(ctx).unwrap();
    }
    fs.rename(
        &format!("{dir}/tmp"),
        &format!("{dir}/renamed"),
        RenameFlags::default(),
    )
    .unwrap();
    fs.unlink(&format!("{dir}/gone")).unwrap();
    fs.symlink("sub/direct", &format!("{dir}/link")).unwrap();
    fs.set_xattr(
        &format!("{dir}/buffered"),
        "user.k",
        b"v",
        Default::default(),
    )
    .unwrap();
    fs.sync(ctx).unwrap();
    // What was just written reads back before any remount too.
    for (path, data) in &want {
        assert!(
            read_all(fs, ctx, path, false) == *data,
            "{path} just written"
        );
    }
}

/// Reads the whole file at `path`, directly or through the page cache.
pub fn read_all(fs: &Filesystem, ctx: &Context, path: &str, direct_io: bool) -> Vec<u8> {
    let flags = OpenFlags {
        direct: direct_io,
        ..OpenFlags::read_only()
    };
    let f = fs.open(ctx, path, flags, 0).unwrap();
    let size = f.size().unwrap() as usize;
    // Direct reads need whole blocks: read the rounded-up length, keep the file's bytes.
    let mut v = vec![0u8; size.next_multiple_of(4096).max(4096)];
    let n = f.read_at(ctx, 0, &mut v).unwrap();
    assert_eq!(n, size, "short read of {path}");
    v.truncate(size);
    v
}

/// Checks that `dir` holds exactly what [`write_tree`] left, read both through the page
/// cache and directly.
pub fn check_tree(fs: &Filesystem, ctx: &Context, dir: &str) {
    let want = tree_files(dir);
    for (path, data) in &want {
        assert!(read_all(fs, ctx, path, false) == *data, "{path} (buffered)");
        assert!(read_all(fs, ctx, path, true) == *data, "{path} (direct)");
    }
    let names = |d: &str| -> Vec<Vec<u8>> {
        let mut v: Vec<_> = fs
            .readdir(d, 0, 1000)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .filter(|n| n != b"." && n != b"..")
            .collect();
        v.sort();
        v
    };
    let top: Vec<&[u8]> = vec![b"buffered", b"link", b"queued", b"renamed", b"sub", b"tiny"];
    assert_eq!(names(dir), top, "entries of {dir}");
    let sub: Vec<&[u8]> = vec![b"direct", b"hardlink"];
    assert_eq!(names(&format!("{dir}/sub")), sub);
    assert_eq!(fs.readlink(&format!("{dir}/link")).unwrap(), "sub/direct");
    assert_eq!(fs.stat(&format!("{dir}/sub/direct")).unwrap().nlink, 2);
    assert_eq!(
        fs.get_xattr(&format!("{dir}/buffered"), "user.k").unwrap(),
        b"v"
    );
}
