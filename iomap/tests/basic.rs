//! Targeted tests of each operation against the reference filesystem.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use bdev::exec::{join_all, Context};
use iomap::{
    Ended, Ino, IoCounters, IoDone, IoMap, IomapConfig, IomapError, IomapOps, IterArgs, IterFlags,
    MapKind, Maps, Result,
};
use support::Harness;

fn small() -> Harness {
    Harness::new(512, 4096, 1024, IomapConfig::default())
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) | 1)
        .collect()
}

fn source_reads(h: &Harness) -> u64 {
    IoCounters::get(&h.io.counters().source_reads)
}

fn direct_write(h: &Harness, ino: Ino, pos: u64, data: &[u8]) {
    let mut buf = h.io.alloc_buf(data.len()).unwrap();
    buf.copy_from_slice(data);
    let n = h.io.write_direct_dma(&h.ctx, ino, pos, &mut buf).unwrap();
    assert_eq!(n, data.len());
}

#[test]
fn buffered_write_read_writeback_round_trip() {
    let h = small();
    let f = h.create(1);
    let data = pattern(20000, 3);
    h.write(f, 100, &data);
    assert_eq!(h.read(f, 100, data.len()), data);
    assert_eq!(h.io.ops().reserved(), 5);
    h.sync(f);
    assert_eq!(h.io.ops().reserved(), 0);
    assert_eq!(h.io.cache().stats().dirty, 0);
    h.io.cache().forget(f);
    assert_eq!(h.read(f, 100, data.len()), data);
    assert_eq!(h.read(f, 0, 100), vec![0; 100]);
}

/// Partly covered, not-cached blocks are read from the source map, exactly once each;
/// fully covered blocks and blocks over holes are never read.
#[test]
fn source_map_reads_only_for_partial_blocks_with_data() {
    let h = small();
    let f = h.create(1);
    let mut model = pattern(64 << 10, 7);
    h.write(f, 0, &model);
    h.sync(f);
    h.io.cache().forget(f);
    let mut expect = |h: &Harness, what: &str, pos: u64, len: usize, direct: bool, reads: u64| {
        let before = source_reads(h);
        let data = pattern(len, pos as u8);
        if direct {
            direct_write(h, f, pos, &data);
        } else {
            h.write(f, pos, &data);
        }
        let end = pos as usize + len;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[pos as usize..end].copy_from_slice(&data);
        assert_eq!(source_reads(h) - before, reads, "{what}");
    };
    expect(&h, "buffered, whole blocks", 8192, 8192, false, 0);
    expect(&h, "buffered, inside one block", 20000, 100, false, 1);
    expect(
        &h,
        "buffered, two partial edges",
        24000 + 100,
        9000,
        false,
        2,
    );
    expect(
        &h,
        "buffered, partial block past EOF (hole)",
        70000,
        100,
        false,
        0,
    );
    expect(&h, "direct, whole blocks", 40960, 8192, true, 0);
    expect(
        &h,
        "direct, sector-aligned, two edges",
        49152 + 512,
        8192,
        true,
        2,
    );
    expect(
        &h,
        "direct, sector-aligned, one block",
        61440 + 1024,
        512,
        true,
        1,
    );
    expect(&h, "direct, edge over a hole", 90112 + 512, 1024, true, 0);
    assert_eq!(h.read(f, 0, model.len()), model);
    h.sync(f);
    h.io.cache().forget(f);
    assert_eq!(h.read(f, 0, model.len()), model);
}

#[test]
fn direct_io_is_coherent_with_the_cache() {
    let h = small();
    let f = h.create(1);
    h.write(f, 0, &pattern(16384, 1));
    // A direct read writes dirty pages back first.
    let mut buf = h.io.alloc_buf(16384).unwrap();
    h.io.read_direct_dma(&h.ctx, f, 0, &mut buf).unwrap();
    assert_eq!(&buf[..], &pattern(16384, 1)[..]);
    assert_eq!(h.io.cache().stats().dirty, 0);
    // The pages are cached and clean; a direct write drops them and a buffered read sees it.
    let cached = h.io.cache().stats().cached;
    assert!(cached >= 4);
    direct_write(&h, f, 4096, &pattern(4096, 9));
    assert_eq!(h.io.cache().stats().cached, cached - 1);
    assert_eq!(h.read(f, 4096, 4096), pattern(4096, 9));
    // NOWAIT refuses to wait for writeback.
    h.write(f, 0, b"dirty");
    let buf = h.io.alloc_buf(4096).unwrap();
    let (_, r) = h
        .ctx
        .block_on(h.io.read_direct(&h.ctx, f, 0, buf, IterFlags::NOWAIT));
    assert_eq!(r, Err(IomapError::WouldBlock));
}

#[test]
fn sequential_reads_use_readahead_and_writeback_is_one_large_io() {
    let h = small();
    let f = h.create(1);
    let data = pattern(1 << 20, 5);
    h.write(f, 0, &data);
    let before = IoCounters::get(&h.io.counters().writeback_writes);
    h.sync(f);
    let ios = IoCounters::get(&h.io.counters().writeback_writes) - before;
    assert_eq!(
        ios, 1,
        "1 MiB of contiguous dirty pages is one device write"
    );
    h.io.cache().forget(f);
    let mut got = Vec::new();
    for i in 0..256u64 {
        got.extend(h.read(f, i * 4096, 4096));
    }
    assert_eq!(got, data);
    let reads = IoCounters::get(&h.io.counters().cache_reads);
    assert!(
        reads <= 16,
        "256 sequential 4 KiB reads took {reads} device reads"
    );
}

#[test]
fn writers_over_the_dirty_limit_write_back() {
    let cfg = IomapConfig {
        cache_bytes: 256 << 10,
        dirty_bytes: 64 << 10,
        ..IomapConfig::default()
    };
    let h = Harness::new(512, 4096, 1024, cfg);
    let f = h.create(1);
    let data = pattern(1 << 20, 2);
    for i in 0..16 {
        h.write(f, i * 65536, &data[i as usize * 65536..][..65536]);
        let s = h.io.cache().stats();
        assert!(
            s.dirty <= s.dirty_limit + 16,
            "dirty {} over limit: {s:?}",
            s.dirty
        );
        assert!(s.cached <= s.limit + s.limit / 4, "{s:?}");
    }
    assert!(IoCounters::get(&h.io.counters().writeback_writes) > 0);
    assert_eq!(h.read(f, 0, data.len()), data);
}

#[test]
fn async_direct_reads_keep_128_in_flight() {
    let h = small();
    let f = h.create(1);
    let data = pattern(2 << 20, 8);
    h.write(f, 0, &data);
    h.sync(f);
    let reads = (0..512u64).map(|i| {
        let (h, data) = (&h, &data);
        async move {
            let buf = h.io.alloc_buf(4096).unwrap();
            let pos = (i * 7919 % 512) * 4096;
            let (buf, r) =
                h.io.read_direct(&h.ctx, f, pos, buf, IterFlags::EMPTY)
                    .await;
            assert_eq!(r.unwrap(), 4096);
            assert_eq!(&buf[..], &data[pos as usize..][..4096]);
        }
    });
    h.ctx.block_on(join_all(reads));
    assert_eq!(h.ctx.peak_in_flight(bdev::exec::DevId(0)), 128);
}

#[test]
fn a_direct_read_inside_one_extent_is_one_device_read() {
    let h = small();
    let f = h.create(1);
    // Three direct writes in order: the filesystem merges them into one extent.
    let data = pattern(3 * 4096, 9);
    for (i, block) in data.chunks(4096).enumerate() {
        direct_write(&h, f, i as u64 * 4096, block);
    }
    let ios = || IoCounters::get(&h.io.counters().direct_ios);
    let before = ios();
    let buf = h.io.alloc_buf(3 * 4096).unwrap();
    let (buf, r) = h
        .ctx
        .block_on(h.io.read_direct(&h.ctx, f, 0, buf, IterFlags::EMPTY));
    assert_eq!((r.unwrap(), ios() - before), (3 * 4096, 1));
    assert_eq!(&buf[..], &data[..]);
    // Data, a hole, data: one read per mapped extent, zeroes in between.
    let g = h.create(2);
    direct_write(&h, g, 0, &data[..4096]);
    direct_write(&h, g, 8192, &data[8192..]);
    let before = ios();
    let (buf, r) = h
        .ctx
        .block_on(h.io.read_direct(&h.ctx, g, 0, buf, IterFlags::EMPTY));
    assert_eq!((r.unwrap(), ios() - before), (3 * 4096, 2));
    assert_eq!(&buf[..4096], &data[..4096]);
    assert!(buf[4096..8192].iter().all(|&b| b == 0));
    assert_eq!(&buf[8192..], &data[8192..]);
}

#[test]
fn inline_files_read_and_convert_on_write() {
    let h = small();
    let f = Ino(5);
    h.io.ops().create_inline(f, b"hello, inline world");
    assert_eq!(h.read(f, 0, 100), b"hello, inline world");
    let ext = h.ctx.block_on(h.io.fiemap(&h.ctx, f, 0, u64::MAX)).unwrap();
    assert!(ext.len() == 1 && ext[0].flags.inline, "{ext:?}");
    h.io.cache().forget(f);
    h.write(f, 7, b"INLINE");
    assert_eq!(h.read(f, 0, 100), b"hello, INLINE world");
    h.sync(f);
    h.io.cache().forget(f);
    assert_eq!(h.read(f, 0, 100), b"hello, INLINE world");
    let mut buf = h.io.alloc_buf(512).unwrap();
    assert_eq!(h.io.read_direct_dma(&h.ctx, f, 0, &mut buf).unwrap(), 19);
    assert_eq!(&buf[..19], b"hello, INLINE world");
}

#[test]
fn reflinked_extents_are_shared_and_copied_on_write() {
    let h = small();
    let (a, b) = (h.create(1), Ino(2));
    h.write(a, 0, &pattern(8192, 1));
    h.sync(a);
    h.io.ops().reflink(a, b).unwrap();
    let ext = h.ctx.block_on(h.io.fiemap(&h.ctx, b, 0, u64::MAX)).unwrap();
    assert!(ext.iter().all(|e| e.flags.shared) && ext[0].flags.last == (ext.len() == 1));
    h.write(b, 100, b"changed");
    h.sync(b);
    h.io.cache().forget(a);
    h.io.cache().forget(b);
    assert_eq!(h.read(a, 0, 8192), pattern(8192, 1));
    let mut want = pattern(8192, 1);
    want[100..107].copy_from_slice(b"changed");
    assert_eq!(h.read(b, 0, 8192), want);
    let ext = h.ctx.block_on(h.io.fiemap(&h.ctx, b, 0, u64::MAX)).unwrap();
    assert!(
        !ext[0].flags.shared && ext.last().unwrap().flags.shared,
        "{ext:?}"
    );
}

#[test]
fn unwritten_extents_read_as_zeroes_and_seek_as_holes() {
    let h = small();
    let f = h.create(1);
    h.io.ops().fallocate(f, 0, 65536).unwrap();
    h.write(f, 32768, b"data");
    assert_eq!(h.read(f, 0, 8), vec![0; 8]);
    let seek_data = h.ctx.block_on(h.io.seek_data(&h.ctx, f, 0)).unwrap();
    assert_eq!(seek_data, Some(32768));
    let seek_hole = h.ctx.block_on(h.io.seek_hole(&h.ctx, f, 32768)).unwrap();
    assert_eq!(seek_hole, Some(36864));
    let ext = h.ctx.block_on(h.io.fiemap(&h.ctx, f, 0, u64::MAX)).unwrap();
    assert!(ext[0].flags.unwritten && ext[1].flags.delalloc, "{ext:?}");
    assert_eq!(
        h.ctx.block_on(h.io.seek_data(&h.ctx, f, 40000)).unwrap(),
        None
    );
}

#[test]
fn truncate_zeroes_the_tail_of_the_last_block() {
    let h = small();
    let f = h.create(1);
    h.write(f, 0, &pattern(8192, 4));
    h.sync(f);
    h.io.cache().forget(f);
    h.ctx.block_on(h.io.truncate(&h.ctx, f, 5000)).unwrap();
    h.ctx.block_on(h.io.truncate(&h.ctx, f, 8192)).unwrap();
    let mut want = pattern(5000, 4);
    want.resize(8192, 0);
    assert_eq!(h.read(f, 0, 8192), want);
    h.sync(f);
    h.io.cache().forget(f);
    assert_eq!(h.read(f, 0, 8192), want);
}

#[test]
fn the_sync_api_bounces_slices_and_not_dma_buffers() {
    let h = small();
    let f = h.create(1);
    h.io.write_direct_sync(&h.ctx, f, 0, &pattern(8192, 6))
        .unwrap();
    let mut out = vec![0; 8192];
    assert_eq!(h.io.read_direct_sync(&h.ctx, f, 0, &mut out).unwrap(), 8192);
    assert_eq!(out, pattern(8192, 6));
    assert_eq!(IoCounters::get(&h.io.counters().bounce_bytes), 16384);
    let mut buf = h.io.alloc_buf(8192).unwrap();
    h.io.read_direct_dma(&h.ctx, f, 0, &mut buf).unwrap();
    assert_eq!(IoCounters::get(&h.io.counters().bounce_bytes), 16384);
    let err =
        h.io.read_direct_sync(&h.ctx, f, 100, &mut out[..512])
            .unwrap_err();
    assert!(
        err.to_string()
            .contains("not aligned to the 512-byte device sector"),
        "{err}"
    );
}

/// A filesystem that returns one fixed (broken) mapping.
struct Broken {
    map: Maps,
    ends: AtomicU64,
}

impl IomapOps for Broken {
    fn block_size(&self) -> u32 {
        4096
    }
    fn size(&self, _: Ino) -> Result<u64> {
        Ok(1 << 20)
    }
    fn set_size(&self, _: Ino, _: u64) -> Result<()> {
        Ok(())
    }
    fn grow_size(&self, _: Ino, _: u64) -> Result<bool> {
        Ok(false)
    }
    async fn begin(&self, _: &Context, _: IterArgs) -> Result<Maps> {
        Ok(self.map.clone())
    }
    async fn end(&self, _: &Context, ended: &Ended<'_>) -> Result<()> {
        assert_eq!(ended.written, 0);
        self.ends.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn complete(&self, _: &Context, _: Ino, _: &IoDone<'_>) -> Result<()> {
        Ok(())
    }
}

#[test]
fn a_bad_mapping_is_an_error_naming_the_mistake() {
    let cases = [
        (
            Maps::one(IoMap::mapped(8192, 4096, 0)),
            false,
            "write map",
            "covers 8192..12288, not 4096",
        ),
        (
            Maps::one(IoMap::hole(4096, 0)),
            false,
            "write map",
            "zero length",
        ),
        (
            Maps::one(IoMap::mapped(4096, 4096, 100)),
            false,
            "write map",
            "not aligned",
        ),
        (
            Maps::one(IoMap::mapped(4096, 4096, 1 << 40)),
            false,
            "write map",
            "outside",
        ),
        (
            Maps::one(IoMap::hole(4096, 4096)),
            true,
            "write map",
            "cannot take the data",
        ),
        (
            Maps {
                write: IoMap::delalloc(4096, 4096),
                source: Some(IoMap::delalloc(4096, 4096)),
            },
            true,
            "source map",
            "delalloc",
        ),
        (
            Maps {
                write: IoMap::delalloc(4096, 4096),
                source: Some(IoMap::hole(0, 4096)),
            },
            true,
            "source map",
            "not 4096",
        ),
    ];
    for (map, write, which, why) in cases {
        let dev = std::sync::Arc::new(bdev::mem::MemDevice::new("m", 512, 2048).unwrap());
        let ctx = Context::new();
        let id = ctx.attach(&*dev, 8).unwrap();
        let fs = Broken {
            map,
            ends: AtomicU64::new(0),
        };
        let io = iomap::Iomap::new(fs, dev, id, IomapConfig::default()).unwrap();
        let err = if write {
            ctx.block_on(io.write(&ctx, Ino(1), 4096, b"x"))
                .unwrap_err()
        } else {
            let mut b = [0u8; 10];
            ctx.block_on(io.read(&ctx, Ino(1), 4096, &mut b))
                .unwrap_err()
        };
        let msg = err.to_string();
        assert!(matches!(err, IomapError::BadMapping { .. }), "{msg}");
        assert!(msg.contains(which) && msg.contains(why), "{msg}");
        assert_eq!(
            io.ops().ends.load(Ordering::Relaxed),
            1,
            "end releases what begin took"
        );
        if !write {
            // The same through a direct read, which maps without the iteration loop.
            let buf = io.alloc_buf(4096).unwrap();
            let (_, r) = ctx.block_on(io.read_direct(&ctx, Ino(1), 4096, buf, IterFlags::EMPTY));
            let msg = r.unwrap_err().to_string();
            assert!(msg.contains(which) && msg.contains(why), "{msg}");
            assert_eq!(io.ops().ends.load(Ordering::Relaxed), 2, "direct: {msg}");
        }
        let _ = MapKind::Hole;
    }
}
