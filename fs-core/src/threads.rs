//! The mount's own threads (the folder, `bypassfs-fold`, and the timed commit,
//! `bypassfs-commit`) and the CPUs they run on ([`MountOptions::background_cpus`]).
//!
//! SPDK's core mask names every core an application uses: its reactors poll all the
//! work, background pollers included. An application that pins its I/O threads to some
//! cores and gives the mount those cores keeps the filesystem's background work there too,
//! instead of on a core it keeps free or for something else; a benchmark on one core then
//! measures one core (`bfsperf -m`, `docs/decisions/background-threads-on-the-mask.md`).
//!
//! [`MountOptions::background_cpus`]: crate::MountOptions::background_cpus

use std::thread::JoinHandle;

/// Starts thread `name` running `f`, pinned to `cpus` first if given. Fails if the thread
/// cannot start or cannot be pinned (a CPU that does not exist, is offline or outside the
/// process's cpuset): the error names the CPUs, and `f` never runs.
pub(crate) fn spawn_on(
    name: &str,
    cpus: Option<&[usize]>,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let cpus = cpus.map(<[usize]>::to_vec);
    let (told, pinned) = std::sync::mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let r = cpus.map_or(Ok(()), |c| bdev::affinity::pin_current_thread(&c));
            let ok = r.is_ok();
            // The receiver waits for this before it returns: it is still there.
            let _ = told.send(r);
            if ok {
                f();
            }
        })?;
    match pinned.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(std::io::Error::other(format!("{name}: {e}")))
        }
        // The thread died before it could say: only a panic in pinning does that.
        Err(_) => {
            let _ = handle.join();
            Err(std::io::Error::other(format!(
                "{name}: ended before it ran"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_on_the_cpus_given_or_does_not_run() {
        let cpu = *bdev::affinity::current_thread_cpus().last().expect("a CPU");
        let (tx, rx) = std::sync::mpsc::channel();
        let t = spawn_on("pinned", Some(&[cpu]), move || {
            tx.send(bdev::affinity::current_thread_cpus()).unwrap();
        })
        .unwrap();
        t.join().unwrap();
        assert_eq!(rx.recv().unwrap(), vec![cpu]);
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = {
            let ran = std::sync::Arc::clone(&ran);
            spawn_on("nowhere", Some(&[]), move || {
                ran.store(true, std::sync::atomic::Ordering::SeqCst)
            })
        };
        let e = r.expect_err("no CPU given");
        assert!(e.to_string().contains("nowhere"), "{e}");
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "ran unpinned"
        );
    }
}
