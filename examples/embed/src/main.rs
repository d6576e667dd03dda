//! A program that embeds bypassfs: formats a RAM device, writes a file, remounts, reads it
//! back and checks the filesystem. `ci/check-embedding` builds and runs it, after checking
//! that its dependency tree holds none of the `bypassfs` command's dependencies.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use bypassfs::bdev::mem::MemDevice;
use bypassfs::bdev::BlockDevice;
use bypassfs::{Filesystem, FormatOptions, FsckOptions, MountOptions, OpenFlags};

const TEXT: &[u8] = b"embedded, not installed";

/// Turns a library error into a message naming the step that failed.
fn err(what: &'static str) -> impl Fn(bypassfs::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn run() -> Result<(), String> {
    // 64 MiB of 4 KiB blocks.
    let dev = MemDevice::new("embed", 4096, 16384).map_err(|e| format!("RAM device: {e}"))?;
    let dev: Arc<dyn BlockDevice> = Arc::new(dev);
    Filesystem::format(Arc::clone(&dev), FormatOptions::default()).map_err(err("format"))?;

    let fs = Filesystem::mount(Arc::clone(&dev), MountOptions::default()).map_err(err("mount"))?;
    let ctx = fs.context().map_err(err("context"))?;
    let f = fs
        .open(&ctx, "/hello.txt", OpenFlags::read_write_create(), 0o644)
        .map_err(err("create /hello.txt"))?;
    f.write_at(&ctx, 0, TEXT).map_err(err("write"))?;
    f.fsync(&ctx).map_err(err("fsync"))?;
    drop(f);
    fs.unmount(&ctx).map_err(err("unmount"))?;

    // A second mount of the same device sees what the first made durable.
    let fs =
        Filesystem::mount(Arc::clone(&dev), MountOptions::default()).map_err(err("remount"))?;
    let ctx = fs.context().map_err(err("context"))?;
    let f = fs
        .open(&ctx, "/hello.txt", OpenFlags::read_only(), 0)
        .map_err(err("open /hello.txt"))?;
    let mut buf = vec![0u8; TEXT.len() + 1];
    let n = f.read_at(&ctx, 0, &mut buf).map_err(err("read"))?;
    if &buf[..n] != TEXT {
        return Err(format!(
            "read back {:?}, wrote {:?}",
            String::from_utf8_lossy(&buf[..n]),
            String::from_utf8_lossy(TEXT)
        ));
    }
    drop(f);
    fs.unmount(&ctx).map_err(err("unmount"))?;

    let report = bypassfs::fsck(dev, &FsckOptions::default()).map_err(err("fsck"))?;
    if !report.is_clean() {
        return Err(format!("fsck found errors: {report:?}"));
    }
    println!("embedded bypassfs: wrote, remounted and read back {n} bytes; fsck clean");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed example: {e}");
            ExitCode::FAILURE
        }
    }
}
