//! What one 4 KiB write + fdatasync costs on the device, counted on the `record` device's
//! log. Without a tree-log the bound is one commit: the data block, the copied nodes of the
//! fs, extent, checksum and root trees, one superblock with FUA, two flushes. The test
//! asserts that documented bound (see `durability/mod.rs`).

mod common;

use std::sync::Arc;

use bdev::record::{LogEntry, RecordDevice};
use common::*;

/// Device writes (data + nodes + superblocks) one fdatasync may cost, at most.
const MAX_WRITES: usize = 12;
/// Flushes one fdatasync may cost, at most.
const MAX_FLUSHES: usize = 2;

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
    let f = fs.open(&ctx, "/f", rw(), 0).unwrap();
    let mut worst = (0, 0, 0);
    for (i, pos) in [4096u64 * 100, 8192, 4096 * 1000, 4096 * 1000 + 4096]
        .into_iter()
        .enumerate()
    {
        let before = rec.len();
        f.write_at(&ctx, pos, &[i as u8 + 1; 4096]).unwrap();
        f.fdatasync(&ctx).unwrap();
        let (w, fua, fl) = count(&rec.log()[before..]);
        eprintln!("fdatasync {i} (4 KiB at {pos}): {w} writes ({fua} FUA), {fl} flushes");
        assert!(
            w <= MAX_WRITES && fl <= MAX_FLUSHES,
            "{w} writes, {fl} flushes"
        );
        worst = worst.max((w, fua, fl));
    }
    eprintln!("worst: {worst:?} (writes, FUA writes, flushes)");
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
