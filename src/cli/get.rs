//! `bypassfs get`: copy a file out of the filesystem.

use std::io::Write;
use std::path::PathBuf;

use fs_core::{Context as FsContext, Filesystem, OpenFlags};

use crate::cli::device::DeviceArgs;
use crate::cli::error::{exit, Context, Result};
use crate::cli::output::out;

/// Bytes per read.
const CHUNK: usize = 1 << 20;

/// `get DEVICE PATH LOCAL_FILE`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// Absolute path inside the filesystem.
    #[arg(value_name = "PATH")]
    pub path: String,

    /// Where to write it (created or truncated).
    #[arg(value_name = "LOCAL_FILE")]
    pub local: PathBuf,
}

pub fn run(a: &Args) -> Result<u8> {
    let (fs, ctx) = a.device.mount(true)?;
    let shown = a.local.display().to_string();
    // Open the source first: a wrong PATH must not leave an empty local file behind.
    fs.stat(&a.path).context(|| format!("get {}", a.path))?;
    let mut out = std::fs::File::create(&a.local).context(|| format!("creating {shown}"))?;
    let n = copy_out(&fs, &ctx, &a.path, &mut out, &shown)?;
    out.sync_all().context(|| format!("fsync of {shown}"))?;
    out!("{}: {n} bytes to {shown}", a.path);
    Ok(exit::OK)
}

/// Copies the file `path` into `out`; returns the bytes copied.
pub fn copy_out(
    fs: &Filesystem,
    ctx: &FsContext,
    path: &str,
    out: &mut dyn Write,
    out_name: &str,
) -> Result<u64> {
    let f = fs
        .open(ctx, path, OpenFlags::read_only(), 0)
        .context(|| format!("opening {path}"))?;
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    loop {
        let n = f
            .read_at(ctx, pos, &mut buf)
            .context(|| format!("reading {path} at byte {pos}"))?;
        if n == 0 {
            return Ok(pos);
        }
        out.write_all(&buf[..n])
            .context(|| format!("writing {out_name}"))?;
        pos += n as u64;
    }
}
