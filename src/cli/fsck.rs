//! `bypassfs fsck`: a read-only check, reported as text or JSON, with e2fsck's exit codes.

use std::sync::Arc;

use bypassfs::device::Access;
use fs_core::{FsckOptions, FsckProgress, FsckReport};
use serde_json::json;

use crate::cli::device::DeviceArgs;
use crate::cli::error::{exit, CliError, Result};
use crate::cli::output::out;
use crate::cli::progress;

/// `fsck DEVICE [--json] [--no-data]`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// Print the report as one JSON document on stdout (also for operational errors).
    #[arg(long = "json")]
    pub json: bool,

    /// Skip reading every data block against its checksum (metadata only: faster).
    #[arg(long = "no-data")]
    pub no_data: bool,
}

pub fn run(a: &Args) -> Result<u8> {
    let shown = a.device.shown();
    let report = check(a);
    match (report, a.json) {
        (Ok(rep), false) => Ok(print_text(&shown, &rep)),
        (Ok(rep), true) => {
            out!("{}", to_json(&shown, &rep));
            Ok(code(&rep))
        }
        (Err(e), false) => Err(e),
        (Err(e), true) => {
            let doc = json!({"device": shown, "exit_code": exit::OPERATIONAL, "error": e.0});
            out!("{doc}");
            Ok(exit::OPERATIONAL)
        }
    }
}

fn check(a: &Args) -> Result<FsckReport> {
    let shown = a.device.shown();
    let dev = a.device.open(None, Access::ReadOnly)?;
    let bars = Arc::new(progress::Phases::new(format!("checking {shown}")));
    let shown_bars = Arc::clone(&bars);
    let opts = FsckOptions {
        check_data: !a.no_data,
        progress: Some(Arc::new(move |p: FsckProgress| {
            shown_bars.update(p.phase, p.done, p.total, p.unit)
        })),
        ..FsckOptions::default()
    };
    let r = fs_core::fsck(dev, &opts);
    bars.finish();
    r.map_err(|e| {
        CliError(format!(
            "checking {shown}: {e} (nothing was checked or changed)"
        ))
    })
}

fn code(rep: &FsckReport) -> u8 {
    if rep.is_clean() {
        exit::OK
    } else {
        exit::FSCK_ERRORS
    }
}

fn print_text(shown: &str, rep: &FsckReport) -> u8 {
    out!("bypassfs fsck {shown}");
    out!(
        "checked: {} metadata nodes (every tree, extent references, free space), {} inodes, \
         {} directory entries, {} data extents (references, checksum coverage), {} data \
         blocks against their checksums",
        rep.nodes,
        rep.inodes,
        rep.entries,
        rep.data_extents,
        rep.blocks_verified
    );
    out!(
        "free: {} bytes, {} of them in whole metadata nodes (the metadata reserve is {})",
        rep.free_bytes,
        rep.node_free_bytes,
        rep.metadata_reserve
    );
    if rep.node_free_bytes < rep.metadata_reserve {
        out!(
            "note: less free space in whole nodes than the metadata reserve (no error): \
             writes get ENOSPC until deleted files give whole nodes back"
        );
    }
    for (i, e) in rep.errors.iter().enumerate() {
        out!("error {}: {e}", i + 1);
    }
    if rep.is_clean() {
        out!("{shown}: clean");
    } else {
        out!(
            "{shown}: {} error(s) found, left uncorrected (exit status {})",
            rep.errors.len(),
            exit::FSCK_ERRORS
        );
    }
    code(rep)
}

fn to_json(shown: &str, rep: &FsckReport) -> serde_json::Value {
    json!({
        "device": shown,
        "clean": rep.is_clean(),
        "exit_code": code(rep),
        "errors": rep.errors,
        "nodes": rep.nodes,
        "inodes": rep.inodes,
        "entries": rep.entries,
        "data_extents": rep.data_extents,
        "blocks_verified": rep.blocks_verified,
        "free_bytes": rep.free_bytes,
        "node_free_bytes": rep.node_free_bytes,
        "metadata_reserve": rep.metadata_reserve,
    })
}
