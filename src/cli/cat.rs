//! `bypassfs cat`: a file's bytes to stdout.

use std::io::Write;

use crate::cli::device::DeviceArgs;
use crate::cli::error::{exit, Context, Result};
use crate::cli::get::copy_out;
use crate::cli::output::Stdout;

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
    // A closed pipe (`| head`) ends the command quietly (cli/output.rs).
    let mut out = Stdout::lock();
    copy_out(&fs, &ctx, &a.path, &mut out, "stdout")?;
    out.flush().context(|| "writing stdout".into())?;
    Ok(exit::OK)
}
