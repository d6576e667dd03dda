//! The memory budgets of a mount (`docs/decisions/memory-budgets.md`): the node cache and
//! the fsync log's overlay stay within `MountOptions::metadata_cache_bytes` and
//! `MountOptions::overlay_bytes` while the work they serve outgrows them, and nothing is
//! lost for it.

mod common;

use common::*;
use fs_core::{Filesystem, MountOptions};
use testkit::Rng;

/// Slack over the overlay budget in these single-writer tests: what one completion adds
/// after the check that would have stopped it (an extent's entry and checksums), and the
/// file's size and time.
const OVERLAY_SLACK: u64 = 8 << 10;

fn opts(metadata_cache_bytes: u64, overlay_bytes: u64) -> MountOptions {
    MountOptions {
        metadata_cache_bytes,
        overlay_bytes,
        ..mount_opts()
    }
}

/// A tree many times the node cache's budget: creating, listing and reading it keeps the
/// cached nodes within the budget (clean ones are evicted), and every file reads back.
#[test]
fn the_node_cache_stays_within_its_budget() {
    const BUDGET: u64 = 96 << 10;
    let dev = mem(64);
    Filesystem::format(dev.clone(), small_format()).unwrap();
    let fs = Filesystem::mount(dev.clone(), opts(BUDGET, 64 << 20)).unwrap();
    let ctx = fs.context().unwrap();
    let check = |when: &str| {
        let used = fs.memory_use().metadata_cache_bytes;
        assert!(used <= BUDGET, "{when}: {used} bytes of nodes cached");
        used
    };
    let name = |d: u32, f: u32| format!("/d{d}/file-with-a-longer-name-{f}");
    for d in 0..4 {
        fs.mkdir(&format!("/d{d}"), 0o755).unwrap();
        for f in 0..150 {
            let file = fs.open(&ctx, &name(d, f), rw(), 0o644).unwrap();
            file.write_at(&ctx, 0, format!("{d}:{f}").as_bytes())
                .unwrap();
        }
        fs.sync(&ctx).unwrap();
        check(&format!("after directory {d}"));
    }
    let mut peak = 0;
    for d in 0..4 {
        assert_eq!(fs.readdir(&format!("/d{d}"), 0, 1000).unwrap().len(), 150);
        for f in 0..150 {
            assert_eq!(
                read_all(&fs, &ctx, &name(d, f)),
                format!("{d}:{f}").as_bytes()
            );
        }
        peak = peak.max(check(&format!("after reading directory {d}")));
    }
    assert!(peak > BUDGET / 2, "the cache is used: at most {peak} bytes");
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

/// A long stream of writes without fsync, random 4 KiB direct overwrites (the hashed
/// overlay) then 1 MiB buffered writes (pieces with a checksum per block): the overlay is
/// folded as it reaches its budget instead of growing, and the files read back as written,
/// before and after a remount.
#[test]
fn a_write_stream_without_fsync_keeps_the_overlay_within_its_budget() {
    const BUDGET: u64 = 256 << 10;
    let seed = testkit::seed!();
    let mut rng = Rng::new(seed);
    let dev = mem(160);
    Filesystem::format(dev.clone(), small_format()).unwrap();
    let fs = Filesystem::mount(dev.clone(), opts(256 << 20, BUDGET)).unwrap();
    let ctx = fs.context().unwrap();
    let mut peak = 0;
    let mut check = |fs: &Filesystem, when: &dyn Fn() -> String| {
        let used = fs.memory_use().overlay_bytes;
        assert!(
            used <= BUDGET + OVERLAY_SLACK,
            "seed {seed}: {}: the overlay takes {used} bytes",
            when()
        );
        peak = peak.max(used);
    };

    const BLOCKS: u64 = 4096;
    let mut model = vec![0u8; (BLOCKS * 4096) as usize];
    let f = fs.open(&ctx, "/random", direct(), 0o644).unwrap();
    f.write_at(&ctx, 0, &model).unwrap();
    for i in 0..20_000u32 {
        let b = rng.below(BLOCKS);
        let at = (b * 4096) as usize;
        let block = &mut model[at..at + 4096];
        block.fill(i as u8);
        block[..4].copy_from_slice(&i.to_le_bytes());
        f.write_at(&ctx, b * 4096, block).unwrap();
        check(&fs, &|| format!("direct write {i}"));
    }
    let streamed: Vec<u8> = (0..48u32 << 20).map(|i| (i / 4096 % 251) as u8).collect();
    let g = fs.open(&ctx, "/stream", rw(), 0o644).unwrap();
    for (k, chunk) in streamed.chunks(1 << 20).enumerate() {
        g.write_at(&ctx, (k as u64) << 20, chunk).unwrap();
        check(&fs, &|| format!("buffered write {k}"));
    }
    assert!(
        peak > BUDGET / 4,
        "seed {seed}: the stream filled the overlay (peak {peak} bytes)"
    );
    assert!(fs.background_folds() > 0, "seed {seed}: nothing was folded");
    assert!(read_all(&fs, &ctx, "/random") == model, "seed {seed}");
    assert!(read_all(&fs, &ctx, "/stream") == streamed, "seed {seed}");
    drop((f, g));
    fs.unmount(&ctx).unwrap();
    let (fs, ctx) = mount(dev.clone());
    assert!(read_all(&fs, &ctx, "/random") == model, "seed {seed}");
    assert!(read_all(&fs, &ctx, "/stream") == streamed, "seed {seed}");
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}
