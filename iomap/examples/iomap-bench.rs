//! iomap-bench: the iomap layer against its anchors, measured in one run.
//!
//! (a) 4 KiB random direct reads at queue depth 128 through the reference filesystem
//!     (`RefFs`) on a `mem` device, against raw 4 KiB random reads on the same device driven
//!     by a plain submit/poll loop at depth 128 (the loop `bfsperf`'s engine runs; in-process
//!     here so both share one binary, one device and one run). Target: ratio >= 0.8.
//! (b) buffered sequential 1 MiB writes into the page cache (no writeback in the timed
//!     part: the dirty limit exceeds the file), against single-thread memcpy of 1 MiB
//!     blocks into a destination as large as the file. Target: ratio >= 0.5.
//!
//! `cargo run --release -p iomap --example iomap-bench [seconds-per-phase]`
//!
//! For profiling, `IOMAP_BENCH_ONLY=fsread` or `=raw` runs only that half of (a), and `=size`
//! prints the size of a direct-read future.

#[path = "../tests/support/refs.rs"]
mod refs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bdev::exec::{join_all, Context};
use bdev::mem::MemDevice;
use bdev::{BlockDevice, Bufs, Completion, DmaBuf, Lba, Op};
use iomap::{Ino, Iomap, IomapConfig, IterFlags};
use refs::RefFs;

const SECTOR: u32 = 512;
const BS: u32 = 4096;
const DEV_BYTES: u64 = 256 << 20;
const QD: usize = 128;

/// wyrand, as `bfsperf`'s engine uses: one multiply per number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Uniform in `0..n` by Lemire's multiply-shift (no division), as `bfsperf`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// Raw device: keep QD 4 KiB random reads in flight for `dur`; returns IOPS.
///
/// The loop of `bfsperf`'s engine, so the anchor is as fast as that tool would measure:
/// buffers reused, no allocation, wyrand offsets without a division, the clock read once per
/// 64 polls, and each reaped batch handled in two passes (bookkeeping first, then the
/// submissions back to back).
fn raw_randread(dev: &MemDevice, dur: Duration) -> f64 {
    let mut q = dev.queue(QD).unwrap();
    let blocks = DEV_BYTES / 4096;
    let mut rng = Rng(0x1234_5678);
    let mut done: Vec<Completion> = Vec::with_capacity(QD);
    let mut ready: Vec<(u64, Op)> = Vec::with_capacity(QD);
    for tag in 0..QD as u64 {
        let buf = dev.alloc_buf(4096).unwrap();
        let lba = Lba(rng.below(blocks) * 8);
        q.submit(
            tag,
            Op::Read {
                lba,
                bufs: Bufs::One(buf),
            },
        )
        .unwrap();
    }
    let (start, mut ios) = (Instant::now(), 0u64);
    while start.elapsed() < dur {
        for _ in 0..64 {
            q.poll(&mut done);
            for c in done.drain(..) {
                c.result.unwrap();
                ios += 1;
                let bufs = c.op.into_bufs().unwrap();
                let lba = Lba(rng.below(blocks) * 8);
                ready.push((c.tag, Op::Read { lba, bufs }));
            }
            for (tag, op) in ready.drain(..) {
                q.submit(tag, op).unwrap();
            }
        }
    }
    ios as f64 / start.elapsed().as_secs_f64()
}

/// Through the filesystem: QD futures, each reading random 4 KiB blocks of the file.
fn fs_randread(io: &Iomap<RefFs>, ctx: &Context, ino: Ino, dur: Duration) -> f64 {
    let blocks = DEV_BYTES / 2 / 4096;
    let start = Instant::now();
    let workers = (0..QD as u64).map(|w| async move {
        let mut rng = Rng(0x9e37_79b9 + w * 7919);
        let mut buf = io.alloc_buf(4096).unwrap();
        let mut ios = 0u64;
        while ios % 256 != 0 || start.elapsed() < dur {
            let pos = rng.below(blocks) * 4096;
            let (b, r) = io.read_direct(ctx, ino, pos, buf, IterFlags::EMPTY).await;
            assert_eq!(r.unwrap(), 4096);
            buf = b;
            ios += 1;
        }
        ios
    });
    let ios: u64 = ctx.block_on(join_all(workers)).into_iter().sum();
    ios as f64 / start.elapsed().as_secs_f64()
}

/// Single-thread memcpy of 1 MiB blocks into a `total`-byte destination: bytes/s.
fn memcpy_bw(total: usize, dur: Duration) -> f64 {
    let src: Vec<u8> = (0..1 << 20).map(|i| i as u8).collect();
    let mut dst = vec![1u8; total];
    let (start, mut bytes) = (Instant::now(), 0u64);
    while start.elapsed() < dur {
        for chunk in dst.chunks_exact_mut(1 << 20) {
            chunk.copy_from_slice(std::hint::black_box(&src));
        }
        bytes += total as u64;
    }
    std::hint::black_box(&dst);
    bytes as f64 / start.elapsed().as_secs_f64()
}

/// Sequential 1 MiB buffered writes over a `total`-byte file: bytes/s.
fn buffered_write_bw(io: &Iomap<RefFs>, ctx: &Context, ino: Ino, total: u64, dur: Duration) -> f64 {
    let src: Vec<u8> = (0..1 << 20).map(|i| (i * 7) as u8).collect();
    let (start, mut bytes) = (Instant::now(), 0u64);
    while start.elapsed() < dur {
        for pos in (0..total).step_by(1 << 20) {
            let n = ctx
                .block_on(io.write(ctx, ino, pos, std::hint::black_box(&src)))
                .unwrap();
            assert_eq!(n, 1 << 20);
        }
        bytes += total;
    }
    bytes as f64 / start.elapsed().as_secs_f64()
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let dur = Duration::from_secs_f64(secs);
    let dev = Arc::new(MemDevice::new("Malloc0", SECTOR, DEV_BYTES / u64::from(SECTOR)).unwrap());
    let ctx = Context::new();
    let id = ctx.attach(&*dev, QD).unwrap();
    let write_file: u64 = 128 << 20;
    let cfg = IomapConfig {
        cache_bytes: 2 * write_file,
        dirty_bytes: 2 * write_file,
        ..IomapConfig::default()
    };
    let fs = RefFs::new(BS, DEV_BYTES / u64::from(BS));
    let io = Iomap::new(fs, dev.clone() as Arc<dyn BlockDevice>, id, cfg).unwrap();

    // Touch the whole device first: never-written RAM reads back from the kernel's shared
    // zero page, which would flatter the raw anchor.
    let mut q = dev.queue(1).unwrap();
    let mut fill = dev.alloc_buf(1 << 20).unwrap();
    fill.fill(0xa5);
    for off in (0..DEV_BYTES).step_by(1 << 20) {
        let lba = Lba(off / u64::from(SECTOR));
        fill = bdev::wait::write(&mut *q, lba, fill, false).unwrap();
    }
    drop(q);

    // (a) A file over half the device, written with direct 1 MiB writes, then read.
    let (rd, wr) = (Ino(1), Ino(2));
    io.ops().create(rd);
    io.ops().create(wr);
    let mut buf: DmaBuf = io.alloc_buf(1 << 20).unwrap();
    buf.fill(0x5a);
    for pos in (0..DEV_BYTES / 2).step_by(1 << 20) {
        io.write_direct_dma(&ctx, rd, pos, &mut buf).unwrap();
    }
    if std::env::var("IOMAP_BENCH_ONLY").as_deref() == Ok("size") {
        let b = io.alloc_buf(4096).unwrap();
        let f = io.read_direct(&ctx, rd, 0, b, IterFlags::EMPTY);
        println!("read_direct future: {} bytes", std::mem::size_of_val(&f));
        return;
    }
    if std::env::var("IOMAP_BENCH_ONLY").as_deref() == Ok("raw") {
        println!("{:.0} IOPS", raw_randread(&dev, dur));
        return;
    }
    if std::env::var("IOMAP_BENCH_ONLY").as_deref() == Ok("fsread") {
        println!("{:.0} IOPS", fs_randread(&io, &ctx, rd, dur));
        return;
    }
    // Alternate short slices of both so load from other processes hits both alike.
    let rounds = 10;
    let (mut raw, mut fsr) = (0.0, 0.0);
    for _ in 0..rounds {
        raw += raw_randread(&dev, dur / rounds) / f64::from(rounds);
        fsr += fs_randread(&io, &ctx, rd, dur / rounds) / f64::from(rounds);
    }
    println!(
        "(a) 4 KiB randread QD{QD} on mem ({} MiB):",
        DEV_BYTES >> 20
    );
    println!("    raw mem submit/poll loop : {:>10.0} IOPS", raw);
    println!("    direct read through RefFs: {:>10.0} IOPS", fsr);
    println!(
        "    ratio                    : {:>10.3} (target >= 0.8: {})",
        fsr / raw,
        verdict(fsr / raw >= 0.8)
    );
    println!("    peak in flight           : {}", ctx.peak_in_flight(id));

    // (b) memcpy anchor, then buffered writes: a first pass fills the cache (pages from the
    // DMA pool), the timed passes overwrite it (pages cached and dirty already).
    let t = Instant::now();
    let src = vec![1u8; 1 << 20];
    for pos in (0..write_file).step_by(1 << 20) {
        ctx.block_on(io.write(&ctx, wr, pos, &src)).unwrap();
    }
    let first = write_file as f64 / t.elapsed().as_secs_f64();
    let (mut mem_bw, mut bw) = (0.0, 0.0);
    for _ in 0..rounds {
        mem_bw += memcpy_bw(write_file as usize, dur / rounds) / f64::from(rounds);
        bw += buffered_write_bw(&io, &ctx, wr, write_file, dur / rounds) / f64::from(rounds);
    }
    let gib = |b: f64| b / f64::from(1u32 << 30);
    println!(
        "(b) sequential 1 MiB writes, {} MiB file, no writeback timed:",
        write_file >> 20
    );
    println!("    memcpy 1 MiB blocks      : {:>8.2} GiB/s", gib(mem_bw));
    println!("    buffered write (cached)  : {:>8.2} GiB/s", gib(bw));
    println!(
        "    buffered write (1st pass): {:>8.2} GiB/s (allocates and zeroes pages)",
        gib(first)
    );
    println!(
        "    ratio (cached)           : {:>8.3} (target >= 0.5: {})",
        bw / mem_bw,
        verdict(bw / mem_bw >= 0.5)
    );
    println!("    ratio (1st pass)         : {:>8.3}", first / mem_bw);
    let s = io.cache().stats();
    println!(
        "    cache: {} pages, {} dirty, {} evicted",
        s.cached, s.dirty, s.evicted
    );
}
