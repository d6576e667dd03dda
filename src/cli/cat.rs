//! `bypassfs cat`: a file's bytes to stdout.

use std::io::Write;

use crate::cli::device::DeviceArgs;
use crate::cli::error::{exit, Result};
use crate::cli::get::copy_out;

/// `cat DEVICE PATH`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// Absolute path inside the filesystem.
    #[arg(value_name = "PATH")]
    pub path: String,
}

pub fn run(a: &Args) -> Result<u8> {
    let (fs, ctx) = a.device.mount(true)?;
    let mut out = std::io::stdout().lock();
    copy_out(&fs, &ctx, &a.path, &mut out, "stdout")?;
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = out.flush();
    Ok(exit::OK)
}
