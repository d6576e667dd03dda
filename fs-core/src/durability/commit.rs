//! The commit: the one way a change reaches the trees.
//!
//! [`Core::commit`] runs a change in one cow transaction after folding everything the fsync
//! log's overlay holds into the same transaction, commits (nodes written, flush, superblock
//! with FUA, flush), and restarts the log at slot 0 of the new generation. Everything that
//! commits goes through it: namespace operations, completions that link data, fsync when
//! its record does not fit, sync, and the folder thread's fold (`background.rs`, which
//! freezes the overlay first so writes go on meanwhile, then calls [`fold_and_commit`]).

use crate::durability::fold::fold;
use crate::error::Result;
use crate::state::{Core, Logged, Tx};

impl Core {
    /// Runs `f` in one transaction and commits it (durable on return). Everything the fsync
    /// log holds is folded into the same transaction first, and the log restarts after it.
    pub(crate) fn commit<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        let mut log = self.log_idle();
        match fold_and_commit(self, log.logged(), f) {
            Ok((v, generation)) => {
                log.restart(generation);
                self.space().set_overlay_pieces(0);
                Ok(v)
            }
            // The aborted transaction handed the logged extents back to their reservation:
            // the overlay still owns them.
            Err(e) => Err(e),
        }
    }

    /// Commits what the fsync log holds (and nothing else): makes everything logged part
    /// of the trees, durable on return.
    pub(crate) fn commit_pending(&self) -> Result<()> {
        self.commit(|_| Ok(()))
    }

    /// [`Core::commit`] for a namespace operation that adds items: `ENOSPC` up front when
    /// it would eat into what accepted writes and deletes need (`Space::check_ns_room`).
    pub(crate) fn commit_growing<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        self.check_ns_room()?;
        self.commit(f)
    }
}

/// Opens a transaction, folds `log` into it (if it holds anything), runs `f`, commits;
/// returns `f`'s value and the new generation. The caller owns what happens to `log` after
/// (the log restarts, or thaws).
pub(crate) fn fold_and_commit<T>(
    core: &Core,
    log: &Logged,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
) -> Result<(T, u64)> {
    core.with_io(|io| {
        let tx = core.vol().begin()?;
        let mut t = Tx { tx, io };
        if !log.is_clean() {
            fold(&mut t, log, core.bs())?;
        }
        let v = f(&mut t)?;
        let Tx { tx, io } = t;
        let generation = tx.commit(io)?;
        Ok((v, generation))
    })
}
