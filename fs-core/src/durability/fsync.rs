//! fsync and fdatasync of a file whose writeback completed: one record of the fsync log,
//! written and flushed on this thread's engine with the log's lock held, or a commit.

use crate::durability::io;
use crate::error::{Error, Result};
use crate::state::{Core, Entry, Guard, LogState, Submit};

/// Whether an fsync of `ino` goes through the log (else its completions committed).
pub(crate) fn logs(c: &Core, ino: u64) -> Result<bool> {
    Ok(c.log().area().is_some() && !c.mem(ino, |m| m.nocow)?)
}

/// Makes `ino` durable once its writeback (run with `log_writeback` raised when `logs`)
/// completed: one fsync record when it goes through the log, else a commit of what
/// writeback left (a grown size, and for fsync the times).
pub(crate) fn fsync_written(c: &Core, ino: u64, datasync: bool, logs: bool) -> Result<()> {
    // A file whose namespace state is not durable (created, linked, renamed, its attributes
    // set since the last commit) is durable under its names only with that state: the
    // record carries every pending namespace change (`docs/decisions/namespace-log.md`),
    // or a commit takes them. Its parents' pending changes show in its own: a create in a
    // new directory changes the file's items too, and the record carries them all.
    let names = c.pending().seq_of(ino);
    if logs {
        c.note_sync(ino);
        return log_fsync(c, ino, datasync, names);
    }
    if let Some(seq) = names {
        c.namespace_durable(seq, || c.commit_for(seq))?;
    }
    // Without a log every completion committed its data; what is left is the size (and,
    // for fsync, the times).
    let (size_dirty, mtime_dirty) = c.mem(ino, |m| (m.size_dirty, m.mtime_dirty.is_some()))?;
    if size_dirty || (mtime_dirty && !datasync) {
        c.persist_inode(ino)?;
    }
    Ok(())
}

/// Makes namespace operation `seq` (the last pending one of a directory being synced) and
/// every one before it durable: one log record carrying the pending namespace changes, or
/// a commit when the log cannot take them.
pub(crate) fn fsync_names(c: &Core, seq: u64) -> Result<()> {
    if c.log().area().is_none() {
        return c.namespace_durable(seq, || c.commit_for(seq));
    }
    let mut log = record_slot(c);
    match pending_names(c, &log, Some(seq)) {
        Names::Durable => Ok(()),
        Names::Commit => {
            drop(log);
            c.namespace_durable(seq, || c.commit_for(seq))
        }
        Names::Log(names, upto) => {
            if write_record(c, &mut log, &names, upto)? {
                return Ok(());
            }
            drop(log);
            c.namespace_durable(seq, || c.commit_for(seq))
        }
    }
}

/// What a record must do for the pending namespace operations up to `seq`.
enum Names {
    /// Nothing: they are durable (committed, or in a durable record).
    Durable,
    /// Carry these entries, which make every operation up to the number given durable.
    Log(Vec<Entry>, u64),
    /// A record cannot: commit.
    Commit,
}

/// The namespace entries the next record must carry for operation `seq` (`None`: none
/// pending for the file), read under the log's lock (no commit starts meanwhile).
fn pending_names(c: &Core, log: &LogState, seq: Option<u64>) -> Names {
    let Some(seq) = seq.filter(|&s| !c.pending().progress(s).0) else {
        return Names::Durable;
    };
    if !log.takes_names() {
        return Names::Commit;
    }
    match c.pending().unlogged() {
        Some((names, upto)) if upto >= seq => Names::Log(names, upto),
        _ => Names::Commit,
    }
}

/// Writes the next record with `own` entries after the unwritten ones and flushes, the
/// log's lock held until it is durable; then the namespace operations up to `names_upto`
/// (0: none) are durable. `false`: no record could be written now (it does not fit, the
/// log is full, this thread's synced record is in flight) or it failed; nothing of `own`
/// is logged then, and the caller commits.
fn write_record(
    c: &Core,
    log: &mut Guard<'_, LogState>,
    own: &[Entry],
    names_upto: u64,
) -> Result<bool> {
    let bs = c.bs();
    let Some(record) = log.build_record(own, bs, Submit::Locked) else {
        return Ok(false);
    };
    // A record of namespace changes alone names no data: FUA makes it durable, and no
    // earlier write needs the flush (each earlier record had its own).
    let names_only = !record.carries_others() && own.iter().all(Entry::is_namespace);
    let written = match names_only {
        true => io::write_fua(c, record.addr(), record.block()),
        false => io::write_fua_flush(c, record.addr(), record.block()),
    };
    let landed = log.record_done(record, written.is_ok(), bs);
    if let Err(e) = written {
        // The record may or may not be on the media; a commit makes everything durable.
        ::log::error!("fs-core: fsync log write failed ({e}); committing instead");
        return Ok(false);
    }
    debug_assert!(landed, "a record written under the lock counts");
    // Under the log's lock still: no commit took the operations meanwhile.
    c.pending().logged_through(names_upto);
    Ok(true)
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

/// Clears in memory the attributes `attrs` the log took (durable, or committed), where
/// nothing newer came.
fn clear_attrs(c: &Core, attrs: &[Entry]) -> Result<()> {
    for e in attrs {
        let cleared = match *e {
            Entry::Size { ino, size } => c.mem(ino, |m| m.size_dirty &= m.size != size),
            Entry::Times { ino, mtime_ns } => c.mem(ino, |m| {
                if m.mtime_dirty == Some(mtime_ns) {
                    m.mtime_dirty = None
                }
            }),
            Entry::Extent { .. } | Entry::Item { .. } | Entry::Forget { .. } => Ok(()),
        };
        match cleared {
            // Removed meanwhile by another thread: nothing left to clear.
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The log once no fold runs and no other thread's record is in flight, for a writer of a
/// record (`LogState::record_waits`; this thread's own in-flight record makes
/// `LogState::build_record` refuse: the caller commits instead).
pub(crate) fn record_slot(c: &Core) -> Guard<'_, LogState> {
    let me = std::thread::current().id();
    c.log_when(|l| l.record_waits(me))
}

/// Writes what is logged but not yet durable, with the attributes of `ino` and the
/// pending namespace changes when operation `names` (the last of `ino`'s) is not durable,
/// as one record and flushes; falls back to a commit when no record can be written now (it
/// does not fit, the log is full, this thread's synced record is in flight, the changes
/// are of a kind no record carries).
fn log_fsync(c: &Core, ino: u64, datasync: bool, names: Option<u64>) -> Result<()> {
    let mut log = record_slot(c);
    // Read under the log's lock (before `inodes`, the crate's order): read before it, a
    // size could be overtaken by a larger one another fsync logs first, and logging it
    // after that one would shrink the file at the next fold or replay.
    let attrs = attr_entries(c, ino, datasync)?;
    let (mut own, upto) = match pending_names(c, &log, names) {
        Names::Durable => (Vec::new(), 0),
        Names::Log(names, upto) => (names, upto),
        Names::Commit => return commit_attrs(c, log, &attrs),
    };
    if !log.has_unwritten() && attrs.is_empty() && own.is_empty() {
        // Everything of this file is already in a durable record or committed.
        return Ok(());
    }
    own.extend(attrs.iter().cloned());
    if write_record(c, &mut log, &own, upto)? {
        drop(log);
        return clear_attrs(c, &attrs);
    }
    commit_attrs(c, log, &attrs)
}

/// Commits, with the attribute entries `attrs` (a commit folds everything logged).
fn commit_attrs(c: &Core, mut log: Guard<'_, LogState>, attrs: &[Entry]) -> Result<()> {
    log.note_attrs(attrs);
    drop(log);
    c.commit_pending()?;
    clear_attrs(c, attrs)
}

/// Commits, with the sizes and times of `inos` that memory holds.
pub(crate) fn commit_with_attrs(c: &Core, inos: &[u64]) -> Result<()> {
    // Under the log's lock, as in `log_fsync`.
    let log = c.log();
    let mut attrs = Vec::new();
    for &ino in inos {
        match attr_entries(c, ino, false) {
            Ok(entries) => attrs.extend(entries),
            // Removed since the caller listed it (`sync` lists files, then writes them
            // back while other threads unlink): nothing of it is left to commit.
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    commit_attrs(c, log, &attrs)
}
