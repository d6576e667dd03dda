//! The metadata workload of `bfsperf --fs --meta`: small files created, stat'ed and unlinked,
//! and a tree extracted, each phase one row of the table (IOPS = operations a second).
//!
//! Rows, in order, on one thread through fs-core's synchronous API:
//! - `create`: open with `O_CREAT`, write `file_bytes`, close (drop), `files` times, in one
//!   directory;
//! - `stat`: stat each of those files by path;
//! - `unlink`: unlink each of them;
//! - `extract`: `dirs` directories of `files_per_dir` files each, every file created,
//!   written (`file_bytes`) and closed as `tar x` does, then one `sync` whose time is in the
//!   row's runtime (not in any operation's latency): a tree extracted and durable. Its
//!   IOPS are files a second.
//!
//! The same phases through system calls on a kernel filesystem are
//! `bench/scripts/meta.c`, which `bench/scripts/vs-kernel-meta.sh` runs against XFS and
//! ext4 (the `create`, `stat` and `unlink` rows there sync nothing either).

use std::time::{Duration, Instant};

use fs_core::{Context, Filesystem, OpenFlags};

pub use crate::args::MetaSpec;
use crate::error::BenchError;
use crate::memstat;
use crate::report::{JobInfo, JobStats};

/// The rows of a run, and its first failure.
#[derive(Debug)]
pub struct MetaRun {
    pub rows: Vec<(JobInfo, JobStats)>,
    pub first_error: Option<String>,
    /// The extract row's closing sync (in its runtime).
    pub extract_sync: Duration,
}

/// One timed operation on file number `i`.
type Op<'a> = &'a dyn Fn(u64) -> fs_core::Result<()>;

fn fs_err(what: String) -> impl FnOnce(fs_core::Error) -> BenchError {
    move |source| BenchError::Fs { what, source }
}

/// Runs the four phases; a failed operation ends its phase (counted in the row's failures,
/// the first one returned beside the rows).
pub fn run(fs: &Filesystem, ctx: &Context, spec: &MetaSpec) -> Result<MetaRun, BenchError> {
    let mut rows = Vec::new();
    let mut first_error = None;
    let data = vec![0x5au8; spec.file_bytes];
    fs.mkdir("/meta", 0o755)
        .map_err(fs_err("mkdir /meta".into()))?;
    let path = |i: u64| format!("/meta/f{i}");
    let write_file = |p: &str| -> fs_core::Result<()> {
        let f = fs.open(ctx, p, OpenFlags::read_write_create(), 0o644)?;
        if !data.is_empty() {
            f.write_at(ctx, 0, &data)?;
        }
        Ok(())
    };
    let phases: [(&str, Op<'_>); 3] = [
        ("create", &|i| write_file(&path(i))),
        ("stat", &|i| fs.stat(&path(i)).map(drop)),
        ("unlink", &|i| fs.unlink(&path(i))),
    ];
    for (name, op) in phases {
        let (stats, err) = timed_loop(spec.files, op);
        first_error = first_error.or(err.map(|e| format!("{name}: {e}")));
        rows.push((info(name, spec.file_bytes), stats));
    }
    let (stats, err, extract_sync) = extract(fs, ctx, spec, &write_file)?;
    first_error = first_error.or(err.map(|e| format!("extract: {e}")));
    rows.push((info("extract", spec.file_bytes), stats));
    Ok(MetaRun {
        rows,
        first_error,
        extract_sync,
    })
}

/// `op(0..n)`, each call timed; stops at the first failure.
fn timed_loop(n: u64, op: Op<'_>) -> (JobStats, Option<String>) {
    let mut stats = JobStats::new();
    memstat::reset_peak_rss();
    let clock = Instant::now();
    let mut err = None;
    for i in 0..n {
        let start = Instant::now();
        let r = op(i);
        stats.record(start.elapsed().as_nanos() as u64, r.is_ok());
        if let Err(e) = r {
            err = Some(e.to_string());
            break;
        }
    }
    stats.runtime = clock.elapsed();
    stats.peak_rss_kib = memstat::peak_rss_kib();
    (stats, err)
}

/// The extract row: `dirs` × `files_per_dir` files, then a sync in the runtime.
fn extract(
    fs: &Filesystem,
    ctx: &Context,
    spec: &MetaSpec,
    write_file: &dyn Fn(&str) -> fs_core::Result<()>,
) -> Result<(JobStats, Option<String>, Duration), BenchError> {
    let mut stats = JobStats::new();
    memstat::reset_peak_rss();
    let clock = Instant::now();
    let mut err = None;
    'tree: for d in 0..spec.dirs {
        let dir = format!("/tree/d{d}");
        if d == 0 {
            fs.mkdir("/tree", 0o755)
                .map_err(fs_err("mkdir /tree".into()))?;
        }
        if let Err(e) = fs.mkdir(&dir, 0o755) {
            err = Some(format!("mkdir {dir}: {e}"));
            break;
        }
        for f in 0..spec.files_per_dir {
            let start = Instant::now();
            let r = write_file(&format!("{dir}/f{f}"));
            stats.record(start.elapsed().as_nanos() as u64, r.is_ok());
            if let Err(e) = r {
                err = Some(e.to_string());
                break 'tree;
            }
        }
    }
    let sync = Instant::now();
    fs.sync(ctx)
        .map_err(fs_err("sync after the extract".into()))?;
    stats.runtime = clock.elapsed();
    stats.peak_rss_kib = memstat::peak_rss_kib();
    Ok((stats, err, sync.elapsed()))
}

fn info(name: &str, file_bytes: usize) -> JobInfo {
    JobInfo {
        name: name.to_string(),
        workload: "metadata".into(),
        mix_read_percent: None,
        depth: 1,
        io_size: file_bytes,
        core_mask: "0x1".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bdev::mem::MemDevice;

    use super::*;

    #[test]
    fn every_phase_runs_every_operation_and_leaves_the_tree() {
        let dev = Arc::new(MemDevice::new("m", 4096, 16384).unwrap());
        let (fs, ctx) = crate::fs::format_and_mount(dev.clone()).unwrap();
        let spec = MetaSpec {
            files: 50,
            file_bytes: 4096,
            dirs: 3,
            files_per_dir: 7,
            cache_bytes: 0,
            lookup_cache_entries: None,
        };
        let MetaRun {
            rows, first_error, ..
        } = run(&fs, &ctx, &spec).unwrap();
        assert_eq!(first_error, None);
        let names: Vec<&str> = rows.iter().map(|(i, _)| i.name.as_str()).collect();
        assert_eq!(names, ["create", "stat", "unlink", "extract"]);
        let ios: Vec<u64> = rows.iter().map(|(_, s)| s.ios).collect();
        assert_eq!(ios, [50, 50, 50, 21]);
        assert!(rows
            .iter()
            .all(|(_, s)| s.failed == 0 && s.runtime.as_nanos() > 0));
        // The unlink phase removed every file; the extract left its tree, durable.
        assert!(fs.readdir("/meta", 0, 100).unwrap().is_empty());
        fs.unmount(&ctx).unwrap();
        let fs = Filesystem::mount(dev, fs_core::MountOptions::default()).unwrap();
        let ctx = fs.context().unwrap();
        assert_eq!(fs.readdir("/tree", 0, 100).unwrap().len(), 3);
        assert_eq!(fs.stat("/tree/d2/f6").unwrap().size, 4096);
        drop(ctx);
    }
}
