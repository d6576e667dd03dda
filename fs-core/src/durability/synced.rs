//! Synced direct writes: a file fdatasync'd after every direct write (a database's log,
//! written and synced a block at a time) gets each such write made durable together with
//! its fsync record, in one device round trip, so the fdatasync that follows has nothing
//! left to write.
//!
//! Otherwise a 4 KiB direct write + fdatasync is two round trips: the data, then the record
//! (with FUA) and a flush. Here the data (FUA), the record (FUA) and, when the record also
//! carries other completed writes, a flush are in flight at once: iomap's `submit_direct`
//! hook (`Core::submit_synced`) submits all of them through the thread's `bdev::exec`
//! context and awaits them, so no thread blocks on the device inside an async step.
//!
//! When: the file's last `SYNC_STREAK` fsyncs each came after exactly one direct write, this
//! write is the first since the last fsync (`begin` counts and decides, `count_direct_write`,
//! and says so in the map's `private`), it goes to fresh space (copy-on-write), the device
//! honours FUA, and the log has a free slot, no fold running and no other synced record in
//! flight. Anything else is written as usual. The cost of a wrong guess (a write synced
//! that no fsync follows) is one log slot and FUA on two writes.
//!
//! Invariants (beside those of `state/log.rs`):
//! - records are written one at a time, each durable before the next (so the durable
//!   records stay a prefix): the log lock is not held across the device wait (other futures
//!   of this thread take it meanwhile), so `LogState::synced_in_flight` stands for it from
//!   building the record until its requests completed. Other record writers wait for it
//!   (`Core::record_slot`), unless the record is their own thread's, which completes only
//!   when that thread polls its context again: they commit instead. Commits and folds need
//!   not wait: the marker outlives a log restart, and the completion sees the restart;
//! - the record carries the log's unwritten entries as they were when it was built; only
//!   those become written when it lands: entries noted during the flight stay unwritten
//!   for the next record;
//! - data and record have no order between them: replay links the record's extents only if
//!   the device holds their bytes (`fold::replay`'s `data_landed`), so a crash that kept the
//!   record but not the data ends the replayed prefix before it (that write never returned);
//! - the extent is mapped in the overlay after the requests succeeded, under the log lock,
//!   and the record counts only if the log still extends the generation it was written for
//!   with no fold running meanwhile; otherwise (a commit or fold started during the flight)
//!   the extent is mapped and noted unwritten, as a plain completion would, and the next
//!   fsync logs it again;
//! - memory and replay agree on overlapping writes: a write of the same file range that
//!   completed during the flight is mapped before this one in memory but would be replayed
//!   after it (its entry goes in a later record), so then the log is spilled and the next
//!   fsync commits what memory holds;
//! - a failed data write leaves a record that may be durable and names space about to be
//!   freed: a commit restarts the log (records of the old generation are ignored) before
//!   the write's completion frees that space.

use bdev::exec::{join_all, Context};
use bdev::{Bufs, Op};
use iomap::{DirectWrite, MapFlags, Submitted};

use crate::data::block_crcs;
use crate::durability::io;
use crate::state::{self as fslog, Entry, Guard, LogState};
use crate::state::{Core, InodeMem};

/// Fsyncs in a row, each after one direct write, after which the file's direct writes are
/// synced with their record.
pub(crate) const SYNC_STREAK: u32 = 4;

/// Counts a direct write (a mapping `begin` maps for one) towards the file's sync pattern;
/// says whether the pattern asks to sync it (if it goes to fresh space, which `begin`
/// decides).
pub(crate) fn count_direct_write(m: &mut InodeMem) -> bool {
    m.direct_writes = m.direct_writes.saturating_add(1);
    m.direct_writes == 1 && m.sync_streak >= SYNC_STREAK && !m.nocow
}

/// A synced write's record, built and in flight.
struct Planned {
    /// The generation and slot the record was written for.
    base_gen: u64,
    slot: u64,
    /// Unwritten entries of the log it carries (the first ones): other writes, whose data
    /// a flush beside it makes durable.
    carried: usize,
    /// The write's own entry.
    extent: Entry,
    /// The size it logs, if any.
    size: Option<u64>,
}

/// Stands for a synced record in flight (`LogState::synced_in_flight`) until the write
/// finishes; if its future is dropped first, the record may still land in its slot later,
/// so no record may go there: the log is left full, and the next fsync commits (which
/// restarts it).
struct InFlight<'a> {
    core: &'a Core,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut log = self.core.log();
        log.synced_in_flight = None;
        if let Some((_, area_len)) = log.area {
            log.next_slot = log.next_slot.max(area_len / self.core.bs());
        }
        drop(log);
        self.core.log_changed();
    }
}

impl Core {
    /// An fsync of `ino` ends a run of direct writes: the pattern holds while each fsync
    /// follows exactly one.
    pub(crate) fn note_sync(&self, ino: u64) {
        let _ = self.mem(ino, |m| {
            m.sync_streak = match m.direct_writes {
                1 => m.sync_streak.saturating_add(1),
                _ => 0,
            };
            m.direct_writes = 0;
        });
    }

    /// The log once no other thread's synced record is in flight (nor a fold runs), for a
    /// writer of a record (see the module docs); with it, whether a record may be written
    /// now: not while this thread's own synced record is in flight (it completes only when
    /// this thread polls its context, so waiting would never end): the caller commits
    /// instead.
    pub(crate) fn record_slot(&self) -> (Guard<'_, LogState>, bool) {
        let me = std::thread::current().id();
        let busy = |l: &mut LogState| l.folding || l.synced_in_flight.is_some_and(|t| t != me);
        let log = self.log_when(busy);
        let free = log.synced_in_flight.is_none();
        (log, free)
    }

    /// iomap's `submit_direct` for a write `begin` marked synced: writes `bufs` with its
    /// fsync record when the log can take one now, else as usual.
    pub(crate) async fn submit_synced(
        &self,
        ctx: &Context,
        w: &DirectWrite<'_>,
        bufs: Bufs,
    ) -> Submitted {
        let Some((planned, record)) = self.plan_synced(w, &bufs) else {
            return w.submit(ctx, bufs).await;
        };
        let mut flight = InFlight {
            core: self,
            armed: true,
        };
        let mut ops = vec![w.write_op(bufs, true), record];
        if planned.carried > 0 {
            // Their data completed before this submission: the flush makes it durable.
            ops.push(Op::Flush);
        }
        // Made in one turn of the executor, so submitted together: one round trip.
        let mut done = join_all(ops.into_iter().map(|op| ctx.io(w.dev, op)))
            .await
            .into_iter();
        let (data, data_r) = done.next().expect("the data write comes back");
        let logged = done.all(|(_, r)| r.is_ok());
        flight.armed = false;
        self.finish_synced(&planned, data_r.is_ok(), logged);
        Submitted {
            bufs: data.into_bufs().expect("a write has buffers"),
            result: data_r,
            by_fs: true,
        }
    }

    /// Builds the record of a synced write (and its device write) and marks it in flight,
    /// or `None` when the write goes as usual.
    fn plan_synced(&self, w: &DirectWrite<'_>, bufs: &Bufs) -> Option<(Planned, Op)> {
        let ino = w.ino.0;
        // (A device that cannot make a FUA write durable refuses it: such writes go as usual.)
        let fua = self.dev().geometry().fua_honoured;
        let fresh = w.write_map.flags.contains(MapFlags::NEW);
        if !fua || !fresh || self.check_writable().is_err() {
            return None;
        }
        let bs = self.bs();
        let mut log = self.log();
        let (area, area_len) = log.area?;
        let slot = log.next_slot;
        let busy = log.folding || log.synced_in_flight.is_some();
        if busy || log.unwritten_spilled || slot >= area_len / bs {
            return None;
        }
        let len = bufs.len() as u64;
        let crcs = block_crcs(bufs.segments(), bs as usize);
        let (size, size_dirty) = self.mem(ino, |m| (m.size, m.size_dirty)).ok()?;
        let new_size = size.max(w.end);
        let extent = Entry::Extent {
            ino,
            file_off: w.pos,
            bytenr: w.addr(),
            len,
            crcs,
        };
        let mut entries = log.unwritten.clone();
        let carried = entries.len();
        entries.push(extent.clone());
        let size = (new_size > size || size_dirty).then_some(new_size);
        if let Some(size) = size {
            entries.push(Entry::Size { ino, size });
        }
        let record = fslog::encode(log.base_gen, slot, &entries, bs as usize)?;
        let record = io::fua_write(self, area + slot * bs, &record).ok()?;
        log.synced_in_flight = Some(std::thread::current().id());
        let planned = Planned {
            base_gen: log.base_gen,
            slot,
            carried,
            extent,
            size,
        };
        Some((planned, record))
    }

    /// Ends a synced write's flight: maps its extent (after success) and marks what its
    /// record made durable, or falls back as the module docs say.
    fn finish_synced(&self, p: &Planned, data_ok: bool, logged: bool) {
        let bs = self.bs();
        let mut log = self.log();
        log.synced_in_flight = None;
        if !data_ok {
            drop(log);
            self.log_changed();
            // The record may be durable, naming space the completion is about to free.
            ::log::error!("fs-core: synced direct write failed; committing the log");
            if let Err(c) = self.commit_pending() {
                ::log::error!("fs-core: commit after a failed synced write: {c}");
            }
            return;
        }
        let Entry::Extent {
            ino,
            file_off,
            bytenr,
            len,
            ref crcs,
        } = p.extent
        else {
            unreachable!("a synced write logs its extent")
        };
        log.map_extent(ino, file_off, bytenr, len, crcs, bs);
        self.space().set_overlay_pieces(log.pieces());
        let current = log.base_gen == p.base_gen && !log.folding && log.next_slot == p.slot;
        if !logged || !current {
            // The record may not be on the media, or no longer extends the log: the data
            // is, and the next fsync (or a commit now, after a failed record, as
            // `log_fsync` does) makes its mapping durable.
            log.note_unwritten(p.extent.clone(), bs);
            drop(log);
            self.log_changed();
            if !logged {
                ::log::error!("fs-core: fsync record of a synced write failed; committing");
                if let Err(c) = self.commit_pending() {
                    ::log::error!("fs-core: commit after a failed fsync record: {c}");
                }
            }
            return;
        }
        log.next_slot += 1;
        mark_written(&mut log, p.carried, ino, (file_off, file_off + len), bs);
        if let Some(size) = p.size {
            log.sizes.insert(ino, size);
            let _ = self.mem(ino, |m| {
                m.size = m.size.max(size);
                m.size_dirty &= m.size != size;
            });
        }
        drop(log);
        self.log_changed();
    }
}

/// The first `carried` unwritten entries are in a durable record now; those noted since
/// stay unwritten, unless one is an extent of `ino` overlapping `range` (replay would put
/// it under the record's extent, memory has it over): then the log spills, and the next
/// fsync commits what memory holds.
fn mark_written(log: &mut LogState, carried: usize, ino: u64, range: (u64, u64), bs: u64) {
    if log.unwritten_spilled {
        // Dropped during the flight: the next fsync commits anyway.
        return;
    }
    let rest = log.unwritten.split_off(carried.min(log.unwritten.len()));
    let overlaps = rest.iter().any(|e| {
        matches!(*e, Entry::Extent { ino: i, file_off, len, .. }
            if i == ino && file_off < range.1 && range.0 < file_off + len)
    });
    log.written();
    if overlaps {
        log.unwritten_spilled = true;
        return;
    }
    for e in rest {
        log.note_unwritten(e, bs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: u64 = 4096;

    fn extent(ino: u64, file_off: u64) -> Entry {
        Entry::Extent {
            ino,
            file_off,
            bytenr: 1 << 20,
            len: BS,
            crcs: vec![0],
        }
    }

    fn log_with(entries: &[Entry]) -> LogState {
        let mut log = LogState::default();
        for e in entries {
            log.note_unwritten(e.clone(), BS);
        }
        log
    }

    #[test]
    fn a_record_makes_written_only_what_it_carried() {
        // Carried: the first; noted during the flight: another file's, and the same file
        // elsewhere.
        let mut log = log_with(&[extent(5, 0), extent(6, 0), extent(7, 8192)]);
        mark_written(&mut log, 1, 7, (0, BS), BS);
        assert_eq!(log.unwritten, vec![extent(6, 0), extent(7, 8192)]);
        assert!(!log.unwritten_spilled);
        let left = log_with(&[extent(6, 0), extent(7, 8192)]);
        assert_eq!(log.unwritten_bytes, left.unwritten_bytes);
    }

    #[test]
    fn an_overlapping_write_noted_during_the_flight_spills_the_log() {
        let mut log = log_with(&[extent(5, 0), extent(7, 0)]);
        mark_written(&mut log, 1, 7, (0, BS), BS);
        assert!(
            log.unwritten_spilled,
            "the next fsync commits what memory holds"
        );
        assert!(log.unwritten.is_empty());
    }

    #[test]
    fn a_log_spilled_during_the_flight_stays_spilled() {
        let mut log = log_with(&[extent(5, 0)]);
        log.unwritten_spilled = true;
        log.unwritten.clear();
        mark_written(&mut log, 1, 7, (0, BS), BS);
        assert!(log.unwritten_spilled);
    }
}
