//! Targeted tests of each operation against the reference filesystem.

mod support;

use iomap::{IoCounters, IomapConfig, IterFlags};
use support::Harness;

fn small() -> Harness {
    Harness::new(512, 4096, 1024, IomapConfig::default())
}

#[test]
fn buffered_write_read_writeback_round_trip() {
    let h = small();
    let f = h.create(1);
    let data: Vec<u8> = (0..20000u32).map(|i| (i % 251) as u8).collect();
    h.write(f, 100, &data);
    assert_eq!(h.read(f, 100, data.len()), data);
    assert_eq!(h.io.ops().reserved(), 5);
    h.sync(f);
    assert_eq!(h.io.ops().reserved(), 0);
    assert_eq!(h.io.cache().stats().dirty, 0);
    // Drop the cache: the bytes come back from the device.
    h.ctx.block_on(h.io.truncate(&h.ctx, f, 20100)).unwrap();
    h.io.cache().forget(f);
    assert_eq!(h.read(f, 100, data.len()), data);
    assert_eq!(h.read(f, 0, 100), vec![0; 100]);
}
