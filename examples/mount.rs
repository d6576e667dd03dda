//! Mounts an image file the ways an application does: read-write (one writer: a second
//! read-write open of the image is refused while the first holds it), then read-only (which
//! readers share, and which refuses every change). Checks each outcome.
//!
//! Run: `cargo run --example mount` (the image lives in a fresh temporary directory).
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use bypassfs::bdev::BdevError;
use bypassfs::device::{self, Access};
use bypassfs::{Error, Filesystem, FormatOptions, MountOptions, OpenFlags};

const TEXT: &[u8] = b"written by the read-write mount";

fn read_write(image: &Path) -> Result<(), String> {
    let dev = device::open_with(image, None, Some(64 << 20), Access::ReadWrite)
        .map_err(|e| format!("open: {e}"))?;
    Filesystem::format(dev.clone(), FormatOptions::default())
        .map_err(|e| format!("format: {e}"))?;
    let fs = Filesystem::mount(dev, MountOptions::default()).map_err(|e| format!("mount: {e}"))?;
    let ctx = fs.context().map_err(|e| format!("context: {e}"))?;
    fs.mkdir("/docs", 0o755)
        .map_err(|e| format!("mkdir: {e}"))?;
    let f = fs
        .open(&ctx, "/docs/note", OpenFlags::read_write_create(), 0o644)
        .map_err(|e| format!("create: {e}"))?;
    f.write_at(&ctx, 0, TEXT)
        .map_err(|e| format!("write: {e}"))?;
    drop(f);

    // While this mount holds the image, neither a writer nor a reader may open it.
    match device::open(&image.to_string_lossy()) {
        Err(BdevError::InUse(who)) => println!("second read-write open refused: {who}"),
        Err(e) => return Err(format!("second read-write open: expected InUse, got {e}")),
        Ok(_) => return Err("a second read-write open of a mounted image succeeded".into()),
    }
    if device::open_read_only(&image.to_string_lossy()).is_ok() {
        return Err("a read-only open of an image mounted read-write succeeded".into());
    }
    // Unmount makes everything durable; dropping the mount releases the image.
    fs.unmount(&ctx).map_err(|e| format!("unmount: {e}"))
}

fn read_only(image: &Path) -> Result<(), String> {
    let spec = image.to_string_lossy();
    let dev = device::open_read_only(&spec).map_err(|e| format!("open read-only: {e}"))?;
    // Readers share the image.
    let other_reader = device::open_read_only(&spec).map_err(|e| format!("second reader: {e}"))?;
    let opts = MountOptions {
        read_only: true,
        ..MountOptions::default()
    };
    let fs = Filesystem::mount(dev, opts).map_err(|e| format!("mount read-only: {e}"))?;
    let ctx = fs.context().map_err(|e| format!("context: {e}"))?;
    let f = fs
        .open(&ctx, "/docs/note", OpenFlags::read_only(), 0)
        .map_err(|e| format!("open: {e}"))?;
    let mut buf = vec![0u8; 100];
    let n = f
        .read_at(&ctx, 0, &mut buf)
        .map_err(|e| format!("read: {e}"))?;
    if &buf[..n] != TEXT {
        return Err(format!(
            "read back {:?}",
            String::from_utf8_lossy(&buf[..n])
        ));
    }
    match fs.mkdir("/new", 0o755) {
        Err(Error::ReadOnly(why)) => println!("mkdir on the read-only mount refused: {why}"),
        r => {
            return Err(format!(
                "mkdir on a read-only mount: expected ReadOnly, got {r:?}"
            ))
        }
    }
    match fs.create("/docs/another", 0o644) {
        Err(Error::ReadOnly(_)) => {}
        r => {
            return Err(format!(
                "create on a read-only mount: expected ReadOnly, got {r:?}"
            ))
        }
    }
    drop(f);
    drop(other_reader);
    fs.unmount(&ctx).map_err(|e| format!("unmount: {e}"))?;
    println!("read-only mount read {n} bytes back");
    Ok(())
}

fn main() -> ExitCode {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mount example: temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let image = dir.path().join("mount.img");
    match read_write(&image).and_then(|()| read_only(&image)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mount example: {e}");
            ExitCode::FAILURE
        }
    }
}
