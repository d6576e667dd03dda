//! bfsperf: SPDK bdevperf's command line and report, for bypassfs block devices and (with
//! `--fs`) for a file of a freshly formatted bypassfs. The work is done by the `bench` library
//! (see its `lib.rs` for a reading order).
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use bench::args::{Cli, FsOptions, MemcpySpec, Mode, PerfSpec};
use bench::engine::{self, Job};
use bench::error::BenchError;
use bench::report::{self, JobInfo, JobStats};
use bench::{memcpy, memstat};

/// The binaries use mimalloc: the fold's many node-sized allocations ran 15 % slower on
/// glibc's allocator (docs/ARCHITECTURE.md, "Dependencies and why").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    if let Some(fs) = &spec.fs {
        return perf_fs(spec, fs);
    }
    on_job_thread(spec, || perf_bdevs(spec))
}

/// Runs `f` on a thread pinned to `-m`'s CPUs, or without -m on this thread. The thread is
/// pinned before `f` opens any queue: io_uring workers take the affinity of the thread they
/// serve when they are created, and keep it (`bdev::affinity`).
fn on_job_thread<T: Send>(
    spec: &PerfSpec,
    f: impl FnOnce() -> Result<T, BenchError> + Send,
) -> Result<T, BenchError> {
    let Some((cpus, _)) = &spec.pin else {
        return f();
    };
    std::thread::scope(|s| {
        let job = s.spawn(|| {
            bdev::affinity::pin_current_thread(cpus)?;
            f()
        });
        job.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// The bdev run (no --fs): every job on this thread.
fn perf_bdevs(spec: &PerfSpec) -> Result<ExitCode, BenchError> {
    let bdevs = open_bdevs(spec)?;
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
    let mask = |mut info: JobInfo| {
        if let Some((_, m)) = &spec.pin {
            info.core_mask = m.clone();
        }
        info
    };
    let results: Vec<(JobInfo, JobStats)> = jobs
        .iter()
        .map(|j| (mask(j.info.clone()), j.stats))
        .collect();
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

/// The config's bdevs: through SPDK itself with `--spdk`, else the native backends.
fn open_bdevs(spec: &PerfSpec) -> Result<Vec<bdev::config::NamedDevice>, BenchError> {
    match spec.spdk {
        None => Ok(bdev::config::open_config_file(&spec.config)?),
        Some(s) => open_with_spdk(&spec.config, s),
    }
}

/// Starts SPDK with the config and opens its unclaimed bdevs (`--spdk`).
#[cfg(feature = "spdk")]
fn open_with_spdk(
    config: &Path,
    spec: bench::args::SpdkSpec,
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
    _spec: bench::args::SpdkSpec,
) -> Result<Vec<bdev::config::NamedDevice>, BenchError> {
    Err(bench::args::ArgError(bench::args::NO_SPDK.into()).into())
}

/// `--fs`: formats the one chosen bdev, runs the job on a file of it, reports as `perf`.
fn perf_fs(spec: &PerfSpec, opts: &FsOptions) -> Result<ExitCode, BenchError> {
    let mut bdevs = open_bdevs(spec)?;
    let names = bdevs
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(t) = &spec.target {
        bdevs.retain(|(n, _)| n == t);
        if bdevs.is_empty() {
            return Err(BenchError::Plan(format!(
                "-T {t}: no such bdev in {} (it has: {names})",
                spec.config.display()
            )));
        }
    }
    if bdevs.len() != 1 {
        return Err(BenchError::Plan(format!(
            "--fs runs on one bdev; pick one with -T (the config has: {names})"
        )));
    }
    let (name, dev) = bdevs.remove(0);
    println!("Formatting {name} as a fresh bypassfs...");
    let (fs, ctx) = bench::fs::format_and_mount(dev)?;
    let file_size = match opts.file_size {
        Some(s) => s,
        None => {
            bench::fs::default_file_size(&fs, spec.io_size, bench::fs::DEFAULT_FILE_SHARE_PERCENT)?
        }
    };
    let job = bench::fs::FileJobSpec {
        name,
        workload: spec.workload,
        read_percent: spec.read_percent,
        depth: spec.depth,
        io_size: spec.io_size,
        file_size,
        direct: opts.direct,
        fdatasync_every: opts.fdatasync_every,
        end_fsync: opts.end_fsync,
        duration: spec.duration,
        seed: spec.seed,
    };
    println!(
        "Writing /bfsperf.dat ({file_size} bytes, {}, not timed)...",
        if opts.direct { "direct" } else { "buffered" }
    );
    println!("Random seed: {} (--seed to repeat)", spec.seed);
    println!("Running I/O for {} seconds...", spec.duration.as_secs_f64());
    // The filesystem (and its folder thread) comes from this thread, unpinned; with -m the
    // job runs on a pinned thread with a context of its own.
    let r = match &spec.pin {
        None => bench::fs::run_file_job(&fs, &ctx, "/bfsperf.dat", &job)?,
        Some((_, mask)) => {
            let mut r = on_job_thread(spec, || {
                let ctx = fs.context().map_err(|source| BenchError::Fs {
                    what: "opening the job thread's context".into(),
                    source,
                })?;
                bench::fs::run_file_job(&fs, &ctx, "/bfsperf.dat", &job)
            })?;
            r.info.core_mask = mask.clone();
            r
        }
    };
    if let Some(t) = r.end_fsync {
        println!(
            "End fsync: {:.3} ms (counted in the runtime)",
            t.as_secs_f64() * 1e3
        );
    }
    let results = vec![(r.info.clone(), r.stats)];
    print!("{}", report::table(&results));
    if let Some(e) = &r.first_error {
        eprintln!(
            "bfsperf: {}: {} I/Os failed; the first: {e}",
            r.info.name, r.stats.failed
        );
    }
    fs.unmount(&ctx).map_err(|source| BenchError::Fs {
        what: "unmount".into(),
        source,
    })?;
    if let Some(path) = &spec.output_json {
        write_json(path, &report::json(&results, spec.seed))?;
    }
    Ok(if r.stats.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
