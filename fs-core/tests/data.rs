//! File data: buffered and direct I/O, persistence across remount, fallocate, NOCOW,
//! checksums.

mod common;

use std::sync::Arc;

use common::*;
use fs_core::{FallocMode, OpenFlags};

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i / 7) as u8)).collect()
}

#[test]
fn buffered_and_direct_roundtrip_and_remount() {
    let dev = mem(32);
    let (fs, ctx) = fresh(dev.clone());
    let b = fs.open(&ctx, "/buf", rw(), 0o644).unwrap();
    let d = fs.open(&ctx, "/dir", direct(), 0o644).unwrap();
    let p1 = pattern(1, 300_000);
    assert_eq!(b.write_at(&ctx, 1234, &p1).unwrap(), p1.len());
    let p2 = pattern(2, 256 << 10);
    assert_eq!(d.write_at(&ctx, 8192, &p2).unwrap(), p2.len());
    // Overwrite in the middle of both (copy-on-write of part of an extent).
    b.write_at(&ctx, 50_000, &pattern(3, 5000)).unwrap();
    d.write_at(&ctx, 65536, &pattern(4, 8192)).unwrap();
    let mut want_b = vec![0u8; 1234];
    want_b.extend_from_slice(&p1);
    want_b[50_000..55_000].copy_from_slice(&pattern(3, 5000));
    let mut want_d = vec![0u8; 8192];
    want_d.extend_from_slice(&p2);
    want_d[65536..65536 + 8192].copy_from_slice(&pattern(4, 8192));
    assert_eq!(read_all(&fs, &ctx, "/buf"), want_b);
    assert_eq!(read_all(&fs, &ctx, "/dir"), want_d);
    b.fsync(&ctx).unwrap();
    d.fsync(&ctx).unwrap();
    drop((b, d));
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev.clone());
    assert_eq!(read_all(&fs, &ctx, "/buf"), want_b);
    assert_eq!(read_all(&fs, &ctx, "/dir"), want_d);
    // Direct reads of buffered data and the other way round.
    let f = fs
        .open(
            &ctx,
            "/buf",
            OpenFlags {
                direct: true,
                ..OpenFlags::read_only()
            },
            0,
        )
        .unwrap();
    let mut v = vec![0u8; 65536];
    f.read_at(&ctx, 0, &mut v).unwrap();
    assert_eq!(&v[..], &want_b[..65536]);
    drop(f);
    fs.unlink("/buf").unwrap();
    fs.unlink("/dir").unwrap();
    // Unlinked files are deleted by the next commit.
    fs.sync(&ctx).unwrap();
    drop(fs);
    let rep = assert_clean(dev);
    assert_eq!(
        rep.data_extents, 1,
        "deleting files drops every data extent but the fsync log area"
    );
}

#[test]
fn append_truncate_and_sync_flags() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let app = OpenFlags {
        append: true,
        sync: true,
        ..rw()
    };
    let f = fs.open(&ctx, "/log", app, 0o644).unwrap();
    f.write_at(&ctx, 0, b"one ").unwrap();
    f.write_at(&ctx, 0, b"two").unwrap();
    assert_eq!(read_all(&fs, &ctx, "/log"), b"one two");
    drop(f);
    let t = OpenFlags {
        truncate: true,
        ..rw()
    };
    let f = fs.open(&ctx, "/log", t, 0).unwrap();
    assert_eq!(f.size().unwrap(), 0);
    f.write_at(&ctx, 0, &[9u8; 10_000]).unwrap();
    f.set_len(&ctx, 4097).unwrap();
    f.set_len(&ctx, 12_000).unwrap();
    let v = read_all(&fs, &ctx, "/log");
    assert!(v[..4097].iter().all(|&b| b == 9) && v[4097..].iter().all(|&b| b == 0));
    drop(f);
    drop(fs);
    assert_clean(dev);
}

#[test]
fn fallocate_modes() {
    let dev = mem(32);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    f.fallocate(
        &ctx,
        FallocMode::Preallocate { keep_size: true },
        0,
        1 << 20,
    )
    .unwrap();
    assert_eq!(f.size().unwrap(), 0);
    f.fallocate(
        &ctx,
        FallocMode::Preallocate { keep_size: false },
        0,
        100_000,
    )
    .unwrap();
    assert_eq!(f.size().unwrap(), 100_000);
    assert!(read_all(&fs, &ctx, "/f").iter().all(|&b| b == 0));
    f.write_at(&ctx, 10_000, &[5u8; 50_000]).unwrap();
    f.fsync(&ctx).unwrap();
    f.fallocate(&ctx, FallocMode::PunchHole, 20_000, 10_000)
        .unwrap();
    f.fallocate(
        &ctx,
        FallocMode::ZeroRange { keep_size: false },
        40_000,
        100_000,
    )
    .unwrap();
    assert_eq!(f.size().unwrap(), 140_000);
    let v = read_all(&fs, &ctx, "/f");
    for (i, &b) in v.iter().enumerate() {
        let want = if (10_000..20_000).contains(&i) || (30_000..40_000).contains(&i) {
            5
        } else {
            0
        };
        assert_eq!(b, want, "byte {i}");
    }
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev.clone());
    assert_eq!(read_all(&fs, &ctx, "/f"), v);
    drop(fs);
    assert_clean(dev);
}

#[test]
fn nocow_overwrites_in_place() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    fs.create_nocow("/n", 0o644).unwrap();
    let f = fs.open(&ctx, "/n", direct(), 0).unwrap();
    f.write_at(&ctx, 0, &[1u8; 65536]).unwrap();
    f.fsync(&ctx).unwrap();
    let free = fs.statfs().unwrap().blocks_free;
    for i in 0..20u8 {
        f.write_at(&ctx, 4096 * u64::from(i % 16), &[i; 4096])
            .unwrap();
    }
    f.fsync(&ctx).unwrap();
    assert_eq!(
        fs.statfs().unwrap().blocks_free,
        free,
        "in-place: no new data space"
    );
    assert!(fs.stat("/n").unwrap().nocow);
    let b = fs.open(&ctx, "/n", rw(), 0).unwrap();
    b.write_at(&ctx, 100, b"buffered").unwrap();
    b.fsync(&ctx).unwrap();
    let v = read_all(&fs, &ctx, "/n");
    assert_eq!(&v[100..108], b"buffered");
    drop((f, b));
    drop(fs);
    assert_clean(dev);
}

#[test]
fn corrupted_data_block_reads_eio_with_context() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, &[0xabu8; 16384]).unwrap();
    f.fsync(&ctx).unwrap();
    drop(f);
    fs.unmount(&ctx).unwrap();
    // Find the data on the device and flip a byte of its second block.
    let img = dev.snapshot();
    let at = img
        .windows(16384)
        .step_by(4096)
        .position(|w| w.iter().all(|&b| b == 0xab))
        .expect("data on the device")
        * 4096;
    dev.write_bytes((at + 4096 + 17) as u64, &[0x00]).unwrap();
    let rep = fs_core::fsck(dev.clone(), &fs_core::FsckOptions::default()).unwrap();
    assert_eq!(rep.exit_code(), 4, "fsck reports the bad block");
    let (fs, ctx) = mount(dev.clone());
    let f = fs.open(&ctx, "/f", OpenFlags::read_only(), 0).unwrap();
    let mut buf = vec![0u8; 16384];
    let e = f.read_at(&ctx, 0, &mut buf).unwrap_err();
    assert_eq!(e.errno(), 5);
    let msg = e.to_string();
    assert!(
        msg.contains("file offset 4096") && msg.contains("device address"),
        "{msg}"
    );
    let mut first = vec![0u8; 4096];
    assert_eq!(
        f.read_at(&ctx, 0, &mut first).unwrap(),
        4096,
        "the good block still reads"
    );
    let d = fs
        .open(
            &ctx,
            "/f",
            OpenFlags {
                direct: true,
                ..OpenFlags::read_only()
            },
            0,
        )
        .unwrap();
    assert_eq!(d.read_at(&ctx, 4096, &mut first).unwrap_err().errno(), 5);
}

#[test]
fn async_direct_io_keeps_many_in_flight() {
    let dev = mem(32);
    let (fs, ctx) = fresh(dev.clone());
    let f = Arc::new(fs.open(&ctx, "/f", direct(), 0o644).unwrap());
    let futs = (0..32u64).map(|i| {
        let f = Arc::clone(&f);
        let ctx2 = ctx.clone();
        let mut buf = f.alloc_buf(8192).unwrap();
        buf.fill(i as u8 + 1);
        async move {
            let (_, r) = f.write_at_async(&ctx2, i * 8192, buf).await;
            r.unwrap();
        }
    });
    ctx.block_on(bdev::exec::join_all(futs));
    f.fsync(&ctx).unwrap();
    let v = read_all(&fs, &ctx, "/f");
    for i in 0..32usize {
        assert!(
            v[i * 8192..(i + 1) * 8192]
                .iter()
                .all(|&b| b == i as u8 + 1),
            "chunk {i}"
        );
    }
    drop(f);
    drop(fs);
    assert_clean(dev);
}

/// Preallocating over a file whose data is inline: the inline extent ends inside its
/// block, which it fills whole for fallocate (the hole found after it once started at the
/// inline data's end, not on a block boundary, and the reservation was refused). Found by
/// the model test, `BFS_SEED=1387525856 FS_MODEL_OPS=3000`.
#[test]
fn fallocate_past_inline_data_preallocates_the_blocks_after_it() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, &[3u8; 876]).unwrap();
    drop(f);
    // Tiny data goes inline when a commit writes it back.
    fs.unmount(&ctx).unwrap();
    let rep = assert_clean(dev.clone());
    assert_eq!(rep.data_extents, 1, "only the log area: the file is inline");
    let (fs, ctx) = mount(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0).unwrap();
    f.fallocate(
        &ctx,
        FallocMode::Preallocate { keep_size: false },
        100,
        36_000,
    )
    .unwrap();
    assert_eq!(f.size().unwrap(), 36_100);
    let mut want = vec![3u8; 876];
    want.resize(36_100, 0);
    assert!(
        read_all(&fs, &ctx, "/f") == want,
        "inline bytes, then zeroes"
    );
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev.clone());
    assert!(
        read_all(&fs, &ctx, "/f") == want,
        "the same after a remount"
    );
    drop(fs);
    assert_clean(dev);
}

#[test]
fn tiny_files_are_inline_and_grow_out_of_it() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    for i in 0..20u8 {
        let f = fs.open(&ctx, &format!("/t{i}"), rw(), 0o644).unwrap();
        f.write_at(&ctx, 0, &vec![i + 1; 100 + i as usize]).unwrap();
    }
    fs.unmount(&ctx).unwrap();
    let rep = assert_clean(dev.clone());
    assert_eq!(
        rep.data_extents, 1,
        "20 tiny files take no data extent (only the log area)"
    );
    let (fs, ctx) = mount(dev.clone());
    for i in 0..20u8 {
        assert_eq!(
            read_all(&fs, &ctx, &format!("/t{i}")),
            vec![i + 1; 100 + i as usize]
        );
    }
    // Growing past the block, a direct overwrite, and an unaligned buffered write over one.
    let f = fs.open(&ctx, "/t0", rw(), 0).unwrap();
    f.write_at(&ctx, 50, &[9u8; 5000]).unwrap();
    let d = fs.open(&ctx, "/t1", direct(), 0).unwrap();
    d.write_at(&ctx, 4096, &[7u8; 4096]).unwrap();
    f.fsync(&ctx).unwrap();
    d.fsync(&ctx).unwrap();
    let mut want0 = vec![1u8; 100];
    want0.resize(50, 0);
    want0.truncate(50);
    want0.extend_from_slice(&[9u8; 5000]);
    assert_eq!(read_all(&fs, &ctx, "/t0"), want0);
    let mut want1 = vec![2u8; 101];
    want1.resize(4096, 0);
    want1.extend_from_slice(&[7u8; 4096]);
    assert_eq!(read_all(&fs, &ctx, "/t1"), want1);
    drop((f, d));
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev.clone());
    assert_eq!(read_all(&fs, &ctx, "/t0"), want0);
    assert_eq!(read_all(&fs, &ctx, "/t1"), want1);
}

#[test]
fn writes_update_mtime_and_fsync_makes_it_durable() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, b"one").unwrap();
    f.fsync(&ctx).unwrap();
    let t0 = fs.stat("/f").unwrap().mtime_ns;
    std::thread::sleep(std::time::Duration::from_millis(5));
    f.write_at(&ctx, 0, b"two").unwrap();
    let t1 = fs.stat("/f").unwrap();
    assert!(
        t1.mtime_ns > t0 && t1.ctime_ns >= t1.mtime_ns,
        "write marks mtime at once"
    );
    f.fsync(&ctx).unwrap();
    // A crash now: the fsync'd mtime is there after replay.
    let crashed: Arc<dyn bdev::BlockDevice> =
        Arc::new(bdev::mem::MemDevice::from_image("c", 4096, &dev.snapshot()).unwrap());
    let (cfs, _cctx) = mount(crashed);
    assert_eq!(cfs.stat("/f").unwrap().mtime_ns, t1.mtime_ns);
}

#[test]
fn fsck_reports_progress_per_phase() {
    use std::sync::Mutex;
    let dev = mem(32);
    let (fs, ctx) = fresh(dev.clone());
    // Two files, one sharing nothing, 3 MiB of data in all (several 1 MiB reports).
    for (i, len) in [(1u8, 2usize << 20), (2, (1 << 20) + 12_345)] {
        let f = fs.open(&ctx, &format!("/f{i}"), rw(), 0o644).unwrap();
        f.write_at(&ctx, 0, &pattern(i, len)).unwrap();
        f.fsync(&ctx).unwrap();
    }
    fs.unmount(&ctx).unwrap();
    let seen: Arc<Mutex<Vec<fs_core::FsckProgress>>> = Arc::default();
    let s = Arc::clone(&seen);
    let opts = fs_core::FsckOptions {
        progress: Some(Arc::new(move |p| s.lock().unwrap().push(p))),
        ..Default::default()
    };
    assert!(format!("{opts:?}").contains("progress"));
    let rep = fs_core::fsck(dev.clone(), &opts).unwrap();
    assert!(rep.is_clean(), "{:?}", rep.errors);
    let seen = seen.lock().unwrap();
    // Phases in order, each starting at 0, `done` never decreasing nor exceeding a known total.
    let phases: Vec<&str> = seen.iter().map(|p| p.phase).fold(Vec::new(), |mut v, p| {
        if v.last() != Some(&p) {
            v.push(p);
        }
        v
    });
    assert_eq!(
        phases,
        [
            fs_core::PHASE_METADATA,
            fs_core::PHASE_NAMESPACE,
            fs_core::PHASE_DATA
        ]
    );
    for w in seen.windows(2) {
        if w[0].phase == w[1].phase {
            assert!(w[1].done >= w[0].done, "{w:?}");
        } else {
            assert_eq!(w[1].done, 0, "{w:?}");
        }
    }
    for p in seen.iter() {
        if p.total > 0 {
            assert!(p.done <= p.total, "{p:?}");
        }
    }
    let data: Vec<_> = seen
        .iter()
        .filter(|p| p.phase == fs_core::PHASE_DATA)
        .collect();
    let last = data.last().unwrap();
    assert_eq!(last.unit, "bytes");
    assert!(last.total >= 3 << 20, "{last:?}");
    assert_eq!(last.done, last.total);
    assert_eq!(last.total, rep.blocks_verified * 4096);
    assert!(data.len() >= 4, "a report per MiB: {data:?}");
    assert!(data.len() < 10, "not per block: {}", data.len());
    // Metadata reports bytes of nodes read.
    let meta = seen
        .iter()
        .rfind(|p| p.phase == fs_core::PHASE_METADATA)
        .unwrap();
    assert!(meta.done > 0 && meta.total == 0, "{meta:?}");
}

#[test]
fn punching_across_many_extents_unmaps_each_of_them() {
    let dev = mem(32);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", direct(), 0o644).unwrap();
    // 30 separate 4 KiB extents: the even blocks first, the odd ones after, each committed
    // on its own, so no two neighbours are one extent.
    let mut want = vec![0u8; 30 * 4096];
    for i in (0..30u64).step_by(2).chain((1..30).step_by(2)) {
        let data = pattern(i as u8, 4096);
        f.write_at(&ctx, i * 4096, &data).unwrap();
        want[i as usize * 4096..][..4096].copy_from_slice(&data);
        fs.sync(&ctx).unwrap();
    }
    // Punch from inside block 2 to inside block 27: more extents than one lookup batch.
    let (a, b) = (2 * 4096 + 100, 27 * 4096 + 100);
    f.fallocate(&ctx, FallocMode::PunchHole, a, b - a).unwrap();
    want[a as usize..b as usize].fill(0);
    assert_eq!(read_all(&fs, &ctx, "/f"), want);
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let (fs, ctx) = mount(dev.clone());
    assert_eq!(read_all(&fs, &ctx, "/f"), want);
    drop(fs);
    assert_clean(dev);
}
