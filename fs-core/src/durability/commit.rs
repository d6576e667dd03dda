//! The commit: the one way a change reaches the trees.
//!
//! [`Core::commit`] runs a change in one cow transaction after applying the pending
//! namespace changes (`state/pending.rs`) and folding everything the fsync log's overlay
//! holds into the same transaction, commits (nodes written, flush, superblock with FUA,
//! flush), and restarts the log at slot 0 of the new generation. The pending changes go in
//! first because the fold updates sizes and times of inode items they may hold, and the
//! inodes they unlinked for good are deleted after the fold, which skips inodes that no
//! longer exist. Everything that
//! commits goes through it: namespace operations, completions that link data, fsync when
//! its record does not fit, sync, and the folder thread's fold (`background.rs`, which
//! freezes the overlay first so writes go on meanwhile, then calls [`fold_and_commit`]).

use crate::durability::fold::fold;
use crate::error::Result;
use crate::items::kind;
use crate::namespace::delete_inode;
use crate::state::{inode_key, inode_over, Core, Guard, Items, Layer, LogState, Logged, Tx};

impl Core {
    /// Runs `f` in one transaction and commits it (durable on return). Everything the fsync
    /// log holds is folded into the same transaction first, and the log restarts after it.
    pub(crate) fn commit<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        let log = self.log_idle();
        self.commit_locked(log, f)
    }

    /// Commits unless namespace operation `seq` became durable while this thread waited
    /// for the log (another thread's commit took it): so threads that wait for their
    /// operations share one commit instead of each running its own, empty but for them.
    pub(crate) fn commit_for(&self, seq: u64) -> Result<()> {
        self.check_writable()?;
        let log = self.log_idle();
        if self.pending().progress(seq).0 {
            return Ok(());
        }
        self.commit_locked(log, |_| Ok(()))
    }

    fn commit_locked<T>(
        &self,
        mut log: Guard<'_, LogState>,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
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

    /// Commits what the fsync log holds and the pending namespace changes (and nothing
    /// else): makes everything logged and every namespace operation durable on return.
    pub(crate) fn commit_pending(&self) -> Result<()> {
        self.commit(|_| Ok(()))
    }
}

/// Opens a transaction, applies the pending namespace changes, folds `log` into it (if it
/// holds anything), runs `f`, commits; returns `f`'s value and the new generation. The
/// caller owns what happens to `log` after (the log restarts, or thaws); the pending changes
/// are committed, or back where they were after a failure.
pub(crate) fn fold_and_commit<T>(
    core: &Core,
    log: &Logged,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
) -> Result<(T, u64)> {
    core.with_io(|io| {
        let tx = core.vol().begin()?;
        let generation = tx.generation();
        let layer = core.pending().take(generation);
        let changing = core.lookups().changing();
        let r = run(core, Tx { tx, io, changing }, layer.as_deref(), log, f);
        if layer.is_some() {
            core.pending().end(generation, r.is_ok());
        }
        r
    })
}

/// Applies a pending inode item over the committed one (`state::inode_over`).
fn put_inode(t: &mut Tx<'_>, layer: &Layer, ino: u64, data: &[u8]) -> Result<()> {
    match t.get(inode_key(ino))? {
        Some(committed) => {
            let explicit = layer.explicit_mtime.contains(&ino);
            let item = inode_over(ino, data, &committed, explicit)?;
            t.put_as_pending(inode_key(ino), &item)
        }
        None => t.put_as_pending(inode_key(ino), data),
    }
}

fn run<T>(
    core: &Core,
    mut t: Tx<'_>,
    layer: Option<&Layer>,
    log: &Logged,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
) -> Result<(T, u64)> {
    if let Some(l) = layer {
        for (k, v) in &l.items {
            match v {
                Some(d) if k.kind == kind::INODE_ITEM => put_inode(&mut t, l, k.objectid, d)?,
                Some(d) => t.put_as_pending(*k, d)?,
                None => drop(t.del_as_pending(*k)?),
            }
        }
    }
    if !log.is_clean() {
        fold(&mut t, log, core.bs())?;
    }
    for &ino in layer.map_or(&[][..], |l| &l.deletes) {
        delete_inode(&mut t, ino)?;
    }
    let v = f(&mut t)?;
    let Tx { tx, io, changing } = t;
    let generation = tx.commit(io);
    // After the publish: the lookup caches may fill the slots this commit wrote again.
    drop(changing);
    Ok((v, generation?))
}
