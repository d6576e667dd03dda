//! Pinning a thread to CPUs, as SPDK pins a reactor to each core of its core mask.
//!
//! A polling thread that submits to a kernel-driven queue hands work to kernel threads: on a
//! file without non-blocking writes (tmpfs), and for every flush, io_uring passes the request
//! to one of its workers. Unpinned, the scheduler wakes that worker on another CPU, which on a
//! virtual machine whose idle vCPUs halt costs a wake-up of that vCPU per request (bfsperf's
//! 4 KiB writes at queue depth 1 on a /dev/shm file: 57 k a second unpinned, 226 k with the
//! thread and its workers on one CPU). A thread's io_uring workers are created with the
//! thread's affinity at that moment and keep it (Linux 6.x; asserted by
//! `tests/uring.rs`), so a thread is pinned before it opens its first queue, as bfsperf's
//! `-m` does: a worker created earlier stays where it was allowed to run.

use crate::error::BdevError;

/// Pins the calling thread to `cpus`: from now on it runs on those CPUs only. Threads it
/// spawns later inherit this. Fails on an empty list, a CPU number the system cannot name
/// (at most `libc::CPU_SETSIZE`), or one the thread may not use (offline, outside its
/// cpuset).
pub fn pin_current_thread(cpus: &[usize]) -> Result<(), BdevError> {
    let max = libc::CPU_SETSIZE as usize;
    if cpus.is_empty() {
        return Err(BdevError::Config("no CPU to pin the thread to".into()));
    }
    if let Some(&bad) = cpus.iter().find(|&&c| c >= max) {
        return Err(BdevError::Config(format!(
            "CPU {bad} is beyond the {max} CPUs a CPU set can name"
        )));
    }
    // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: `c` is below CPU_SETSIZE (checked above), so CPU_SET writes inside `set`.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(BdevError::Os {
            context: format!("pinning the thread to CPUs {cpus:?}"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Sets the calling thread's nice value (Linux keeps one per thread): lower runs first when
/// threads share a CPU. A value below the current one needs `CAP_SYS_NICE` (root).
pub fn set_current_thread_nice(nice: i32) -> Result<(), BdevError> {
    // SAFETY: setpriority takes plain integers; on Linux, PRIO_PROCESS with who = 0 names
    // the calling thread only.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if r != 0 {
        return Err(BdevError::Os {
            context: format!("setting the thread's nice value to {nice}"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The CPUs the calling thread may run on, in order.
pub fn current_thread_cpus() -> Vec<usize> {
    let Some(set) = current_set() else {
        return Vec::new();
    };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, so CPU_ISSET reads inside `set`.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

fn current_set() -> Option<libc::cpu_set_t> {
    // SAFETY: all zeroes is a valid (empty) cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable and of the size passed; pid 0 is the calling thread.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (r == 0).then_some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_thread_runs_where_it_was_pinned() {
        let cpus = current_thread_cpus();
        assert!(!cpus.is_empty(), "the thread may run on some CPU");
        let last = *cpus.last().unwrap();
        let got = std::thread::spawn(move || {
            pin_current_thread(&[last]).unwrap();
            current_thread_cpus()
        })
        .join()
        .unwrap();
        assert_eq!(got, vec![last]);
        assert!(matches!(pin_current_thread(&[]), Err(BdevError::Config(_))));
        let beyond = libc::CPU_SETSIZE as usize;
        let e = pin_current_thread(&[beyond]).unwrap_err();
        assert!(e.to_string().contains("beyond"), "{e}");
    }

    #[test]
    fn a_thread_sets_its_own_nice_value_only() {
        let got = std::thread::spawn(|| {
            // SAFETY: getpriority takes plain integers; who = 0 is the calling thread.
            let before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            // One step nicer is always permitted.
            set_current_thread_nice(before + 1).unwrap();
            // SAFETY: as above.
            let after = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            (before, after)
        })
        .join()
        .unwrap();
        assert_eq!(got.1, got.0 + 1);
        // SAFETY: as above; this thread's value is untouched by the other's.
        let here = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(
            here, got.0,
            "the nice value is the thread's, not the process's"
        );
    }
}
