//! bypassfs under `#[tokio::main]`: an [`AsyncFs`] handle serves tokio tasks from two
//! polling threads of its own. 16 tasks each write a file in 64 KiB pieces (copied from
//! their slices) and fsync it; then 16 more read every piece back with 16 reads in flight
//! each, into DMA buffers, and check it; the namespace calls list and rename. Nothing in
//! bypassfs knows tokio: its futures complete by waking the task that awaits them.
//!
//! Run: `cargo run --example async_tokio`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use bypassfs::asyncio::AsyncFs;
use bypassfs::bdev::mem::MemDevice;
use bypassfs::bdev::BlockDevice;
use bypassfs::{Filesystem, FormatOptions, MountOptions, OpenFlags, RenameFlags};

const TASKS: u64 = 16;
const PIECE: usize = 64 << 10;
const PIECES: u64 = 16;

/// The content of piece `p` of file `t`.
fn piece(t: u64, p: u64) -> Vec<u8> {
    (0..PIECE)
        .map(|i| (t * 31 + p * 7 + i as u64 % 251) as u8)
        .collect()
}

type Result<T> = std::result::Result<T, String>;

async fn write_file(afs: AsyncFs, t: u64) -> Result<()> {
    let path = format!("/out/{t}");
    let f = afs
        .open(&path, OpenFlags::read_write_create(), 0o644)
        .await
        .map_err(|e| format!("create {path}: {e}"))?;
    for p in 0..PIECES {
        let n = f
            .write(p * PIECE as u64, &piece(t, p))
            .await
            .map_err(|e| format!("write {path}: {e}"))?;
        if n != PIECE {
            return Err(format!("{path}: wrote {n} of {PIECE} bytes"));
        }
    }
    f.fsync().await.map_err(|e| format!("fsync {path}: {e}"))
}

async fn check_file(afs: AsyncFs, t: u64) -> Result<()> {
    let path = format!("/in/{t}");
    let f = Arc::new(
        afs.open(&path, OpenFlags::read_only(), 0)
            .await
            .map_err(|e| format!("open {path}: {e}"))?,
    );
    // All pieces in flight at once, each into a DMA buffer that comes back with the data.
    let mut reads = Vec::new();
    for p in 0..PIECES {
        let buf = f.alloc_buf(PIECE).map_err(|e| format!("DMA buffer: {e}"))?;
        reads.push((p, f.read_dma(p * PIECE as u64, buf)));
    }
    for (p, read) in reads {
        let (buf, n) = read.await.map_err(|e| format!("read {path}: {e}"))?;
        if n != PIECE || buf[..] != piece(t, p)[..] {
            return Err(format!("{path}: piece {p} read back wrong ({n} bytes)"));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let dev: Arc<dyn BlockDevice> =
        Arc::new(MemDevice::new("tokio", 4096, 32768).map_err(|e| format!("RAM device: {e}"))?);
    Filesystem::format(Arc::clone(&dev), FormatOptions::default())
        .map_err(|e| format!("format: {e}"))?;
    let fs = Filesystem::mount(dev, MountOptions::default()).map_err(|e| format!("mount: {e}"))?;
    let afs = AsyncFs::start(&fs, 2).map_err(|e| format!("async handle: {e}"))?;

    afs.mkdir("/out", 0o755)
        .await
        .map_err(|e| format!("mkdir: {e}"))?;
    let writers: Vec<_> = (0..TASKS)
        .map(|t| tokio::spawn(write_file(afs.clone(), t)))
        .collect();
    for w in writers {
        w.await.map_err(|e| format!("writer task: {e}"))??;
    }
    afs.rename("/out", "/in", RenameFlags::default())
        .await
        .map_err(|e| format!("rename: {e}"))?;
    let listed = afs
        .readdir("/in", 0, 100)
        .await
        .map_err(|e| format!("readdir: {e}"))?;
    if listed.len() as u64 != TASKS {
        return Err(format!("/in lists {} files, not {TASKS}", listed.len()));
    }
    let readers: Vec<_> = (0..TASKS)
        .map(|t| tokio::spawn(check_file(afs.clone(), t)))
        .collect();
    for r in readers {
        r.await.map_err(|e| format!("reader task: {e}"))??;
    }
    afs.unmount().await.map_err(|e| format!("unmount: {e}"))?;
    println!(
        "tokio: {TASKS} tasks wrote and fsync'd {} MiB, {TASKS} read it back with {PIECES} \
         reads in flight each; all checked",
        (TASKS * PIECES * PIECE as u64) >> 20
    );
    Ok(())
}
