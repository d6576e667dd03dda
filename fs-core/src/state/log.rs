//! The fsync log (the role of btrfs's tree-log): makes fsync/fdatasync of written-back data
//! cost one log block write and one flush instead of a cow commit.
//!
//! Layout: the log inode ([`LOG_INO`](super::LOG_INO)) owns one prealloc extent, the log
//! area, of 4 to 1024 blocks (`durability/area.rs`). Each fsync that has something to log
//! writes one record block (`record.rs`) into the next slot with FUA, a flush in flight
//! beside it. See `docs/FORMAT.md`.
//!
//! [`LogState`] is where the log writes next, the [`Logged`] changes since the last commit
//! (the overlay, `overlay.rs`, with the sizes and times logged and what no durable record has
//! yet, `unwritten.rs`) and, while the folder thread commits them, the frozen older ones.
//! Records are built and marked written here and nowhere else ([`LogState::build_record`],
//! [`LogState::record_done`]); `durability/fsync.rs` and `durability/synced.rs` submit them.
//!
//! Invariants:
//! - records extend the last committed generation: every cow commit (`Core::commit`,
//!   `durability/commit.rs`) first folds everything logged into its own transaction, then
//!   restarts the log at slot 0 with the new generation, so replay ignores records of older
//!   generations;
//! - records are written one at a time, each durable (FUA) before the next is written: a
//!   record is built only while no other is in flight and no fold runs. A record written
//!   with the log's lock held until it completes needs no more; one awaited on its thread's
//!   context (a synced direct write's, `durability/synced.rs`) is marked in flight until
//!   [`LogState::record_done`], and other record writers wait for it; so the durable
//!   records are a prefix;
//! - a record names whole data extents with the crc32c of each block, all of which completed
//!   before the record was submitted, so the flush submitted with it makes them durable;
//!   except that a synced direct write's record goes out beside its own extent, both with
//!   FUA; replay links an extent only if the device holds those bytes, so data and record
//!   may reach the media in either order and need no ordering between them;
//! - logged extents stay reserved in memory (not free) until folded into a commit;
//!   meanwhile reads see them through the overlay, the live one first, then the frozen one.

use std::sync::Arc;
use std::thread::ThreadId;

use hashbrown::HashMap;

use super::overlay::{Found, Overlay};
use super::record::{encode, Entry};
use super::unwritten::Unwritten;

/// What was logged since the last commit: what a commit (or the folder's fold) folds into
/// its transaction.
#[derive(Clone, Debug, Default)]
pub(crate) struct Logged {
    /// The file mappings.
    overlay: Overlay,
    /// Bytes of all the extents logged (mapped or replaced since).
    extent_bytes: u64,
    /// Sizes logged.
    sizes: HashMap<u64, u64>,
    /// Modification times logged.
    times: HashMap<u64, i64>,
    /// What of the above no durable record has yet.
    unwritten: Unwritten,
}

impl Logged {
    /// Whether nothing awaits a fold.
    pub fn is_clean(&self) -> bool {
        self.overlay.is_empty() && self.sizes.is_empty() && self.times.is_empty()
    }

    /// The file mappings.
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// The memory these changes take: the overlay's, and the sizes and times (an entry of
    /// some 24 bytes each in a hash table).
    pub fn mem_bytes(&self) -> u64 {
        self.overlay.mem_bytes() + (self.sizes.len() + self.times.len()) as u64 * 24
    }

    /// `ino -> size` of the sizes logged.
    pub fn sizes(&self) -> &HashMap<u64, u64> {
        &self.sizes
    }

    /// `ino -> mtime_ns` of the modification times logged.
    pub fn times(&self) -> &HashMap<u64, i64> {
        &self.times
    }

    /// Maps `[off, off + len)` of `ino` to the whole new extent at `bytenr`, whose blocks
    /// have the checksums `crcs` (`bs`: the block size).
    pub fn map_extent(&mut self, ino: u64, off: u64, bytenr: u64, len: u64, crcs: &[u32], bs: u64) {
        self.extent_bytes += len;
        self.overlay.add(ino, off, bytenr, len, crcs, bs);
    }

    /// Takes the sizes and times among `entries` (they are in a durable record, or about to
    /// be committed); other entries are ignored.
    pub fn note_attrs(&mut self, entries: &[Entry]) {
        for e in entries {
            match *e {
                Entry::Size { ino, size } => {
                    self.sizes.insert(ino, size);
                }
                Entry::Times { ino, mtime_ns } => {
                    self.times.insert(ino, mtime_ns);
                }
                Entry::Extent { .. } | Entry::Item { .. } | Entry::Forget { .. } => {}
            }
        }
    }

    /// Empty, sized like `self`: the next one likely grows as large.
    fn sized_like(&self) -> Logged {
        Logged {
            overlay: self.overlay.sized_like(),
            ..Logged::default()
        }
    }

    /// Takes back older changes whose fold failed: their mappings go under these, their
    /// attributes count where these have none, their unwritten entries come first.
    fn absorb_older(&mut self, older: &Logged, bs: u64) {
        self.overlay.put_over(&older.overlay, bs);
        self.extent_bytes += older.extent_bytes;
        for (&ino, &size) in &older.sizes {
            self.sizes.entry(ino).or_insert(size);
        }
        for (&ino, &t) in &older.times {
            self.times.entry(ino).or_insert(t);
        }
        self.unwritten.put_under(&older.unwritten);
    }
}

/// How a record's writer submits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Submit {
    /// Holding the log's lock until the record (and its flush) completed.
    Locked,
    /// Without the lock, awaited on the thread's context: the record is marked in flight
    /// until [`LogState::record_done`] (or [`LogState::record_abandoned`]).
    InFlight,
}

/// A record built for the log's next slot, to write with FUA.
#[derive(Debug)]
pub(crate) struct Record {
    /// The generation and slot it was built for.
    base_gen: u64,
    slot: u64,
    /// Its device address.
    addr: u64,
    block: Vec<u8>,
    /// How many of the log's unwritten entries it carries (the first ones).
    carried: usize,
    /// Its entries after those: attributes, a synced write's extent.
    own: Vec<Entry>,
    submit: Submit,
}

impl Record {
    /// The device byte address of its slot.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The block to write.
    pub fn block(&self) -> &[u8] {
        &self.block
    }

    /// Whether it carries entries of other writes (whose data a flush beside it makes
    /// durable).
    pub fn carries_others(&self) -> bool {
        self.carried > 0
    }
}

/// The log's in-memory state: where records go, and what is logged.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    /// The log area `(device address, bytes)`; `None`: no log (read-only, or none yet).
    area: Option<(u64, u64)>,
    /// The committed generation the records extend.
    base_gen: u64,
    /// The next slot to write.
    next_slot: u64,
    /// What is logged since the last commit.
    live: Logged,
    /// What a background fold is committing, older than `live`: reads consult it after
    /// `live`. A fold runs exactly while this is set (`durability/background.rs`).
    frozen: Option<Arc<Logged>>,
    /// The thread whose record is in flight without the log's lock ([`Submit::InFlight`]):
    /// no other record may be written until it completes. Outlives restarts and folds.
    in_flight: Option<ThreadId>,
    /// Whether records may carry namespace changes: only once this code committed since
    /// mount, so the superblock the records extend has the format version (3) that an
    /// older binary, which could not replay them, refuses (`docs/FORMAT.md`).
    names: bool,
}

impl LogState {
    /// The log area `(device address, bytes)`, if the filesystem has one.
    pub fn area(&self) -> Option<(u64, u64)> {
        self.area
    }

    /// Sets the log area and starts it empty, extending `generation` (mount, or a new area).
    pub fn start(&mut self, area: Option<(u64, u64)>, generation: u64) {
        self.area = area;
        self.restart(generation);
        self.names = false;
    }

    /// Restarts the log after the commit of `generation` folded everything.
    pub fn restart(&mut self, generation: u64) {
        *self = LogState {
            area: self.area,
            base_gen: generation,
            in_flight: self.in_flight,
            names: true,
            ..LogState::default()
        };
    }

    /// Whether records may carry namespace changes (entries 4 and 5) now: a commit of this
    /// mount wrote the generation they extend.
    pub fn takes_names(&self) -> bool {
        self.names
    }

    /// Takes the changes replay read from the records of a freshly started log.
    pub fn replayed(&mut self, logged: Logged) {
        debug_assert!(self.live.is_clean() && self.frozen.is_none());
        self.live = logged;
    }

    /// The live changes: what a commit folds.
    pub fn logged(&self) -> &Logged {
        &self.live
    }

    /// Whether nothing awaits a fold (in the live changes).
    pub fn is_clean(&self) -> bool {
        self.live.is_clean()
    }

    /// Whether a background fold runs: commits and records wait for it.
    pub fn folding(&self) -> bool {
        self.frozen.is_some()
    }

    /// Freezes the live changes for a background fold, which commits them while new ones
    /// gather; `None` if there are none.
    pub fn freeze(&mut self) -> Option<Arc<Logged>> {
        if self.live.is_clean() {
            return None;
        }
        debug_assert!(self.frozen.is_none(), "one fold at a time");
        let fresh = self.live.sized_like();
        let frozen = Arc::new(std::mem::replace(&mut self.live, fresh));
        self.frozen = Some(Arc::clone(&frozen));
        Some(frozen)
    }

    /// The background fold ended: it committed `generation` (no record was written
    /// meanwhile, so the log restarts there, the live changes all unwritten), or it failed
    /// (`None`) and the frozen changes come back under the live ones.
    pub fn thaw(&mut self, committed: Option<u64>, bs: u64) {
        let Some(frozen) = self.frozen.take() else {
            return;
        };
        match committed {
            Some(generation) => {
                self.base_gen = generation;
                self.next_slot = 0;
                self.names = true;
            }
            None => self.live.absorb_older(&frozen, bs),
        }
    }

    /// Bytes of the extents of the live changes.
    pub fn extent_bytes(&self) -> u64 {
        self.live.extent_bytes
    }

    /// The checksum logged for the data block at device address `addr`, live or frozen,
    /// for blocks of extents longer than a block (a one-block extent's comes with its
    /// mapping: [`LogState::lookup`]).
    pub fn crc(&self, addr: u64) -> Option<u32> {
        let older = || self.frozen.as_ref().and_then(|f| f.overlay.crc(addr));
        self.live.overlay.crc(addr).or_else(older)
    }

    /// The file ranges `[start, end)` of `ino` that logged extents map, live or frozen (for
    /// `st_blocks`: data not yet committed takes space too).
    pub fn mapped_ranges(&self, ino: u64, bs: u64) -> Vec<(u64, u64)> {
        let mut v = self.live.overlay.mapped_ranges(ino, bs);
        if let Some(f) = &self.frozen {
            v.extend(f.overlay.mapped_ranges(ino, bs));
        }
        v
    }

    /// Whether a size or time of `ino` is logged and not yet committed.
    pub fn has_attrs(&self, ino: u64) -> bool {
        let has = |l: &Logged| l.sizes.contains_key(&ino) || l.times.contains_key(&ino);
        has(&self.live) || self.frozen.as_deref().is_some_and(has)
    }

    /// Pieces mapped, live and frozen: what the next folds will have to change
    /// (`Space::fold_need`).
    pub fn pieces(&self) -> usize {
        self.own_pieces() + self.frozen.as_ref().map_or(0, |f| f.overlay.len())
    }

    /// The memory of the live changes and of the frozen ones, if a fold runs (what the
    /// overlay budget bounds, `io/space.rs`).
    pub fn mem_bytes(&self) -> (u64, u64) {
        let frozen = self.frozen.as_ref().map_or(0, |f| f.mem_bytes());
        (self.live.mem_bytes(), frozen)
    }

    /// Pieces mapped in the live changes.
    pub fn own_pieces(&self) -> usize {
        self.live.overlay.len()
    }

    /// The logged piece covering `pos` of `ino`, else the start of the next piece in
    /// `(pos, limit)`; live, then frozen (whose pieces end where a live one starts before
    /// `limit`: callers map no further). `bs`: the block size.
    pub fn lookup(&self, ino: u64, pos: u64, limit: u64, bs: u64) -> (Option<Found>, Option<u64>) {
        let (cover, next) = self.live.overlay.lookup(ino, pos, limit, bs);
        let Some(older) = self.frozen.as_ref().filter(|_| cover.is_none()) else {
            return (cover, next);
        };
        match older.overlay.lookup(ino, pos, limit, bs) {
            (Some(l), _) => {
                let own_end = l.off + l.piece.num_bytes;
                let end = next.map_or(own_end, |n| n.min(own_end));
                let mut piece = l.piece;
                piece.num_bytes = end - l.off;
                (Some(Found { piece, ..l }), next)
            }
            (None, older_next) => (None, next.into_iter().chain(older_next).min()),
        }
    }

    /// Whether the live changes hold some that no durable record has.
    pub fn has_unwritten(&self) -> bool {
        !self.live.unwritten.is_empty()
    }

    /// Maps `[off, off + len)` of `ino` to the whole new extent at `bytenr` (blocks with the
    /// checksums `crcs`), durable already or through a commit.
    pub fn map_extent(&mut self, ino: u64, off: u64, bytenr: u64, len: u64, crcs: &[u32], bs: u64) {
        self.live.map_extent(ino, off, bytenr, len, crcs, bs);
    }

    /// [`LogState::map_extent`] for an extent the next record must carry.
    pub fn log_extent(&mut self, ino: u64, off: u64, bytenr: u64, len: u64, crcs: &[u32], bs: u64) {
        self.live.map_extent(ino, off, bytenr, len, crcs, bs);
        let e = || Entry::Extent {
            ino,
            file_off: off,
            bytenr,
            len,
            crcs: crcs.to_vec(),
        };
        self.live.unwritten.note_with(e, bs);
    }

    /// See [`Logged::note_attrs`].
    pub fn note_attrs(&mut self, entries: &[Entry]) {
        self.live.note_attrs(entries);
    }

    /// Whether a record writer of thread `me` must wait before building: a fold runs, or
    /// another thread's record is in flight (this thread's own completes only when this
    /// thread polls its context: [`LogState::build_record`] refuses instead).
    pub fn record_waits(&self, me: ThreadId) -> bool {
        self.folding() || self.in_flight.is_some_and(|t| t != me)
    }

    /// Whether a record may be written now, if its entries fit a block of `bs` bytes: the
    /// log has an area with a free slot, the unwritten entries did not spill, no fold runs
    /// and no record is in flight. ([`LogState::build_record`] decides; this lets a caller
    /// skip making entries it would not write.)
    pub fn may_record(&self, bs: u64) -> bool {
        let free_slot = self.area.is_some_and(|(_, len)| self.next_slot < len / bs);
        free_slot
            && self.live.unwritten.entries().is_some()
            && !self.folding()
            && self.in_flight.is_none()
    }

    /// The next record: the unwritten entries, then `own`. `None` when no record can be
    /// written now (the caller commits, or writes as usual): no log area, the area full,
    /// unwritten entries spilled, a fold running, a record in flight, or too many entries
    /// for a block of `bs` bytes. With [`Submit::InFlight`] the record is marked in flight.
    pub fn build_record(&mut self, own: &[Entry], bs: u64, submit: Submit) -> Option<Record> {
        if !self.may_record(bs) {
            return None;
        }
        let (area, _) = self.area?;
        let slot = self.next_slot;
        let unwritten = self.live.unwritten.entries()?;
        let carried = unwritten.len();
        let entries = [unwritten, own].concat();
        let block = encode(self.base_gen, slot, &entries, bs as usize)?;
        if submit == Submit::InFlight {
            self.in_flight = Some(std::thread::current().id());
        }
        Some(Record {
            base_gen: self.base_gen,
            slot,
            addr: area + slot * bs,
            block,
            carried,
            own: own.to_vec(),
            submit,
        })
    }

    /// `record` completed, durable (`landed`) or not (then the caller commits). Says whether
    /// it counts: it landed and the log still extends the generation and slot it was built
    /// for, with no fold started meanwhile. Then the log moves to the next slot, the
    /// entries it carried are written and its sizes and times are logged. A record
    /// written with the lock held ([`Submit::Locked`]) always counts once it landed.
    pub fn record_done(&mut self, record: Record, landed: bool, bs: u64) -> bool {
        if record.submit == Submit::InFlight {
            self.in_flight = None;
        }
        let current =
            self.base_gen == record.base_gen && !self.folding() && self.next_slot == record.slot;
        debug_assert!(
            current || record.submit == Submit::InFlight,
            "the log moved under its lock"
        );
        if !landed || !current {
            return false;
        }
        self.next_slot += 1;
        self.live
            .unwritten
            .carried_written(record.carried, &record.own, bs);
        self.live.note_attrs(&record.own);
        true
    }

    /// `record`, in flight, will never be known to complete (its future was dropped): it
    /// may still land in its slot, so no record may go there; the log is left full, and
    /// the next fsync commits (which restarts it).
    pub fn record_abandoned(&mut self, record: Record, bs: u64) {
        debug_assert_eq!(record.submit, Submit::InFlight);
        self.in_flight = None;
        if let Some((_, area_len)) = self.area {
            self.next_slot = self.next_slot.max(area_len / bs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::overlay::Piece;
    use super::super::record::decode;
    use super::*;

    const BS: u64 = 4096;

    /// A log with an area of `slots` blocks at 1 MiB, extending generation 5.
    fn started(slots: u64) -> LogState {
        let mut log = LogState::default();
        log.start(Some((1 << 20, slots * BS)), 5);
        log
    }

    fn extent(ino: u64, file_off: u64, bytenr: u64, crc: u32) -> Entry {
        Entry::Extent {
            ino,
            file_off,
            bytenr,
            len: BS,
            crcs: vec![crc],
        }
    }

    /// `(file offset, extent, offset in it, bytes)` of the live pieces of `ino`.
    fn pieces(log: &LogState, ino: u64) -> Vec<(u64, u64, u64, u64)> {
        let mut v: Vec<(u64, u64, u64, u64)> = log
            .mapped_ranges(ino, BS)
            .into_iter()
            .filter_map(|(o, _)| log.live.overlay.lookup(ino, o, o + 1, BS).0)
            .map(|f| {
                (
                    f.off,
                    f.piece.disk_bytenr,
                    f.piece.offset,
                    f.piece.num_bytes,
                )
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// A failed fold of a hashed overlay comes back under a hashed live one: the live
    /// blocks win, and what they replace joins the extents to give back.
    #[test]
    fn a_hashed_overlay_comes_back_under_a_hashed_one() {
        let mut live = started(4);
        live.map_extent(7, 0, 0x10_0000, BS, &[1], BS);
        live.map_extent(7, BS, 0x20_0000, BS, &[2], BS);
        live.map_extent(7, BS, 0x30_0000, BS, &[3], BS);
        assert!(live.freeze().is_some() && live.folding());
        live.map_extent(7, BS, 0x40_0000, BS, &[4], BS);
        live.map_extent(7, 2 * BS, 0x50_0000, BS, &[5], BS);
        // Reads see the live block over the frozen one, and the frozen one beside it.
        let at = |log: &LogState, pos: u64| {
            let (c, next) = log.lookup(7, pos, 4 * BS, BS);
            (c.map(|l| (l.off, l.piece.disk_bytenr, l.crc)), next)
        };
        assert_eq!(
            at(&live, BS),
            (Some((BS, 0x40_0000, Some(4))), Some(2 * BS))
        );
        assert_eq!(at(&live, 0), (Some((0, 0x10_0000, Some(1))), Some(BS)));
        assert_eq!(live.pieces(), 4);
        live.thaw(None, BS);
        assert!(!live.folding());
        let Overlay::Blocks(b) = live.logged().overlay() else {
            panic!("still hashed");
        };
        let mut mapped: Vec<_> = b.mapped().map(|((i, o), (e, _))| (i, o, e)).collect();
        mapped.sort_unstable();
        assert_eq!(
            mapped,
            vec![
                (7, 0, 0x10_0000),
                (7, BS, 0x40_0000),
                (7, 2 * BS, 0x50_0000)
            ]
        );
        let mut dead = b.dead().to_vec();
        dead.sort_unstable();
        assert_eq!(dead, vec![0x20_0000, 0x30_0000]);
        assert_eq!(live.extent_bytes(), 5 * BS);
    }

    /// While a background fold runs, reads see the live overlay first and the frozen one
    /// under it; a fold that failed gives its overlay back under the live one.
    #[test]
    fn the_frozen_overlay_shows_under_the_live_one_and_comes_back_under_it() {
        let mut live = started(4);
        live.map_extent(7, 0, 0x10_0000, 8 * BS, &[1; 8], BS);
        live.map_extent(7, 20 * BS, 0x20_0000, BS, &[2], BS);
        let size = Entry::Size {
            ino: 7,
            size: 21 * BS,
        };
        live.note_attrs(std::slice::from_ref(&size));
        live.live.unwritten.note(size.clone(), BS);
        let frozen = live.freeze().expect("something to fold");
        assert_eq!(frozen.sizes()[&7], 21 * BS);
        assert!(live.is_clean() && !live.has_unwritten());
        // A newer write of [8K, 12K) in the live overlay.
        live.map_extent(7, 2 * BS, 0x30_0000, BS, &[3], BS);
        let at = |log: &LogState, pos: u64| {
            let (cover, next) = log.lookup(7, pos, u64::MAX, BS);
            let c = cover.map(|l| {
                let p = l.piece;
                (l.off, p.disk_bytenr, p.offset, p.num_bytes)
            });
            (c, next)
        };
        // The live piece wins where it is.
        assert_eq!(at(&live, 2 * BS), (Some((2 * BS, 0x30_0000, 0, BS)), None));
        // The frozen piece shows before it, cut where the live piece starts.
        assert_eq!(
            at(&live, BS),
            (Some((0, 0x10_0000, 0, 2 * BS)), Some(2 * BS))
        );
        // ... and after it, whole (callers map from `pos` on).
        assert_eq!(at(&live, 5 * BS), (Some((0, 0x10_0000, 0, 8 * BS)), None));
        // Between pieces: the next start of either overlay.
        assert_eq!(at(&live, 9 * BS), (None, Some(20 * BS)));
        assert_eq!(live.crc(0x10_0000), Some(1));
        // The live one-block extent's checksum comes with its mapping.
        assert_eq!(live.crc(0x30_0000), None);
        assert_eq!(live.lookup(7, 2 * BS, u64::MAX, BS).0.unwrap().crc, Some(3));
        assert!(live.has_attrs(7) && !live.has_attrs(8));
        assert_eq!(live.pieces(), 3);
        // The fold failed: everything comes back, the newer piece on top.
        live.note_attrs(&[Entry::Size {
            ino: 7,
            size: 30 * BS,
        }]);
        live.thaw(None, BS);
        assert_eq!(
            pieces(&live, 7),
            vec![
                (0, 0x10_0000, 0, 2 * BS),
                (2 * BS, 0x30_0000, 0, BS),
                (3 * BS, 0x10_0000, 3 * BS, 5 * BS),
                (20 * BS, 0x20_0000, 0, BS),
            ]
        );
        assert_eq!(live.logged().sizes()[&7], 30 * BS, "the newer size stays");
        let Overlay::Pieces(p) = live.logged().overlay() else {
            panic!("pieces, as the older overlay was");
        };
        assert_eq!(p.extents().len(), 3);
        assert_eq!(
            p.mapped()[&(7, 2 * BS)],
            Piece::whole(0x30_0000, BS),
            "the live block became a piece"
        );
        assert_eq!(live.extent_bytes(), 10 * BS);
        assert_eq!(live.live.unwritten.entries(), Some(&[size][..]));
        assert_eq!(live.crc(0x20_0000), Some(2));
        // A fresh overlay starts hashed again, the area kept.
        live.restart(6);
        assert!(live.is_clean() && matches!(live.logged().overlay(), Overlay::Blocks(_)));
        assert_eq!(live.area(), Some((1 << 20, 4 * BS)));
    }

    /// A fold that committed restarts the log at slot 0 of its generation; the changes
    /// gathered meanwhile stay unwritten, for the next record.
    #[test]
    fn a_committed_fold_restarts_the_log_under_the_live_changes() {
        let mut log = started(4);
        log.log_extent(7, 0, 0x10_0000, BS, &[1], BS);
        let r = log.build_record(&[], BS, Submit::Locked).unwrap();
        assert!(log.record_done(r, true, BS));
        assert_eq!(log.next_slot, 1);
        log.freeze().unwrap();
        assert!(
            log.build_record(&[], BS, Submit::Locked).is_none(),
            "folding"
        );
        log.log_extent(7, BS, 0x20_0000, BS, &[2], BS);
        log.thaw(Some(9), BS);
        assert!(!log.folding() && log.has_unwritten());
        assert_eq!((log.base_gen, log.next_slot, log.pieces()), (9, 0, 1));
        let r = log.build_record(&[], BS, Submit::Locked).unwrap();
        assert_eq!(
            decode(r.block(), 9, 0),
            Some(vec![extent(7, BS, 0x20_0000, 2)])
        );
    }

    /// A record carries the unwritten entries then its own, in the next slot; once it
    /// landed the log moves on, its attributes are logged and nothing is left unwritten.
    #[test]
    fn a_record_carries_the_unwritten_entries_and_moves_the_log_on() {
        let mut log = started(2);
        log.log_extent(7, 0, 0x10_0000, BS, &[1], BS);
        let size = Entry::Size { ino: 7, size: BS };
        let r = log.build_record(std::slice::from_ref(&size), BS, Submit::Locked);
        let r = r.unwrap();
        assert_eq!(r.addr(), 1 << 20);
        assert!(r.carries_others());
        assert_eq!(
            decode(r.block(), 5, 0),
            Some(vec![extent(7, 0, 0x10_0000, 1), size.clone()])
        );
        // A record that did not land changes nothing: the caller commits.
        assert!(!log.record_done(r, false, BS));
        assert_eq!(log.next_slot, 0);
        assert!(log.has_unwritten() && !log.has_attrs(7));
        let r = log.build_record(std::slice::from_ref(&size), BS, Submit::Locked);
        assert!(log.record_done(r.unwrap(), true, BS));
        assert!(!log.has_unwritten() && log.has_attrs(7));
        assert_eq!(log.logged().sizes()[&7], BS);
        let r = log.build_record(&[], BS, Submit::Locked).unwrap();
        assert_eq!((r.addr(), r.carries_others()), ((1 << 20) + BS, false));
        assert!(log.record_done(r, true, BS));
        assert!(
            log.build_record(&[], BS, Submit::Locked).is_none(),
            "the area is full"
        );
        // Spilled entries cannot be carried.
        let mut log = started(2);
        for i in 0..BS / 8 {
            log.log_extent(7, i * BS, 0x10_0000 + i * BS, BS, &[1], BS);
        }
        assert!(log.has_unwritten());
        assert!(
            log.build_record(&[], BS, Submit::Locked).is_none(),
            "spilled"
        );
        // No area, no record.
        assert!(LogState::default()
            .build_record(&[], BS, Submit::Locked)
            .is_none());
    }

    /// A record in flight blocks every other until it is done; one that finds the log
    /// restarted (a commit during its flight) does not count, and one abandoned leaves the
    /// log full.
    #[test]
    fn a_record_in_flight_holds_the_log_until_it_is_done() {
        let mut log = started(4);
        log.log_extent(7, 0, 0x10_0000, BS, &[1], BS);
        let own = extent(8, 0, 0x20_0000, 2);
        let r = log.build_record(std::slice::from_ref(&own), BS, Submit::InFlight);
        let r = r.unwrap();
        let me = std::thread::current().id();
        assert!(!log.record_waits(me), "its own thread refuses instead");
        assert!(log.build_record(&[], BS, Submit::Locked).is_none());
        let other = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        assert!(log.record_waits(other));
        // Noted during the flight: stays unwritten after the record lands.
        log.log_extent(9, 0, 0x30_0000, BS, &[3], BS);
        assert!(log.record_done(r, true, BS));
        assert!(!log.record_waits(other));
        assert_eq!(log.next_slot, 1);
        assert_eq!(
            log.live.unwritten.entries(),
            Some(&[extent(9, 0, 0x30_0000, 3)][..])
        );
        // A commit during the flight: the record no longer extends the log.
        let r = log.build_record(&[], BS, Submit::InFlight).unwrap();
        log.restart(6);
        assert!(log.record_waits(other), "the marker outlives a restart");
        assert!(!log.record_done(r, true, BS));
        assert_eq!((log.base_gen, log.next_slot), (6, 0));
        // Abandoned: the slot may still be written, so none after it is.
        let r = log.build_record(&[], BS, Submit::InFlight).unwrap();
        log.record_abandoned(r, BS);
        assert!(!log.record_waits(other));
        assert!(log.build_record(&[], BS, Submit::Locked).is_none());
    }
}
