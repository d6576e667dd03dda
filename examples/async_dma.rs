//! Asynchronous I/O on DMA buffers with the native per-thread context: one thread keeps
//! 32 requests in flight on an `O_DIRECT` file, each moving its own DMA buffer to the device
//! and back without a copy; a buffered file takes the same calls through the page cache.
//! Checks every block read back, and that a buffer comes back from each request.
//!
//! Run: `cargo run --example async_dma`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use bypassfs::bdev::exec::join_all;
use bypassfs::bdev::mem::MemDevice;
use bypassfs::bdev::{BlockDevice, DmaBuf};
use bypassfs::{Context, File, Filesystem, FormatOptions, MountOptions, OpenFlags};

const QUEUE_DEPTH: u64 = 32;
const BLOCK: usize = 4096;
/// Blocks per file: each written and read by a request of its own.
const BLOCKS: u64 = 256;

/// The byte block `b` is filled with.
fn pattern(b: u64) -> u8 {
    (b as u8).wrapping_mul(31).wrapping_add(7)
}

/// Writes, then reads and checks, every block of `f` with `QUEUE_DEPTH` requests in flight.
fn round_trip(ctx: &Context, f: &File) -> Result<(), String> {
    let mut bufs: Vec<DmaBuf> = (0..QUEUE_DEPTH)
        .map(|_| f.alloc_buf(BLOCK))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("DMA buffer: {e}"))?;
    for first in (0..BLOCKS).step_by(QUEUE_DEPTH as usize) {
        let writes = bufs.drain(..).zip(first..).map(|(mut buf, b)| {
            buf.fill(pattern(b));
            f.write_at_async(ctx, b * BLOCK as u64, buf)
        });
        // The buffers come back with the outcomes, ready for the next batch.
        for (buf, r) in ctx.block_on(join_all(writes)) {
            match r {
                Ok(n) if n == BLOCK => bufs.push(buf),
                r => return Err(format!("write: {r:?}")),
            }
        }
    }
    for first in (0..BLOCKS).step_by(QUEUE_DEPTH as usize) {
        let reads = bufs
            .drain(..)
            .zip(first..)
            .map(|(buf, b)| async move { (b, f.read_at_async(ctx, b * BLOCK as u64, buf).await) });
        for (b, (buf, r)) in ctx.block_on(join_all(reads)) {
            if !matches!(r, Ok(BLOCK)) {
                return Err(format!("read of block {b}: {r:?}"));
            }
            if buf.iter().any(|&x| x != pattern(b)) {
                return Err(format!("block {b} read back wrong"));
            }
            bufs.push(buf);
        }
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let dev: Arc<dyn BlockDevice> =
        Arc::new(MemDevice::new("async-dma", 4096, 16384).map_err(|e| format!("RAM device: {e}"))?);
    Filesystem::format(Arc::clone(&dev), FormatOptions::default())
        .map_err(|e| format!("format: {e}"))?;
    let fs = Filesystem::mount(dev, MountOptions::default()).map_err(|e| format!("mount: {e}"))?;
    // This thread's context: its device queue and the executor the futures run on.
    let ctx = fs.context().map_err(|e| format!("context: {e}"))?;
    let direct = OpenFlags {
        direct: true,
        ..OpenFlags::read_write_create()
    };
    for (path, flags) in [
        ("/direct", direct),
        ("/buffered", OpenFlags::read_write_create()),
    ] {
        let f = fs
            .open(&ctx, path, flags, 0o644)
            .map_err(|e| format!("create {path}: {e}"))?;
        round_trip(&ctx, &f).map_err(|e| format!("{path}: {e}"))?;
        f.fsync(&ctx).map_err(|e| format!("fsync {path}: {e}"))?;
    }
    // The filesystem's device is the first one its context attached.
    let peak = ctx.exec().peak_in_flight(bypassfs::bdev::exec::DevId(0));
    if peak < QUEUE_DEPTH as usize {
        return Err(format!(
            "at most {peak} requests were in flight, not {QUEUE_DEPTH}"
        ));
    }
    fs.unmount(&ctx).map_err(|e| format!("unmount: {e}"))?;
    println!(
        "wrote and read back {BLOCKS} blocks of {BLOCK} bytes in two files, \
         {QUEUE_DEPTH} requests at a time (device queue peak {peak})"
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async_dma example: {e}");
            ExitCode::FAILURE
        }
    }
}
