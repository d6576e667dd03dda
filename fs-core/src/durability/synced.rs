//! Synced direct writes: a file fdatasync'd after every direct write (a database's log,
//! written and synced a block at a time) gets each such write made durable together with
//! its fsync record, in one device round trip, so the fdatasync that follows has nothing
//! left to write.
//!
//! Otherwise a 4 KiB direct write + fdatasync is two round trips: the data, then the record
//! (with FUA) and a flush. Here the data (FUA), the record (FUA) and, when the record also
//! carries other completed writes, a flush are in flight at once.
//!
//! When: the file's last `SYNC_STREAK` fsyncs each came after exactly one direct write, this
//! write is the first since the last fsync, it goes to fresh space (copy-on-write), the
//! device honours FUA, and the log has a free slot and no fold running. Anything else is
//! written as usual. The cost of a wrong guess (a write synced that no fsync follows) is one
//! log slot and FUA on two writes.
//!
//! Invariants (beside those of `fslog.rs`):
//! - the log lock is held from building the record until all three requests complete, so
//!   the durable records stay a prefix (the next record is written after this one is
//!   durable);
//! - data and record have no order between them: replay links the record's extents only if
//!   the device holds their bytes (`fold::replay`'s `data_landed`), so a crash that kept the
//!   record but not the data ends the replayed prefix before it (that write never returned);
//! - the extent is mapped in the overlay and the size raised under the same lock hold, after
//!   the requests succeeded, so a fold cannot restart the log between the record and the
//!   overlay knowing the extent;
//! - a failed data write leaves a record that may be durable and names space about to be
//!   freed: a commit restarts the log (records of the old generation are ignored) before
//!   the write's completion frees that space.

use bdev::{Bufs, IoError, Lba, Op};
use iomap::{DirectWrite, MapFlags};

use crate::data::block_crcs;
use crate::durability::io;
use crate::state::{self as fslog, Entry};
use crate::state::{Core, InodeMem};

/// Fsyncs in a row, each after one direct write, after which the file's direct writes are
/// synced with their record.
pub(crate) const SYNC_STREAK: u32 = 4;

/// What a synced write gives back: the buffers and the device's answer once it wrote them,
/// or the buffers, untouched, for a plain write.
pub(crate) type TakenWrite = std::result::Result<(Bufs, std::result::Result<(), IoError>), Bufs>;

/// Counts a direct write (a mapping `begin` maps for one) towards the file's sync pattern;
/// says whether the pattern asks to sync it (if it goes to fresh space, which `begin`
/// decides).
pub(crate) fn count_direct_write(m: &mut InodeMem) -> bool {
    m.direct_writes = m.direct_writes.saturating_add(1);
    m.direct_writes == 1 && m.sync_streak >= SYNC_STREAK && !m.nocow
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

    /// Writes `bufs` with its fsync record, for a direct write whose `begin` found the
    /// file's pattern asking for it (see the module docs).
    pub(crate) fn take_direct_write(&self, d: &DirectWrite<'_>, bufs: Bufs) -> TakenWrite {
        let ino = d.ino.0;
        // (A device that cannot make a FUA write durable refuses it: such writes go as usual.)
        let fua = self.dev().geometry().fua_honoured;
        let fresh = d.write_map.flags.contains(MapFlags::NEW);
        if !fua || !fresh || self.check_writable().is_err() {
            return Err(bufs);
        }
        let bs = self.bs();
        let mut log = self.log();
        let Some((area, area_len)) = log.area else {
            return Err(bufs);
        };
        let slot = log.next_slot;
        if log.folding || log.unwritten_spilled || slot >= area_len / bs {
            return Err(bufs);
        }
        let len = bufs.len() as u64;
        let addr = d.write_map.device_addr(d.pos);
        let crcs = block_crcs(bufs.segments(), bs as usize);
        let Ok((size, size_dirty)) = self.mem(ino, |m| (m.size, m.size_dirty)) else {
            return Err(bufs);
        };
        let new_size = size.max(d.end);
        let extent = Entry::Extent {
            ino,
            file_off: d.pos,
            bytenr: addr,
            len,
            crcs: crcs.clone(),
        };
        let mut entries = log.unwritten.clone();
        let carries_others = !entries.is_empty();
        entries.push(extent.clone());
        let grows = new_size > size || size_dirty;
        if grows {
            entries.push(Entry::Size {
                ino,
                size: new_size,
            });
        }
        let Some(record) = fslog::encode(log.base_gen, slot, &entries, bs as usize) else {
            return Err(bufs);
        };
        let Ok(record) = io::fua_write(self, area + slot * bs, &record) else {
            return Err(bufs);
        };
        let sector = u64::from(self.dev().geometry().block_size);
        let mut held = Some((bufs, record));
        let ran = self.with_io(|q| {
            let (bufs, record) = held.take().expect("taken once");
            let data = Op::Write {
                lba: Lba(addr / sector),
                bufs,
                fua: true,
            };
            let mut ops = vec![data, record];
            if carries_others {
                // Their data completed before this submission: the flush makes it durable.
                ops.push(Op::Flush);
            }
            Ok(io::run_each(q, ops))
        });
        let mut done = match ran {
            Ok(done) => done.into_iter(),
            // No metadata queue could be made: nothing was submitted.
            Err(_) => return Err(held.take().expect("not taken").0),
        };
        let (data, data_r) = done.next().expect("the data write comes back");
        let bufs = data.into_bufs().expect("a write has buffers");
        let logged = done.all(|(_, r)| r.is_ok());
        if let Err(e) = data_r {
            drop(log);
            // The record may be durable, naming space the completion is about to free.
            ::log::error!("fs-core: synced direct write failed ({e}); committing the log");
            if let Err(c) = self.commit_pending() {
                ::log::error!("fs-core: commit after a failed synced write: {c}");
            }
            return Ok((bufs, Err(e)));
        }
        log.map_extent(ino, d.pos, addr, len, &crcs, bs);
        self.space().set_overlay_pieces(log.pieces());
        if !logged {
            // Whether the record is on the media is unknown: the data is, and a commit makes
            // its mapping durable with everything else (as `log_fsync` does).
            log.note_unwritten(extent, bs);
            drop(log);
            ::log::error!("fs-core: fsync record of a synced write failed; committing instead");
            if let Err(c) = self.commit_pending() {
                ::log::error!("fs-core: commit after a failed fsync record: {c}");
            }
            return Ok((bufs, Ok(())));
        }
        log.next_slot += 1;
        log.written();
        if grows {
            log.sizes.insert(ino, new_size);
            let _ = self.mem(ino, |m| {
                m.size = m.size.max(new_size);
                m.size_dirty &= m.size != new_size;
            });
        }
        Ok((bufs, Ok(())))
    }
}
