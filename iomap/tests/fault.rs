//! Device errors (from `bdev::fault`) reach the caller of the operation or of the next
//! fsync-equivalent, and never lose data: pages stay dirty after a failed writeback.

mod support;

use std::sync::Arc;

use bdev::fault::{ErrorRule, FaultConfig, FaultDevice};
use bdev::mem::MemDevice;
use bdev::{BlockDevice, OpKind};
use iomap::{IomapConfig, IomapError, IterFlags};
use support::Harness;

const BLOCKS: u64 = 1024;

fn faulty(rules: Vec<ErrorRule>, cfg: IomapConfig) -> Harness {
    let mem = Arc::new(MemDevice::new("mem0", 512, BLOCKS * 8).unwrap());
    let fault = FaultDevice::new(
        "fault0",
        mem.clone() as Arc<dyn BlockDevice>,
        FaultConfig {
            seed: 1,
            errors: rules,
            ..FaultConfig::default()
        },
    )
    .unwrap();
    Harness::on(Arc::new(fault), mem, 4096, BLOCKS, cfg)
}

fn is_media(e: &IomapError) -> bool {
    match e {
        IomapError::Device { source, .. } => matches!(source, bdev::IoError::Media { .. }),
        IomapError::WritebackFailed { source, .. } => is_media(source),
        _ => false,
    }
}

#[test]
fn failed_writeback_keeps_pages_dirty_and_fails_fsync() {
    let h = faulty(
        vec![ErrorRule::nth(OpKind::Write, 1)],
        IomapConfig::default(),
    );
    let f = h.create(1);
    h.write(f, 0, &[7u8; 16384]);
    let err = h.ctx.block_on(h.io.sync_file(&h.ctx, f)).unwrap_err();
    assert!(is_media(&err), "{err}");
    assert_eq!(h.io.cache().stats().dirty, 4, "pages stay dirty");
    assert_eq!(h.io.ops().reserved(), 4, "delalloc survives");
    assert_eq!(
        h.io.ops().free_blocks(),
        BLOCKS,
        "the failed allocation was freed"
    );
    // The error was reported once; the retry succeeds and the data is all there.
    h.sync(f);
    h.io.cache().forget(f);
    assert_eq!(h.read(f, 0, 16384), vec![7u8; 16384]);
}

#[test]
fn background_writeback_errors_reach_the_next_fsync() {
    let cfg = IomapConfig {
        dirty_bytes: 32 << 10,
        ..IomapConfig::default()
    };
    let h = faulty(vec![ErrorRule::nth(OpKind::Write, 1)], cfg);
    let f = h.create(1);
    // Past the dirty limit the writer writes back; that write fails, but the bytes the
    // writer gave are in the cache, so the write itself succeeds.
    for i in 0..4 {
        h.write(f, i * 16384, &[i as u8 + 1; 16384]);
    }
    let err = h.ctx.block_on(h.io.sync_file(&h.ctx, f)).unwrap_err();
    assert!(
        matches!(err, IomapError::WritebackFailed { .. }) && is_media(&err),
        "{err}"
    );
    h.sync(f);
    h.io.cache().forget(f);
    for i in 0..4 {
        assert_eq!(h.read(f, i * 16384, 16384), vec![i as u8 + 1; 16384]);
    }
}

#[test]
fn read_errors_fail_the_read_and_leave_nothing_stale() {
    let h = faulty(
        vec![ErrorRule::nth(OpKind::Read, 1)],
        IomapConfig::default(),
    );
    let f = h.create(1);
    h.write(f, 0, &[3u8; 8192]);
    h.sync(f);
    h.io.cache().forget(f);
    let mut buf = vec![0u8; 8192];
    let err = h
        .ctx
        .block_on(h.io.read(&h.ctx, f, 0, &mut buf))
        .unwrap_err();
    assert!(is_media(&err), "{err}");
    assert_eq!(h.read(f, 0, 8192), vec![3u8; 8192]);
}

#[test]
fn direct_io_errors_reach_the_caller_and_keep_old_data() {
    let h = faulty(
        vec![
            ErrorRule::nth(OpKind::Write, 2),
            ErrorRule::nth(OpKind::Read, 1),
        ],
        IomapConfig::default(),
    );
    let f = h.create(1);
    let mut buf = h.io.alloc_buf(8192).unwrap();
    buf.fill(1);
    h.io.write_direct_dma(&h.ctx, f, 0, &mut buf).unwrap();
    buf.fill(2);
    let (buf, r) = h
        .ctx
        .block_on(h.io.write_direct(&h.ctx, f, 0, buf, IterFlags::EMPTY));
    assert!(is_media(&r.unwrap_err()));
    assert_eq!(
        h.io.ops().free_blocks(),
        BLOCKS - 2,
        "the failed write's blocks were freed"
    );
    let (_, r) = h
        .ctx
        .block_on(h.io.read_direct(&h.ctx, f, 0, buf, IterFlags::EMPTY));
    assert!(is_media(&r.unwrap_err()));
    assert_eq!(h.read(f, 0, 8192), vec![1u8; 8192]);
}

#[test]
fn a_failed_source_read_fails_the_partial_write() {
    let h = faulty(
        vec![ErrorRule::nth(OpKind::Read, 1)],
        IomapConfig::default(),
    );
    let f = h.create(1);
    h.write(f, 0, &[5u8; 4096]);
    h.sync(f);
    h.io.cache().forget(f);
    let err = h
        .ctx
        .block_on(h.io.write(&h.ctx, f, 10, b"xx"))
        .unwrap_err();
    assert!(is_media(&err), "{err}");
    assert_eq!(h.io.ops().reserved(), 0, "end released the reservation");
    let mut want = vec![5u8; 4096];
    assert_eq!(h.read(f, 0, 4096), want);
    h.write(f, 10, b"xx");
    want[10..12].copy_from_slice(b"xx");
    assert_eq!(h.read(f, 0, 4096), want);
}
