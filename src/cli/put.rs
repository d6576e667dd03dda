//! `bypassfs put`: copy a local file into the filesystem, durably.

use std::io::Read;
use std::path::PathBuf;

use fs_core::OpenFlags;

use crate::cli::device::DeviceArgs;
use crate::cli::error::{exit, Context, Result};
use crate::cli::output::out;

/// Bytes per write.
const CHUNK: usize = 1 << 20;

/// `put DEVICE LOCAL_FILE PATH`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// The file to copy.
    #[arg(value_name = "LOCAL_FILE")]
    pub local: PathBuf,

    /// Absolute path inside the filesystem (created or truncated; its directory must exist).
    #[arg(value_name = "PATH")]
    pub path: String,
}

pub fn run(a: &Args) -> Result<u8> {
    let shown = a.local.display().to_string();
    let mut src = std::fs::File::open(&a.local).context(|| format!("opening {shown}"))?;
    let (fs, ctx) = a.device.mount(false)?;
    let flags = OpenFlags {
        truncate: true,
        ..OpenFlags::read_write_create()
    };
    let f = fs
        .open(&ctx, &a.path, flags, 0o644)
        .context(|| format!("creating {}", a.path))?;
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    loop {
        let n = src.read(&mut buf).context(|| format!("reading {shown}"))?;
        if n == 0 {
            break;
        }
        f.write_at(&ctx, pos, &buf[..n])
            .context(|| format!("writing {} at byte {pos}", a.path))?;
        pos += n as u64;
    }
    f.fsync(&ctx).context(|| format!("fsync of {}", a.path))?;
    drop(f);
    fs.unmount(&ctx)
        .context(|| format!("unmounting {}", a.device.shown()))?;
    out!("{}: {pos} bytes from {shown}", a.path);
    Ok(exit::OK)
}
