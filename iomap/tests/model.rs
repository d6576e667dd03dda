//! Model-based tests: random mixes of buffered and direct I/O, truncate, zero range,
//! fallocate and writeback against the reference filesystem, checked against a `Vec<u8>`
//! per file. Seeds print; `BFS_SEED` reproduces; `IOMAP_MODEL_OPS` makes runs longer.

mod support;

use iomap::cache::CacheStats;
use iomap::{FiemapExtent, Ino, IomapConfig, IomapError, IomapOps, IterFlags};
use support::Harness;
use testkit::Rng;

const MAX_SIZE: u64 = 96 << 10;

struct Model {
    h: Harness,
    files: Vec<(Ino, Vec<u8>)>,
    rng: Rng,
    sector: u64,
    bs: u64,
}

fn ops_per_run() -> usize {
    std::env::var("IOMAP_MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250)
}

impl Model {
    fn new(seed: u64, sector: u32, bs: u32, cfg: IomapConfig) -> Model {
        let h = Harness::new(sector, bs, (8 << 20) / u64::from(bs), cfg);
        let files = (1..=3).map(|i| (h.create(i), Vec::new())).collect();
        Model {
            h,
            files,
            rng: Rng::new(seed),
            sector: sector.into(),
            bs: bs.into(),
        }
    }

    /// A random range; `align` 0: any, else offset and length multiples of it.
    fn range(&mut self, align: u64, max_len: u64) -> (u64, u64) {
        let a = align.max(1);
        let pos = self.rng.below(MAX_SIZE / a) * a;
        let len = (1 + self.rng.below(max_len / a)) * a;
        (pos, len)
    }

    fn alignment(&mut self) -> u64 {
        match self.rng.below(3) {
            0 => self.bs,
            1 => self.sector,
            _ => 0,
        }
    }

    fn step(&mut self, i: usize) {
        let f = self.rng.below(self.files.len() as u64) as usize;
        let ino = self.files[f].0;
        let op = self.rng.below(100);
        if trace() {
            eprintln!("op {i}: kind {op} on {ino}, size {}", self.files[f].1.len());
        }
        match op {
            0..=24 => self.buffered_write(f, ino),
            25..=44 => self.buffered_read(f, ino),
            45..=56 => self.direct_write(f, ino),
            57..=68 => self.direct_read(f, ino),
            69..=74 => self.truncate(f, ino),
            75..=80 => self.zero_range(f, ino),
            81..=84 => self.fallocate(f, ino),
            85..=89 => self.h.sync(ino),
            _ => self.check_seek_fiemap(f, ino),
        }
        let size = self.h.io.ops().size(ino).unwrap();
        assert_eq!(
            size,
            self.files[f].1.len() as u64,
            "op {i} ({op}): size of {ino}"
        );
    }

    fn buffered_write(&mut self, f: usize, ino: Ino) {
        let (pos, len) = self.range(0, 3 * 4096);
        if trace() {
            eprintln!("  buffered_write {}+{}", pos, len);
        }
        let data = self.rng.bytes(len as usize);
        self.h.write(ino, pos, &data);
        write_model(&mut self.files[f].1, pos, &data);
    }

    fn buffered_read(&mut self, f: usize, ino: Ino) {
        let (pos, len) = self.range(0, 5 * 4096);
        if trace() {
            eprintln!("  buffered_read {}+{}", pos, len);
        }
        let got = self.h.read(ino, pos, len as usize);
        same(
            &got,
            &read_model(&self.files[f].1, pos, len),
            &format!("buffered read {pos}+{len}"),
        );
    }

    fn direct_write(&mut self, f: usize, ino: Ino) {
        let align = self.alignment();
        let (pos, len) = self.range(align, 4 * 4096);
        if trace() {
            eprintln!("  direct_write {}+{}", pos, len);
        }
        let data = self.rng.bytes(len as usize);
        let h = &self.h;
        let mut buf = h.io.alloc_buf(len as usize).unwrap();
        buf.copy_from_slice(&data);
        let (back, r) = h
            .ctx
            .block_on(h.io.write_direct(&h.ctx, ino, pos, buf, IterFlags::EMPTY));
        assert_eq!(
            &back[..],
            &data[..],
            "the caller gets its buffer back unchanged"
        );
        if pos % self.sector != 0 || len % self.sector != 0 {
            assert!(matches!(r, Err(IomapError::Unaligned { .. })), "{r:?}");
            return;
        }
        assert_eq!(r.unwrap(), len as usize);
        write_model(&mut self.files[f].1, pos, &data);
    }

    fn direct_read(&mut self, f: usize, ino: Ino) {
        let align = self.alignment();
        let (pos, len) = self.range(align, 4 * 4096);
        if trace() {
            eprintln!("  direct_read {}+{}", pos, len);
        }
        let h = &self.h;
        let buf = h.io.alloc_buf(len as usize).unwrap();
        let (buf, r) = h
            .ctx
            .block_on(h.io.read_direct(&h.ctx, ino, pos, buf, IterFlags::EMPTY));
        if pos % self.sector != 0 || len % self.sector != 0 {
            assert!(matches!(r, Err(IomapError::Unaligned { .. })), "{r:?}");
            return;
        }
        let n = r.unwrap();
        let want = read_model(&self.files[f].1, pos, len);
        assert_eq!(n, want.len());
        same(&buf[..n], &want, &format!("direct read {pos}+{len}"));
        assert!(buf[n..].iter().all(|&b| b == 0), "bytes past EOF are zero");
    }

    fn truncate(&mut self, f: usize, ino: Ino) {
        let size = self.rng.below(MAX_SIZE + 1);
        if trace() {
            eprintln!("  truncate {size}");
        }
        let h = &self.h;
        h.ctx.block_on(h.io.truncate(&h.ctx, ino, size)).unwrap();
        self.files[f].1.resize(size as usize, 0);
    }

    fn zero_range(&mut self, f: usize, ino: Ino) {
        let (pos, len) = self.range(0, 6 * 4096);
        if trace() {
            eprintln!("  zero_range {}+{}", pos, len);
        }
        let h = &self.h;
        h.ctx
            .block_on(h.io.zero_range(&h.ctx, ino, pos, len))
            .unwrap();
        let m = &mut self.files[f].1;
        let end = ((pos + len) as usize).min(m.len());
        if (pos as usize) < end {
            m[pos as usize..end].fill(0);
        }
    }

    fn fallocate(&mut self, f: usize, ino: Ino) {
        let (pos, len) = self.range(0, 4 * 4096);
        if trace() {
            eprintln!("  fallocate {}+{}", pos, len);
        }
        self.h.io.ops().fallocate(ino, pos, len).unwrap();
        let m = &mut self.files[f].1;
        if m.len() < (pos + len) as usize {
            m.resize((pos + len) as usize, 0);
        }
    }

    fn check_seek_fiemap(&mut self, f: usize, ino: Ino) {
        let m = self.files[f].1.clone();
        let size = m.len() as u64;
        let h = &self.h;
        let pos = self.rng.below(size + 1);
        let data = h.ctx.block_on(h.io.seek_data(&h.ctx, ino, pos)).unwrap();
        let first_nonzero = m
            .iter()
            .skip(pos as usize)
            .position(|&b| b != 0)
            .map(|i| pos + i as u64);
        match data {
            None => assert_eq!(first_nonzero, None, "seek_data({pos}) says no data"),
            Some(d) => {
                assert!(d >= pos && d < size, "seek_data({pos}) = {d}, size {size}");
                assert!(
                    first_nonzero.is_none_or(|n| n >= d),
                    "seek_data({pos}) = {d} skips data"
                );
            }
        }
        let hole = h.ctx.block_on(h.io.seek_hole(&h.ctx, ino, pos)).unwrap();
        match hole {
            None => assert!(pos >= size),
            Some(hpos) => {
                assert!(hpos >= pos && hpos <= size, "seek_hole({pos}) = {hpos}");
                let blk_end = (hpos / self.bs + 1) * self.bs;
                let tail = &m[hpos as usize..blk_end.min(size) as usize];
                assert!(
                    tail.iter().all(|&b| b == 0),
                    "seek_hole({pos}) = {hpos} is data"
                );
            }
        }
        let ext = h
            .ctx
            .block_on(h.io.fiemap(&h.ctx, ino, 0, u64::MAX))
            .unwrap();
        check_fiemap(&ext, &m, self.bs);
    }

    fn finish(&mut self) {
        let h = &self.h;
        for (ino, m) in &self.files {
            h.sync(*ino);
            h.io.cache().forget(*ino);
            same(
                &h.read(*ino, 0, m.len()),
                m,
                "after writeback and a cold cache",
            );
            h.ctx.block_on(h.io.truncate(&h.ctx, *ino, 0)).unwrap();
            h.sync(*ino);
        }
        let fs = h.io.ops();
        assert_eq!(fs.reserved(), 0, "delalloc reservations leaked");
        assert_eq!(fs.free_blocks(), (8 << 20) / self.bs, "blocks leaked");
        assert_eq!(h.io.cache().stats().dirty, 0);
    }
}

/// Compares bytes, reporting the first difference rather than both buffers.
fn same(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: first difference at byte {i}: got {} want {}",
            got[i], want[i]
        );
    }
}

fn trace() -> bool {
    std::env::var_os("IOMAP_TRACE").is_some()
}

fn write_model(m: &mut Vec<u8>, pos: u64, data: &[u8]) {
    let end = pos as usize + data.len();
    if m.len() < end {
        m.resize(end, 0);
    }
    m[pos as usize..end].copy_from_slice(data);
}

fn read_model(m: &[u8], pos: u64, len: u64) -> Vec<u8> {
    let s = (pos as usize).min(m.len());
    let e = ((pos + len) as usize).min(m.len());
    m[s..e].to_vec()
}

fn check_fiemap(ext: &[FiemapExtent], m: &[u8], bs: u64) {
    let size_blocks = (m.len() as u64).div_ceil(bs) * bs;
    let mut prev_end = 0;
    for e in ext {
        assert!(
            e.logical >= prev_end && e.length > 0,
            "fiemap overlaps or is empty: {ext:?}"
        );
        assert!(
            e.logical + e.length <= size_blocks,
            "fiemap past EOF: {ext:?}"
        );
        prev_end = e.logical + e.length;
    }
    for (i, &b) in m.iter().enumerate() {
        if b != 0 {
            let i = i as u64;
            let inside = ext
                .iter()
                .any(|e| e.logical <= i && i < e.logical + e.length && !e.flags.unwritten);
            assert!(
                inside,
                "byte {i} holds data but fiemap has no data extent there: {ext:?}"
            );
        }
    }
}

fn run(sector: u32, bs: u32, cfg: IomapConfig, seeds: u64) -> Vec<CacheStats> {
    let base = testkit::seed!();
    let mut stats = Vec::new();
    for s in 0..seeds {
        let mut model = Model::new(base.wrapping_add(s), sector, bs, cfg);
        for i in 0..ops_per_run() {
            model.step(i);
        }
        stats.push(model.h.io.cache().stats());
        model.finish();
    }
    stats
}

#[test]
fn model_block_equals_page() {
    run(512, 4096, IomapConfig::default(), 3);
}

#[test]
fn model_blocks_smaller_than_pages() {
    run(512, 1024, IomapConfig::default(), 3);
}

#[test]
fn model_tiny_cache_evicts_and_throttles() {
    let cfg = IomapConfig {
        cache_bytes: 8 * 4096,
        dirty_bytes: 3 * 4096,
        readahead_bytes: 16 << 10,
        ..IomapConfig::default()
    };
    let mut stats = run(512, 1024, cfg, 2);
    stats.extend(run(4096, 4096, cfg, 1));
    for s in stats {
        assert!(s.evicted > 0, "a tiny cache must evict: {s:?}");
        // One batch (a quarter of the budget) of overshoot at most.
        assert!(
            s.peak_cached <= s.limit + s.limit / 4,
            "budget overshoot: {s:?}"
        );
    }
}
