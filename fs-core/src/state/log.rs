//! The fsync log (the role of btrfs's tree-log): makes fsync/fdatasync of written-back data
//! cost one log block write and one flush instead of a cow commit.
//!
//! Layout: the log inode ([`LOG_INO`](super::LOG_INO)) owns one prealloc extent, the log
//! area, of 4 to 1024 blocks (`durability/area.rs`). Each fsync that has something to log
//! writes one record block (`record.rs`) into the next slot with FUA, a flush in flight
//! beside it. See `docs/FORMAT.md`.
//!
//! Invariants:
//! - records extend the last committed generation: every cow commit (`Core::commit`, `durability/commit.rs`) first
//!   folds everything logged into its own transaction, then restarts the log at slot 0 with
//!   the new generation, so replay ignores records of older generations;
//! - records are written one at a time, each durable (FUA) before the next is written (the
//!   log lock is held until the record and its flush complete; a synced direct write's
//!   record, awaited on its thread's context, is marked `synced_in_flight` instead, which
//!   other record writers wait for: `synced.rs`), so the durable records are a prefix;
//! - a record names whole data extents with the crc32c of each block, all of which completed
//!   before the record was submitted, so the flush submitted with it makes them durable;
//!   except that a synced direct write's record (`synced.rs`) goes out beside its own
//!   extent, both with FUA; replay links an extent only if the device holds those bytes, so
//!   data and record may reach the media in either order and need no ordering between them;
//! - logged extents stay reserved in memory (not free) until folded into a commit;
//!   meanwhile reads see them through the overlay (`overlay.rs`).

use hashbrown::HashMap;
use std::sync::Arc;

use super::overlay::{Found, Overlay, Piece};
use super::record::{encoded_len, Entry, HEADER};

/// The log's in-memory state.
#[derive(Default)]
pub(crate) struct LogState {
    /// The log area `(device address, bytes)`; `None`: no log (read-only, or none yet).
    pub area: Option<(u64, u64)>,
    /// The committed generation the records extend.
    pub base_gen: u64,
    /// The next slot to write.
    pub next_slot: u64,
    /// Logged (or to be logged) file mappings not yet committed.
    pub overlay: Overlay,
    /// Bytes of all the extents logged (mapped or replaced since).
    pub extent_bytes: u64,
    /// Sizes logged.
    pub sizes: HashMap<u64, u64>,
    /// Modification times logged.
    pub times: HashMap<u64, i64>,
    /// Entries applied to the overlay but not yet in a durable record, while they fit one
    /// record (`note_unwritten`).
    pub unwritten: Vec<Entry>,
    /// Bytes `unwritten` takes in a record body.
    pub unwritten_bytes: usize,
    /// More was applied than one record holds: `unwritten` is dropped and the next fsync
    /// commits (it would have to anyway), so a stream of writes without fsync keeps no list.
    pub unwritten_spilled: bool,
    /// The overlay a background fold is committing, older than this one: reads consult it
    /// after this one. Set and cleared with `folding`.
    pub frozen: Option<Arc<LogState>>,
    /// A background fold is running: commits and fsync records wait for it (see
    /// `durability/background.rs`).
    pub folding: bool,
    /// The thread whose synced direct write has its record in flight (`synced.rs`): no
    /// other record may be written until it completes. Outlives restarts and folds.
    pub synced_in_flight: Option<std::thread::ThreadId>,
}

impl LogState {
    /// Whether nothing awaits a fold.
    pub fn is_clean(&self) -> bool {
        self.overlay.is_empty() && self.sizes.is_empty() && self.times.is_empty()
    }

    /// The checksum logged for the data block at device address `addr`, in this overlay
    /// or the one being folded, for blocks of extents longer than a block (a one-block
    /// extent's comes with its mapping: [`LogState::lookup`]).
    pub fn crc(&self, addr: u64) -> Option<u32> {
        let older = || self.frozen.as_ref().and_then(|f| f.overlay.crc(addr));
        self.overlay.crc(addr).or_else(older)
    }

    /// The file ranges `[start, end)` of `ino` that logged extents map, here and in the
    /// overlay being folded (for `st_blocks`: data not yet committed takes space too).
    pub fn mapped_ranges(&self, ino: u64, bs: u64) -> Vec<(u64, u64)> {
        let mut v = self.overlay.mapped_ranges(ino, bs);
        if let Some(f) = &self.frozen {
            v.extend(f.mapped_ranges(ino, bs));
        }
        v
    }

    /// Whether a size or time of `ino` is logged and not yet committed.
    pub fn has_attrs(&self, ino: u64) -> bool {
        let own = self.sizes.contains_key(&ino) || self.times.contains_key(&ino);
        own || self.frozen.as_ref().is_some_and(|f| f.has_attrs(ino))
    }

    /// Pieces mapped here and in the overlay being folded: what the next folds will have
    /// to change (`Space::fold_need`).
    pub fn pieces(&self) -> usize {
        self.own_pieces() + self.frozen.as_ref().map_or(0, |f| f.own_pieces())
    }

    /// Pieces mapped in this overlay, not counting the one being folded.
    pub fn own_pieces(&self) -> usize {
        self.overlay.len()
    }

    /// Restarts the log after the commit of `generation` folded everything.
    pub fn restart(&mut self, generation: u64) {
        *self = LogState {
            area: self.area,
            base_gen: generation,
            synced_in_flight: self.synced_in_flight,
            ..LogState::default()
        };
    }

    /// The logged piece covering `pos` of `ino`, else the start of the next piece in
    /// `(pos, limit)`; in this overlay, then in the older one being folded (whose pieces
    /// end where a newer one starts before `limit`: callers map no further). `bs`: the
    /// block size.
    pub fn lookup(&self, ino: u64, pos: u64, limit: u64, bs: u64) -> (Option<Found>, Option<u64>) {
        let (cover, next) = self.overlay.lookup(ino, pos, limit, bs);
        let Some(older) = self.frozen.as_ref().filter(|_| cover.is_none()) else {
            return (cover, next);
        };
        match older.overlay.lookup(ino, pos, limit, bs) {
            (Some(l), _) => {
                let own_end = l.off + l.piece.num_bytes;
                let end = next.map_or(own_end, |n| n.min(own_end));
                let piece = Piece {
                    num_bytes: end - l.off,
                    ..l.piece
                };
                (Some(Found { piece, ..l }), next)
            }
            (None, older_next) => (None, next.into_iter().chain(older_next).min()),
        }
    }

    /// Whether the overlay holds changes that no durable record has.
    pub fn has_unwritten(&self) -> bool {
        self.unwritten_spilled || !self.unwritten.is_empty()
    }

    /// Notes an entry applied to the overlay for the next record of a `bs`-byte block.
    pub fn note_unwritten(&mut self, e: Entry, bs: u64) {
        if self.unwritten_spilled {
            return;
        }
        self.unwritten_bytes += encoded_len(&e);
        if HEADER + self.unwritten_bytes > bs as usize {
            self.unwritten_spilled = true;
            self.unwritten = Vec::new();
            return;
        }
        self.unwritten.push(e);
    }

    /// Marks the unwritten entries durable (a record with them is on the device).
    pub fn written(&mut self) {
        self.unwritten.clear();
        self.unwritten_bytes = 0;
        self.unwritten_spilled = false;
    }

    /// Maps `[off, off + len)` of `ino` to the whole new extent at `bytenr`, whose blocks
    /// have the checksums `crcs` (`bs`: the block size).
    pub fn map_extent(&mut self, ino: u64, off: u64, bytenr: u64, len: u64, crcs: &[u32], bs: u64) {
        self.extent_bytes += len;
        self.overlay.add(ino, off, bytenr, len, crcs, bs);
    }

    /// Takes back an older overlay whose fold failed: its pieces go under this one's, its
    /// attributes count where this one has none, its unwritten entries come first.
    pub fn absorb_older(&mut self, older: &LogState, bs: u64) {
        self.overlay.put_over(&older.overlay, bs);
        self.extent_bytes += older.extent_bytes;
        for (&ino, &size) in &older.sizes {
            self.sizes.entry(ino).or_insert(size);
        }
        for (&ino, &t) in &older.times {
            self.times.entry(ino).or_insert(t);
        }
        self.unwritten_spilled |= older.unwritten_spilled;
        if self.unwritten_spilled {
            self.unwritten = Vec::new();
        } else {
            let mut unwritten = older.unwritten.clone();
            unwritten.append(&mut self.unwritten);
            self.unwritten = unwritten;
            self.unwritten_bytes += older.unwritten_bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::encode;
    use super::*;

    const BS: u64 = 4096;

    /// `(file offset, extent, offset in it, bytes)` of the pieces of `ino`.
    fn pieces(log: &LogState, ino: u64) -> Vec<(u64, u64, u64, u64)> {
        let mut v: Vec<(u64, u64, u64, u64)> = log
            .overlay
            .mapped_ranges(ino, BS)
            .into_iter()
            .filter_map(|(o, _)| log.overlay.lookup(ino, o, o + 1, BS).0)
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
        v
    }

    /// A failed fold of a hashed overlay comes back under a hashed live one: the live
    /// blocks win, and what they replace joins the extents to give back.
    #[test]
    fn a_hashed_overlay_comes_back_under_a_hashed_one() {
        let mut older = LogState::default();
        older.map_extent(7, 0, 0x10_0000, BS, &[1], BS);
        older.map_extent(7, BS, 0x20_0000, BS, &[2], BS);
        older.map_extent(7, BS, 0x30_0000, BS, &[3], BS);
        let mut live = LogState {
            frozen: Some(Arc::new(older)),
            folding: true,
            ..LogState::default()
        };
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
        let older = live.frozen.take().unwrap();
        live.absorb_older(&older, BS);
        let Overlay::Blocks(b) = &live.overlay else {
            panic!("still hashed");
        };
        assert_eq!(
            pieces(&live, 7),
            vec![
                (0, 0x10_0000, 0, BS),
                (BS, 0x40_0000, 0, BS),
                (2 * BS, 0x50_0000, 0, BS)
            ]
        );
        let mut dead = b.dead().to_vec();
        dead.sort_unstable();
        assert_eq!(dead, vec![0x20_0000, 0x30_0000]);
        assert_eq!(live.extent_bytes, 5 * BS);
    }

    /// Unwritten entries are kept while one record holds them; past that the list is
    /// dropped (the next fsync commits) until a record or commit starts over.
    #[test]
    fn unwritten_entries_spill_past_one_record() {
        let extent = |i: u64| Entry::Extent {
            ino: 7,
            file_off: i * BS,
            bytenr: 0x10_0000 + i * BS,
            len: BS,
            crcs: vec![i as u32],
        };
        let mut log = LogState::default();
        let mut kept = Vec::new();
        let mut i = 0;
        while !log.unwritten_spilled {
            log.note_unwritten(extent(i), BS);
            if !log.unwritten_spilled {
                kept.push(extent(i));
                assert_eq!(log.unwritten, kept);
                // The bytes counted are the bytes `encode` needs: what it accepts fits.
                assert!(encode(1, 0, &log.unwritten, BS as usize).is_some());
            }
            i += 1;
        }
        assert!(encode(1, 0, &[kept.clone(), vec![extent(i)]].concat(), BS as usize).is_none());
        assert!(log.unwritten.is_empty() && log.has_unwritten());
        log.note_unwritten(extent(0), BS);
        assert!(log.unwritten.is_empty(), "nothing is kept once spilled");
        log.written();
        assert!(!log.has_unwritten());
        log.note_unwritten(extent(0), BS);
        assert_eq!(log.unwritten, vec![extent(0)]);
    }

    /// While a background fold runs, reads see the live overlay first and the frozen one
    /// under it; a fold that failed gives its overlay back under the live one.
    #[test]
    fn the_frozen_overlay_shows_under_the_live_one_and_comes_back_under_it() {
        let mut older = LogState::default();
        older.map_extent(7, 0, 0x10_0000, 8 * BS, &[1; 8], BS);
        older.map_extent(7, 20 * BS, 0x20_0000, BS, &[2], BS);
        older.sizes.insert(7, 21 * BS);
        older.unwritten.push(Entry::Size {
            ino: 7,
            size: 21 * BS,
        });
        let mut live = LogState {
            frozen: Some(Arc::new(older)),
            folding: true,
            ..LogState::default()
        };
        // A newer write of [8K, 12K) in the live overlay.
        live.map_extent(7, 2 * BS, 0x30_0000, BS, &[3], BS);
        let at = |log: &LogState, pos: u64| {
            let (cover, next) = log.lookup(7, pos, u64::MAX, BS);
            (
                cover.map(|l| {
                    (
                        l.off,
                        l.piece.disk_bytenr,
                        l.piece.offset,
                        l.piece.num_bytes,
                    )
                }),
                next,
            )
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
        let older = live.frozen.take().unwrap();
        live.folding = false;
        live.sizes.insert(7, 30 * BS);
        live.absorb_older(&older, BS);
        assert_eq!(
            pieces(&live, 7),
            vec![
                (0, 0x10_0000, 0, 2 * BS),
                (2 * BS, 0x30_0000, 0, BS),
                (3 * BS, 0x10_0000, 3 * BS, 5 * BS),
                (20 * BS, 0x20_0000, 0, BS),
            ]
        );
        assert_eq!(live.sizes[&7], 30 * BS, "the newer size stays");
        let Overlay::Pieces(p) = &live.overlay else {
            panic!("pieces, as the older overlay was");
        };
        assert_eq!(p.extents().len(), 3);
        assert_eq!(live.extent_bytes, 10 * BS);
        assert_eq!(
            live.unwritten[0],
            Entry::Size {
                ino: 7,
                size: 21 * BS
            }
        );
        assert_eq!(live.crc(0x20_0000), Some(2));
    }
}
