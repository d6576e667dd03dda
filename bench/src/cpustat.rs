//! CPU time of this process and of its threads, from `/proc` (Linux; `None` elsewhere), so
//! a run can say what each I/O cost in CPU and which threads spent it: throughput alone
//! hides work done on a core the run was not meant to use (a background thread elsewhere).
//!
//! The kernel counts in clock ticks of `USER_HZ`, 100 a second on every Linux
//! architecture's `/proc` ABI: 10 ms resolution, fine for runs of seconds.

use std::time::Duration;

use serde_json::{json, Value};

use crate::report::{JobInfo, JobStats};

/// `USER_HZ`: the unit of `utime` and `stime` in `/proc/.../stat`.
const TICKS_PER_SECOND: u64 = 100;

/// User plus system time of the whole process (every thread, ended ones included).
pub fn process() -> Option<Duration> {
    read_stat("/proc/self/stat").map(|(_, t)| t)
}

/// User plus system time of the calling thread.
pub fn this_thread() -> Option<Duration> {
    read_stat("/proc/thread-self/stat").map(|(_, t)| t)
}

/// The process's live threads: `(thread id, name, CPU time)`.
pub fn threads() -> Vec<(u64, String, Duration)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid = e.file_name().to_str()?.parse().ok()?;
        let (name, t) = read_stat(&format!("/proc/self/task/{tid}/stat"))?;
        Some((tid, name, t))
    })
    .collect()
}

/// `(comm, utime + stime)` of a `stat` file.
fn read_stat(path: &str) -> Option<(String, Duration)> {
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

fn parse_stat(text: &str) -> Option<(String, Duration)> {
    // The name is in parentheses and may hold spaces and parentheses itself: the fields
    // after it start after the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    // Fields 3.. (state is 3); utime is 14, stime 15.
    let utime: u64 = rest.nth(11)?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some((name, Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)))
}

/// What a timed run cost: process CPU time, and what the threads still alive at its end
/// spent (by name), given the samples at its start and end.
#[derive(Clone, Debug, PartialEq)]
pub struct RunCpu {
    pub total: Duration,
    /// `(thread name, CPU time)` of the threads alive at the end, summed by name.
    pub live_threads: Vec<(String, Duration)>,
}

/// A sample at the start of a run.
pub struct Start {
    process: Option<Duration>,
    threads: Vec<(u64, String, Duration)>,
}

impl Start {
    pub fn now() -> Start {
        Start {
            process: process(),
            threads: threads(),
        }
    }

    /// The CPU spent since the start; `None` without `/proc`.
    pub fn end(&self) -> Option<RunCpu> {
        let total = process()?.checked_sub(self.process?)?;
        let mut live: Vec<(String, Duration)> = Vec::new();
        for (tid, name, t) in threads() {
            let before = self
                .threads
                .iter()
                .find(|(id, _, _)| *id == tid)
                .map_or(Duration::ZERO, |&(_, _, b)| b);
            let spent = t.saturating_sub(before);
            match live.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum += spent,
                None => live.push((name, spent)),
            }
        }
        live.retain(|(_, t)| !t.is_zero());
        live.sort_by_key(|t| std::cmp::Reverse(t.1));
        Some(RunCpu {
            total,
            live_threads: live,
        })
    }
}

/// The I/Os of a run's jobs and its longest job runtime.
fn ios_and_runtime(jobs: &[(JobInfo, JobStats)]) -> (u64, Duration) {
    let ios = jobs.iter().map(|(_, s)| s.ios).sum();
    let runtime = jobs
        .iter()
        .map(|(_, s)| s.runtime)
        .max()
        .unwrap_or_default();
    (ios, runtime)
}

/// One line for people: `CPU: 4.02 s in 4.00 s (1.00 cores), 2.26 µs per I/O; of it
/// bypassfs-fold 0.91 s, ...` (the job threads have ended, so they are the rest).
pub fn line(cpu: &RunCpu, jobs: &[(JobInfo, JobStats)]) -> String {
    let (ios, runtime) = ios_and_runtime(jobs);
    let secs = cpu.total.as_secs_f64();
    let mut s = format!(
        "CPU: {secs:.2} s in {:.2} s ({:.2} cores), {:.2} us per I/O",
        runtime.as_secs_f64(),
        secs / runtime.as_secs_f64().max(1e-9),
        secs * 1e6 / ios.max(1) as f64
    );
    let named: Vec<String> = cpu
        .live_threads
        .iter()
        .map(|(n, t)| format!("{n} {:.2} s", t.as_secs_f64()))
        .collect();
    if !named.is_empty() {
        s += &format!("; of it {}, the job threads the rest", named.join(", "));
    }
    s
}

/// For the JSON results: `{"seconds", "cores", "ns_per_io", "threads": {name: seconds}}`.
pub fn json(cpu: &RunCpu, jobs: &[(JobInfo, JobStats)]) -> Value {
    let (ios, runtime) = ios_and_runtime(jobs);
    let secs = cpu.total.as_secs_f64();
    let threads: serde_json::Map<String, Value> = cpu
        .live_threads
        .iter()
        .map(|(n, t)| (n.clone(), json!(t.as_secs_f64())))
        .collect();
    json!({
        "seconds": secs,
        "cores": secs / runtime.as_secs_f64().max(1e-9),
        "ns_per_io": secs * 1e9 / ios.max(1) as f64,
        "threads": threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu_time() {
        let line = "1234 (bypassfs (fold)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(
            parse_stat(line),
            Some(("bypassfs (fold)".into(), Duration::from_secs(3)))
        );
        assert_eq!(parse_stat("1234 (x) S 1 2"), None);
    }

    #[test]
    fn busy_time_shows_in_the_thread_and_the_process() {
        let (Some(p0), Some(t0)) = (process(), this_thread()) else {
            return; // no /proc here
        };
        // Spin until the thread has been charged 30 ms (a loaded machine may take a while
        // to give them), at most 20 s.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut spent = Duration::ZERO;
        while spent < Duration::from_millis(30) && start.elapsed() < Duration::from_secs(20) {
            x = std::hint::black_box(x.wrapping_add(1));
            if x % 4096 == 0 {
                spent = this_thread().unwrap() - t0;
            }
        }
        assert!(spent >= Duration::from_millis(30), "charged {spent:?}");
        assert!(process().unwrap() - p0 >= spent);
        // This thread is among the live ones, with at least what it was charged.
        assert!(threads().iter().any(|(_, _, t)| *t >= spent));
    }
}
