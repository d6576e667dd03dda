//! The page cache keeps to its budget (`MountOptions::cache_bytes`) under a stream of
//! buffered writes many times larger than it, and loses nothing on the way: every byte
//! reads back, before and after a remount.

mod common;

use bdev::exec::join_all;
use common::*;
use fs_core::MountOptions;

/// A small budget: 256 pages of 4 KiB, 64 of them dirty at most.
const BUDGET: u64 = 1 << 20;
const DIRTY: u64 = 256 << 10;

fn budget_opts() -> MountOptions {
    MountOptions {
        cache_bytes: BUDGET,
        dirty_bytes: DIRTY,
        ..mount_opts()
    }
}

/// xorshift64*: the test's only source of randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn seed() -> u64 {
    let seed = std::env::var("PAGE_BUDGET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6275_6467_6574);
    println!("seed {seed} (PAGE_BUDGET_SEED={seed} to repeat)");
    seed
}

/// Writes `len` bytes at `pos` into `model`, growing it as the file grows.
fn apply(model: &mut Vec<u8>, pos: usize, data: &[u8]) {
    if model.len() < pos + data.len() {
        model.resize(pos + data.len(), 0);
    }
    model[pos..pos + data.len()].copy_from_slice(data);
}

#[test]
fn a_write_stream_larger_than_the_budget_stays_within_it_and_reads_back() {
    let mut rng = Rng(seed() | 1);
    let dev = mem(96);
    fs_core::Filesystem::format(dev.clone(), small_format()).unwrap();
    let fs = fs_core::Filesystem::mount(dev.clone(), budget_opts()).unwrap();
    let ctx = fs.context().unwrap();
    let names = ["/a", "/b", "/c"];
    let files: Vec<_> = names
        .iter()
        .map(|n| fs.open(&ctx, n, rw(), 0o644).unwrap())
        .collect();
    let mut models = vec![Vec::<u8>::new(); names.len()];
    // 16 MiB in all (16 budgets): mostly appends of odd sizes, some overwrites of earlier
    // parts (pages evicted since, so partial blocks are read back from the device), and
    // some reads, which fill the cache too.
    let total = 16 << 20;
    let mut written = 0;
    let mut stamp = 0u8;
    while written < total {
        let k = rng.below(names.len() as u64) as usize;
        let len = 1 + rng.below(300 << 10) as usize;
        let end = models[k].len();
        let pos = if end > 0 && rng.below(4) == 0 {
            rng.below(end as u64) as usize
        } else {
            end
        };
        stamp = stamp.wrapping_add(1);
        let data: Vec<u8> = (0..len)
            .map(|i| stamp ^ (i as u8).wrapping_mul(31))
            .collect();
        assert_eq!(files[k].write_at(&ctx, pos as u64, &data).unwrap(), len);
        apply(&mut models[k], pos, &data);
        written += len;
        if rng.below(8) == 0 && !models[k].is_empty() {
            let at = rng.below(models[k].len() as u64) as usize;
            let n = (1 + rng.below(128 << 10) as usize).min(models[k].len() - at);
            let mut got = vec![0u8; n];
            assert_eq!(files[k].read_at(&ctx, at as u64, &mut got).unwrap(), n);
            assert!(got == models[k][at..at + n], "{} at {at}+{n}", names[k]);
        }
    }
    // The stated slack: one batch of pages (a quarter of the budget, at most 1 MiB) per
    // operation under way; here one at a time.
    let st = fs.page_cache_stats();
    println!("one writer: {st:?}");
    assert_eq!(st.limit as u64, BUDGET / fs.page_size());
    assert!(st.evicted > 0, "the stream never filled the cache: {st:?}");
    let batch = st.limit / 4;
    assert!(
        st.peak_cached <= st.limit + batch,
        "peak {} pages over the budget of {} + one batch of {batch}",
        st.peak_cached,
        st.limit
    );
    // Eight writers at once on one thread: each may overshoot by its own batch.
    let slots = 8u64;
    let base = models[0].len() as u64;
    let bufs: Vec<_> = (0..slots)
        .map(|s| {
            let mut b = files[0].alloc_buf(192 << 10).unwrap();
            b.fill(0xa0 + s as u8);
            b
        })
        .collect();
    let done =
        ctx.block_on(join_all(bufs.into_iter().enumerate().map(|(s, b)| {
            files[0].write_at_async(&ctx, base + s as u64 * (192 << 10), b)
        })));
    for (s, (b, r)) in done.into_iter().enumerate() {
        assert_eq!(r.unwrap(), b.len());
        apply(&mut models[0], base as usize + s * (192 << 10), &b);
    }
    let st = fs.page_cache_stats();
    println!("eight writers: {st:?}");
    let slack = batch * slots as usize;
    assert!(
        st.peak_cached <= st.limit + slack,
        "peak {} pages over the budget of {} + {slack}",
        st.peak_cached,
        st.limit
    );
    assert!(st.cached <= st.limit, "{st:?}");
    // Everything reads back, through the cache and after a remount.
    for (n, want) in names.iter().zip(&models) {
        assert!(read_all(&fs, &ctx, n) == *want, "{n} differs");
    }
    for f in &files {
        f.fsync(&ctx).unwrap();
    }
    drop(files);
    fs.unmount(&ctx).unwrap();
    assert_clean(dev.clone());
    let fs = fs_core::Filesystem::mount(dev, budget_opts()).unwrap();
    let ctx = fs.context().unwrap();
    for (n, want) in names.iter().zip(&models) {
        assert!(read_all(&fs, &ctx, n) == *want, "{n} differs after remount");
    }
    assert!(fs.page_cache_stats().peak_cached <= fs.page_cache_stats().limit + slack);
}
