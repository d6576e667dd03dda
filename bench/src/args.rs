//! Command line: bdevperf's flags, parsed by clap, then checked into a [`Mode`].
//!
//! Checks that need the devices (I/O size against block size and capacity, `-T` naming a
//! configured bdev) happen later, in `plan`, once the config is open.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

mod fs;
mod parse;

pub use fs::{Budgets, CacheStart, FsOptions, FsThreads, MetaSpec};
use parse::parse_tree;
pub use parse::{mask_text, parse_core_mask, parse_size};

/// The seed used when `--seed` is not given, fixed so that runs are repeatable by default.
pub const DEFAULT_SEED: u64 = 42;

const AFTER_HELP: &str = "\
Differences from SPDK bdevperf:
  * without -m every job runs on one polling thread (the calling one, not pinned); with -m
    every bdev gets one job per core of the mask, each on a slice of the bdev, as bdevperf's
    -C does (-C is accepted and changes nothing); with --fs each of them on a file of its own;
  * I/O errors are counted (Fail/s) and the run goes on, as with bdevperf -f; the exit status
    is 1 if any I/O failed or a verify read mismatched;
  * TO/s is always 0: bfsperf has no I/O timeouts (bdevperf -k);
  * --seed sets the random seed; -S (bdevperf's live-statistics period) is accepted and noted,
    only the final table is printed;
  * latency is timed once per poll-loop iteration, so its resolution is one iteration
    (one Instant::now() per I/O would cost ~20 ns, a large part of a RAM bdev's budget).

Examples:
  bfsperf -c bench/configs/malloc.json -q 128 -o 4096 -w randread -t 5
  bfsperf -c bench/configs/malloc.json -q 32 -o 64k -w randrw -M 70 -t 10 --output-json out.json
  bfsperf --memcpy-limit -o 4096 -t 5
  bfsperf -c bench/configs/malloc.json --fs -q 32 -o 4k -w randwrite -t 5
  bfsperf -c bench/configs/malloc.json --fs --buffered -q 1 -o 4k -w write --fdatasync-every 1 -t 5
  bfsperf -c bench/configs/malloc.json --fs --meta -o 4k --meta-files 20000 --tree 100x200 --meta-cache 512m

With --fs the bdev (one: the only one in the config, or -T) is formatted as a fresh bypassfs
and the workload runs on one file of it, written once over its size before timing. The file
workloads are read, write, randread, randwrite, rw and randrw. --meta runs the metadata
workload instead (small files created, stat'ed, unlinked; a tree extracted), one row each.";

/// bfsperf: a bdevperf-compatible benchmark for bypassfs block devices.
#[derive(Parser, Debug)]
#[command(name = "bfsperf", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// SPDK JSON config describing the bdevs (bdev subsystem, e.g. bdev_malloc_create).
    #[arg(short = 'c', long = "json", value_name = "CONFIG")]
    pub config: Option<PathBuf>,

    /// I/O depth: requests kept in flight per job.
    #[arg(short = 'q', long = "queue-depth", value_name = "DEPTH")]
    pub depth: Option<usize>,

    /// I/O size in bytes; k, m, g suffixes are binary (4k = 4096) as in bdevperf.
    #[arg(short = 'o', long = "io-size", value_name = "SIZE", value_parser = parse_size)]
    pub io_size: Option<usize>,

    /// I/O pattern.
    #[arg(short = 'w', long = "workload", value_name = "TYPE")]
    pub workload: Option<Workload>,

    /// rwmixread: percentage of reads for rw and randrw (100 for reads, 0 for writes).
    #[arg(short = 'M', long = "rwmixread", value_name = "PERCENT")]
    pub read_percent: Option<u32>,

    /// Run time in seconds (fractions allowed).
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub seconds: Option<f64>,

    /// Run only against this bdev. Default: every bdev in the config, one job each.
    #[arg(short = 'T', long = "target", value_name = "BDEV")]
    pub target: Option<String>,

    /// Also write the results as JSON to this file.
    #[arg(long = "output-json", value_name = "PATH")]
    pub output_json: Option<PathBuf>,

    /// Seed of the offset generator (printed with the results, so any run can be repeated).
    #[arg(long = "seed", value_name = "N", default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// Live statistics period in seconds: accepted for bdevperf compatibility; bfsperf prints
    /// only the final table.
    #[arg(short = 'S', value_name = "SECONDS")]
    pub stats_period: Option<f64>,

    /// Core mask, as SPDK's: `0x3`, `3` (hex) or `[0,2-3]`. One job per core of the mask on
    /// each bdev (on its own slice of it, as bdevperf -C), each core's jobs on a thread of
    /// their own pinned to that core before it opens its queues, as SPDK pins its reactors
    /// (and so are the io_uring workers serving it). Without it every job runs on the
    /// calling thread, not pinned.
    #[arg(short = 'm', long = "cpumask", value_name = "MASK")]
    pub cpumask: Option<String>,

    /// bdevperf's "every core runs a job on each bdev": accepted for compatibility; that is
    /// what -m always does here.
    #[arg(short = 'C')]
    pub every_core: bool,

    /// Continue after I/O failures: accepted for bdevperf compatibility; always on.
    #[arg(short = 'f')]
    pub continue_on_failure: bool,

    /// Before timing, write every -o range of each bdev once (not counted). A RAM bdev on
    /// ordinary pages otherwise serves reads of never-written memory from the kernel's shared
    /// zero page, which stays in cache and flatters read results.
    #[arg(long = "prefill")]
    pub prefill: bool,

    /// Run the config through SPDK itself (every method SPDK knows: NVMe, NVMe-oF, lvol,
    /// raid …) instead of mapping its methods onto the native backends. Needs a build with
    /// `--features spdk`.
    #[arg(long = "spdk")]
    pub spdk: bool,

    /// With --spdk: run SPDK without hugepages (as bdevperf --no-huge; give -s too).
    #[arg(long = "no-huge", requires = "spdk")]
    pub no_huge: bool,

    /// With --spdk: memory for SPDK in MiB (bdevperf's -s); default: grow on demand with
    /// hugepages, DPDK's 64 MiB without.
    #[arg(short = 's', long = "mem-size", value_name = "MIB", requires = "spdk")]
    pub mem_size_mb: Option<u32>,

    /// Run the workload on a file of a freshly formatted bypassfs on the bdev (one bdev: -T
    /// or a config with one), through fs-core's asynchronous file API. Formats the bdev.
    #[arg(long = "fs")]
    pub fs: bool,

    /// With --fs: the file's size (default: a quarter of the filesystem's free space, which
    /// leaves copy-on-write room to overwrite it).
    #[arg(long = "file-size", value_name = "SIZE", value_parser = parse_size)]
    pub file_size: Option<usize>,

    /// With --fs: go through bypassfs's page cache (default: direct I/O).
    #[arg(long = "buffered")]
    pub buffered: bool,

    /// With --fs and -m: every core's job runs on one shared file of --file-size (default:
    /// each on a file of its own, the size split among them), each with its own random
    /// offsets (seed + job index).
    #[arg(long = "shared-file", requires = "fs")]
    pub shared_file: bool,

    /// With --fs: an fdatasync after every N writes; its time counts in the latency of the
    /// write that made it due.
    #[arg(long = "fdatasync-every", value_name = "N")]
    pub fdatasync_every: Option<u64>,

    /// With --fs: fsync the file once after the timed I/O and count that fsync's time in the
    /// runtime (like fio's end_fsync=1, but timed), so IOPS and MiB/s include making the data durable.
    #[arg(long = "end-fsync")]
    pub end_fsync: bool,

    /// With --fs: the mount's page cache budget, e.g. 512m (a quarter of it may be dirty
    /// before writers write back); default fs-core's (64 MiB, 16 MiB dirty).
    #[arg(long = "page-cache", value_name = "SIZE", value_parser = parse_size)]
    pub page_cache: Option<usize>,

    /// With --page-cache: the dirty bytes past which writers write back, instead of a
    /// quarter of the page cache (at most all of it).
    #[arg(long = "dirty-cache", value_name = "SIZE", value_parser = parse_size, requires = "page_cache")]
    pub dirty_cache: Option<usize>,

    /// With --fs: the file's pages in the page cache when timing starts: cold (clean pages
    /// dropped after the prefill) or warm (the whole file read once, not timed; give a
    /// --page-cache larger than the file). Default: as the prefill left them.
    #[arg(long = "cache", value_name = "STATE")]
    pub cache: Option<CacheStart>,

    /// With --fs and a sequential workload: stop after one pass over the file (or at -t,
    /// whichever comes first), as fio without time_based; a cold read then reads every
    /// byte from the device once.
    #[arg(long = "one-pass")]
    pub one_pass: bool,

    /// With --fs and -m: where the filesystem's own threads (the folder, which folds and
    /// commits the writes, and the timed commit) run: `mask` (default) on the CPUs of -m,
    /// as SPDK runs every poller on the cores of its mask, so that -m 0x1 measures one
    /// core; `anywhere`: where the scheduler puts them (then -m 0x1 also uses other
    /// cores for the folder).
    #[arg(
        long = "fs-threads",
        value_name = "WHERE",
        requires = "cpumask",
        requires = "fs"
    )]
    pub fs_threads: Option<FsThreads>,

    /// With --fs: the metadata workload instead of -w (-q, -w and -t are not needed): rows
    /// create (+ write -o bytes, default 4k, + close), stat, unlink of --meta-files small
    /// files, and extract (--tree DIRSxFILES, each file created, written, closed; then a
    /// sync, counted in the runtime). IOPS are operations (extract: files) a second.
    #[arg(long = "meta", requires = "fs")]
    pub meta: bool,

    /// With --meta: files of the create, stat and unlink rows (default 20000).
    #[arg(long = "meta-files", value_name = "N", requires = "meta")]
    pub meta_files: Option<u64>,

    /// With --meta: the extract row's tree, DIRSxFILES (default 100x200: 20,000 files).
    #[arg(long = "tree", value_name = "DIRSxFILES", requires = "meta", value_parser = parse_tree)]
    pub tree: Option<(u64, u64)>,

    /// With --meta: the mount's page cache (half of it may be dirty before writers write
    /// back), e.g. 512m; default fs-core's (64 MiB, 16 MiB dirty).
    #[arg(long = "meta-cache", value_name = "SIZE", requires = "meta", value_parser = parse_size)]
    pub meta_cache: Option<usize>,

    /// With --fs: the mount's node cache budget in bytes of memory, e.g. 8m (fs-core's
    /// `MountOptions::metadata_cache_bytes`; default 256 MiB).
    #[arg(long = "metadata-cache", value_name = "SIZE", requires = "fs", value_parser = parse_size)]
    pub metadata_cache: Option<usize>,

    /// With --fs: the mount's fsync overlay budget in bytes of memory, e.g. 1m (fs-core's
    /// `MountOptions::overlay_bytes`; default 64 MiB).
    #[arg(long = "overlay-budget", value_name = "SIZE", requires = "fs", value_parser = parse_size)]
    pub overlay_budget: Option<usize>,

    /// With --meta: entries of the mount's name and attribute caches (0: none, to measure
    /// without them); default fs-core's.
    #[arg(long = "meta-lookup-cache", value_name = "ENTRIES", requires = "meta")]
    pub meta_lookup_cache: Option<usize>,

    /// Measure this machine's random-copy rate instead (the memcpy limit of a RAM bdev):
    /// random -o sized copies out of a 1 GiB DMA buffer, one thread, for -t seconds.
    #[arg(long = "memcpy-limit")]
    pub memcpy_limit: bool,
}

/// bdevperf's `-w` patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Sequential reads.
    Read,
    /// Sequential writes.
    Write,
    /// Uniformly random reads.
    Randread,
    /// Uniformly random writes.
    Randwrite,
    /// Sequential, each I/O a read with probability -M percent, else a write.
    Rw,
    /// Random offsets, each I/O a read with probability -M percent, else a write.
    Randrw,
    /// Sequential write, read back, compare.
    Verify,
    /// Flushes.
    Flush,
    /// Sequential unmaps of -o bytes.
    Unmap,
    /// Sequential write-zeroes of -o bytes.
    #[value(name = "write_zeroes")]
    WriteZeroes,
}

impl Workload {
    /// bdevperf's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::Randread => "randread",
            Workload::Randwrite => "randwrite",
            Workload::Rw => "rw",
            Workload::Randrw => "randrw",
            Workload::Verify => "verify",
            Workload::Flush => "flush",
            Workload::Unmap => "unmap",
            Workload::WriteZeroes => "write_zeroes",
        }
    }

    /// Whether offsets are drawn at random (else they walk the device in order).
    pub fn is_random(self) -> bool {
        matches!(
            self,
            Workload::Randread | Workload::Randwrite | Workload::Randrw
        )
    }

    /// Whether the workload takes a read percentage.
    pub fn is_mixed(self) -> bool {
        matches!(self, Workload::Rw | Workload::Randrw)
    }
}

/// What the command line asks for, checked.
// Built once per run: boxing the larger variant would only make the matching noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Run I/O against bdevs.
    Perf(Box<PerfSpec>),
    /// Measure the memcpy limit.
    Memcpy(MemcpySpec),
}

/// A checked I/O run.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfSpec {
    pub config: PathBuf,
    pub depth: usize,
    pub io_size: usize,
    pub workload: Workload,
    /// Reads per hundred I/Os: 100 for pure reads, 0 for pure writes.
    pub read_percent: u32,
    pub duration: Duration,
    pub target: Option<String>,
    pub output_json: Option<PathBuf>,
    pub seed: u64,
    pub prefill: bool,
    /// Run through SPDK itself (`--spdk`), with these environment settings.
    pub spdk: Option<SpdkSpec>,
    /// Run on a file of a fresh bypassfs (`--fs`).
    pub fs: Option<FsOptions>,
    /// `-m`: the CPUs, ascending; one job per CPU on each bdev, each CPU's on its own
    /// pinned thread.
    pub cores: Option<Vec<usize>>,
}

/// How to start SPDK for `--spdk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpdkSpec {
    pub no_huge: bool,
    pub mem_size_mb: Option<u32>,
}

/// What `--spdk` says in a build without the `spdk` feature.
pub const NO_SPDK: &str = "--spdk: built without SPDK support: rebuild with \
     `cargo build --release -p bench --features spdk` on a host with SPDK installed \
     (pkg-config spdk_bdev, or SPDK_DIR set to a built SPDK tree)";

/// A checked memcpy-limit run.
#[derive(Debug, Clone, PartialEq)]
pub struct MemcpySpec {
    pub io_size: usize,
    pub duration: Duration,
    pub output_json: Option<PathBuf>,
    pub seed: u64,
}

/// A command line that parsed but makes no sense.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ArgError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(msg.into()))
}

impl Cli {
    /// Checks the options that do not need the devices, and notes the ones ignored.
    pub fn into_mode(self) -> Result<Mode, ArgError> {
        let cores = match &self.cpumask {
            Some(m) => Some(parse_core_mask(m).map_err(ArgError)?),
            None => None,
        };
        if self.stats_period.is_some() {
            eprintln!(
                "bfsperf: note: -S (live statistics period) is accepted for bdevperf compatibility; bfsperf prints the final table only"
            );
        }
        let duration = match self.seconds {
            None if self.memcpy_limit => Duration::from_secs(5),
            // The metadata workload runs a number of operations, not a time.
            None if self.meta => Duration::ZERO,
            None => return err("-t/--time SECONDS is required"),
            Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Duration::from_secs_f64(s),
            Some(s) => {
                return err(format!(
                    "-t {s}: run time must be a positive number of seconds"
                ))
            }
        };
        let seed = self.seed;
        if self.memcpy_limit {
            let io_size = self.io_size.unwrap_or(4096);
            if io_size > MEMCPY_MAX_IO {
                return err(format!(
                    "-o {io_size}: memcpy limit copies at most {MEMCPY_MAX_IO} bytes"
                ));
            }
            return Ok(Mode::Memcpy(MemcpySpec {
                io_size,
                duration,
                output_json: self.output_json,
                seed,
            }));
        }
        let Some(config) = self.config.clone() else {
            return err("-c/--json CONFIG is required (an SPDK JSON config describing the bdevs)");
        };
        if self.meta {
            return self.meta_mode(config, cores);
        }
        let Some(depth) = self.depth else {
            return err("-q/--queue-depth DEPTH is required");
        };
        if depth == 0 {
            return err("-q 0: queue depth must be at least 1");
        }
        let Some(io_size) = self.io_size else {
            return err("-o/--io-size SIZE is required");
        };
        let Some(workload) = self.workload else {
            return err("-w/--workload TYPE is required");
        };
        let read_percent = read_percent(workload, self.read_percent)?;
        if self.spdk && !cfg!(feature = "spdk") {
            return err(NO_SPDK);
        }
        let spdk = self.spdk.then_some(SpdkSpec {
            no_huge: self.no_huge,
            mem_size_mb: self.mem_size_mb,
        });
        let fs = self.fs_options(workload)?;
        Ok(Mode::Perf(Box::new(PerfSpec {
            config,
            depth,
            io_size,
            workload,
            read_percent,
            duration,
            target: self.target,
            output_json: self.output_json,
            seed,
            prefill: self.prefill,
            spdk,
            fs,
            cores,
        })))
    }

    /// `--fs --meta`: a file-system run whose job is the metadata workload.
    fn meta_mode(&self, config: PathBuf, cores: Option<Vec<usize>>) -> Result<Mode, ArgError> {
        if cores.is_some() {
            return err("--meta runs on one thread; drop -m");
        }
        let defaults = MetaSpec::default();
        let (dirs, files_per_dir) = self.tree.unwrap_or((defaults.dirs, defaults.files_per_dir));
        let meta = MetaSpec {
            files: self.meta_files.unwrap_or(defaults.files),
            file_bytes: self.io_size.unwrap_or(defaults.file_bytes),
            dirs,
            files_per_dir,
            cache_bytes: self.meta_cache.unwrap_or(0) as u64,
            lookup_cache_entries: self.meta_lookup_cache,
        };
        if meta.files == 0 {
            return err("--meta-files 0: give a number of files, at least 1");
        }
        Ok(Mode::Perf(Box::new(PerfSpec {
            config,
            depth: 1,
            io_size: meta.file_bytes,
            workload: Workload::Write,
            read_percent: 0,
            duration: Duration::ZERO,
            target: self.target.clone(),
            output_json: self.output_json.clone(),
            seed: self.seed,
            prefill: false,
            spdk: self.spdk.then_some(SpdkSpec {
                no_huge: self.no_huge,
                mem_size_mb: self.mem_size_mb,
            }),
            fs: Some(FsOptions {
                file_size: None,
                direct: false,
                fdatasync_every: None,
                end_fsync: false,
                page_cache: None,
                dirty_cache: None,
                cache: CacheStart::AsPrefilled,
                one_pass: false,
                shared_file: false,
                fs_threads: FsThreads::default(),
                meta: Some(meta),
                budgets: self.budgets(),
            }),
            cores: None,
        })))
    }

    /// The `--fs` options, refused without `--fs` and with workloads a file has no use for.
    fn fs_options(&self, workload: Workload) -> Result<Option<FsOptions>, ArgError> {
        if !self.fs {
            let stray = [
                (self.file_size.is_some(), "--file-size"),
                (self.buffered, "--buffered"),
                (self.fdatasync_every.is_some(), "--fdatasync-every"),
                (self.end_fsync, "--end-fsync"),
                (self.page_cache.is_some(), "--page-cache"),
                (self.cache.is_some(), "--cache"),
                (self.one_pass, "--one-pass"),
            ];
            if let Some((_, flag)) = stray.iter().find(|(given, _)| *given) {
                return err(format!("{flag} only applies to --fs runs; add --fs"));
            }
            return Ok(None);
        }
        if matches!(
            workload,
            Workload::Verify | Workload::Flush | Workload::Unmap | Workload::WriteZeroes
        ) {
            return err(format!(
                "-w {} is a bdev workload; with --fs use read, write, randread, randwrite, rw \
                 or randrw",
                workload.name()
            ));
        }
        if self.fdatasync_every == Some(0) {
            return err("--fdatasync-every 0: give a number of writes, at least 1");
        }
        if self.shared_file && self.cpumask.is_none() {
            return err("--shared-file shares the file between the jobs of -m; add -m");
        }
        if self.prefill {
            eprintln!("bfsperf: note: --fs always writes the file once before timing");
        }
        if self.one_pass && workload.is_random() {
            return err(format!(
                "--one-pass: -w {} has no end to reach; use a sequential workload",
                workload.name()
            ));
        }
        if self.page_cache.is_some_and(|c| c < 1 << 20) {
            return err("--page-cache: give at least 1m");
        }
        if let (Some(c), Some(d)) = (self.page_cache, self.dirty_cache) {
            if d > c {
                return err(format!(
                    "--dirty-cache {d}: more than the page cache (--page-cache {c})"
                ));
            }
        }
        Ok(Some(FsOptions {
            file_size: self.file_size.map(|s| s as u64),
            direct: !self.buffered,
            fdatasync_every: self.fdatasync_every,
            end_fsync: self.end_fsync,
            page_cache: self.page_cache.map(|c| c as u64),
            dirty_cache: self.dirty_cache.map(|d| d as u64),
            cache: self.cache.unwrap_or_default(),
            one_pass: self.one_pass,
            shared_file: self.shared_file,
            fs_threads: self.fs_threads.unwrap_or_default(),
            meta: None,
            budgets: self.budgets(),
        }))
    }

    fn budgets(&self) -> Budgets {
        Budgets {
            metadata_cache_bytes: self.metadata_cache.map(|s| s as u64),
            overlay_bytes: self.overlay_budget.map(|s| s as u64),
        }
    }
}

/// Largest copy the memcpy mode accepts (it must fit its 1 GiB source many times over).
pub const MEMCPY_MAX_IO: usize = 64 << 20;

/// The read percentage a workload implies; -M only for rw/randrw, as in bdevperf.
fn read_percent(workload: Workload, given: Option<u32>) -> Result<u32, ArgError> {
    match (workload.is_mixed(), given) {
        (true, None) => err(format!(
            "-M/--rwmixread PERCENT is required for the {} workload (percentage of reads, 0 to 100)",
            workload.name()
        )),
        (true, Some(p)) if p > 100 => err(format!("-M {p}: the read percentage must be 0 to 100")),
        (true, Some(p)) => Ok(p),
        (false, given) => {
            if given.is_some() {
                eprintln!("bfsperf: note: ignoring -M; it only applies to rw and randrw");
            }
            Ok(match workload {
                Workload::Read | Workload::Randread => 100,
                _ => 0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode<S: AsRef<str>>(args: &[S]) -> Result<Mode, String> {
        let argv = std::iter::once("bfsperf").chain(args.iter().map(|s| s.as_ref()));
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.into_mode().map_err(|e| e.0)
    }

    /// A valid command line but for the workload, plus `extra`.
    fn with(extra: &[&str]) -> Vec<String> {
        let base = ["-c", "x.json", "-q", "128", "-o", "4k", "-t", "5"];
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    }

    #[test]
    fn core_masks_parse_as_spdk_writes_them() {
        assert_eq!(parse_core_mask("0x1").unwrap(), vec![0]);
        assert_eq!(parse_core_mask("0X5").unwrap(), vec![0, 2]);
        assert_eq!(parse_core_mask("30").unwrap(), vec![4, 5]);
        assert_eq!(parse_core_mask("[0, 2-3,3]").unwrap(), vec![0, 2, 3]);
        for bad in ["", "0x", "0x0", "zz", "[]", "[3-1]", "[a]", "[0-70000]"] {
            assert!(parse_core_mask(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(mask_text(&[0]), "0x1");
        assert_eq!(mask_text(&[0, 2, 3]), "0xd");
        assert_eq!(mask_text(&[4, 9]), "0x210");
        let Mode::Perf(p) = mode(&with(&["-w", "read", "-m", "[1]"])).unwrap() else {
            panic!("not perf mode")
        };
        assert_eq!(p.cores, Some(vec![1]));
        // bdevperf's -C is accepted: -m already runs a job per core.
        let Mode::Perf(p) = mode(&with(&["-w", "read", "-m", "0x3", "-C"])).unwrap() else {
            panic!("not perf mode")
        };
        assert_eq!(p.cores, Some(vec![0, 1]));
        let e = mode(&with(&["-w", "read", "-m", "0xg"])).unwrap_err();
        assert!(e.contains("not a hex mask"), "{e}");
    }

    #[test]
    fn full_command_line_parses() {
        let Mode::Perf(p) =
            mode(&with(&["-w", "randread", "-T", "Malloc0", "--seed", "9"])).unwrap()
        else {
            panic!("not perf mode")
        };
        assert_eq!(
            (p.depth, p.io_size, p.workload, p.read_percent),
            (128, 4096, Workload::Randread, 100)
        );
        assert_eq!(
            (p.duration, p.target.as_deref(), p.seed),
            (Duration::from_secs(5), Some("Malloc0"), 9)
        );
    }

    #[test]
    fn unknown_workload_is_refused_with_the_choices() {
        let e = mode(&with(&["-w", "randomread"])).unwrap_err();
        assert!(e.contains("randomread") && e.contains("randread"), "{e}");
    }

    #[test]
    fn mix_is_required_and_bounded_for_rw() {
        let e = mode(&with(&["-w", "randrw"])).unwrap_err();
        assert!(e.contains("-M") && e.contains("randrw"), "{e}");
        let e = mode(&with(&["-w", "rw", "-M", "101"])).unwrap_err();
        assert!(e.contains("0 to 100"), "{e}");
        let Mode::Perf(p) = mode(&with(&["-w", "rw", "-M", "70"])).unwrap() else {
            panic!()
        };
        assert_eq!(p.read_percent, 70);
    }

    #[test]
    fn missing_and_zero_values_are_errors() {
        assert!(mode(&["-q", "1", "-o", "4096", "-w", "read", "-t", "1"])
            .unwrap_err()
            .contains("-c"));
        assert!(mode(&with(&[])).unwrap_err().contains("-w"));
        let e = mode(&["-c", "x", "-q", "0", "-o", "4096", "-w", "read", "-t", "1"]).unwrap_err();
        assert!(e.contains("queue depth"), "{e}");
        let e = mode(&["-c", "x", "-q", "1", "-o", "4096", "-w", "read", "-t", "0"]).unwrap_err();
        assert!(e.contains("run time"), "{e}");
        assert!(mode(&["-c", "x", "-q", "1", "-o", "0", "-w", "read", "-t", "1"]).is_err());
    }

    #[test]
    fn sizes_parse_like_bdevperf() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("4q").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
    }

    #[test]
    fn spdk_flag_needs_the_feature() {
        let r = mode(&with(&[
            "-w",
            "randread",
            "--spdk",
            "--no-huge",
            "-s",
            "2048",
        ]));
        if cfg!(feature = "spdk") {
            let Mode::Perf(p) = r.unwrap() else { panic!() };
            let want = SpdkSpec {
                no_huge: true,
                mem_size_mb: Some(2048),
            };
            assert_eq!(p.spdk, Some(want));
        } else {
            let e = r.unwrap_err();
            assert!(
                e.contains("--features spdk") && e.contains("spdk_bdev"),
                "{e}"
            );
        }
        // SPDK's memory options mean nothing without --spdk.
        assert!(mode(&with(&["-w", "randread", "--no-huge"])).is_err());
        let Mode::Perf(p) = mode(&with(&["-w", "randread"])).unwrap() else {
            panic!()
        };
        assert_eq!(p.spdk, None);
    }

    #[test]
    fn fs_options_need_fs_and_a_file_workload() {
        let e = mode(&with(&["-w", "write", "--buffered"])).unwrap_err();
        assert!(e.contains("--buffered") && e.contains("--fs"), "{e}");
        let e = mode(&with(&["-w", "write", "--file-size", "1M"])).unwrap_err();
        assert!(e.contains("--file-size"), "{e}");
        let e = mode(&with(&["--fs", "-w", "verify"])).unwrap_err();
        assert!(e.contains("verify") && e.contains("randwrite"), "{e}");
        let e = mode(&with(&["--fs", "-w", "write", "--fdatasync-every", "0"])).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = mode(&with(&["-w", "write", "--end-fsync"])).unwrap_err();
        assert!(e.contains("--end-fsync") && e.contains("--fs"), "{e}");
        let Mode::Perf(p) = mode(&with(&[
            "--fs",
            "-w",
            "randwrite",
            "--file-size",
            "64M",
            "--buffered",
            "--fdatasync-every",
            "8",
            "--end-fsync",
            "--overlay-budget",
            "1m",
            "--page-cache",
            "256m",
            "--cache",
            "cold",
        ]))
        .unwrap() else {
            panic!()
        };
        let want = FsOptions {
            file_size: Some(64 << 20),
            direct: false,
            fdatasync_every: Some(8),
            end_fsync: true,
            page_cache: Some(256 << 20),
            dirty_cache: None,
            cache: CacheStart::Cold,
            one_pass: false,
            shared_file: false,
            fs_threads: FsThreads::Mask,
            meta: None,
            budgets: Budgets {
                metadata_cache_bytes: None,
                overlay_bytes: Some(1 << 20),
            },
        };
        assert_eq!(p.fs, Some(want.clone()));
        let m = want.mount_options();
        assert_eq!(m.overlay_bytes, 1 << 20);
        assert_eq!(
            m.metadata_cache_bytes,
            fs_core::MountOptions::default().metadata_cache_bytes
        );
        let e = mode(&with(&["--fs", "-w", "randread", "--one-pass"])).unwrap_err();
        assert!(e.contains("--one-pass") && e.contains("sequential"), "{e}");
        let big = [
            "--fs",
            "-w",
            "write",
            "--page-cache",
            "1m",
            "--dirty-cache",
            "2m",
        ];
        let e = mode(&with(&big)).unwrap_err();
        assert!(
            e.contains("--dirty-cache") && e.contains("--page-cache"),
            "{e}"
        );
        let e = mode(&with(&["-w", "read", "--cache", "warm"])).unwrap_err();
        assert!(e.contains("--cache") && e.contains("--fs"), "{e}");
        let shared = with(&["--fs", "-w", "randread", "-m", "0x3", "--shared-file"]);
        let Mode::Perf(p) = mode(&shared).unwrap() else {
            panic!()
        };
        assert!(p.fs.is_some_and(|f| f.shared_file));
        let e = mode(&with(&["--fs", "-w", "randread", "--shared-file"])).unwrap_err();
        assert!(e.contains("add -m"), "{e}");
    }

    #[test]
    fn meta_needs_no_workload_and_takes_its_sizes() {
        let Mode::Perf(p) = mode(&["-c", "x.json", "--fs", "--meta"]).unwrap() else {
            panic!()
        };
        let meta = p.fs.and_then(|f| f.meta).unwrap();
        assert_eq!(meta, MetaSpec::default());
        let Mode::Perf(p) = mode(&[
            "-c",
            "x.json",
            "--fs",
            "--meta",
            "-o",
            "1k",
            "--meta-files",
            "10",
            "--tree",
            "3x4",
        ])
        .unwrap() else {
            panic!()
        };
        let meta = p.fs.and_then(|f| f.meta).unwrap();
        assert_eq!(
            (meta.files, meta.file_bytes, meta.dirs, meta.files_per_dir),
            (10, 1024, 3, 4)
        );
        assert!(
            mode(&["-c", "x.json", "--meta"]).is_err(),
            "--meta needs --fs"
        );
        assert!(mode(&["-c", "x.json", "--fs", "--meta", "--tree", "0x5"]).is_err());
        assert!(mode(&["-c", "x.json", "--fs", "--meta", "-m", "0x3"]).is_err());
    }

    #[test]
    fn memcpy_mode_needs_no_config() {
        let Mode::Memcpy(m) = mode(&["--memcpy-limit"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.io_size, m.duration, m.seed),
            (4096, Duration::from_secs(5), DEFAULT_SEED)
        );
    }
}
