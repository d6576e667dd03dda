//! fsync and fdatasync of a file whose writeback completed: one record of the fsync log,
//! written and flushed on this thread's engine with the log's lock held, or a commit.

use crate::durability::io;
use crate::error::Result;
use crate::state::{Core, Entry, LogState};

/// Whether an fsync of `ino` goes through the log (else its completions committed).
pub(crate) fn logs(c: &Core, ino: u64) -> Result<bool> {
    Ok(c.log().area.is_some() && !c.mem(ino, |m| m.nocow)?)
}

/// Makes `ino` durable once its writeback (run with `log_writeback` raised when `logs`)
/// completed: one fsync record when it goes through the log, else a commit of what
/// writeback left (a grown size, and for fsync the times).
pub(crate) fn fsync_written(c: &Core, ino: u64, datasync: bool, logs: bool) -> Result<()> {
    if logs {
        c.note_sync(ino);
        return log_fsync(c, ino, datasync);
    }
    // Without a log every completion committed its data; what is left is the size (and,
    // for fsync, the times).
    let (size_dirty, mtime_dirty) = c.mem(ino, |m| (m.size_dirty, m.mtime_dirty.is_some()))?;
    if size_dirty || (mtime_dirty && !datasync) {
        c.persist_inode(ino)?;
    }
    Ok(())
}

/// What of `ino`'s attributes an fsync record must carry.
fn attr_entries(c: &Core, ino: u64, datasync: bool) -> Result<Vec<Entry>> {
    let (size, size_dirty, mtime) = c.mem(ino, |m| (m.size, m.size_dirty, m.mtime_dirty))?;
    let mut v = Vec::new();
    if size_dirty {
        v.push(Entry::Size { ino, size });
    }
    if let (Some(mtime_ns), false) = (mtime, datasync) {
        v.push(Entry::Times { ino, mtime_ns });
    }
    Ok(v)
}

/// Takes attribute entries into the log's state (they are durable or about to be
/// committed) and clears them in memory where nothing newer came.
fn note_attrs(log: &mut LogState, attrs: &[Entry]) -> Vec<(u64, Entry)> {
    let mut done = Vec::new();
    for e in attrs {
        match *e {
            Entry::Size { ino, size } => {
                log.sizes.insert(ino, size);
                done.push((ino, e.clone()));
            }
            Entry::Times { ino, mtime_ns } => {
                log.times.insert(ino, mtime_ns);
                done.push((ino, e.clone()));
            }
            Entry::Extent { .. } => {}
        }
    }
    done
}

fn clear_attrs(c: &Core, done: Vec<(u64, Entry)>) -> Result<()> {
    for (ino, e) in done {
        c.mem(ino, |m| match e {
            Entry::Size { size, .. } => m.size_dirty &= m.size != size,
            Entry::Times { mtime_ns, .. } if m.mtime_dirty == Some(mtime_ns) => {
                m.mtime_dirty = None
            }
            _ => {}
        })?;
    }
    Ok(())
}

/// Writes what is logged but not yet durable, with the attributes of `ino`, as one record
/// and flushes; falls back to a commit when the record does not fit or the log is full.
fn log_fsync(c: &Core, ino: u64, datasync: bool) -> Result<()> {
    // Not while a synced direct write's record is in flight (`synced.rs`).
    let (mut log, may_record) = c.record_slot();
    // Read under the log's lock (before `inodes`, the crate's order): read before it, a
    // size could be overtaken by a larger one another fsync logs first, and logging it
    // after that one would shrink the file at the next fold or replay.
    let attrs = attr_entries(c, ino, datasync)?;
    if !log.has_unwritten() && attrs.is_empty() {
        // Everything of this file is already in a durable record or committed.
        return Ok(());
    }
    let (addr, len) = log.area.expect("checked by the caller");
    let mut entries = log.unwritten.clone();
    entries.extend(attrs.iter().cloned());
    let bs = c.bs();
    let slot = log.next_slot;
    let record = (may_record && slot < len / bs && !log.unwritten_spilled)
        .then(|| crate::state::encode(log.base_gen, slot, &entries, bs as usize))
        .flatten();
    let Some(record) = record else {
        // A commit folds everything, these attributes included.
        let done = note_attrs(&mut log, &attrs);
        drop(log);
        c.commit_pending()?;
        return clear_attrs(c, done);
    };
    if let Err(e) = io::write_fua_flush(c, addr + slot * bs, &record) {
        let done = note_attrs(&mut log, &attrs);
        drop(log);
        // The record may or may not be on the media; a commit makes everything durable.
        ::log::error!("fs-core: fsync log write failed ({e}); committing instead");
        c.commit_pending()?;
        return clear_attrs(c, done);
    }
    log.next_slot += 1;
    log.written();
    let done = note_attrs(&mut log, &attrs);
    drop(log);
    clear_attrs(c, done)
}

/// Commits, with the sizes and times of `inos` that memory holds.
pub(crate) fn commit_with_attrs(c: &Core, inos: &[u64]) -> Result<()> {
    // Under the log's lock, as in `log_fsync`.
    let mut log = c.log();
    let mut attrs = Vec::new();
    for &ino in inos {
        attrs.extend(attr_entries(c, ino, false)?);
    }
    let done = note_attrs(&mut log, &attrs);
    drop(log);
    c.commit_pending()?;
    clear_attrs(c, done)
}
