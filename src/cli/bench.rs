//! `bypassfs bench`: a short mix on a freshly formatted bypassfs, as a bdevperf table (the
//! formatting and the jobs are `bench::fs`'s, the table `bench::report`'s, so `bfsperf --fs`
//! and this command measure and print the same way).
//!
//! The mix, one row each: 4 KiB direct random reads and writes at depth 128, 1 MiB buffered
//! sequential writes with an fsync every 64 MiB, 4 KiB buffered writes each followed by
//! fdatasync (a log's pattern), and create+write / stat / unlink of 4 KiB files.

use std::sync::Arc;
use std::time::Duration;

use bdev::mem::MemDevice;
use bdev::BlockDevice;
use bench::args::Workload;
use bench::fs::{FileJobResult, FileJobSpec};
use bench::report::{self, JobInfo, JobStats};
use bypassfs::device::Access;

use crate::cli::device::{holds_bypassfs, parse_size, DeviceArgs};
use crate::cli::error::{exit, CliError, Context, Result};
use crate::cli::output::out;
use crate::cli::progress;

/// Where the data workloads run.
const FILE: &str = "/bench.dat";
const SEED: u64 = 42;

/// `bench [--device DEVICE] [-t SECONDS] [--json]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run on this device instead of a RAM one. It is FORMATTED: everything on it is lost.
    #[arg(long = "device", value_name = "DEVICE")]
    pub device: Option<std::path::PathBuf>,

    /// With a JSON config of several bdevs: the one to use.
    #[arg(long = "bdev", value_name = "NAME", requires = "device")]
    pub bdev: Option<String>,

    #[command(flatten)]
    pub spdk: crate::cli::spdk::SpdkArgs,

    /// Format --device even if it already holds a bypassfs.
    #[arg(long = "force", requires = "device")]
    pub force: bool,

    /// Seconds per workload (fractions allowed).
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 1.0
    )]
    pub seconds: f64,

    /// Size of the RAM device made when no --device is given.
    #[arg(long = "size", value_name = "SIZE", value_parser = parse_size, default_value = "1G", conflicts_with = "device")]
    pub size: u64,

    /// Size of the file the data workloads run on (default: a quarter of the device, at
    /// most 256 MiB).
    #[arg(long = "file-size", value_name = "SIZE", value_parser = parse_size)]
    pub file_size: Option<u64>,

    /// Print bfsperf's JSON document on stdout instead of the table.
    #[arg(long = "json")]
    pub json: bool,
}

/// One row of the mix.
struct DataJob {
    name: &'static str,
    workload: Workload,
    depth: usize,
    io_size: usize,
    direct: bool,
    fdatasync_every: Option<u64>,
}

const MIX: [DataJob; 4] = [
    DataJob {
        name: "randread-4k",
        workload: Workload::Randread,
        depth: 128,
        io_size: 4096,
        direct: true,
        fdatasync_every: None,
    },
    DataJob {
        name: "randwrite-4k",
        workload: Workload::Randwrite,
        depth: 128,
        io_size: 4096,
        direct: true,
        fdatasync_every: None,
    },
    DataJob {
        name: "write-1m-fsync",
        workload: Workload::Write,
        depth: 4,
        io_size: 1 << 20,
        direct: false,
        fdatasync_every: Some(64),
    },
    DataJob {
        name: "write-4k-fdatasync",
        workload: Workload::Write,
        depth: 1,
        io_size: 4096,
        direct: false,
        fdatasync_every: Some(1),
    },
];

pub fn run(a: &Args) -> Result<u8> {
    if !(a.seconds.is_finite() && a.seconds > 0.0 && a.seconds < 1e6) {
        return Err(CliError(format!(
            "-t {}: give a positive number of seconds per workload",
            a.seconds
        )));
    }
    let duration = Duration::from_secs_f64(a.seconds);
    let dev = device(a)?;
    let shown = dev.name().to_string();
    let size_bytes = dev.geometry().size_bytes();
    let pb = progress::bar(MIX.len() as u64 + 1);
    pb.set_message(format!("formatting {shown} and writing {FILE}"));
    let (fs, ctx) = bench::fs::format_and_mount(dev).context(|| format!("bench on {shown}"))?;
    let file_size = match a.file_size {
        Some(s) => s,
        None => (size_bytes / 4).min(256 << 20),
    } / (1 << 20)
        * (1 << 20);
    if file_size == 0 {
        return Err(CliError(format!(
            "--file-size: the data file must be at least 1 MiB (the mix writes 1 MiB blocks); \
             {shown} has {size_bytes} bytes"
        )));
    }
    bench::fs::prefill(&fs, &ctx, FILE, file_size)
        .context(|| format!("writing {FILE} ({file_size} bytes) before timing"))?;
    let mut results: Vec<FileJobResult> = Vec::new();
    for job in &MIX {
        pb.set_message(job.name);
        let spec = FileJobSpec {
            name: job.name.to_string(),
            workload: job.workload,
            read_percent: if job.workload == Workload::Randread {
                100
            } else {
                0
            },
            depth: job.depth,
            io_size: job.io_size,
            file_size,
            direct: job.direct,
            fdatasync_every: job.fdatasync_every,
            end_fsync: false,
            one_pass: false,
            duration,
            seed: SEED,
        };
        let r = bench::fs::run_file_job(&fs, &ctx, FILE, &spec)
            .context(|| format!("bench {}", job.name))?;
        results.push(r);
        pb.inc(1);
    }
    pb.set_message("metadata");
    let meta = bench::fs::run_metadata_job(&fs, &ctx, "/meta", 4096, duration)
        .context(|| "bench metadata".to_string())?;
    results.push(meta);
    pb.finish_and_clear();
    fs.unmount(&ctx).context(|| format!("unmounting {shown}"))?;
    report_results(a, &shown, file_size, &results);
    let failed = results.iter().any(|r| r.stats.failed > 0);
    Ok(if failed { exit::IO_FAILED } else { exit::OK })
}

/// The device: a fresh RAM one, or `--device` (refused if it holds a bypassfs, unless
/// `--force`).
fn device(a: &Args) -> Result<Arc<dyn BlockDevice>> {
    let Some(path) = &a.device else {
        if a.spdk.spdk {
            return Err(CliError(
                "--spdk runs --device CONFIG through SPDK: give the config (and --bdev NAME)"
                    .into(),
            ));
        }
        let blocks = a.size / 4096;
        let dev = MemDevice::new("Malloc0", 4096, blocks)
            .context(|| format!("making a {} MiB RAM device", a.size >> 20))?;
        return Ok(Arc::new(dev));
    };
    let args = DeviceArgs {
        device: path.clone(),
        bdev: a.bdev.clone(),
        spdk: a.spdk.clone(),
    };
    let dev = args.open(None, Access::ReadWrite)?;
    if !a.force && holds_bypassfs(&dev) {
        return Err(CliError(format!(
            "{} holds a bypassfs and bench formats its device; add --force to lose its \
             contents, or leave out --device to run on RAM",
            args.shown()
        )));
    }
    Ok(dev)
}

fn report_results(a: &Args, device: &str, file_size: u64, results: &[FileJobResult]) {
    let rows: Vec<(JobInfo, JobStats)> = results
        .iter()
        .map(|r| (r.info.clone(), r.stats.clone()))
        .collect();
    if a.json {
        let mut doc = report::json(&rows, SEED);
        doc["device"] = device.into();
        doc["file_size"] = file_size.into();
        out!("{doc:#}");
    } else {
        out!(
            "bypassfs bench on {device}: {} s per workload, data workloads on {FILE} ({} MiB)",
            a.seconds,
            file_size >> 20
        );
        out!("{}", report::table(&rows).trim_end_matches('\n'));
    }
    for r in results {
        if let Some(e) = &r.first_error {
            eprintln!(
                "bypassfs: bench {}: {} I/Os failed; the first: {e}",
                r.info.name, r.stats.failed
            );
        }
    }
}
