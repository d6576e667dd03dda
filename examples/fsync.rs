//! What fsync and fdatasync promise, shown by a power cut: on a device with a volatile write
//! cache (bdev's fault device, which loses every unflushed write when it "crashes"), one
//! file is fsync'd, one fdatasync'd and one only written. After the crash the device is
//! mounted again: the synced files hold their data under their names (an fsync makes a new
//! name durable too), and fsck is clean; the unsynced file may be gone, name and all (a
//! namespace change is durable at the next commit: fsync, sync, the timed commit, unmount).
//!
//! Run: `cargo run --example fsync`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use bypassfs::bdev::fault::{CrashKeep, FaultConfig, FaultDevice};
use bypassfs::bdev::mem::MemDevice;
use bypassfs::bdev::BlockDevice;
use bypassfs::{Filesystem, FormatOptions, FsckOptions, MountOptions, OpenFlags};

/// Each file's name, its data (8 KiB of one byte), and how it is made durable.
const FILES: [(&str, u8, Sync); 3] = [
    ("/fsynced", b'f', Sync::Fsync),
    ("/fdatasynced", b'd', Sync::Fdatasync),
    ("/written", b'w', Sync::Nothing),
];

#[derive(Clone, Copy, PartialEq)]
enum Sync {
    Fsync,
    Fdatasync,
    Nothing,
}

const LEN: usize = 8192;

/// Mounts the device, writes the files, then cuts the power.
fn write_then_crash(disk: &Arc<dyn BlockDevice>) -> Result<(), String> {
    let cfg = FaultConfig {
        volatile_cache: true,
        ..FaultConfig::default()
    };
    let dev =
        Arc::new(FaultDevice::new("cached", Arc::clone(disk), cfg).map_err(|e| e.to_string())?);
    let fs = Filesystem::mount(dev.clone(), MountOptions::default())
        .map_err(|e| format!("mount: {e}"))?;
    let ctx = fs.context().map_err(|e| format!("context: {e}"))?;
    for (path, byte, sync) in FILES {
        let f = fs
            .open(&ctx, path, OpenFlags::read_write_create(), 0o644)
            .map_err(|e| format!("create {path}: {e}"))?;
        f.write_at(&ctx, 0, &[byte; LEN])
            .map_err(|e| format!("write {path}: {e}"))?;
        match sync {
            Sync::Fsync => f.fsync(&ctx).map_err(|e| format!("fsync {path}: {e}"))?,
            Sync::Fdatasync => f
                .fdatasync(&ctx)
                .map_err(|e| format!("fdatasync {path}: {e}"))?,
            Sync::Nothing => {}
        }
    }
    // Power loss: every write the device had not flushed is gone, and the device is dead to
    // this mount (whose requests now fail) until it is opened again.
    dev.crash(CrashKeep::DropAll)
        .map_err(|e| format!("crash: {e}"))?;
    drop(ctx);
    drop(fs);
    Ok(())
}

/// Mounts what the crash left and checks it.
fn check_after_crash(disk: &Arc<dyn BlockDevice>) -> Result<(), String> {
    let fs = Filesystem::mount(Arc::clone(disk), MountOptions::default())
        .map_err(|e| format!("mount after the crash: {e}"))?;
    let ctx = fs.context().map_err(|e| format!("context: {e}"))?;
    for (path, byte, sync) in FILES {
        let f = match fs.open(&ctx, path, OpenFlags::read_only(), 0) {
            Ok(f) => f,
            Err(bypassfs::Error::NotFound(_)) if sync == Sync::Nothing => {
                println!("{path}: gone with its name (not synced: allowed)");
                continue;
            }
            Err(e) => return Err(format!("{path} lost its name in the crash: {e}")),
        };
        let mut buf = vec![0u8; LEN + 1];
        let n = f
            .read_at(&ctx, 0, &mut buf)
            .map_err(|e| format!("read {path}: {e}"))?;
        let intact = n == LEN && buf[..n].iter().all(|&x| x == byte);
        match sync {
            _ if intact => println!("{path}: all {LEN} bytes survived"),
            Sync::Nothing => println!("{path}: {n} bytes survived (not synced: allowed)"),
            _ => {
                return Err(format!(
                    "{path} was synced but reads {n} bytes, not its data"
                ))
            }
        }
        if n > 0 && !intact && buf[..n].iter().any(|&x| x != byte && x != 0) {
            return Err(format!("{path} shows bytes nobody wrote"));
        }
    }
    fs.unmount(&ctx).map_err(|e| format!("unmount: {e}"))?;
    let report = bypassfs::fsck(Arc::clone(disk), &FsckOptions::default())
        .map_err(|e| format!("fsck: {e}"))?;
    if !report.is_clean() {
        return Err(format!("fsck after the crash: {report:?}"));
    }
    println!("after the crash: synced data intact under its names, fsck clean");
    Ok(())
}

fn run() -> Result<(), String> {
    // The media under the cache: what survives a crash.
    let disk: Arc<dyn BlockDevice> =
        Arc::new(MemDevice::new("media", 4096, 16384).map_err(|e| format!("RAM device: {e}"))?);
    Filesystem::format(Arc::clone(&disk), FormatOptions::default())
        .map_err(|e| format!("format: {e}"))?;
    write_then_crash(&disk)?;
    check_after_crash(&disk)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fsync example: {e}");
            ExitCode::FAILURE
        }
    }
}
