//! Threads doing I/O at once, each with its own context: on different files and on the
//! same file (disjoint ranges), buffered and direct, with namespace changes in between.

mod common;

use std::sync::{Arc, Barrier};

use common::*;
use fs_core::OpenFlags;
use testkit::Rng;

#[test]
fn threads_on_different_and_same_files() {
    on_different_and_same_files(4);
}

/// More threads than cores (8 on the 2-core development VM): the per-thread shards of pins,
/// counters and inode stripes (`docs/decisions/per-core-io.md`) are shared by threads that
/// run on one core, and preempted in the middle of their critical sections.
#[test]
fn eight_threads_on_different_and_same_files() {
    on_different_and_same_files(8);
}

fn on_different_and_same_files(threads: u64) {
    let seed = testkit::seed!();
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    fs.create("/shared", 0o644).unwrap();
    let barrier = Arc::new(Barrier::new(threads as usize));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let fs = fs.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let ctx = fs.context().unwrap();
                let mut rng = Rng::new(seed ^ t);
                let own = format!("/t{t}");
                let is_direct = t % 2 == 0;
                let flags = OpenFlags {
                    direct: is_direct,
                    ..OpenFlags::read_write_create()
                };
                let f = fs.open(&ctx, &own, flags, 0o644).unwrap();
                let s = fs.open(&ctx, "/shared", flags, 0).unwrap();
                let mut model = vec![0u8; 64 * 4096];
                barrier.wait();
                for i in 0..60 {
                    let blk = rng.below(64);
                    let v = vec![((t * 50 + i % 50) % 255) as u8 + 1; 4096];
                    f.write_at(&ctx, blk * 4096, &v).unwrap();
                    model[blk as usize * 4096..][..4096].copy_from_slice(&v);
                    // The shared file: this thread owns blocks t, t + threads, ...
                    let sblk = t + threads * rng.below(16);
                    s.write_at(&ctx, sblk * 4096, &vec![t as u8 + 1; 4096])
                        .unwrap();
                    if i % 15 == 0 {
                        f.fsync(&ctx).unwrap();
                        let name = format!("/tmp{t}_{i}");
                        fs.create(&name, 0o644).unwrap();
                        fs.rename(&name, &format!("/ren{t}_{i}"), Default::default())
                            .unwrap();
                    }
                }
                s.fsync(&ctx).unwrap();
                let mut got = vec![0u8; model.len()];
                let n = f.read_at(&ctx, 0, &mut got).unwrap();
                assert_eq!(&got[..n], &model[..n], "thread {t} own file");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let data = read_all(&fs, &ctx, "/shared");
    for (b, chunk) in data.chunks(4096).enumerate() {
        let owner = b as u64 % threads;
        assert!(
            chunk.iter().all(|&x| x == 0 || x == owner as u8 + 1),
            "shared block {b} holds bytes of another thread"
        );
    }
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

#[test]
fn threads_share_one_file_with_fsyncs_and_syncs() {
    let seed = testkit::seed!();
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    fs.create("/s", 0o644).unwrap();
    let threads = 4u64;
    let blocks_each = 24u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let fs = fs.clone();
            std::thread::spawn(move || {
                let ctx = fs.context().unwrap();
                let mut rng = Rng::new(seed ^ (t << 32));
                let mut mine = vec![0u8; blocks_each as usize];
                for i in 0..80u64 {
                    let k = rng.below(blocks_each);
                    let blk = k * threads + t;
                    let v = (i % 250) as u8 + 1;
                    let direct = rng.chance(30);
                    let flags = OpenFlags {
                        direct,
                        ..OpenFlags::read_write_create()
                    };
                    let f = fs.open(&ctx, "/s", flags, 0).unwrap();
                    f.write_at(&ctx, blk * 4096, &[v; 4096]).unwrap();
                    mine[k as usize] = v;
                    match rng.below(6) {
                        0 => f.fdatasync(&ctx).unwrap(),
                        1 => f.fsync(&ctx).unwrap(),
                        2 if t == 0 => fs.sync(&ctx).unwrap(),
                        _ => {}
                    }
                    // A read of one of my blocks shows my last write.
                    let r = rng.below(blocks_each);
                    let mut buf = vec![0u8; 4096];
                    let n = f.read_at(&ctx, (r * threads + t) * 4096, &mut buf).unwrap();
                    let want = mine[r as usize];
                    assert!(buf[..n].iter().all(|&b| b == want), "thread {t} block {r}");
                }
                mine
            })
        })
        .collect();
    let results: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev.clone());
    let data = read_all(&fs, &ctx, "/s");
    // The size is the end of the last block written (a size logged by one fsync must not
    // overtake a larger one logged by another).
    let last = (0..threads * blocks_each)
        .filter(|b| results[(b % threads) as usize][(b / threads) as usize] != 0)
        .max()
        .expect("every thread wrote");
    assert_eq!(
        data.len() as u64,
        (last + 1) * 4096,
        "file size after remount"
    );
    for (b, chunk) in data.chunks(4096).enumerate() {
        let (t, k) = (b as u64 % threads, b as u64 / threads);
        let want = results[t as usize][k as usize];
        assert!(chunk.iter().all(|&x| x == want), "block {b}");
    }
}

/// One thread appends through the cache while another writes the file back all the time:
/// a writeback may take a block as soon as its bytes are copied, before the writer grows
/// the file and ends its step. No appended byte may be lost or read back wrong.
#[test]
fn appends_race_with_writeback() {
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    fs.create("/a", 0o644).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let syncer = {
        let (fs, stop) = (fs.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let ctx = fs.context().unwrap();
            let f = fs
                .open(&ctx, "/a", OpenFlags::read_write_create(), 0)
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.fdatasync(&ctx).unwrap();
            }
        })
    };
    let f = fs
        .open(&ctx, "/a", OpenFlags::read_write_create(), 0)
        .unwrap();
    let d = fs
        .open(
            &ctx,
            "/a",
            OpenFlags {
                direct: true,
                ..OpenFlags::read_only()
            },
            0,
        )
        .unwrap();
    for i in 0..300u64 {
        let v = (i % 251) as u8 + 1;
        f.write_at(&ctx, i * 4096, &[v; 4096]).unwrap();
        let mut buf = vec![0u8; 4096];
        assert_eq!(d.read_at(&ctx, i * 4096, &mut buf).unwrap(), 4096);
        assert!(
            buf.iter().all(|&b| b == v),
            "block {i} read back wrong: {:?} want {v}",
            &buf[..8]
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    syncer.join().unwrap();
    drop((f, d));
    fs.unmount(&ctx).unwrap();
    let rep = assert_clean(dev.clone());
    let (fs, ctx) = mount(dev);
    let data = read_all(&fs, &ctx, "/a");
    for (i, c) in data.chunks(4096).enumerate() {
        assert!(
            c.iter().all(|&b| b == (i as u64 % 251) as u8 + 1),
            "block {i} after remount"
        );
    }
    let _ = rep;
}

/// Direct overwrites in flight while the mount's folder thread folds the overlay into the
/// trees: the writes go on during each fold (they reserve space and log their extents
/// meanwhile), and every read, during the run and after a remount, shows the last write.
#[test]
fn overwrites_go_on_while_the_overlay_is_folded_in_the_background() {
    let seed = testkit::seed!();
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    let f = Arc::new(fs.open(&ctx, "/f", direct(), 0o644).unwrap());
    const BLOCKS: u64 = 2048;
    for at in (0..BLOCKS * 4096).step_by(64 << 10) {
        f.write_at(&ctx, at, &[0u8; 64 << 10]).unwrap();
    }
    let folds_before = fs.background_folds();
    const WRITERS: u64 = 16;
    let futs = (0..WRITERS).map(|w| {
        let (f, ctx2) = (Arc::clone(&f), ctx.clone());
        let mut rng = Rng::new(seed ^ (w << 40));
        async move {
            let mut model = vec![0u8; (BLOCKS / WRITERS) as usize];
            let mut buf = f.alloc_buf(4096).unwrap();
            for i in 0..1500u64 {
                // Writer `w` owns blocks w, w + WRITERS, ...
                let k = rng.below(BLOCKS / WRITERS);
                let v = (i % 251) as u8 + 1;
                buf.fill(v);
                let (back, r) = f.write_at_async(&ctx2, (k * WRITERS + w) * 4096, buf).await;
                buf = back;
                r.unwrap();
                model[k as usize] = v;
                if i % 8 == 0 {
                    let k = rng.below(BLOCKS / WRITERS);
                    let (back, r) = f.read_at_async(&ctx2, (k * WRITERS + w) * 4096, buf).await;
                    buf = back;
                    assert_eq!(r.unwrap(), 4096);
                    let want = model[k as usize];
                    assert!(buf.iter().all(|&b| b == want), "writer {w} block {k}");
                }
            }
            model
        }
    });
    let models = ctx.block_on(bdev::exec::join_all(futs));
    let folds = fs.background_folds() - folds_before;
    println!("background folds during the run: {folds}");
    assert!(
        folds > 0,
        "the run was meant to hand folds to the folder thread"
    );
    f.fsync(&ctx).unwrap();
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev);
    let data = read_all(&fs, &ctx, "/f");
    for (b, chunk) in data.chunks(4096).enumerate() {
        let want = models[b % WRITERS as usize][b / WRITERS as usize];
        assert!(chunk.iter().all(|&x| x == want), "block {b} after remount");
    }
}

/// Log writers on several threads at once (`durability/synced.rs`): two threads append and
/// fdatasync a block at a time, each to its own file, so their writes go out with their
/// fsync records, while a third writes directly and fsyncs only now and then (its completed
/// writes ride in their records, with a flush). Then a crash (the device as it is):
/// everything fsync'd is there.
#[test]
fn log_writers_on_threads_sync_their_writes_while_others_write() {
    let dev = mem(64);
    let (fs, _ctx) = fresh(dev.clone());
    let barrier = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..3u8)
        .map(|t| {
            let fs = fs.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let ctx = fs.context().unwrap();
                let f = fs.open(&ctx, &format!("/w{t}"), direct(), 0o644).unwrap();
                barrier.wait();
                let mut model = Vec::new();
                for i in 0..150u32 {
                    let v = vec![(i % 250) as u8 + 1 + t; 4096];
                    if t < 2 {
                        f.write_at(&ctx, u64::from(i) * 4096, &v).unwrap();
                        f.fdatasync(&ctx).unwrap();
                    } else {
                        f.write_at(&ctx, u64::from(i) * 4096, &v).unwrap();
                        if i % 10 == 0 {
                            f.fsync(&ctx).unwrap();
                        }
                    }
                    model.extend_from_slice(&v);
                }
                f.fsync(&ctx).unwrap();
                model
            })
        })
        .collect();
    let models: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let crashed: Arc<dyn bdev::BlockDevice> =
        Arc::new(bdev::mem::MemDevice::from_image("crashed", 4096, &dev.snapshot()).unwrap());
    drop(fs);
    assert_clean(crashed.clone());
    let (cfs, cctx) = mount(crashed.clone());
    for (t, model) in models.iter().enumerate() {
        assert!(
            read_all(&cfs, &cctx, &format!("/w{t}")) == *model,
            "file {t} after the crash"
        );
    }
    cfs.unmount(&cctx).unwrap();
    assert_clean(crashed);
}
