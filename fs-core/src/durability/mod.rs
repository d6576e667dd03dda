//! Durability: fsync, fdatasync, sync, and orphan cleanup at mount.
//!
//! The contract (a commit writes the changed nodes, flushes, writes the superblock with FUA
//! and flushes; data reaches the trees at writeback completion, through a commit or the
//! fsync log):
//! - a namespace operation (create, mkdir, link, unlink, rename, setattr, xattrs) is atomic
//!   when it returns and durable at the next commit (`group.rs`: fsync of a file or
//!   directory it changed, `sync`, unmount, enough pending changes; at once with `dirsync`);
//! - fallocate and truncate are durable when they return (a commit each);
//! - fsync/fdatasync of a file whose namespace state is not durable yet (created, linked,
//!   renamed, or in a directory created since the last commit) makes it durable under its
//!   names, and fsync of a directory makes its entries durable: one log record carrying
//!   every pending namespace operation (`fsync.rs`, `docs/decisions/namespace-log.md`), or
//!   a commit when a record cannot; so after a crash the namespace is the one after some
//!   prefix of the operations, never part of one;
//! - file data written through the cache is durable after `fsync`/`fdatasync` of the file,
//!   `sync`, or unmount; a crash before shows, for every block, the old or the new bytes,
//!   never others (new data goes to fresh space and is referenced only after it is on the
//!   device);
//! - a direct write's data, like buffered data, is durable after `fsync`/`fdatasync` of
//!   the file, `sync` or unmount (as on Linux without `O_SYNC`); a crash before shows the old
//!   or the new bytes of each block;
//! - the size a write grew the file to is durable with its data (as ext4's `i_disksize`);
//!   modification times of data writes are set when they are committed (writeback commit
//!   or fold), not at `write`.
//!
//! Completed data writes (writeback and direct) go to the fsync log's in-memory overlay
//! (`state/log.rs`); fsync/fdatasync make them durable with one record block written with FUA
//! and one flush, both in flight at once (`fsync.rs`; the record is built by the log's one
//! record writer, `LogState::build_record`, which `synced.rs` uses too),
//! replay at mount links them (`fold.rs`), and every commit folds the overlay into the
//! trees; when the overlay grows large the mount's folder thread folds it while writes go
//! on (`background.rs`, `io/space.rs`).
//! `tests/fsync_log.rs` counts the device writes and flushes (a 4 KiB write + fdatasync:
//! 2 writes, 1 flush). A file fdatasync'd after every direct write has its writes synced
//! (`synced.rs`): data and record go out together with FUA (2 writes, no flush, one round
//! trip) and the fdatasync has nothing left to write.
//!
//! Crash tests backing these claims: `tests/crash.rs` (`ace_one_operation_workloads`,
//! `ace_two_operation_workloads_sampled`, `synced_direct_writes`), `tests/fsync_log.rs`
//! (`logged_fsyncs_survive_a_crash_and_a_full_log_commits`), `tests/model.rs` (crash after
//! fdatasync of every file and fsync of every directory), `tests/crash_group.rs` (group
//! commit, fsync of new and renamed names and of files in new directories, dirsync),
//! `tests/crash_nslog.rs` (namespace records: one flush per fsync of a new name, crash
//! states of creates, unlinks, renames, new directory chains and SQLite's journal).

mod area;
mod background;
mod commit;
mod fold;
mod fsync;
mod gap;
mod group;
mod io;
mod synced;

pub(crate) use area::ensure_area;
pub(crate) use background::{fold_beside_writes, Folder};
pub(crate) use fold::replay;
pub(crate) use fsync::{commit_with_attrs, fsync_names, fsync_written, logs};
pub(crate) use gap::log_gap;
pub(crate) use synced::count_direct_write;

use crate::error::Result;
use crate::items::{kind, ORPHAN_OBJECTID};
use crate::state::Core;

/// Deletes inodes left unlinked-but-open by a crash or an unclean unmount.
pub(crate) fn remove_orphans(core: &Core) -> Result<()> {
    let lo = cow::Key::new(ORPHAN_OBJECTID, kind::ORPHAN_ITEM, 0);
    let hi = cow::Key::new(ORPHAN_OBJECTID, kind::ORPHAN_ITEM, u64::MAX);
    let orphans = core.read(|rd| {
        use crate::state::Items;
        rd.range(lo, hi, cow::Direction::Forward, usize::MAX)
    })?;
    if orphans.is_empty() {
        return Ok(());
    }
    log::info!("fs-core: removing {} orphan inodes", orphans.len());
    core.commit(|tx| {
        for (k, _) in &orphans {
            crate::namespace::delete_inode(tx, k.offset)?;
        }
        Ok(())
    })
}
