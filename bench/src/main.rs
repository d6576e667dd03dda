//! bfsperf: SPDK bdevperf's command line and report, for bypassfs block devices.
//!
//! Reading order: `args` (command line) → `engine` (jobs on the bdevs of an SPDK JSON config,
//! built by `bdev::config`; the poll loop; `verify` for the verify workload) → `report`
//! (bdevperf's table, JSON). `memcpy` measures the ceiling a RAM bdev is compared against.
#![forbid(unsafe_code)]

mod args;
mod engine;
mod error;
mod memcpy;
mod memstat;
mod report;
mod rng;
mod verify;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, MemcpySpec, Mode, PerfSpec};
use crate::engine::Job;
use crate::error::BenchError;
use crate::report::{JobInfo, JobStats};

fn main() -> ExitCode {
    // bdev reports set-up problems (e.g. no hugepages) through `log`; show them.
    log::set_logger(&STDERR_LOGGER)
        .map(|()| log::set_max_level(log::LevelFilter::Warn))
        .ok();
    let cli = Cli::parse();
    match cli
        .into_mode()
        .map_err(BenchError::from)
        .and_then(|mode| match mode {
            Mode::Perf(spec) => perf(&spec),
            Mode::Memcpy(spec) => memcpy_limit(&spec),
        }) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bfsperf: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the jobs and reports; fails (exit 1) if any I/O failed, after the full report.
fn perf(spec: &PerfSpec) -> Result<ExitCode, BenchError> {
    let bdevs = match spec.spdk {
        None => bdev::config::open_config_file(&spec.config)?,
        Some(s) => open_with_spdk(&spec.config, s)?,
    };
    let plans = engine::plan(spec, bdevs)?;
    let mut jobs = plans
        .into_iter()
        .map(Job::open)
        .collect::<Result<Vec<_>, _>>()?;
    if spec.prefill {
        for job in &mut jobs {
            println!(
                "Prefilling {} ({} bytes, not timed)...",
                job.info.name,
                job.size_bytes()
            );
            job.prefill()?;
        }
    }
    println!("Random seed: {} (-S to repeat)", spec.seed);
    println!("Running I/O for {} seconds...", spec.duration.as_secs_f64());
    engine::run(&mut jobs, spec.duration)?;
    let results: Vec<(JobInfo, JobStats)> =
        jobs.iter().map(|j| (j.info.clone(), j.stats)).collect();
    print!("{}", report::table(&results));
    // After the run, when the devices' memory has been touched: what backed it.
    let memory = memstat::MemStat::current();
    if let Some(m) = memory {
        println!("{}", m.describe());
    }
    for job in &jobs {
        if let Some(e) = job.first_error() {
            eprintln!(
                "bfsperf: {}: {} I/Os failed; the first: {e}",
                job.info.name, job.stats.failed
            );
        }
    }
    if let Some(path) = &spec.output_json {
        let mut doc = report::json(&results, spec.seed);
        doc["memory"] = memory.map_or(serde_json::Value::Null, |m| m.json());
        write_json(path, &doc)?;
    }
    let failed = results.iter().any(|(_, s)| s.failed > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Starts SPDK with the config and opens its unclaimed bdevs (`--spdk`).
#[cfg(feature = "spdk")]
fn open_with_spdk(
    config: &Path,
    spec: args::SpdkSpec,
) -> Result<Vec<bdev::config::NamedDevice>, BenchError> {
    let opts = bdev::spdk::SpdkEnvOptions {
        name: "bfsperf".into(),
        no_huge: spec.no_huge,
        mem_size_mb: spec.mem_size_mb,
        ..Default::default()
    };
    Ok(bdev::spdk::open_config_file(config, opts)?)
}

/// Without the `spdk` feature `--spdk` is refused while parsing; this is not reached.
#[cfg(not(feature = "spdk"))]
fn open_with_spdk(
    _config: &Path,
    _spec: args::SpdkSpec,
) -> Result<Vec<bdev::config::NamedDevice>, BenchError> {
    Err(args::ArgError(args::NO_SPDK.into()).into())
}

fn memcpy_limit(spec: &MemcpySpec) -> Result<ExitCode, BenchError> {
    println!(
        "Measuring the memcpy limit for {} seconds...",
        spec.duration.as_secs_f64()
    );
    let result = memcpy::measure(spec)?;
    print!("{}", result.table());
    if let Some(path) = &spec.output_json {
        write_json(path, &result.json())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(path: &Path, doc: &serde_json::Value) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(doc).expect("a JSON value always serialises") + "\n";
    std::fs::write(path, text).map_err(|source| BenchError::Output {
        path: path.to_owned(),
        source,
    })
}

/// Prints warnings and errors of every crate to stderr.
struct StderrLogger;

static STDERR_LOGGER: StderrLogger = StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "bfsperf: {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            );
        }
    }
    fn flush(&self) {}
}
