//! What the async handle costs next to the native per-thread context: 4 KiB random reads of
//! an `O_DIRECT` file on a RAM device at queue depth 32, first with the native `Context`
//! (this thread polls the device itself), then through `bypassfs::asyncio` from tokio tasks
//! (each request a channel hop to a polling thread and a wake back). Prints, for each,
//! reads per second and the CPU time the process spent per read (all its threads: on a
//! busy machine the wall clock says more about the neighbours than about bypassfs, the CPU
//! time less), and checks every block read.
//!
//! Run: `cargo run --release --example randread -- [READS]` (default 20000, enough to check
//! it works; measure with a million or so, on a quiet machine).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bypassfs::asyncio::{AsyncFile, AsyncFs};
use bypassfs::bdev::exec::join_all;
use bypassfs::bdev::mem::MemDevice;
use bypassfs::bdev::BlockDevice;
use bypassfs::{Context, File, Filesystem, FormatOptions, MountOptions, OpenFlags};

const QUEUE_DEPTH: u64 = 32;
const BLOCK: usize = 4096;
/// Blocks of the file read (64 MiB).
const BLOCKS: u64 = 16384;

type Result<T> = std::result::Result<T, String>;

/// The first 8 bytes of block `b`, so a read can tell which block it got.
fn stamp(b: u64) -> [u8; 8] {
    b.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()
}

/// One reader's sequence of blocks (xorshift64).
struct Blocks(u64);

impl Blocks {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % BLOCKS
    }
}

fn check(b: u64, data: &[u8]) -> Result<()> {
    if data.len() != BLOCK || data[..8] != stamp(b) {
        return Err(format!("block {b} read back wrong"));
    }
    Ok(())
}

/// Writes the file: every block stamped with its number.
fn fill(fs: &Filesystem, ctx: &Context) -> Result<()> {
    let f = fs
        .open(ctx, "/data", direct(true), 0o644)
        .map_err(|e| format!("create: {e}"))?;
    let mut chunk = vec![0u8; 256 * BLOCK];
    for first in (0..BLOCKS).step_by(256) {
        for (i, block) in chunk.chunks_mut(BLOCK).enumerate() {
            block[..8].copy_from_slice(&stamp(first + i as u64));
        }
        f.write_at(ctx, first * BLOCK as u64, &chunk)
            .map_err(|e| format!("write: {e}"))?;
    }
    f.fsync(ctx).map_err(|e| format!("fsync: {e}"))
}

fn direct(create: bool) -> OpenFlags {
    OpenFlags {
        read: true,
        write: create,
        create,
        direct: true,
        ..OpenFlags::default()
    }
}

/// `reads` reads by `QUEUE_DEPTH` readers on this thread's context.
fn native(ctx: &Context, f: &File, reads: u64) -> Result<Duration> {
    let each = reads / QUEUE_DEPTH;
    let reader = |r: u64| async move {
        let mut buf = f.alloc_buf(BLOCK).map_err(|e| e.to_string())?;
        let mut blocks = Blocks(r * 7919 + 1);
        for _ in 0..each {
            let b = blocks.next();
            let (back, n) = f.read_at_async(ctx, b * BLOCK as u64, buf).await;
            n.map_err(|e| e.to_string())?;
            check(b, &back)?;
            buf = back;
        }
        Ok::<(), String>(())
    };
    let start = Instant::now();
    for r in ctx.block_on(join_all((0..QUEUE_DEPTH).map(reader))) {
        r?;
    }
    Ok(start.elapsed())
}

/// `reads` reads by `QUEUE_DEPTH` tokio tasks through the async handle.
async fn through_handle(f: Arc<AsyncFile>, reads: u64) -> Result<Duration> {
    let each = reads / QUEUE_DEPTH;
    let start = Instant::now();
    let tasks: Vec<_> = (0..QUEUE_DEPTH)
        .map(|r| {
            let f = Arc::clone(&f);
            tokio::spawn(async move {
                let mut buf = f.alloc_buf(BLOCK).map_err(|e| e.to_string())?;
                let mut blocks = Blocks(r * 7919 + 1);
                for _ in 0..each {
                    let b = blocks.next();
                    let (back, _) = f
                        .read_dma(b * BLOCK as u64, buf)
                        .await
                        .map_err(|e| e.to_string())?;
                    check(b, &back)?;
                    buf = back;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(start.elapsed())
}

/// CPU time this process has used, all threads, user and system (`/proc/self/stat`'s
/// utime and stime, in the kernel's fixed 100 ticks a second).
fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc: {e}"))?;
    // Fields after the command name (which may hold spaces) in parentheses; utime and stime
    // are the 14th and 15th of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    Ok(Duration::from_millis(ticks.iter().sum::<u64>() * 10))
}

/// Runs `f` (which does `reads` reads) and prints its rate and CPU time per read.
fn measure(what: &str, reads: u64, f: impl FnOnce() -> Result<Duration>) -> Result<()> {
    let cpu = cpu_time()?;
    let took = f()?;
    let cpu = cpu_time()?.saturating_sub(cpu);
    let per_s = reads as f64 / took.as_secs_f64();
    let cpu_us = cpu.as_secs_f64() * 1e6 / reads as f64;
    println!("{what:<40} {per_s:>9.0} reads/s  {cpu_us:>6.2} us CPU per read");
    Ok(())
}

fn main() -> Result<()> {
    let reads: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|e| format!("READS {n:?}: {e}"))?,
        None => 20_000,
    };
    let reads = reads.max(QUEUE_DEPTH) / QUEUE_DEPTH * QUEUE_DEPTH;
    let dev: Arc<dyn BlockDevice> = Arc::new(
        MemDevice::new("randread", 4096, BLOCKS + 16384).map_err(|e| format!("RAM device: {e}"))?,
    );
    Filesystem::format(Arc::clone(&dev), FormatOptions::default())
        .map_err(|e| format!("format: {e}"))?;
    let fs = Filesystem::mount(dev, MountOptions::default()).map_err(|e| format!("mount: {e}"))?;
    let ctx = fs.context().map_err(|e| format!("context: {e}"))?;
    fill(&fs, &ctx)?;
    println!("4 KiB random reads of a 64 MiB O_DIRECT file on RAM, queue depth {QUEUE_DEPTH}:");

    let f = fs
        .open(&ctx, "/data", direct(false), 0)
        .map_err(|e| format!("open: {e}"))?;
    native(&ctx, &f, reads / 10)?; // warm-up
    measure("native Context, 1 thread", reads, || {
        native(&ctx, &f, reads)
    })?;
    drop(f);

    for (threads, label) in [
        (1, "async handle, tokio + 1 polling thread"),
        (2, "async handle, tokio + 2 polling threads"),
    ] {
        let afs = AsyncFs::start(&fs, threads).map_err(|e| format!("async handle: {e}"))?;
        // One caller thread, as the native run has.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let f = rt.block_on(afs.open("/data", direct(false), 0));
        let f = Arc::new(f.map_err(|e| format!("open: {e}"))?);
        rt.block_on(through_handle(Arc::clone(&f), reads / 10))?; // warm-up
        measure(label, reads, || rt.block_on(through_handle(f, reads)))?;
    }
    fs.unmount(&ctx).map_err(|e| format!("unmount: {e}"))
}
