//! Buffered read-ahead: sequential readers find the next pages read while they copy, random
//! readers do not pay for it, nothing is read past the end of the file, the budget holds,
//! and a truncate or write that runs while read-ahead is in flight leaves no stale bytes.

mod support;

use std::future::Future;
use std::pin::Pin;

use bdev::exec::{join_all, yield_now};
use iomap::{IoCounters, IomapConfig, IterFlags};
use support::Harness;

const MIB: u64 = 1 << 20;

/// 16 MiB of 4 KiB blocks with the default layer configuration (64 MiB cache, 256 KiB
/// read-ahead, 1 MiB requests).
fn harness() -> Harness {
    Harness::new(512, 4096, 4096, IomapConfig::default())
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 4096) as u8).wrapping_mul(7) ^ (i as u8).wrapping_add(salt) | 1)
        .collect()
}

/// A file of `data` on the device, none of it cached.
fn file_on_device(h: &Harness, ino: u64, data: &[u8]) -> iomap::Ino {
    let f = h.create(ino);
    h.write(f, 0, data);
    h.sync(f);
    h.io.cache().forget(f);
    f
}

fn device_reads(h: &Harness) -> u64 {
    IoCounters::get(&h.io.counters().cache_reads)
}

/// xorshift64*, seeded; the seed is printed.
struct Rng(u64);

impl Rng {
    fn new(default: u64) -> Rng {
        let seed = std::env::var("READAHEAD_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        println!("seed {seed} (READAHEAD_SEED={seed} to repeat)");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn one_mib_sequential_reads_find_the_next_mib_read_ahead() {
    let h = harness();
    let data = pattern(8 * MIB as usize, 1);
    let f = file_on_device(&h, 1, &data);
    for i in 0..8u64 {
        let got = h.read(f, i * MIB, MIB as usize);
        assert_eq!(got, &data[(i * MIB) as usize..][..MIB as usize], "MiB {i}");
        let cached = h.io.cache().stats().cached as u64;
        if i < 7 {
            // This MiB and the next one, read while this one was copied out.
            assert!(
                cached * 4096 >= (i + 2) * MIB,
                "after MiB {i}: {cached} pages cached, the next MiB not read ahead"
            );
        }
    }
    // Every page read from the device once: 8 MiB in pieces of at most 1 MiB.
    let reads = device_reads(&h);
    assert!((8..=40).contains(&reads), "{reads} device reads for 8 MiB");
    // All of it is cached now: reading it again makes no request.
    assert_eq!(
        h.read(f, 3 * MIB, MIB as usize),
        &data[3 * MIB as usize..][..MIB as usize]
    );
    assert_eq!(device_reads(&h), reads);
}

#[test]
fn random_reads_read_nothing_ahead_and_match_the_data() {
    let h = harness();
    let data = pattern(8 * MIB as usize, 2);
    let f = file_on_device(&h, 1, &data);
    let mut rng = Rng::new(0x7261_6e64);
    let mut pages_read = 0;
    let mut last_end = u64::MAX;
    for _ in 0..200 {
        let pos = 4096 + rng.below(8 * MIB - 8192);
        let len = 1 + rng.below(8192);
        let got = h.read(f, pos, len as usize);
        let end = (pos + len).min(8 * MIB);
        assert_eq!(
            got,
            &data[pos as usize..end as usize],
            "read of {len} at {pos}"
        );
        if pos != last_end {
            pages_read += end.div_ceil(4096) - pos / 4096;
        }
        last_end = end;
    }
    // Only what the reads touched (and what a read that happened to follow the previous one
    // read ahead: at most its window of 64 pages each, rare with these offsets).
    let cached = h.io.cache().stats().cached as u64;
    assert!(
        cached <= pages_read + 64,
        "{cached} pages cached for {pages_read} read"
    );
}

#[test]
fn reads_at_the_end_of_the_file_stop_there() {
    let h = harness();
    let size = 3 * MIB as usize + 1000;
    let data = pattern(size, 3);
    let f = file_on_device(&h, 1, &data);
    let mut got = Vec::new();
    let mut pos = 0u64;
    loop {
        let part = h.read(f, pos, MIB as usize);
        if part.is_empty() {
            break;
        }
        pos += part.len() as u64;
        got.extend(part);
    }
    assert_eq!(got, data);
    assert!(h.read(f, size as u64, 4096).is_empty());
    assert!(h.read(f, 10 * MIB, 4096).is_empty());
    // Nothing cached past the last page of the file.
    let pages = (size as u64).div_ceil(4096) as usize;
    assert!(
        h.io.cache().stats().cached <= pages,
        "{:?}",
        h.io.cache().stats()
    );
}

#[test]
fn a_small_budget_holds_under_large_sequential_reads() {
    let cfg = IomapConfig {
        cache_bytes: 256 << 10,
        ..IomapConfig::default()
    };
    let h = Harness::new(512, 4096, 4096, cfg);
    let data = pattern(4 * MIB as usize, 4);
    let f = file_on_device(&h, 1, &data);
    for i in 0..4u64 {
        assert_eq!(
            h.read(f, i * MIB, MIB as usize),
            &data[(i * MIB) as usize..][..MIB as usize]
        );
        let s = h.io.cache().stats();
        // The budget, plus what one read and its read-ahead may hold at once (a batch each).
        assert!(s.peak_cached <= s.limit + s.limit / 2, "{s:?}");
    }
}

type Task<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Runs `ops` together on the harness's context.
fn together(h: &Harness, ops: Vec<Task<'_>>) {
    h.ctx.block_on(join_all(ops));
}

#[test]
fn a_truncate_while_read_ahead_is_in_flight_leaves_no_stale_bytes() {
    let h = harness();
    let data = pattern(4 * MIB as usize, 5);
    let f = file_on_device(&h, 1, &data);
    // Block aligned: no tail block to zero, so the truncate reaches the cache at once.
    let cut = MIB + MIB / 2 + 3 * 4096;
    // The first read asks for [1, 2) MiB ahead; the truncate runs right after it has made
    // its requests, while their pages are out of the cache.
    let mut first = vec![0u8; MIB as usize];
    let read: Task = Box::pin(async {
        let n = h.io.read(&h.ctx, f, 0, &mut first).await.unwrap();
        assert_eq!(n, MIB as usize);
    });
    let truncate: Task = Box::pin(async {
        h.io.truncate(&h.ctx, f, cut).await.unwrap();
    });
    together(&h, vec![read, truncate]);
    assert_eq!(first, &data[..MIB as usize]);
    // Up to the cut, the old bytes; then the file ends. Grown again, the rest reads as zeroes,
    // never as the bytes read ahead before the truncate.
    assert_eq!(
        h.read(f, MIB, MIB as usize),
        &data[MIB as usize..cut as usize]
    );
    h.ctx.block_on(h.io.truncate(&h.ctx, f, 4 * MIB)).unwrap();
    let tail = h.read(f, cut, (4 * MIB - cut) as usize);
    assert_eq!(tail.len() as u64, 4 * MIB - cut);
    assert!(tail.iter().all(|&b| b == 0), "stale bytes past the cut");
    assert_eq!(h.read(f, 0, cut as usize), &data[..cut as usize]);
}

#[test]
fn writes_while_read_ahead_is_in_flight_are_not_lost() {
    let h = harness();
    let data = pattern(4 * MIB as usize, 6);
    let f = file_on_device(&h, 1, &data);
    let mut model = data.clone();
    let mut rng = Rng::new(0x7772_6974);
    // Sequential 1 MiB reads, each racing a buffered write and a direct write somewhere in
    // the MiB being read ahead (or the one being copied).
    for i in 0..3u64 {
        let at = (i + 1) * MIB - 8192 + rng.below(MIB);
        let len = 1 + rng.below(16384) as usize;
        let stamp = pattern(len, 100 + i as u8);
        let dpos = (i + 1) * MIB + rng.below(MIB / 4096 - 1) * 4096;
        let mut dbuf = h.io.alloc_buf(4096).unwrap();
        dbuf.fill(0xd0 + i as u8);
        let mut got = vec![0u8; MIB as usize];
        let read: Task = Box::pin(async {
            h.io.read(&h.ctx, f, i * MIB, &mut got).await.unwrap();
        });
        let write: Task = Box::pin(async {
            h.io.write(&h.ctx, f, at, &stamp).await.unwrap();
        });
        let direct: Task = Box::pin(async {
            yield_now().await;
            yield_now().await;
            h.io.write_direct_from(&h.ctx, f, dpos, &mut dbuf, IterFlags::EMPTY)
                .await
                .unwrap();
        });
        together(&h, vec![read, write, direct]);
        // The read saw each byte either before or after each write: check only the bytes
        // neither write touched, then apply both (the direct write went second).
        let r0 = (i * MIB) as usize;
        for (k, &b) in got.iter().enumerate() {
            let p = (r0 + k) as u64;
            let touched = (at..at + len as u64).contains(&p) || (dpos..dpos + 4096).contains(&p);
            if !touched {
                assert_eq!(b, model[r0 + k], "byte {p} of read {i}");
            }
        }
        model[at as usize..][..len].copy_from_slice(&stamp);
        model[dpos as usize..][..4096].fill(0xd0 + i as u8);
    }
    assert_eq!(h.read(f, 0, 4 * MIB as usize), model);
    h.sync(f);
    h.io.cache().forget(f);
    assert_eq!(h.read(f, 0, 4 * MIB as usize), model);
}
