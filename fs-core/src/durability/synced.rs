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
//!   of this thread take it meanwhile), so the record is built in flight
//!   (`Submit::InFlight`), which stands for the lock from building the record until its
//!   requests completed (`LogState::record_done`). Other record writers wait for it
//!   (`fsync::record_slot`), unless the record is their own thread's, which completes only
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
use crate::state::{Core, InodeMem};
use crate::state::{Entry, Record, Submit};

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

/// What a synced write's record logs of the write itself: its extent (`[file_off, file_off
/// + len)` of `ino` at `bytenr`, with its blocks' `crcs`) and the size it grows the file to.
struct Planned {
    ino: u64,
    file_off: u64,
    bytenr: u64,
    len: u64,
    crcs: Vec<u32>,
    /// The size it logs, if any.
    size: Option<u64>,
}

/// Holds a synced write's record in flight until the write finishes; if its future is
/// dropped first, the record may still land in its slot later: it is abandoned
/// (`LogState::record_abandoned`).
struct InFlight<'a> {
    core: &'a Core,
    record: Option<Record>,
}

impl InFlight<'_> {
    /// The record, its requests completed.
    fn land(mut self) -> Record {
        self.record.take().expect("landed once")
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Some(record) = self.record.take() else {
            return;
        };
        self.core.log().record_abandoned(record, self.core.bs());
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

    /// iomap's `submit_direct` for a write `begin` marked synced: writes `bufs` with its
    /// fsync record when the log can take one now, else as usual.
    pub(crate) async fn submit_synced(
        &self,
        ctx: &Context,
        w: &DirectWrite<'_>,
        bufs: Bufs,
    ) -> Submitted {
        let Some((planned, record, record_op)) = self.plan_synced(w, &bufs) else {
            return w.submit(ctx, bufs).await;
        };
        let flush = record.carries_others();
        let flight = InFlight {
            core: self,
            record: Some(record),
        };
        let mut ops = vec![w.write_op(bufs, true), record_op];
        if flush {
            // Their data completed before this submission: the flush makes it durable.
            ops.push(Op::Flush);
        }
        // Made in one turn of the executor, so submitted together: one round trip.
        let mut done = join_all(ops.into_iter().map(|op| ctx.io(w.dev, op)))
            .await
            .into_iter();
        let (data, data_r) = done.next().expect("the data write comes back");
        let logged = done.all(|(_, r)| r.is_ok());
        self.finish_synced(&planned, flight.land(), data_r.is_ok(), logged);
        Submitted {
            bufs: data.into_bufs().expect("a write has buffers"),
            result: data_r,
            by_fs: true,
        }
    }

    /// Builds the record of a synced write (and its device write), in flight, or `None`
    /// when the write goes as usual.
    fn plan_synced(&self, w: &DirectWrite<'_>, bufs: &Bufs) -> Option<(Planned, Record, Op)> {
        let ino = w.ino.0;
        // (A device that cannot make a FUA write durable refuses it: such writes go as usual.)
        let fua = self.dev().geometry().fua_honoured;
        let fresh = w.write_map.flags.contains(MapFlags::NEW);
        if !fua || !fresh || self.check_writable().is_err() {
            return None;
        }
        let bs = self.bs();
        let mut log = self.log();
        // Before the checksums are computed; `build_record` decides.
        if !log.may_record(bs) {
            return None;
        }
        let len = bufs.len() as u64;
        let crcs = block_crcs(bufs.segments(), bs as usize);
        let (size, size_dirty) = self.mem(ino, |m| (m.size, m.size_dirty)).ok()?;
        let new_size = size.max(w.end);
        let size = (new_size > size || size_dirty).then_some(new_size);
        let planned = Planned {
            ino,
            file_off: w.pos,
            bytenr: w.addr(),
            len,
            crcs,
            size,
        };
        let mut own = vec![Entry::Extent {
            ino,
            file_off: planned.file_off,
            bytenr: planned.bytenr,
            len,
            crcs: planned.crcs.clone(),
        }];
        own.extend(size.map(|size| Entry::Size { ino, size }));
        let record = log.build_record(&own, bs, Submit::InFlight)?;
        match io::fua_write(self, record.addr(), record.block()) {
            Ok(op) => Some((planned, record, op)),
            Err(_) => {
                // No buffer for it: nothing was submitted.
                log.record_done(record, false, bs);
                None
            }
        }
    }

    /// Ends a synced write's flight: maps its extent (after success) and marks what its
    /// record made durable, or falls back as the module docs say.
    fn finish_synced(&self, p: &Planned, record: Record, data_ok: bool, logged: bool) {
        let bs = self.bs();
        let mut log = self.log();
        let counts = log.record_done(record, data_ok && logged, bs);
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
        let (ino, file_off, bytenr, len) = (p.ino, p.file_off, p.bytenr, p.len);
        if !counts {
            // The record may not be on the media, or no longer extends the log: the data
            // is, and the next fsync (or a commit now, after a failed record, as
            // `log_fsync` does) makes its mapping durable.
            log.log_extent(ino, file_off, bytenr, len, &p.crcs, bs);
            self.space().set_overlay_pieces(log.pieces());
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
        log.map_extent(ino, file_off, bytenr, len, &p.crcs, bs);
        self.space().set_overlay_pieces(log.pieces());
        if let Some(size) = p.size {
            // Logged with the record (`record_done`); memory catches up.
            let _ = self.mem(ino, |m| {
                m.size = m.size.max(size);
                m.size_dirty &= m.size != size;
            });
        }
        drop(log);
        self.log_changed();
    }
}
