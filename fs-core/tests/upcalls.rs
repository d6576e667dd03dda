//! The iomap contract's bound on calls into fs-core: one 4 KiB direct write (aligned) is at
//! most three calls from iomap into fs-core (`begin`, `submit_direct`, `end`), whether it
//! overwrites, grows the file, or goes out with its fsync record (`durability/synced.rs`).
//! Counted by iomap's `IoCounters::upcalls`.

mod common;

use std::sync::Arc;

use bdev::record::{LogEntry, RecordDevice};
use common::*;
use iomap::IoCounters;

/// Calls from iomap into fs-core one 4 KiB direct write may make.
const MAX_UPCALLS: u64 = 3;

#[test]
fn one_direct_write_is_at_most_three_calls_into_fs_core() {
    let dev = mem(64);
    let rec = Arc::new(RecordDevice::new("rec", dev).unwrap());
    let (fs, ctx) = fresh(rec.clone());
    let f = fs.open(&ctx, "/f", direct(), 0o644).unwrap();
    let up = &fs.io_counters().upcalls;
    let write = |what: &str, pos: u64, byte: u8| {
        let (calls, begins) = (up.total(), IoCounters::get(&up.begin));
        let before = rec.len();
        assert_eq!(f.write_at(&ctx, pos, &[byte; 4096]).unwrap(), 4096);
        let calls = up.total() - calls;
        eprintln!("{what}: {calls} calls into fs-core");
        assert!(calls <= MAX_UPCALLS, "{what}: {calls} calls into fs-core");
        assert_eq!(
            IoCounters::get(&up.begin) - begins,
            1,
            "{what}: one mapping"
        );
        // Device writes of the write itself, and how many of them had FUA.
        let log = rec.log();
        let writes = log[before..]
            .iter()
            .filter_map(|e| match e {
                LogEntry::Write { fua, .. } => Some(*fua),
                _ => None,
            })
            .collect::<Vec<bool>>();
        (writes.len(), writes.iter().filter(|&&fua| fua).count())
    };
    assert_eq!(write("a write growing the file", 0, 1), (1, 0));
    assert_eq!(write("a write growing it again", 4096, 2), (1, 0));
    assert_eq!(write("an overwrite", 0, 3), (1, 0));
    assert_eq!(f.size().unwrap(), 8192);
    // Fdatasync after every write: from the fifth on, the write goes with its record.
    f.fdatasync(&ctx).unwrap();
    for i in 0..6u64 {
        let pos = 4096 * (2 + i);
        let (writes, fua) = write("a write of the sync pattern", pos, 10 + i as u8);
        assert_eq!(
            (writes, fua),
            if i < 4 { (1, 0) } else { (2, 2) },
            "write {i}"
        );
        f.fdatasync(&ctx).unwrap();
    }
    assert_eq!(f.size().unwrap(), 8 * 4096);
    let mut got = vec![0u8; 8 * 4096];
    f.read_at(&ctx, 0, &mut got).unwrap();
    for (i, block) in got.chunks(4096).enumerate() {
        let want = if i < 2 { [3, 2][i] } else { 10 + i as u8 - 2 };
        assert!(block.iter().all(|&b| b == want), "block {i}");
    }
}
