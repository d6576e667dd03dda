//! Group commit of namespace operations: each is atomic when it returns and durable at the
//! next commit: the next fsync or fdatasync that needs it, `sync`, unmount, a commit of
//! data (the fsync log's fold, a NOCOW write), or enough pending changes
//! ([`NS_COMMIT_ITEMS`]); a FUSE mount also commits every `commit=` interval. Many
//! operations share one commit, from one thread or many, as on ext4, XFS and btrfs
//! (`docs/decisions/group-commit.md`).
//!
//! With `MountOptions::dirsync` every operation is durable when it returns, as before group
//! commit; operations of several threads still share the commits they wait for.

use crate::error::{Error, Result};
use crate::state::{Core, Ns};

/// Pending item changes past which the operation that adds them commits: bounds the memory
/// they take and the work of one commit (about 3,000 file creations).
pub(crate) const NS_COMMIT_ITEMS: usize = 16_384;

impl Core {
    /// Runs namespace operation `f`: atomic on return, durable at the next commit (at once
    /// with `dirsync`).
    pub(crate) fn namespace<T>(&self, f: impl FnOnce(&mut Ns<'_>) -> Result<T>) -> Result<T> {
        let (v, seq) = self.ns_apply(f)?;
        if self.dirsync() {
            self.make_durable(seq, || self.commit_for(seq))?;
        } else {
            let items = self.pending().current_items();
            if items >= NS_COMMIT_ITEMS {
                if items < 2 * NS_COMMIT_ITEMS && self.folder().running() {
                    // The folder commits them beside this thread (a third of an unlink's
                    // time was this commit); this thread commits only once the folder is a
                    // whole batch behind, which bounds the pending work all the same.
                    self.folder().request();
                } else if let Err(e) = self.commit_pending() {
                    // The operation is done; the commit only bounds the pending work. If it
                    // fails (space short for its nodes while freed extents are pinned), the
                    // changes stay pending and a later commit tries again.
                    log::debug!("fs-core: commit of pending namespace changes deferred: {e}");
                }
            }
        }
        Ok(v)
    }

    /// [`Core::namespace`] for an operation that adds items: `ENOSPC` up front when it
    /// would eat into what accepted writes and deletes need (`Space::check_ns_room`).
    pub(crate) fn namespace_growing<T>(
        &self,
        f: impl FnOnce(&mut Ns<'_>) -> Result<T>,
    ) -> Result<T> {
        self.check_writable()?;
        if let Err(e) = self.check_ns_room() {
            // The pending changes' worst case counts against the room: committing them
            // may leave enough (the worst case rarely happens).
            if !self.pending().is_active() {
                return Err(e);
            }
            self.commit_pending()?;
            self.check_ns_room()?;
        }
        self.namespace(f)
    }

    /// Makes namespace operation `seq` (the last pending one of an inode being synced:
    /// `Pending::seq_of`) and those before it durable: waits for the commit in flight that
    /// holds it, or runs `commit`.
    pub(crate) fn namespace_durable(
        &self,
        seq: u64,
        commit: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        self.make_durable(seq, commit)
    }

    /// Returns once operation `seq` is durable: a commit in flight that holds it is waited
    /// for (so threads share commits), else `commit` runs.
    fn make_durable(&self, seq: u64, mut commit: impl FnMut() -> Result<()>) -> Result<()> {
        // Our own commit takes every pending change, so one is enough; a second covers a
        // commit in flight that failed and gave its changes back meanwhile.
        let mut own = 0;
        loop {
            let (done, in_flight) = self.pending().progress(seq);
            if done {
                return Ok(());
            }
            if in_flight {
                self.pending().wait_commit();
                continue;
            }
            if own == 2 {
                return Err(Error::Io(format!(
                    "namespace operation {seq} is still not committed after two commits"
                )));
            }
            commit()?;
            own += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bdev::mem::MemDevice;

    use super::NS_COMMIT_ITEMS;
    use crate::{Filesystem, FormatOptions, MountOptions};

    /// With a folder, the operation that crosses `NS_COMMIT_ITEMS` hands the commit to it;
    /// the pending changes still stay under twice that, and the folder commits them.
    #[test]
    fn pending_namespace_changes_stay_bounded_and_the_folder_commits_them() {
        // Room for twice the mark's items at a node each (`Space::check_ns_room`, which
        // commits on its own when short): 2 GiB, of which the test touches a little.
        let dev = Arc::new(MemDevice::new("t", 4096, 2048 * 256).unwrap());
        Filesystem::format(dev.clone(), FormatOptions::default()).unwrap();
        let opts = MountOptions {
            commit_interval: None,
            ..MountOptions::default()
        };
        let fs = Filesystem::mount(dev, opts).unwrap();
        assert!(
            fs.core().folder().running(),
            "a read-write mount has a folder"
        );
        let (mut most, mut last, mut drops) = (0, 0, 0);
        // Until the pending changes were committed (their count fell) three times.
        for files in 0.. {
            assert!(files < 200_000, "no commit of namespace changes");
            fs.create(&format!("/f{files}"), 0o644).unwrap();
            let now = fs.core().pending().current_items();
            most = most.max(now);
            drops += usize::from(now < last);
            last = now;
            if drops == 3 {
                break;
            }
        }
        // One operation's items past the bound at most.
        assert!(most < 2 * NS_COMMIT_ITEMS + 64, "{most} items pending");
        // Past the mark once more, then no operation: only the folder can commit them
        // (it may have done so before this thread looks: the count fell).
        let mut last = fs.core().pending().current_items();
        for n in 0.. {
            fs.create(&format!("/g{n}"), 0o644).unwrap();
            let now = fs.core().pending().current_items();
            if now >= NS_COMMIT_ITEMS || now < last {
                break;
            }
            last = now;
        }
        let since = std::time::Instant::now();
        while fs.core().pending().current_items() >= NS_COMMIT_ITEMS {
            assert!(
                since.elapsed().as_secs() < 30,
                "the folder never committed them"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
