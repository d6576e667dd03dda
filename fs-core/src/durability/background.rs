//! The background fold: a thread of the mount folds the fsync log's overlay into the trees
//! and commits, so the write whose completion found the overlay large goes on with its I/O
//! instead of waiting for the B-tree work (`docs/decisions/background-fold.md`).
//!
//! Invariants:
//! - at most one background fold runs. While it runs, `LogState::folding` is set, the overlay
//!   it commits is `LogState::frozen` (reads consult it after the live overlay), and commits
//!   and fsync records wait for it (`Core::log_idle`): a record written meanwhile would extend
//!   the generation the fold replaces, and replay would ignore it after the fold's commit;
//! - so no record is written during a fold: when it commits, every entry of the live overlay
//!   is still unwritten, and the log restarts at slot 0 of the new generation;
//! - a failed fold gives its overlay back under the live one (`LogState::absorb_older`), so
//!   nothing logged is lost; the next commit tries again.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::durability::commit::fold_and_commit;
use crate::error::{Error, Result};
use crate::state::{Core, LogState};

/// The folder thread of a read-write mount; stopping it (drop) waits for a running fold.
pub(crate) struct Folder {
    core: Arc<Core>,
    thread: Option<JoinHandle<()>>,
}

impl Folder {
    pub fn start(core: &Arc<Core>) -> Result<Folder> {
        core.folder().set_running(true);
        let c = Arc::clone(core);
        let thread = std::thread::Builder::new()
            .name("bypassfs-fold".into())
            .spawn(move || {
                while c.folder().next() {
                    match fold_now(&c) {
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
/// log meanwhile.
pub(crate) fn fold_now(core: &Core) -> Result<()> {
    let frozen = {
        let mut log = core.log_idle();
        if log.is_clean() {
            return Ok(());
        }
        // Sized like the overlay it replaces: the next one likely grows as large.
        let live = LogState {
            area: log.area,
            base_gen: log.base_gen,
            next_slot: log.next_slot,
            synced_in_flight: log.synced_in_flight,
            overlay: log.overlay.sized_like(),
            ..LogState::default()
        };
        let frozen = Arc::new(std::mem::replace(&mut *log, live));
        log.frozen = Some(Arc::clone(&frozen));
        log.folding = true;
        frozen
    };
    let r = core
        .check_writable()
        .and_then(|()| fold_and_commit(core, &frozen, |_| Ok(())));
    let mut log = core.log();
    log.frozen = None;
    log.folding = false;
    match r {
        Ok(((), generation)) => {
            log.base_gen = generation;
            log.next_slot = 0;
        }
        // The aborted transaction handed the frozen extents back to their reservation.
        Err(_) => log.absorb_older(&frozen, core.bs()),
    }
    core.space().set_overlay_pieces(log.pieces());
    drop(log);
    core.fold_ended(r.is_ok());
    r.map(|_| ())
}
