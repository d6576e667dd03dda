//! Jobs on the cores of `-m`: one OS thread per core, pinned to it before it opens anything,
//! and every core's timed I/O started together.
//!
//! Pinned first because a thread's io_uring workers take the affinity the thread has when
//! they are created and keep it (`bdev::affinity`), as SPDK's reactors are pinned before
//! they poll. Started together because a core still setting up (opening queues, prefilling)
//! while another already measures would count a different load in each; so each thread sets
//! up, then waits at a [`StartLine`] for all the others. A thread that fails to set up still
//! comes to the line, so that nobody waits forever, and the others then skip their run.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

use crate::error::BenchError;

/// Where the threads of one run wait for each other before their timed I/O.
pub struct StartLine<'a> {
    barrier: &'a Barrier,
    failed: &'a AtomicBool,
    waited: Cell<bool>,
}

impl StartLine<'_> {
    /// Waits until every core's thread is set up (at most once per thread). Returns whether
    /// they all are: `false` means one failed, so skip the run; its error is reported.
    pub fn wait(&self) -> bool {
        if !self.waited.replace(true) {
            self.barrier.wait();
        }
        !self.failed.load(Ordering::SeqCst)
    }
}

/// Runs `job(index, cpu, start)` for each of `cpus` on a thread of its own pinned to that
/// CPU; returns their results in the order of `cpus`, or the first error. `job` calls
/// `start.wait()` once it is ready to measure.
pub fn run_on_cores<T: Send>(
    cpus: &[usize],
    job: impl Fn(usize, usize, &StartLine) -> Result<T, BenchError> + Sync,
) -> Result<Vec<T>, BenchError> {
    let barrier = Barrier::new(cpus.len());
    let failed = AtomicBool::new(false);
    let outcomes = std::thread::scope(|s| {
        let threads: Vec<_> = cpus
            .iter()
            .enumerate()
            .map(|(index, &cpu)| {
                let (barrier, failed, job) = (&barrier, &failed, &job);
                std::thread::Builder::new()
                    .name(format!("bfsperf-core{cpu}"))
                    .spawn_scoped(s, move || {
                        let start = StartLine {
                            barrier,
                            failed,
                            waited: Cell::new(false),
                        };
                        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                            bdev::affinity::pin_current_thread(&[cpu])?;
                            job(index, cpu, &start)
                        }));
                        if !matches!(outcome, Ok(Ok(_))) {
                            failed.store(true, Ordering::SeqCst);
                        }
                        start.wait();
                        outcome
                    })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| match t {
                Ok(handle) => handle.join().unwrap_or_else(|p| panic::resume_unwind(p)),
                Err(e) => Ok(Err(BenchError::Plan(format!(
                    "cannot start a job thread: {e}"
                )))),
            })
            .collect::<Vec<_>>()
    });
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|p| panic::resume_unwind(p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_runs_pinned_to_its_own_cpu_and_errors_stop_the_others() {
        let cpu = *bdev::affinity::current_thread_cpus().last().unwrap();
        let cpus = [cpu, cpu];
        let got = run_on_cores(&cpus, |index, c, start| {
            assert!(start.wait());
            Ok((index, c, bdev::affinity::current_thread_cpus()))
        })
        .unwrap();
        assert_eq!(got, vec![(0, cpu, vec![cpu]), (1, cpu, vec![cpu])]);
        let ran = AtomicBool::new(false);
        let r = run_on_cores(&cpus, |index, _, start| {
            if index == 0 {
                return Err(BenchError::Plan("no".into()));
            }
            if start.wait() {
                ran.store(true, Ordering::SeqCst);
            }
            Ok(())
        });
        assert!(matches!(r, Err(BenchError::Plan(m)) if m == "no"));
        assert!(
            !ran.load(Ordering::SeqCst),
            "a job ran after another failed"
        );
    }
}
