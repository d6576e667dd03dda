//! bfsperf: SPDK bdevperf's command line and report, for bypassfs block devices and (with
//! `--fs`) for a file of a freshly formatted bypassfs. The work is done by the `bench` library
//! (see its `lib.rs` for a reading order).
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;

use bench::args::{Cli, FsOptions, FsThreads, MemcpySpec, Mode, PerfSpec};
use bench::engine::{self, Job, JobPlan, JobResult};
use bench::error::BenchError;
use bench::report::{self, JobInfo, JobStats};
use bench::{cores, memcpy, memstat};

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
    perf_bdevs(spec)
}

/// The bdev run (no --fs): without -m every job on this thread; with it each core's jobs on
/// a thread pinned to that core (`bench::cores`).
fn perf_bdevs(spec: &PerfSpec) -> Result<ExitCode, BenchError> {
    let bdevs = open_bdevs(spec)?;
    let plans = engine::plan(spec, bdevs)?;
    let mut done = match &spec.cores {
        None => run_jobs(spec, plans, None)?,
        Some(cpus) => {
            // Each core's thread takes its own plans.
            let mut groups: Vec<Vec<JobPlan>> = cpus.iter().map(|_| Vec::new()).collect();
            for plan in plans {
                let at = cpus.iter().position(|&c| Some(c) == plan.core);
                groups[at.expect("plan gives every job a core of -m")].push(plan);
            }
            let groups: Vec<Mutex<Vec<JobPlan>>> = groups.into_iter().map(Mutex::new).collect();
            let per_core = cores::run_on_cores(cpus, |index, _, start| {
                let mine =
                    std::mem::take(&mut *groups[index].lock().unwrap_or_else(|e| e.into_inner()));
                run_jobs(spec, mine, Some((index == 0, start)))
            })?;
            per_core.into_iter().flatten().collect()
        }
    };
    // As bdevperf lists them: by bdev, then core.
    done.sort_by_key(|r| r.index);
    let results: Vec<(JobInfo, JobStats)> = done
        .iter()
        .map(|r| (r.info.clone(), r.stats.clone()))
        .collect();
    print!("{}", report::table(&results));
    // After the run, when the devices' memory has been touched: what backed it.
    let memory = memstat::MemStat::current();
    if let Some(m) = memory {
        println!("{}", m.describe());
    }
    for r in &done {
        if let Some(e) = &r.first_error {
            eprintln!(
                "bfsperf: {} ({}): {} I/Os failed; the first: {e}",
                r.info.name, r.info.core_mask, r.stats.failed
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

/// Opens, prefills and runs `plans` on this thread. With -m, `start` is this core's place at
/// the start line, and whether it is the first core (which announces the run); if another
/// core failed to set up, nothing runs.
fn run_jobs(
    spec: &PerfSpec,
    plans: Vec<JobPlan>,
    start: Option<(bool, &cores::StartLine)>,
) -> Result<Vec<JobResult>, BenchError> {
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
    let announce = match start {
        None => true,
        Some((first, line)) => {
            if !line.wait() {
                return Ok(Vec::new());
            }
            first
        }
    };
    if announce {
        println!("Random seed: {} (-S to repeat)", spec.seed);
        println!("Running I/O for {} seconds...", spec.duration.as_secs_f64());
    }
    engine::run(&mut jobs, spec.duration)?;
    Ok(jobs.iter().map(Job::result).collect())
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

/// `--fs`: formats the one chosen bdev, runs the job on a file of it (with -m one job per
/// core, each on a file of its own, the file size split among them, or with
/// `--shared-file` all on one), reports as `perf`.
fn perf_fs(spec: &PerfSpec, opts: &FsOptions) -> Result<ExitCode, BenchError> {
    let (name, dev) = fs_bdev(spec)?;
    println!("Formatting {name} as a fresh bypassfs...");
    let mut mount = opts.mount_options();
    if opts.fs_threads == FsThreads::Mask {
        mount.background_cpus.clone_from(&spec.cores);
    }
    let (fs, ctx) = bench::fs::format_and_mount_with(dev, mount)?;
    if let Some(meta) = &opts.meta {
        return perf_meta(spec, meta, fs, ctx);
    }
    let jobs = spec.cores.as_ref().map_or(1, Vec::len) as u64;
    let io = spec.io_size as u64;
    let total = match opts.file_size {
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
        file_size: if opts.shared_file {
            total / io * io
        } else {
            total / jobs / io * io
        },
        direct: opts.direct,
        fdatasync_every: opts.fdatasync_every,
        end_fsync: opts.end_fsync,
        one_pass: opts.one_pass,
        duration: spec.duration,
        seed: spec.seed,
    };
    let block_size = fs
        .statfs()
        .map_err(|source| BenchError::Fs {
            what: "statfs".into(),
            source,
        })?
        .block_size;
    bench::fs::check(&job, block_size)?;
    let paths: Vec<String> = match jobs {
        _ if opts.shared_file => vec!["/bfsperf.dat".into()],
        1 => vec!["/bfsperf.dat".into()],
        n => (0..n).map(|k| format!("/bfsperf.{k}.dat")).collect(),
    };
    for path in &paths {
        println!(
            "Writing {path} ({} bytes, {}, not timed)...",
            job.file_size,
            if opts.direct { "direct" } else { "buffered" }
        );
        bench::fs::prefill(&fs, &ctx, path, job.file_size)?;
    }
    // The timed run starts from files as they are long after they were written: committed,
    // the fsync log empty. Left in the log, the prefill's extents made every read of the
    // run look the log's overlay up under its lock, and its 1 MiB pieces kept the overlay
    // out of its one-block form for the writes until the first fold.
    fs.sync(&ctx).map_err(|source| BenchError::Fs {
        what: "sync after the prefill".into(),
        source,
    })?;
    for path in &paths {
        bench::fs::prepare_cache(&fs, &ctx, path, job.file_size, opts.cache)?;
    }
    println!("Random seed: {} (--seed to repeat)", spec.seed);
    if let Some(cpus) = &spec.cores {
        println!(
            "Filesystem threads (folder, timed commit): {}",
            match opts.fs_threads {
                FsThreads::Mask => format!("on the CPUs of -m ({})", bench::args::mask_text(cpus)),
                FsThreads::Anywhere => "anywhere (--fs-threads anywhere)".into(),
            }
        );
    }
    println!("Running I/O for {} seconds...", spec.duration.as_secs_f64());
    let cpu_start = bench::cpustat::Start::now();
    // The filesystem comes from this thread, unpinned; with -m each job runs on a pinned
    // thread with a context of its own, and the filesystem's threads on the CPUs of -m
    // unless --fs-threads says otherwise.
    let done = match &spec.cores {
        None => vec![bench::fs::run_file_job(&fs, &ctx, &paths[0], &job)?],
        Some(cpus) => {
            let per_core = cores::run_on_cores(cpus, |k, cpu, start| {
                let ctx = fs.context().map_err(|source| BenchError::Fs {
                    what: "opening the job thread's context".into(),
                    source,
                })?;
                if !start.wait() {
                    return Ok(None);
                }
                // Jobs sharing the file each go their own random way.
                let (path, job) = match opts.shared_file {
                    true => (
                        &paths[0],
                        bench::fs::FileJobSpec {
                            seed: job.seed.wrapping_add(k as u64),
                            ..job.clone()
                        },
                    ),
                    false => (&paths[k], job.clone()),
                };
                let mut r = bench::fs::run_file_job(&fs, &ctx, path, &job)?;
                r.info.core_mask = bench::args::mask_text(&[cpu]);
                Ok(Some(r))
            })?;
            per_core.into_iter().flatten().collect()
        }
    };
    for r in &done {
        if let Some(t) = r.end_fsync {
            let core = match spec.cores {
                Some(_) => format!(" ({})", r.info.core_mask),
                None => String::new(),
            };
            println!(
                "End fsync{core}: {:.3} ms (counted in the runtime)",
                t.as_secs_f64() * 1e3
            );
        }
    }
    let cpu = cpu_start.end();
    let results: Vec<(JobInfo, JobStats)> = done
        .iter()
        .map(|r| (r.info.clone(), r.stats.clone()))
        .collect();
    print!("{}", report::table(&results));
    if let Some(c) = &cpu {
        println!("{}", bench::cpustat::line(c, &results));
    }
    for r in &done {
        if let Some(e) = &r.first_error {
            eprintln!(
                "bfsperf: {} ({}): {} I/Os failed; the first: {e}",
                r.info.name, r.info.core_mask, r.stats.failed
            );
        }
    }
    finish_fs(spec, fs, &ctx, &results, cpu.as_ref())
}

/// `--fs --meta`: the metadata workload's rows on the fresh filesystem.
fn perf_meta(
    spec: &PerfSpec,
    meta: &bench::meta::MetaSpec,
    fs: fs_core::Filesystem,
    ctx: fs_core::Context,
) -> Result<ExitCode, BenchError> {
    println!(
        "Metadata workload: {} files of {} bytes created, stat'ed, unlinked; a tree of {} x {} \
         files extracted, then synced...",
        meta.files, meta.file_bytes, meta.dirs, meta.files_per_dir
    );
    let bench::meta::MetaRun {
        rows: results,
        first_error,
        extract_sync,
    } = bench::meta::run(&fs, &ctx, meta)?;
    println!(
        "Extract's closing sync: {:.3} ms (counted in its runtime)",
        extract_sync.as_secs_f64() * 1e3
    );
    print!("{}", report::table(&results));
    if let Some(e) = first_error {
        eprintln!("bfsperf: metadata workload: the first failure: {e}");
    }
    finish_fs(spec, fs, &ctx, &results, None)
}

/// The end of a `--fs` run: unmount, the JSON report if asked for, and the exit status
/// (failure when any I/O failed).
fn finish_fs(
    spec: &PerfSpec,
    fs: fs_core::Filesystem,
    ctx: &fs_core::Context,
    results: &[(JobInfo, JobStats)],
    cpu: Option<&bench::cpustat::RunCpu>,
) -> Result<ExitCode, BenchError> {
    fs.unmount(ctx).map_err(|source| BenchError::Fs {
        what: "unmount".into(),
        source,
    })?;
    if let Some(path) = &spec.output_json {
        let mut doc = report::json(results, spec.seed);
        if let Some(c) = cpu {
            doc["cpu"] = bench::cpustat::json(c, results);
        }
        write_json(path, &doc)?;
    }
    Ok(if results.iter().any(|(_, s)| s.failed > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The one bdev of a `--fs` run: `-T`, or the config's only one.
fn fs_bdev(spec: &PerfSpec) -> Result<bdev::config::NamedDevice, BenchError> {
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
    Ok(bdevs.remove(0))
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
