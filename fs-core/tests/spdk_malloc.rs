//! The filesystem on SPDK malloc bdevs, within one process (feature `spdk`, SPDK installed):
//! format, namespace and data round trips (buffered, direct, queued direct), fsync, unmount,
//! fsck and remount; a mount that ends without unmount (as a crash leaves it) keeps what was
//! fsynced; files written from several threads, each with its own SPDK thread and channel.
//!
//! SPDK starts once per process: every test takes the one environment (`setup`), on its
//! own malloc bdev, one test at a time.
#![cfg(feature = "spdk")]

mod spdk_common;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bdev::spdk::SpdkEnv;
use bdev::BlockDevice;
use fs_core::{Filesystem, FormatOptions, OpenFlags};
use spdk_common::*;

/// One 64 MiB malloc bdev per test, so no test sees another's filesystem.
const BDEVS: [&str; 3] = ["Round", "Crash", "Threads"];

static LOCK: Mutex<()> = Mutex::new(());

fn setup() -> (MutexGuard<'static, ()>, &'static Arc<SpdkEnv>) {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    static ENV: OnceLock<Arc<SpdkEnv>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let bdevs: Vec<String> = BDEVS
            .iter()
            .map(|name| {
                format!(
                    r#"{{"method": "bdev_malloc_create", "params": {{"name": "{name}",
                        "num_blocks": 16384, "block_size": 4096}}}}"#
                )
            })
            .collect();
        let config = format!(
            r#"{{"subsystems": [{{"subsystem": "bdev", "config": [{}]}}]}}"#,
            bdevs.join(",")
        );
        start("fs_core_spdk_malloc", &config)
    });
    (guard, env)
}

fn formatted(env: &Arc<SpdkEnv>, name: &str) -> Arc<dyn BlockDevice> {
    let dev = open(env, name);
    assert!(
        !dev.geometry().durability_unknowable(),
        "a malloc bdev flushes"
    );
    Filesystem::format(Arc::clone(&dev), FormatOptions::default()).unwrap();
    dev
}

#[test]
fn round_trips_fsck_and_remount() {
    let (_g, env) = setup();
    let dev = formatted(env, "Round");
    assert_clean(&dev);
    let (fs, ctx) = mount(&dev);
    write_tree(&fs, &ctx, "/t");
    check_tree(&fs, &ctx, "/t");
    fs.unmount(&ctx).unwrap();
    let rep = assert_clean(&dev);
    assert!(
        rep.data_extents > 1,
        "the files' data is on the bdev: {rep:?}"
    );

    // Remounted: the same tree; then change it and remount once more.
    let (fs, ctx) = mount(&dev);
    check_tree(&fs, &ctx, "/t");
    fs.rename("/t", "/moved", Default::default()).unwrap();
    fs.unlink("/moved/sub/hardlink").unwrap();
    let f = fs
        .open(&ctx, "/moved/tiny", OpenFlags::read_write_create(), 0)
        .unwrap();
    f.write_at(&ctx, 6, b" and more").unwrap();
    f.fsync(&ctx).unwrap();
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(&dev);
    let (fs, ctx) = mount(&dev);
    assert!(fs.stat("/t").is_err(), "renamed away");
    assert_eq!(
        read_all(&fs, &ctx, "/moved/tiny", false),
        b"inline and more"
    );
    assert!(fs.stat("/moved/sub/hardlink").is_err());
    assert_eq!(fs.stat("/moved/sub/direct").unwrap().nlink, 1);
    let direct = tree_files("/t").remove("/t/sub/direct").unwrap();
    assert!(read_all(&fs, &ctx, "/moved/sub/direct", true) == direct);
    fs.unmount(&ctx).unwrap();
    assert_clean(&dev);
}

/// What was fsynced survives a mount that is dropped without unmount (its fsync-log
/// records are replayed at the next mount); fsck is clean after that mount.
#[test]
fn fsynced_data_survives_a_mount_dropped_without_unmount() {
    let (_g, env) = setup();
    let dev = formatted(env, "Crash");
    let (fs, ctx) = mount(&dev);
    let f = fs
        .open(&ctx, "/synced", OpenFlags::read_write_create(), 0o644)
        .unwrap();
    let data = pattern(7, 3 << 20);
    f.write_at(&ctx, 0, &data).unwrap();
    f.fsync(&ctx).unwrap();
    let d = fs
        .open(
            &ctx,
            "/synced-direct",
            OpenFlags {
                direct: true,
                ..OpenFlags::read_write_create()
            },
            0o644,
        )
        .unwrap();
    d.write_at(&ctx, 4096, &pattern(8, 64 << 10)).unwrap();
    d.fdatasync(&ctx).unwrap();
    drop((f, d));
    drop(fs); // no unmount
    let (fs, ctx) = mount(&dev);
    assert!(read_all(&fs, &ctx, "/synced", true) == data);
    let mut want = vec![0u8; 4096];
    want.extend_from_slice(&pattern(8, 64 << 10));
    assert!(read_all(&fs, &ctx, "/synced-direct", false) == want);
    fs.unmount(&ctx).unwrap();
    assert_clean(&dev);
}

/// Four threads, each with its own context (an SPDK thread and io channel of its own),
/// write and read files at once.
#[test]
fn threads_each_on_their_own_channel() {
    let (_g, env) = setup();
    let dev = formatted(env, "Threads");
    let (fs, ctx) = mount(&dev);
    let fs = Arc::new(fs);
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let fs = Arc::clone(&fs);
            std::thread::spawn(move || {
                let ctx = fs.context().unwrap();
                let path = format!("/w{t}");
                let flags = OpenFlags {
                    direct: t % 2 == 0,
                    ..OpenFlags::read_write_create()
                };
                let f = fs.open(&ctx, &path, flags, 0o644).unwrap();
                for i in 0..64u64 {
                    f.write_at(&ctx, i * 16384, &pattern(t * 1000 + i, 16384))
                        .unwrap();
                }
                f.fsync(&ctx).unwrap();
                let mut buf = vec![0u8; 16384];
                for i in (0..64u64).rev() {
                    f.read_at(&ctx, i * 16384, &mut buf).unwrap();
                    assert!(buf == pattern(t * 1000 + i, 16384), "{path} chunk {i}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let fs = Arc::into_inner(fs).expect("workers are done");
    fs.unmount(&ctx).unwrap();
    assert_clean(&dev);
    let (fs, ctx) = mount(&dev);
    for t in 0..4u64 {
        let want: Vec<u8> = (0..64u64)
            .flat_map(|i| pattern(t * 1000 + i, 16384))
            .collect();
        assert!(
            read_all(&fs, &ctx, &format!("/w{t}"), false) == want,
            "/w{t}"
        );
    }
    fs.unmount(&ctx).unwrap();
}
