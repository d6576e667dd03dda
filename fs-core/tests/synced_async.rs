//! A synced direct write (`durability/synced.rs`) awaits its data and record on the
//! thread's context instead of blocking it: other direct writes of the same thread run
//! meanwhile, one of them overwriting the same block, and what the file reads before a
//! crash is what it reads after.

mod common;

use std::sync::Arc;

use bdev::exec::join_all;
use bdev::record::{LogEntry, RecordDevice};
use common::*;

#[test]
fn writes_beside_a_synced_write_in_flight_read_the_same_after_a_crash() {
    let dev = mem(64);
    let rec = Arc::new(RecordDevice::new("rec", dev.clone()).unwrap());
    let (fs, ctx) = fresh(rec.clone());
    let f = fs.open(&ctx, "/f", direct(), 0o644).unwrap();
    for round in 0..3u64 {
        // Fdatasync after each of four writes: the next first write after an fdatasync is
        // synced with its record (three writes before the next fdatasync end the pattern).
        f.fdatasync(&ctx).unwrap();
        for i in 0..4u64 {
            f.write_at(&ctx, 4096 * i, &[(round * 4 + i) as u8 + 1; 4096])
                .unwrap();
            f.fdatasync(&ctx).unwrap();
        }
        let at = 4096 * (10 + 2 * round);
        let bufs = [(at, 0xa0), (at, 0xb0), (at + 4096, 0xc0)].map(|(pos, byte)| {
            let mut b = f.alloc_buf(4096).unwrap();
            b.fill(byte + round as u8);
            (pos, b)
        });
        let before = rec.len();
        // The first begins first (the synced one); the second overwrites its block.
        let writes = bufs
            .into_iter()
            .map(|(pos, b)| f.write_at_async(&ctx, pos, b));
        for (_, r) in ctx.block_on(join_all(writes)) {
            assert_eq!(r.unwrap(), 4096, "round {round}");
        }
        let fua = rec.log()[before..]
            .iter()
            .filter(|e| matches!(e, LogEntry::Write { fua: true, .. }))
            .count();
        assert!(
            fua >= 2,
            "round {round}: the first write went with its record"
        );
        f.fdatasync(&ctx).unwrap();
    }
    let mut seen = vec![0u8; 4096 * 16];
    f.read_at(&ctx, 0, &mut seen).unwrap();
    for round in 0..3usize {
        let blk = 10 + 2 * round;
        let b = seen[blk * 4096];
        assert!(
            b == 0xa0 + round as u8 || b == 0xb0 + round as u8,
            "block {blk}"
        );
        assert!(
            seen[blk * 4096..][..4096].iter().all(|&x| x == b),
            "block {blk}"
        );
    }
    drop(f);
    // A crash now (everything was fdatasync'd): the same bytes.
    let img = dev.snapshot();
    let crashed = Arc::new(bdev::mem::MemDevice::from_image("crashed", 4096, &img).unwrap());
    assert_clean(crashed.clone());
    let (fs2, ctx2) = mount(crashed);
    let after = read_all(&fs2, &ctx2, "/f");
    assert_eq!(after.len(), seen.len());
    assert!(after == seen, "the file reads the same after the crash");
}
