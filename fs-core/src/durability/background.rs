//! The background fold: a thread of the mount folds the fsync log's overlay into the trees
//! and commits, so the write whose completion found the overlay large goes on with its I/O
//! instead of waiting for the B-tree work (`docs/decisions/background-fold.md`).
//!
//! Invariants:
//! - at most one background fold runs: it freezes the live changes (`LogState::freeze`),
//!   which reads consult after the live overlay while it runs, and thaws them when it ends
//!   (`LogState::thaw`). Meanwhile commits and fsync records wait for it (`Core::log_idle`,
//!   `LogState::folding`): a record written meanwhile would extend the generation the fold
//!   replaces, and replay would ignore it after the fold's commit;
//! - so no record is written during a fold: when it commits, every entry of the live overlay
//!   is still unwritten, and the log restarts at slot 0 of the new generation;
//! - a failed fold gives its changes back under the live ones (`LogState::thaw`), so
//!   nothing logged is lost; the next commit tries again;
//! - the folder also commits the pending namespace changes once there are `NS_COMMIT_ITEMS`
//!   of them (`Core::namespace` asks it to), so operations do not wait for that commit.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::durability::commit::fold_and_commit;
use crate::durability::group::NS_COMMIT_ITEMS;
use crate::error::{Error, Result};
use crate::state::Core;

/// The folder thread of a read-write mount; stopping it (drop) waits for a running fold.
pub(crate) struct Folder {
    core: Arc<Core>,
    thread: Option<JoinHandle<()>>,
}

impl Folder {
    /// Starts the folder thread, on `cpus` if given (`MountOptions::background_cpus`), at
    /// nice value `nice` if given and permitted (`MountOptions::folder_nice`).
    pub fn start(core: &Arc<Core>, cpus: Option<&[usize]>, nice: Option<i32>) -> Result<Folder> {
        core.folder().set_running(true);
        let c = Arc::clone(core);
        let thread = crate::threads::spawn_on("bypassfs-fold", cpus, move || {
            if let Some(n) = nice {
                // Without the privilege the folder shares its CPUs evenly, as before.
                if let Err(e) = bdev::affinity::set_current_thread_nice(n) {
                    log::debug!("fs-core: the folder keeps its priority: {e}");
                }
            }
            while c.folder().next() {
                match fold_now(&c).and_then(|()| commit_namespace(&c)) {
                    Ok(()) => {}
                    // Node room short while freed extents are pinned: a later fold
                    // (or the commit of a write that needs space) tries again.
                    Err(Error::NoSpace(why)) => {
                        log::debug!("fs-core: background fold deferred: {why}")
                    }
                    Err(e) => log::error!(
                        "fs-core: background fold failed ({e}); the next commit retries"
                    ),
                }
            }
        });
        match thread {
            Ok(t) => Ok(Folder {
                core: Arc::clone(core),
                thread: Some(t),
            }),
            Err(e) => {
                core.folder().set_running(false);
                Err(Error::Io(format!("starting the fold thread: {e}")))
            }
        }
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        self.core.folder().stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Freezes the live overlay, folds it into a transaction and commits, without holding the
/// log meanwhile: the folder thread's fold.
/// Commits the pending namespace changes if there are enough of them
/// (`NS_COMMIT_ITEMS`): the operation that crossed the mark asked for it
/// (`Core::namespace`), and a fold with nothing logged commits nothing.
fn commit_namespace(core: &Core) -> Result<()> {
    if core.pending().current_items() >= NS_COMMIT_ITEMS {
        core.commit_pending()?;
    }
    Ok(())
}

pub(crate) fn fold_now(core: &Core) -> Result<()> {
    fold_beside_writes(core, true)
}

/// [`fold_now`], on whichever thread calls it: a write that found no room while no fold
/// ran folds this way instead of committing under the log's lock, so the other writes'
/// completions (which log their extents under that lock) go on meanwhile. `by_folder`: it
/// counts in `Filesystem::background_folds`.
pub(crate) fn fold_beside_writes(core: &Core, by_folder: bool) -> Result<()> {
    let Some(frozen) = core.log_idle().freeze() else {
        return Ok(());
    };
    let r = core
        .check_writable()
        .and_then(|()| fold_and_commit(core, &frozen, |_| Ok(())));
    let mut log = core.log();
    // After a failure: the aborted transaction handed the frozen extents back to their
    // reservation, and they come back under the live ones.
    log.thaw(
        r.as_ref().ok().map(|&((), generation)| generation),
        core.bs(),
    );
    core.space().set_overlay_pieces(log.pieces());
    drop(log);
    core.fold_ended(r.is_ok() && by_folder);
    r.map(|_| ())
}
