//! A full filesystem: ENOSPC from the operation that needs space (buffered write, direct
//! write, fallocate), nothing committed lost, deleting files frees space again; space
//! that only waits for a commit (replaced extents) never causes ENOSPC.

mod common;

use common::*;
use fs_core::{FallocMode, OpenFlags};
use testkit::Rng;

fn fill(fs: &fs_core::Filesystem, ctx: &fs_core::Context, path: &str, flags: OpenFlags) -> u64 {
    let f = fs.open(ctx, path, flags, 0o644).unwrap();
    let chunk = vec![0x5au8; 256 << 10];
    let mut pos = 0u64;
    loop {
        match f.write_at(ctx, pos, &chunk) {
            Ok(n) => pos += n as u64,
            Err(e) => {
                assert_eq!(e.errno(), 28, "{e}");
                break;
            }
        }
    }
    f.fsync(ctx).unwrap();
    pos
}

#[test]
fn full_filesystem_reports_enospc_and_recovers() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let keep = fs.open(&ctx, "/keep", rw(), 0o644).unwrap();
    keep.write_at(&ctx, 0, b"committed").unwrap();
    keep.fsync(&ctx).unwrap();
    drop(keep);
    let wrote_buffered = fill(&fs, &ctx, "/big", rw());
    assert!(wrote_buffered > 8 << 20, "wrote {wrote_buffered}");
    // Buffered writes stop while the metadata their writeback's fold may need is still
    // kept for them (`Space::fold_need`); once written back, direct writes may take what
    // is left of it.
    let wrote_direct = fill(&fs, &ctx, "/d", direct());
    assert!(
        wrote_direct < 4 << 20,
        "wrote {wrote_direct} after the cache was full"
    );
    // Every further space-needing operation says ENOSPC, creating a file too (its items
    // would take the room kept for commits and deletes).
    let d = fs.open(&ctx, "/d", direct(), 0o644).unwrap();
    let e = d
        .write_at(&ctx, wrote_direct, &vec![1u8; 1 << 20])
        .unwrap_err();
    assert_eq!(e.errno(), 28);
    let e = d
        .fallocate(
            &ctx,
            FallocMode::Preallocate { keep_size: false },
            0,
            4 << 20,
        )
        .unwrap_err();
    assert_eq!(e.errno(), 28);
    assert_eq!(fs.create("/empty", 0o644).unwrap_err().errno(), 28);
    fs.unmount(&ctx).unwrap();
    drop(d);
    assert_clean(dev.clone());
    // Nothing committed is lost; deleting frees the space for new data.
    let (fs, ctx) = mount(dev.clone());
    assert_eq!(read_all(&fs, &ctx, "/keep"), b"committed");
    assert_eq!(fs.stat("/big").unwrap().size, wrote_buffered);
    let avail = fs.statfs().unwrap().blocks_avail;
    fs.unlink("/big").unwrap();
    // The next commit deletes the unlinked file and frees its space.
    fs.sync(&ctx).unwrap();
    assert!(fs.statfs().unwrap().blocks_avail > avail + 1000);
    let again = fill(&fs, &ctx, "/big2", direct());
    assert!(
        again + (1 << 20) >= wrote_buffered,
        "{again} vs {wrote_buffered}"
    );
    drop(fs);
    assert_clean(dev);
}

/// Overwrites a 2 MiB file with 32 times its size on a 16 MiB device: the space replaced
/// extents pin until a commit must come back, never ENOSPC; the content matches a model.
fn overwrite(fs: &fs_core::Filesystem, ctx: &fs_core::Context, flags: OpenFlags, fsync: bool) {
    const SIZE: u64 = 2 << 20;
    let f = fs.open(ctx, "/f", flags, 0o644).unwrap();
    let mut model = vec![0u8; SIZE as usize];
    f.write_at(ctx, 0, &model).unwrap();
    let mut rng = Rng::new(testkit::seed!());
    for i in 0..(32 * SIZE / 4096) {
        let pos = rng.below(SIZE / 4096) * 4096;
        let block = [(i % 251) as u8 + 1; 4096];
        let n = f
            .write_at(ctx, pos, &block)
            .unwrap_or_else(|e| panic!("overwrite {i} at {pos} ({flags:?}, fsync {fsync}): {e}"));
        assert_eq!(n, 4096);
        model[pos as usize..pos as usize + 4096].copy_from_slice(&block);
        if fsync && i % 64 == 63 {
            f.fsync(ctx).unwrap();
        }
    }
    f.fsync(ctx).unwrap();
    assert!(
        read_all(fs, ctx, "/f") == model,
        "content differs from the model"
    );
    fs.unlink("/f").unwrap();
}

#[test]
fn overwrites_never_run_out_of_space() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    for flags in [rw(), direct()] {
        for fsync in [false, true] {
            overwrite(&fs, &ctx, flags, fsync);
        }
    }
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

/// Many direct overwrites in flight at once: each keeps its generation pinned until it
/// ends, yet the extents the commits free come back while others are still running.
#[test]
fn concurrent_direct_overwrites_never_run_out_of_space() {
    const SIZE: u64 = 2 << 20;
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let f = std::sync::Arc::new(fs.open(&ctx, "/f", direct(), 0o644).unwrap());
    f.write_at(&ctx, 0, &vec![0u8; SIZE as usize]).unwrap();
    let mut rng = Rng::new(testkit::seed!());
    let blocks = SIZE / 4096;
    // 16 writers, each owning the blocks b with b % 16 == writer (no two in flight on one).
    let futs = (0..16u64).map(|w| {
        let f = std::sync::Arc::clone(&f);
        let ctx2 = ctx.clone();
        let picks: Vec<u64> = (0..2 * blocks)
            .map(|_| rng.below(blocks / 16) * 16 + w)
            .collect();
        async move {
            let mut buf = f.alloc_buf(4096).unwrap();
            for (i, b) in picks.into_iter().enumerate() {
                buf.fill((i % 251) as u8 + 1);
                let (back, r) = f.write_at_async(&ctx2, b * 4096, buf).await;
                buf = back;
                r.unwrap_or_else(|e| panic!("writer {w} overwrite {i} of block {b}: {e}"));
            }
        }
    });
    ctx.block_on(bdev::exec::join_all(futs));
    f.fsync(&ctx).unwrap();
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

/// Random overwrites of a file that fills half the device, 16 in flight, until well past
/// the device's free space in total: the fsync overlay grows to thousands of pieces, and
/// folding them copies much of the metadata while in-flight writes pin what commits free.
/// Every write must find space: commits must not spend the metadata room while freed space
/// is only pinned, and data must leave a fold the node space it needs.
#[test]
fn many_overwrites_in_flight_on_a_half_full_device_find_space() {
    // 4 KiB nodes (many levels) and 16 KiB nodes (the default: each fold copies more).
    for nodesize in [4096, 16384] {
        overwrites_in_flight(nodesize);
    }
}

fn overwrites_in_flight(nodesize: u32) {
    const SIZE: u64 = 32 << 20;
    let dev = mem(64);
    let opts = fs_core::FormatOptions {
        nodesize,
        ..small_format()
    };
    fs_core::Filesystem::format(dev.clone(), opts).unwrap();
    let (fs, ctx) = mount(dev.clone());
    let f = std::sync::Arc::new(fs.open(&ctx, "/f", direct(), 0o644).unwrap());
    // 64 KiB extents, so overwrites free whole extents as they go.
    for at in (0..SIZE).step_by(64 << 10) {
        f.write_at(&ctx, at, &[0u8; 64 << 10]).unwrap();
    }
    let blocks = SIZE / 4096;
    let mut rng = Rng::new(testkit::seed!());
    let futs = (0..16u64).map(|w| {
        let f = std::sync::Arc::clone(&f);
        let ctx2 = ctx.clone();
        let picks: Vec<u64> = (0..blocks / 2)
            .map(|_| rng.below(blocks / 16) * 16 + w)
            .collect();
        async move {
            let mut buf = f.alloc_buf(4096).unwrap();
            for (i, b) in picks.into_iter().enumerate() {
                buf.fill((i % 251) as u8 + 1);
                let (back, r) = f.write_at_async(&ctx2, b * 4096, buf).await;
                buf = back;
                r.unwrap_or_else(|e| {
                    panic!("nodes of {nodesize}: writer {w} overwrite {i} of block {b}: {e}")
                });
            }
        }
    });
    ctx.block_on(bdev::exec::join_all(futs));
    f.fsync(&ctx).unwrap();
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

/// Creates `/d{dir}/f{i}` files (`dirs` directories, or all in `/` when 0) and writes
/// `size` bytes into each through the cache, without fsync, until a write or create says
/// ENOSPC. Returns the files whose write returned Ok, with their fill byte.
fn fill_unsynced(
    fs: &fs_core::Filesystem,
    ctx: &fs_core::Context,
    dirs: u64,
    size: usize,
) -> Vec<(String, u8)> {
    let mut done = Vec::new();
    for i in 0u64.. {
        let dir = if dirs == 0 {
            String::new()
        } else {
            format!("/d{}", i % dirs)
        };
        if dirs != 0 && i < dirs {
            match fs.mkdir(&dir, 0o755) {
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.errno(), 28, "mkdir {dir}: {e}");
                    break;
                }
            }
        }
        let path = format!("{dir}/f{i}");
        let f = match fs.open(ctx, &path, rw(), 0o644) {
            Ok(f) => f,
            Err(e) => {
                assert_eq!(e.errno(), 28, "create {path}: {e}");
                break;
            }
        };
        let byte = (i % 251) as u8 + 1;
        match f.write_at(ctx, 0, &vec![byte; size]) {
            Ok(n) if n == size => done.push((path, byte)),
            // A short write keeps what it wrote, like any short write: not checked here.
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.errno(), 28, "write {path}: {e}");
                break;
            }
        }
    }
    done
}

/// Issue 20: on a full filesystem, every buffered write that returned Ok must survive a
/// clean unmount (its writeback and commit were reserved when it was accepted), and the
/// unmount must succeed.
fn accepted_writes_survive_unmount(dirs: u64, size: usize) {
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    let done = fill_unsynced(&fs, &ctx, dirs, size);
    assert!(!done.is_empty());
    let st = fs.statfs().unwrap();
    eprintln!(
        "{dirs} dirs, {size} bytes: {} files accepted, {} blocks available, {} free",
        done.len(),
        st.blocks_avail,
        st.blocks_free
    );
    fs.unmount(&ctx)
        .unwrap_or_else(|e| panic!("unmount after {} accepted writes: {e}", done.len()));
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev.clone());
    for (path, byte) in &done {
        let got = read_all(&fs, &ctx, path);
        assert!(
            got.len() == size && got.iter().all(|b| b == byte),
            "{path}: {} bytes back of {size}",
            got.len()
        );
    }
    drop(fs);
    assert_clean(dev);
}

#[test]
fn accepted_small_writes_survive_unmount_on_a_full_filesystem() {
    accepted_writes_survive_unmount(0, 4096);
}

#[test]
fn accepted_writes_in_many_directories_survive_unmount() {
    accepted_writes_survive_unmount(512, 4096);
}

#[test]
fn accepted_larger_writes_survive_unmount() {
    accepted_writes_survive_unmount(64, 40 << 10);
}

/// Issue 20: after filling a filesystem with data and directories until ENOSPC, deleting
/// a file succeeds and frees its space (deletes may use the room creates and writes keep).
#[test]
fn unlink_works_on_a_filesystem_full_of_data_and_directories() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let wrote = fill(&fs, &ctx, "/big", rw());
    let mut dirs = 0;
    loop {
        match fs.mkdir(&format!("/dir{dirs}"), 0o755) {
            Ok(_) => dirs += 1,
            Err(e) => {
                assert_eq!(e.errno(), 28, "mkdir {dirs}: {e}");
                break;
            }
        }
    }
    let done = fill_unsynced(&fs, &ctx, 0, 4096);
    eprintln!(
        "{wrote} bytes, {dirs} directories, {} small files",
        done.len()
    );
    let avail = fs.statfs().unwrap().blocks_avail;
    fs.unlink("/big")
        .unwrap_or_else(|e| panic!("unlink on a full filesystem: {e}"));
    // The next commit deletes the unlinked file and frees its space.
    fs.sync(&ctx).unwrap();
    assert!(fs.statfs().unwrap().blocks_avail > avail + 1000);
    fs.rmdir("/dir0").unwrap();
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}
