//! Formats an image file, as `bypassfs mkfs --size 64M IMAGE` does, with chosen options;
//! then mounts it and checks what the format made: an empty root directory, the block size
//! asked for, nearly all of the space free, and a clean fsck.
//!
//! Run: `cargo run --example format [IMAGE]` (default: a file in a fresh temporary
//! directory, removed at the end).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use bypassfs::device::{self, Access};
use bypassfs::{Filesystem, FormatOptions, FsckOptions, MountOptions};

const SIZE: u64 = 64 << 20;

fn run(image: PathBuf) -> Result<(), String> {
    // Creates (or extends) the file to SIZE and opens it through io_uring with O_DIRECT,
    // locked against other writers.
    let dev = device::open_with(&image, None, Some(SIZE), Access::ReadWrite)
        .map_err(|e| format!("open {}: {e}", image.display()))?;
    let opts = FormatOptions {
        nodesize: 16 << 10,
        block_size: 4096,
    };
    Filesystem::format(dev.clone(), opts).map_err(|e| format!("format: {e}"))?;

    let fs = Filesystem::mount(dev.clone(), MountOptions::default())
        .map_err(|e| format!("mount: {e}"))?;
    let ctx = fs.context().map_err(|e| format!("context: {e}"))?;
    let st = fs.statfs().map_err(|e| format!("statfs: {e}"))?;
    let root = fs
        .readdir("/", 0, 16)
        .map_err(|e| format!("readdir /: {e}"))?;
    fs.unmount(&ctx).map_err(|e| format!("unmount: {e}"))?;

    if st.block_size != 4096 || st.blocks * st.block_size != SIZE {
        return Err(format!(
            "statfs says {st:?}; formatted {SIZE} bytes of 4 KiB blocks"
        ));
    }
    // Metadata (superblocks, the trees, the fsync log's area) takes the rest.
    if st.blocks_free * 10 < st.blocks * 8 {
        return Err(format!(
            "only {} of {} blocks free after format",
            st.blocks_free, st.blocks
        ));
    }
    if !root.is_empty() {
        return Err(format!("a fresh root holds {} entries", root.len()));
    }
    let report = bypassfs::fsck(dev, &FsckOptions::default()).map_err(|e| format!("fsck: {e}"))?;
    if !report.is_clean() {
        return Err(format!("fsck of a fresh filesystem: {report:?}"));
    }
    println!(
        "formatted {}: {} blocks of {} bytes, {} free; root empty; fsck clean",
        image.display(),
        st.blocks,
        st.block_size,
        st.blocks_free
    );
    Ok(())
}

fn main() -> ExitCode {
    let (image, _dir) = match std::env::args_os().nth(1) {
        Some(p) => (PathBuf::from(p), None),
        None => match tempfile::tempdir() {
            Ok(d) => (d.path().join("format.img"), Some(d)),
            Err(e) => {
                eprintln!("format example: temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match run(image) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("format example: {e}");
            ExitCode::FAILURE
        }
    }
}
