//! What one 4 KiB write + fdatasync costs on the device, counted on the `record` device's
//! log. With the fsync log the documented bound is: the data block, one log record block
//! written with FUA (submitted together with the flush, one round trip), one flush (no node,
//! no superblock). When the log area is full the fsync commits instead
//! (nodes, superblock with FUA, two flushes), once per log area's worth of fsyncs (4 to
//! 1024, `area_bytes` in `durability/fold.rs`); the steady-state bound is asserted over a
//! run that stays inside one log epoch.

mod common;

use std::sync::Arc;

use bdev::record::{LogEntry, RecordDevice};
use common::*;
use fs_core::Filesystem;

/// Device writes (data + nodes + superblocks) one fdatasync may cost, at most.
const MAX_WRITES: usize = 2;
/// Flushes one fdatasync may cost, at most.
const MAX_FLUSHES: usize = 1;

fn count(log: &[LogEntry]) -> (usize, usize, usize) {
    let writes = log
        .iter()
        .filter(|e| matches!(e, LogEntry::Write { .. }))
        .count();
    let fua = log
        .iter()
        .filter(|e| matches!(e, LogEntry::Write { fua: true, .. }))
        .count();
    let flushes = log
        .iter()
        .filter(|e| matches!(e, LogEntry::Flush { .. }))
        .count();
    (writes, fua, flushes)
}

#[test]
fn four_kib_write_plus_fdatasync() {
    let dev = mem(64);
    setup(dev.clone());
    let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
    let (fs, ctx) = mount(rec.clone());
    let buffered = fs.open(&ctx, "/f", rw(), 0).unwrap();
    let direct = fs.open(&ctx, "/f", direct(), 0).unwrap();
    let mut worst = (0, 0, 0);
    for (i, pos) in [
        4096u64 * 100,
        8192,
        4096 * 1000,
        4096 * 1000 + 4096,
        4096 * 7,
        4096 * 2000,
    ]
    .into_iter()
    .enumerate()
    {
        let f = if i % 2 == 0 { &buffered } else { &direct };
        let before = rec.len();
        f.write_at(&ctx, pos, &[i as u8 + 1; 4096]).unwrap();
        f.fdatasync(&ctx).unwrap();
        let (w, fua, fl) = count(&rec.log()[before..]);
        eprintln!(
            "fdatasync {i} (4 KiB at {pos}, direct: {}): {w} writes ({fua} FUA), {fl} flushes",
            i % 2 == 1
        );
        assert!(
            w <= MAX_WRITES && fl <= MAX_FLUSHES,
            "{w} writes, {fl} flushes"
        );
        assert_eq!(
            fua, 1,
            "the log record, and nothing else, is written with FUA"
        );
        worst = worst.max((w, fua, fl));
    }
    eprintln!("worst: {worst:?} (writes, FUA writes, flushes)");
    // A direct write alone costs its data write: no metadata, no flush.
    let before = rec.len();
    direct.write_at(&ctx, 4096 * 3000, &[9; 4096]).unwrap();
    let (w, _, fl) = count(&rec.log()[before..]);
    assert_eq!((w, fl), (1, 0), "a 4 KiB direct write without fsync");
}

/// A file fdatasync'd after every direct write: once the last `SYNC_STREAK` (4, in
/// `durability/synced.rs`) fdatasyncs each followed one write, a write goes out with its log
/// record, both with FUA, in one round trip, and the fdatasync after it costs nothing. Two
/// writes before an fdatasync end the pattern.
#[test]
fn synced_direct_write_costs_two_fua_writes_and_its_fdatasync_nothing() {
    const STREAK: u64 = 4;
    let dev = mem(64);
    setup(dev.clone());
    let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
    let (fs, ctx) = mount(rec.clone());
    let f = fs.open(&ctx, "/f", direct(), 0).unwrap();
    let write_and_sync = |i: u64| {
        let before = rec.len();
        f.write_at(&ctx, 4096 * (100 + i), &[i as u8 + 1; 4096])
            .unwrap();
        let mid = rec.len();
        f.fdatasync(&ctx).unwrap();
        let log = rec.log();
        (count(&log[before..mid]), count(&log[mid..]))
    };
    for i in 0..12 {
        let (write, sync) = write_and_sync(i);
        eprintln!("write {i}: {write:?}, fdatasync: {sync:?} (writes, FUA writes, flushes)");
        if i < STREAK {
            assert_eq!(write, (1, 0, 0), "write {i}: the data alone");
            assert_eq!(sync, (1, 1, 1), "fdatasync {i}: the record and a flush");
        } else {
            assert_eq!(write, (2, 2, 0), "write {i}: data and record, both FUA");
            assert_eq!(sync, (0, 0, 0), "fdatasync {i}: nothing left to write");
        }
    }
    f.write_at(&ctx, 0, &[1; 4096]).unwrap();
    let (write, sync) = write_and_sync(20);
    assert_eq!(
        write,
        (1, 0, 0),
        "a second write before the fdatasync goes alone"
    );
    assert_eq!(sync, (1, 1, 1));
    let (write, _) = write_and_sync(21);
    assert_eq!(write, (1, 0, 0), "the pattern starts over");
    let want: Vec<u8> = (0..12u8).flat_map(|i| [i + 1; 4096]).collect();
    let mut got = vec![0; want.len()];
    f.read_at(&ctx, 4096 * 100, &mut got).unwrap();
    assert!(got == want, "the synced writes read back");
}

/// A file written block by block (each block its own extent in the log) comes out of the
/// fold as extents of up to 64 KiB (`MAX_RUN` in `durability/fold.rs`), not one per block,
/// and reads back the same after a remount.
#[test]
fn a_file_written_block_by_block_folds_into_runs() {
    let dev = mem(64);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", direct(), 0o644).unwrap();
    fs.unmount(&ctx).unwrap();
    let before = assert_clean(dev.clone()).data_extents;
    let (fs, ctx) = mount(dev.clone());
    let f2 = fs.open(&ctx, "/f", direct(), 0).unwrap();
    drop(f);
    let want: Vec<u8> = (0..64u8).flat_map(|i| [i + 1; 4096]).collect();
    for (i, block) in want.chunks(4096).enumerate() {
        f2.write_at(&ctx, i as u64 * 4096, block).unwrap();
        f2.fdatasync(&ctx).unwrap();
    }
    drop(f2);
    fs.unmount(&ctx).unwrap();
    let after = assert_clean(dev.clone()).data_extents;
    eprintln!(
        "64 blocks written one by one: {} data extents",
        after - before
    );
    // 4 runs of 64 KiB when the blocks lie in one stretch of free space; a break in it
    // adds one.
    assert!(
        after - before <= 6,
        "64 blocks became {} extents",
        after - before
    );
    let (fs, ctx) = mount(dev);
    assert!(read_all(&fs, &ctx, "/f") == want, "the file reads back");
}

fn setup(dev: Arc<bdev::mem::MemDevice>) {
    let (fs, ctx) = fresh(dev);
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    f.write_at(&ctx, 0, &vec![7u8; 8 << 20]).unwrap();
    for i in 0..200 {
        fs.create(&format!("/other{i}"), 0o644).unwrap();
    }
    drop(f);
    fs.unmount(&ctx).unwrap();
}

/// Replays `image` (a crash right now) and returns the filesystem mounted on it.
fn crash_and_mount(
    dev: &bdev::mem::MemDevice,
    read_only: bool,
) -> (fs_core::Filesystem, fs_core::Context) {
    let img = dev.snapshot();
    let crashed: Arc<dyn bdev::BlockDevice> =
        Arc::new(bdev::mem::MemDevice::from_image("crashed", 4096, &img).unwrap());
    assert_clean(crashed.clone());
    let opts = fs_core::MountOptions {
        read_only,
        ..mount_opts()
    };
    let fs = fs_core::Filesystem::mount(crashed, opts).unwrap();
    let ctx = fs.context().unwrap();
    (fs, ctx)
}

#[test]
fn logged_fsyncs_survive_a_crash_and_a_full_log_commits() {
    let dev = mem(8);
    let (fs, ctx) = fresh(dev.clone());
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    let mut model = Vec::new();
    // More fsyncs than the log has slots: the log restarts after a commit on the way.
    for i in 0..40u64 {
        let data = vec![i as u8 + 1; 6000];
        f.write_at(&ctx, i * 5000, &data).unwrap();
        model.resize(model.len().max((i * 5000) as usize + 6000), 0);
        model[(i * 5000) as usize..][..6000].copy_from_slice(&data);
        f.fdatasync(&ctx).unwrap();
        if i % 13 == 0 {
            // Something committed in between (a namespace change) folds the log.
            fs.create(&format!("/g{i}"), 0o644).unwrap();
        }
    }
    assert_eq!(read_all(&fs, &ctx, "/f"), model);
    for ro in [true, false] {
        let (cfs, cctx) = crash_and_mount(&dev, ro);
        assert_eq!(
            read_all(&cfs, &cctx, "/f"),
            model,
            "after replay (read-only: {ro})"
        );
        if !ro {
            cfs.unmount(&cctx).unwrap();
        }
    }
    drop(f);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

#[test]
fn logged_data_reads_back_through_the_overlay_with_a_tiny_cache() {
    let dev = mem(32);
    Filesystem::format(dev.clone(), small_format()).unwrap();
    let opts = fs_core::MountOptions {
        cache_bytes: 64 << 10,
        dirty_bytes: 32 << 10,
        ..mount_opts()
    };
    let fs = Filesystem::mount(dev.clone(), opts).unwrap();
    let ctx = fs.context().unwrap();
    let f = fs.open(&ctx, "/f", rw(), 0o644).unwrap();
    let data: Vec<u8> = (0..(1 << 20)).map(|i| (i * 7 / 4096) as u8).collect();
    f.write_at(&ctx, 0, &data).unwrap();
    f.fdatasync(&ctx).unwrap();
    // Overwrite part of it and log again: the overlay now holds cut pieces.
    f.write_at(&ctx, 300_000, &[0xeeu8; 100_000]).unwrap();
    f.fdatasync(&ctx).unwrap();
    let mut want = data.clone();
    want[300_000..400_000].fill(0xee);
    // The cache holds 16 pages: these reads go to the device through the overlay and are
    // checked against the logged checksums.
    assert_eq!(read_all(&fs, &ctx, "/f"), want);
    let d = fs
        .open(
            &ctx,
            "/f",
            fs_core::OpenFlags {
                direct: true,
                ..fs_core::OpenFlags::read_only()
            },
            0,
        )
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    d.read_at(&ctx, 0, &mut buf).unwrap();
    assert_eq!(buf, want);
    drop((f, d));
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}

/// More completions than one log record holds, then one fdatasync: it commits instead of
/// writing a record (the overlay keeps no record list past one record's worth), and
/// everything written is there after a crash.
#[test]
fn an_fsync_after_more_writes_than_a_record_holds_commits() {
    let dev = mem(64);
    setup(dev.clone());
    let rec = Arc::new(RecordDevice::new("rec", dev.clone()).unwrap());
    let (fs, ctx) = mount(rec.clone());
    let f = fs.open(&ctx, "/f", direct(), 0).unwrap();
    let mut model = vec![7u8; 8 << 20];
    // 4 KiB extents at scattered offsets: one record holds fewer than 100 of them.
    for i in 0..300u64 {
        let pos = (i * 37 % 2048) * 4096;
        let data = [(i % 251) as u8 + 1; 4096];
        f.write_at(&ctx, pos, &data).unwrap();
        model[pos as usize..][..4096].copy_from_slice(&data);
    }
    let before = rec.len();
    f.fdatasync(&ctx).unwrap();
    let (w, fua, fl) = count(&rec.log()[before..]);
    eprintln!("fdatasync after 300 writes: {w} writes ({fua} FUA), {fl} flushes");
    assert!(
        fua > 0 && fl >= 2,
        "a commit (superblocks with FUA, two flushes)"
    );
    let (cfs, cctx) = crash_and_mount(&dev, false);
    assert_eq!(read_all(&cfs, &cctx, "/f"), model);
    cfs.unmount(&cctx).unwrap();
    drop(f);
    fs.unmount(&ctx).unwrap();
}

/// Issue 20: one damaged fsync-log record must not silently drop its data and everything
/// logged after it. A crash image holds 12 files, each fsync'd after its write (no
/// commit); one bit of record `k` flipped: a read-write mount refuses, naming the record;
/// a read-only mount shows the files of the records before it; fsck says what is lost;
/// `accept_log_loss` mounts read-write, keeping the records before it.
#[test]
fn a_damaged_log_record_is_reported_not_silently_dropped() {
    const FILES: u64 = 12;
    let dev = mem(8);
    let (fs, ctx) = fresh(dev.clone());
    let files: Vec<_> = (0..FILES)
        .map(|i| fs.open(&ctx, &format!("/f{i}"), rw(), 0o644).unwrap())
        .collect();
    // The names committed, so each fsync below is one record (an fsync of a file whose
    // name is not committed commits instead).
    fs.sync(&ctx).unwrap();
    for (i, f) in files.iter().enumerate() {
        f.write_at(&ctx, 0, &[i as u8 + 1; 4096]).unwrap();
        f.fsync(&ctx).unwrap();
    }
    let img = dev.snapshot();
    // Records: "BFSFSLOG", crc32c, body length, base generation, slot (little-endian).
    let records: Vec<(u64, usize)> = img
        .chunks(4096)
        .enumerate()
        .filter(|(_, b)| &b[..8] == b"BFSFSLOG")
        .map(|(i, b)| (u64::from_le_bytes(b[24..32].try_into().unwrap()), i))
        .collect();
    let gen_of = |i: usize| &img[i * 4096 + 16..i * 4096 + 24];
    let newest = records.iter().map(|&(_, i)| gen_of(i)).max().unwrap();
    let mut slots: Vec<(u64, usize)> = records
        .iter()
        .copied()
        .filter(|&(_, i)| gen_of(i) == newest)
        .collect();
    slots.sort();
    assert_eq!(slots.len() as u64, FILES, "one record per fsync");
    for k in [0u64, 5, 11] {
        let mut bad = img.clone();
        bad[slots[k as usize].1 * 4096 + 40] ^= 0x10;
        let crashed = || -> Arc<dyn bdev::BlockDevice> {
            Arc::new(bdev::mem::MemDevice::from_image("crashed", 4096, &bad).unwrap())
        };
        // fsck: exit 4, naming the record.
        let rep = fs_core::fsck(crashed(), &fs_core::FsckOptions::default()).unwrap();
        if k < FILES - 1 {
            assert_eq!(rep.exit_code(), 4, "record {k}: {:?}", rep.errors);
            let msg = rep.errors.join("\n");
            assert!(msg.contains(&format!("record {k} ")), "record {k}: {msg}");
        } else {
            // The last record damaged is what a torn last write looks like: nothing after
            // it proves a loss.
            assert!(rep.is_clean(), "record {k}: {:?}", rep.errors);
        }
        // A read-write mount refuses to drop history.
        let r = Filesystem::mount(crashed(), mount_opts());
        if k < FILES - 1 {
            let e = r.err().unwrap_or_else(|| panic!("record {k}: mounted"));
            assert!(e.to_string().contains(&format!("record {k} ")), "{e}");
        } else {
            r.unwrap();
        }
        // Read-only: the files of the records before k, and no more.
        for opts in [
            fs_core::MountOptions {
                read_only: true,
                ..mount_opts()
            },
            fs_core::MountOptions {
                accept_log_loss: true,
                ..mount_opts()
            },
        ] {
            let rw = !opts.read_only;
            let cfs = Filesystem::mount(crashed(), opts).unwrap();
            let cctx = cfs.context().unwrap();
            for i in 0..FILES {
                let got = read_all(&cfs, &cctx, &format!("/f{i}"));
                if i < k {
                    let want = [i as u8 + 1; 4096];
                    assert!(
                        got == want,
                        "record {k} (rw {rw}): /f{i} has {} bytes",
                        got.len()
                    );
                } else {
                    assert!(got.is_empty(), "record {k}: /f{i} has {} bytes", got.len());
                }
            }
            if rw {
                cfs.unmount(&cctx).unwrap();
            }
        }
    }
    drop(files);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev);
}
