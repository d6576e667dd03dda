//! Results: bdevperf's table on stdout and a JSON document.
//!
//! The table reproduces bdevperf's `printf` formats column for column (SPDK v24.x, where the
//! `Job:` line also names workload, depth and I/O size), so scripts that scrape bdevperf
//! output read ours too. If you change a format here, compare with bdevperf's
//! `performance_dump_job_stdout` and `bdevperf_test_done`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::args::Workload;
use crate::latency::Histogram;

/// What a job was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct JobInfo {
    /// The bdev name (bdevperf names a job after its bdev), or a file workload's name.
    pub name: String,
    /// bdevperf's workload name (`randread` …), or another word for workloads bdevperf
    /// does not have (`bypassfs bench`'s `metadata`).
    pub workload: String,
    /// Reads per hundred I/Os of a mixed workload (`rw`, `randrw`): printed as bdevperf's
    /// `percentage`; `None` for the others.
    pub mix_read_percent: Option<u32>,
    pub depth: usize,
    pub io_size: usize,
    /// The core mask printed (bdevperf's format has one): the CPUs the job thread was pinned
    /// to with -m, else `0x1`, bdevperf's default, although the thread is then not pinned.
    pub core_mask: String,
}

impl JobInfo {
    /// A job of one of bdevperf's workloads.
    pub fn new(
        name: String,
        workload: Workload,
        read_percent: u32,
        depth: usize,
        io_size: usize,
    ) -> JobInfo {
        JobInfo {
            name,
            workload: workload.name().to_string(),
            mix_read_percent: workload.is_mixed().then_some(read_percent),
            depth,
            io_size,
            core_mask: "0x1".into(),
        }
    }
}

/// What a job measured. Latencies in nanoseconds; `ios` counts successful I/Os.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    pub ios: u64,
    pub failed: u64,
    pub latency_ns_total: u64,
    /// `u64::MAX` until the first I/O completes.
    pub latency_ns_min: u64,
    pub latency_ns_max: u64,
    /// Every latency, for the p99.
    pub latency_ns: Histogram,
    pub runtime: Duration,
    /// The process's peak resident memory while the job ran, in KiB (`memstat`); `None`
    /// where it could not be read. Jobs that run together share one process, so one peak.
    pub peak_rss_kib: Option<u64>,
}

impl JobStats {
    /// Nothing measured yet.
    pub fn new() -> JobStats {
        JobStats {
            latency_ns_min: u64::MAX,
            ..JobStats::default()
        }
    }

    /// Adds one finished I/O that took `latency_ns`.
    #[inline(always)]
    pub fn record(&mut self, latency_ns: u64, ok: bool) {
        self.ios += u64::from(ok);
        self.failed += u64::from(!ok);
        self.latency_ns_total += latency_ns;
        self.latency_ns_min = self.latency_ns_min.min(latency_ns);
        self.latency_ns_max = self.latency_ns_max.max(latency_ns);
        self.latency_ns.record(latency_ns);
    }

    /// The 99th percentile latency (at most 1/32 above the true one, never above the max).
    pub fn latency_ns_p99(&self) -> u64 {
        self.latency_ns.quantile_ns(990).min(self.latency_ns_max)
    }
}

/// One line of the table, in bdevperf's units.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub runtime_s: f64,
    pub iops: f64,
    pub mibps: f64,
    pub fail_per_s: f64,
    pub timeout_per_s: f64,
    pub avg_latency_us: f64,
    pub min_latency_us: f64,
    pub max_latency_us: f64,
    /// Not in bdevperf's table: printed below it ([`tail_lines`]).
    pub p99_latency_us: f64,
    /// The peak resident memory of the process while the job ran, in MiB, if known.
    pub peak_rss_mib: Option<f64>,
}

impl Row {
    /// bdevperf's arithmetic: IOPS counts successful I/Os, latency averages over all of them.
    pub fn of(stats: &JobStats, io_size: usize) -> Row {
        let secs = stats.runtime.as_secs_f64().max(f64::MIN_POSITIVE);
        let iops = stats.ios as f64 / secs;
        let finished = stats.ios + stats.failed;
        let us = |ns: u64| ns as f64 / 1000.0;
        Row {
            runtime_s: stats.runtime.as_secs_f64(),
            iops,
            mibps: iops * io_size as f64 / f64::from(1 << 20),
            fail_per_s: stats.failed as f64 / secs,
            timeout_per_s: 0.0,
            avg_latency_us: if finished == 0 {
                0.0
            } else {
                us(stats.latency_ns_total) / finished as f64
            },
            min_latency_us: if finished == 0 {
                0.0
            } else {
                us(stats.latency_ns_min)
            },
            max_latency_us: us(stats.latency_ns_max),
            p99_latency_us: us(stats.latency_ns_p99()),
            peak_rss_mib: stats.peak_rss_kib.map(|k| k as f64 / 1024.0),
        }
    }

    /// The Total row: rates add up, latency is averaged over every I/O of every job.
    pub fn total(jobs: &[(JobInfo, JobStats)]) -> Row {
        let rows: Vec<Row> = jobs.iter().map(|(i, s)| Row::of(s, i.io_size)).collect();
        let finished: u64 = jobs.iter().map(|(_, s)| s.ios + s.failed).sum();
        let latency_ns: u64 = jobs.iter().map(|(_, s)| s.latency_ns_total).sum();
        let with_ios = || {
            rows.iter()
                .zip(jobs)
                .filter(|(_, (_, s))| s.ios + s.failed > 0)
                .map(|(r, _)| r)
        };
        Row {
            runtime_s: rows.iter().map(|r| r.runtime_s).fold(0.0, f64::max),
            iops: rows.iter().map(|r| r.iops).sum(),
            mibps: rows.iter().map(|r| r.mibps).sum(),
            fail_per_s: rows.iter().map(|r| r.fail_per_s).sum(),
            timeout_per_s: 0.0,
            avg_latency_us: if finished == 0 {
                0.0
            } else {
                latency_ns as f64 / 1000.0 / finished as f64
            },
            min_latency_us: with_ios()
                .map(|r| r.min_latency_us)
                .reduce(f64::min)
                .unwrap_or(0.0),
            max_latency_us: with_ios().map(|r| r.max_latency_us).fold(0.0, f64::max),
            p99_latency_us: total_stats(jobs).latency_ns_p99() as f64 / 1000.0,
            peak_rss_mib: rows.iter().filter_map(|r| r.peak_rss_mib).reduce(f64::max),
        }
    }

    /// The columns after the runtime: `IOPS MiB/s Fail/s TO/s Average min max`.
    fn rates(&self) -> String {
        format!(
            "{:10.2} {:10.2} {:10.2} {:8.2} {:10.2} {:10.2} {:10.2}",
            self.iops,
            self.mibps,
            self.fail_per_s,
            self.timeout_per_s,
            self.avg_latency_us,
            self.min_latency_us,
            self.max_latency_us
        )
    }
}

/// The two heading lines, preceded by an empty line as in bdevperf.
pub fn header() -> String {
    format!(
        "\n{:>107}\n {:<28}: {:>10} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10}\n",
        "Latency(us)",
        "Device Information",
        "runtime(s)",
        "IOPS",
        "MiB/s",
        "Fail/s",
        "TO/s",
        "Average",
        "min",
        "max"
    )
}

/// A job's two lines: what it ran, then its numbers.
pub fn job_lines(info: &JobInfo, row: &Row) -> String {
    let mix = match info.mix_read_percent {
        Some(p) => format!(", percentage: {p}"),
        None => String::new(),
    };
    format!(
        "Job: {} (Core Mask {}, workload: {}{mix}, depth: {}, IO size: {})\n\t {:<20}: {:10.2} {}\n",
        info.name,
        info.core_mask,
        info.workload,
        info.depth,
        info.io_size,
        info.name,
        row.runtime_s,
        row.rates()
    )
}

/// The separator and the Total line (no runtime, as in bdevperf).
pub fn total_lines(total: &Row) -> String {
    format!(
        " {}\n {:<28}: {:>10} {}\n",
        "=".repeat(115),
        "Total",
        "",
        total.rates()
    )
}

/// What bdevperf's table does not show, below it: per job and in total, the 99th
/// percentile and worst latency and the peak resident memory (a separate table, so that
/// scripts reading bdevperf's columns read ours unchanged).
pub fn tail_lines(jobs: &[(JobInfo, JobStats)]) -> String {
    let mut out = format!(
        "\n {:<28}: {:>10} {:>10} {:>14}\n",
        "Tail latency(us), memory", "p99", "max", "peak RSS(MiB)"
    );
    let line = |name: &str, r: &Row| {
        let rss = r
            .peak_rss_mib
            .map_or_else(|| "-".to_string(), |m| format!("{m:.1}"));
        format!(
            " {:<28}: {:10.2} {:10.2} {:>14}\n",
            name, r.p99_latency_us, r.max_latency_us, rss
        )
    };
    for (info, stats) in jobs {
        out += &line(&info.name, &Row::of(stats, info.io_size));
    }
    // Not "Total": scripts find bdevperf's Total line by its name.
    out + &line("All jobs", &Row::total(jobs))
}

/// The whole table, then the tail latencies and memory ([`tail_lines`]).
pub fn table(jobs: &[(JobInfo, JobStats)]) -> String {
    let mut out = header();
    for (info, stats) in jobs {
        out += &job_lines(info, &Row::of(stats, info.io_size));
    }
    out + &total_lines(&Row::total(jobs)) + &tail_lines(jobs)
}

/// Every job's counts added up (latencies merged; the longest runtime, the highest peak).
fn total_stats(jobs: &[(JobInfo, JobStats)]) -> JobStats {
    jobs.iter().fold(JobStats::new(), |mut t, (_, s)| {
        t.ios += s.ios;
        t.failed += s.failed;
        t.latency_ns_total += s.latency_ns_total;
        t.latency_ns_min = t.latency_ns_min.min(s.latency_ns_min);
        t.latency_ns_max = t.latency_ns_max.max(s.latency_ns_max);
        t.latency_ns.merge(&s.latency_ns);
        t.runtime = t.runtime.max(s.runtime);
        t.peak_rss_kib = t.peak_rss_kib.max(s.peak_rss_kib);
        t
    })
}

/// One job (or the total) as JSON. Besides the names asked of bfsperf it carries bdevperf's
/// own keys (`job`, `core_mask`, `status`, `runtime`) so tools reading bdevperf's results
/// read these too.
fn job_json(info: &JobInfo, stats: &JobStats, row: &Row) -> Value {
    let mut v = json!({
        "name": info.name,
        "job": info.name,
        "core_mask": info.core_mask,
        "workload": info.workload,
        "status": if stats.failed > 0 { "failed" } else { "finished" },
        "queue_depth": info.depth,
        "io_size": info.io_size,
        "runtime_s": row.runtime_s,
        "runtime": row.runtime_s,
        "iops": row.iops,
        "mibps": row.mibps,
        "io_completed": stats.ios,
        "io_failed": stats.failed,
        "io_timeout": 0,
        "avg_latency_us": row.avg_latency_us,
        "min_latency_us": row.min_latency_us,
        "max_latency_us": row.max_latency_us,
        "p99_latency_us": row.p99_latency_us,
        "peak_rss_kib": stats.peak_rss_kib,
    });
    if let Some(p) = info.mix_read_percent {
        v["percentage"] = json!(p);
    }
    v
}

/// The JSON document: `results` (one per job, as bdevperf's `perform_tests` answer),
/// `total`, `core_count` (the cores the jobs ran on: those of -m, else 1), `seed`.
pub fn json(jobs: &[(JobInfo, JobStats)], seed: u64) -> Value {
    let results: Vec<Value> = jobs
        .iter()
        .map(|(i, s)| job_json(i, s, &Row::of(s, i.io_size)))
        .collect();
    let total_stats = total_stats(jobs);
    let first = jobs.first().map(|(i, _)| i.clone());
    let total_info = JobInfo {
        name: "Total".into(),
        ..first.unwrap_or_else(|| JobInfo::new(String::new(), Workload::Read, 100, 0, 0))
    };
    let total = job_json(&total_info, &total_stats, &Row::total(jobs));
    let mut masks: Vec<&str> = jobs.iter().map(|(i, _)| i.core_mask.as_str()).collect();
    masks.sort_unstable();
    masks.dedup();
    let core_count = masks.len().max(1);
    json!({ "results": results, "total": total, "core_count": core_count, "seed": seed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, ios: u64, failed: u64) -> (JobInfo, JobStats) {
        let info = JobInfo::new(name.into(), Workload::Randread, 100, 128, 4096);
        // A sample of the latencies: 99 of 100 take 83.95 µs, the 100th 412 µs.
        let mut latency_ns = Histogram::default();
        for _ in 0..99 {
            latency_ns.record(83_950);
        }
        latency_ns.record(412_000);
        let stats = JobStats {
            ios,
            failed,
            latency_ns_total: (ios + failed) * 83_950,
            latency_ns_min: 3_210,
            latency_ns_max: 412_000,
            latency_ns,
            runtime: Duration::from_secs(5),
            peak_rss_kib: Some(1536),
        };
        (info, stats)
    }

    #[test]
    fn rows_match_bdevperf_layout() {
        let jobs = [job("Malloc0", 7_617_281, 0)];
        let expected = "
                                                                                                Latency(us)
 Device Information          : runtime(s)       IOPS      MiB/s     Fail/s     TO/s    Average        min        max
Job: Malloc0 (Core Mask 0x1, workload: randread, depth: 128, IO size: 4096)
\t Malloc0             :       5.00 1523456.20    5951.00       0.00     0.00      83.95       3.21     412.00
 ===================================================================================================================
 Total                       :            1523456.20    5951.00       0.00     0.00      83.95       3.21     412.00
";
        // Below it, what bdevperf does not print: the p99 is the end of 83.95 µs's bucket.
        let tail = "
 Tail latency(us), memory    :        p99        max  peak RSS(MiB)
 Malloc0                     :      83.97     412.00            1.5
 All jobs                    :      83.97     412.00            1.5
";
        assert_eq!(table(&jobs), format!("{expected}{tail}"));
    }

    #[test]
    fn the_total_p99_merges_the_jobs_latencies() {
        let (mut a, mut b) = (job("A", 1000, 0), job("B", 1000, 0));
        // A: all fast; B: 90 % fast, 10 % at 5 ms. Over both, 5 % are slow: p99 is 5 ms.
        a.1.latency_ns = Histogram::default();
        b.1.latency_ns = Histogram::default();
        for i in 0..100 {
            a.1.record(10_000, true);
            b.1.record(if i < 90 { 10_000 } else { 5_000_000 }, true);
        }
        b.1.peak_rss_kib = None;
        let t = Row::total(&[a.clone(), b]);
        assert!(
            (5000.0..5000.0 * 33.0 / 32.0).contains(&t.p99_latency_us),
            "{t:?}"
        );
        assert_eq!(t.peak_rss_mib, Some(1.5));
        assert!(Row::of(&a.1, 4096).p99_latency_us < 10.5);
    }

    #[test]
    fn total_adds_rates_and_averages_latency_over_all_ios() {
        let (mut a, mut b) = (job("A", 1000, 0), job("B", 3000, 10));
        a.1.latency_ns_total = 1000 * 10_000;
        b.1.latency_ns_total = 3010 * 30_000;
        b.1.latency_ns_min = 1_000;
        let t = Row::total(&[a, b]);
        assert_eq!((t.iops, t.fail_per_s, t.min_latency_us), (800.0, 2.0, 1.0));
        let want_avg = (1000.0 * 10.0 + 3010.0 * 30.0) / 4010.0;
        assert!((t.avg_latency_us - want_avg).abs() < 1e-9);
    }

    #[test]
    fn mixed_workloads_print_their_percentage() {
        let (mut info, stats) = job("M", 10, 0);
        info = JobInfo::new(info.name, Workload::Randrw, 70, info.depth, info.io_size);
        let lines = job_lines(&info, &Row::of(&stats, 4096));
        assert!(lines
            .starts_with("Job: M (Core Mask 0x1, workload: randrw, percentage: 70, depth: 128"));
    }

    #[test]
    fn json_has_the_fields() {
        let v = json(&[job("Malloc0", 5000, 2)], 42);
        let r = &v["results"][0];
        for key in [
            "name",
            "workload",
            "queue_depth",
            "io_size",
            "runtime_s",
            "iops",
            "mibps",
            "io_failed",
            "max_latency_us",
            "p99_latency_us",
            "peak_rss_kib",
        ] {
            assert!(!r[key].is_null(), "{key} missing");
        }
        assert_eq!(
            (r["io_failed"].as_u64(), r["status"].as_str()),
            (Some(2), Some("failed"))
        );
        assert_eq!(
            (v["total"]["iops"].as_f64(), v["seed"].as_u64()),
            (Some(1000.0), Some(42))
        );
    }
}
