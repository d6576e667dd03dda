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
//!   meanwhile reads see them through the overlay (`blocks`, or `pending` and `crcs`).

use std::collections::BTreeMap;

use hashbrown::HashMap;
use std::sync::Arc;

use super::record::{encoded_len, Entry, HEADER};

/// A piece of a logged extent mapped in a file (logged extents may be cut by later ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub disk_bytenr: u64,
    pub disk_len: u64,
    pub offset: u64,
    pub num_bytes: u64,
}

/// The log's in-memory state.
#[derive(Default)]
pub(crate) struct LogState {
    /// The log area `(device address, bytes)`; `None`: no log (read-only, or none yet).
    pub area: Option<(u64, u64)>,
    /// The committed generation the records extend.
    pub base_gen: u64,
    /// The next slot to write.
    pub next_slot: u64,
    /// Logged (or to be logged) file mappings not yet committed, `(ino, file_off)`, once
    /// the overlay is `mixed`; empty before.
    pub pending: BTreeMap<(u64, u64), Piece>,
    /// Whole data extents of `pending`, to adopt at the fold (once `mixed`).
    pub extents: Vec<(u64, u64)>,
    /// Checksums of the blocks of `extents` (once `mixed`).
    pub crcs: HashMap<u64, u32>,
    /// While not `mixed`, the logged mappings: `(ino, file_off) -> (extent, crc32c)`, each a
    /// one-block extent mapped whole at a block-aligned offset. A hash map: a random
    /// overwrite puts its block with one probe, where the sorted `pending` costs a descent
    /// that misses the cache at every level; the fold sorts them once.
    pub blocks: HashMap<(u64, u64), (u64, u32)>,
    /// One-block extents of `blocks` that a later write replaced: given back at the fold.
    pub dead: Vec<u64>,
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
    /// Some extent logged is not one block mapped whole at a block-aligned offset: the
    /// overlay keeps its pieces in `pending`, `extents` and `crcs` (which can cut pieces),
    /// not in `blocks` and `dead`. Cleared only by a fresh overlay.
    pub mixed: bool,
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
        self.pending.is_empty()
            && self.extents.is_empty()
            && self.blocks.is_empty()
            && self.dead.is_empty()
            && self.sizes.is_empty()
            && self.times.is_empty()
    }

    /// The checksum logged for the data block at device address `addr`, in this overlay
    /// or the one being folded, for blocks of extents longer than a block (a one-block
    /// extent's comes with its mapping: [`LogState::lookup`]).
    pub fn crc(&self, addr: u64) -> Option<u32> {
        let older = || {
            self.frozen
                .as_ref()
                .and_then(|f| f.crcs.get(&addr).copied())
        };
        self.crcs.get(&addr).copied().or_else(older)
    }

    /// The file ranges `[start, end)` of `ino` that logged extents map, here and in the
    /// overlay being folded (for `st_blocks`: data not yet committed takes space too).
    pub fn mapped_ranges(&self, ino: u64, bs: u64) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = if self.mixed {
            self.pending
                .range((ino, 0)..=(ino, u64::MAX))
                .map(|(&(_, off), p)| (off, off + p.num_bytes))
                .collect()
        } else if self.blocks.is_empty() {
            Vec::new()
        } else {
            self.blocks
                .keys()
                .filter(|&&(i, _)| i == ino)
                .map(|&(_, off)| (off, off + bs))
                .collect()
        };
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
        self.pending.len() + self.blocks.len()
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
    pub fn lookup(&self, ino: u64, pos: u64, limit: u64, bs: u64) -> (Option<Logged>, Option<u64>) {
        let (cover, next) = self.lookup_own(ino, pos, limit, bs);
        let Some(older) = self.frozen.as_ref().filter(|_| cover.is_none()) else {
            return (cover, next);
        };
        match older.lookup_own(ino, pos, limit, bs) {
            (Some(l), _) => {
                let own_end = l.off + l.piece.num_bytes;
                let end = next.map_or(own_end, |n| n.min(own_end));
                let piece = Piece {
                    num_bytes: end - l.off,
                    ..l.piece
                };
                (Some(Logged { piece, ..l }), next)
            }
            (None, older_next) => (None, next.into_iter().chain(older_next).min()),
        }
    }

    fn lookup_own(&self, ino: u64, pos: u64, limit: u64, bs: u64) -> (Option<Logged>, Option<u64>) {
        if !self.mixed {
            let at = pos - pos % bs;
            let cover = self.blocks.get(&(ino, at)).map(|&(b, crc)| Logged {
                off: at,
                piece: Piece::whole(b, bs),
                crc: Some(crc),
            });
            return (
                cover,
                self.next_block(ino, at.saturating_add(bs), limit, bs),
            );
        }
        let cover = self
            .pending
            .range(..=(ino, pos))
            .next_back()
            .filter(|((i, off), p)| *i == ino && off + p.num_bytes > pos)
            .map(|(&(_, off), &piece)| Logged {
                off,
                piece,
                crc: None,
            });
        let from = pos.saturating_add(1);
        let next = (from < limit)
            .then(|| self.pending.range((ino, from)..(ino, limit)).next())
            .flatten()
            .map(|(&(_, off), _)| off);
        (cover, next)
    }

    /// The first of `blocks` of `ino` in `[from, limit)` (block-aligned `from`): probes
    /// each block offset of the range, or scans the map when it is the smaller.
    fn next_block(&self, ino: u64, from: u64, limit: u64, bs: u64) -> Option<u64> {
        if from >= limit {
            return None;
        }
        if (limit - from) / bs <= self.blocks.len() as u64 {
            (from..limit)
                .step_by(bs as usize)
                .find(|&o| self.blocks.contains_key(&(ino, o)))
        } else {
            self.blocks
                .keys()
                .filter(|&&(i, o)| i == ino && (from..limit).contains(&o))
                .map(|&(_, o)| o)
                .min()
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
        self.add_extent(ino, off, bytenr, len, crcs, bs);
    }

    fn add_extent(&mut self, ino: u64, off: u64, bytenr: u64, len: u64, crcs: &[u32], bs: u64) {
        match crcs {
            [crc] if !self.mixed && len == bs && off % bs == 0 => {
                // Every extent is one block mapped whole at an aligned offset: the only
                // one this can overlap is at `off`, exactly, and it is replaced whole.
                if let Some((old, _)) = self.blocks.insert((ino, off), (bytenr, *crc)) {
                    self.dead.push(old);
                }
            }
            _ => {
                self.unblock(bs);
                self.place(ino, off, Piece::whole(bytenr, len));
                self.extents.push((bytenr, len));
                for (i, &c) in crcs.iter().enumerate() {
                    self.crcs.insert(bytenr + i as u64 * bs, c);
                }
            }
        }
    }

    /// Makes the overlay `mixed`: moves `blocks` and `dead` into `pending`, `extents` and
    /// `crcs`.
    fn unblock(&mut self, bs: u64) {
        if self.mixed {
            return;
        }
        self.mixed = true;
        for ((ino, off), (b, crc)) in self.blocks.drain() {
            self.pending.insert((ino, off), Piece::whole(b, bs));
            self.extents.push((b, bs));
            self.crcs.insert(b, crc);
        }
        self.extents.extend(self.dead.drain(..).map(|b| (b, bs)));
    }

    /// Puts `piece` at `off` of `ino` in `pending`, cutting the pieces it overlaps.
    fn place(&mut self, ino: u64, off: u64, piece: Piece) {
        let end = off + piece.num_bytes;
        // One search settles the common cases (the map is large and its searches miss the
        // cache): the last piece starting before `end` is exactly the range (an overwrite),
        // or ends by `off`, and then, pieces being disjoint and sorted, none overlaps.
        match self.pending.range_mut(..(ino, end)).next_back() {
            Some((&(i, o), p)) if i == ino && o == off && p.num_bytes == piece.num_bytes => {
                *p = piece;
                return;
            }
            Some((&(i, o), p)) if i == ino && o + p.num_bytes > off => {}
            _ => {
                self.pending.insert((ino, off), piece);
                return;
            }
        }
        // Pieces are disjoint: at most one starts before `off` and reaches into the range.
        let before = self
            .pending
            .range((ino, 0)..(ino, off))
            .next_back()
            .filter(|((_, o), p)| o + p.num_bytes > off);
        let hit: Vec<(u64, Piece)> = before
            .into_iter()
            .chain(self.pending.range((ino, off)..(ino, end)))
            .map(|(&(_, o), &p)| (o, p))
            .collect();
        for (o, p) in hit {
            self.pending.remove(&(ino, o));
            if o < off {
                self.pending.insert(
                    (ino, o),
                    Piece {
                        num_bytes: off - o,
                        ..p
                    },
                );
            }
            if o + p.num_bytes > end {
                let cut = end - o;
                let right = Piece {
                    offset: p.offset + cut,
                    num_bytes: p.num_bytes - cut,
                    ..p
                };
                self.pending.insert((ino, end), right);
            }
        }
        self.pending.insert((ino, off), piece);
    }

    /// Takes back an older overlay whose fold failed: its pieces go under this one's, its
    /// attributes count where this one has none, its unwritten entries come first.
    pub fn absorb_older(&mut self, older: &LogState, bs: u64) {
        let newer_pending = std::mem::replace(&mut self.pending, older.pending.clone());
        let newer_blocks = std::mem::replace(&mut self.blocks, older.blocks.clone());
        let newer_dead = std::mem::replace(&mut self.dead, older.dead.clone());
        let newer_extents = std::mem::replace(&mut self.extents, older.extents.clone());
        let newer_crcs = std::mem::replace(&mut self.crcs, older.crcs.clone());
        let newer_mixed = std::mem::replace(&mut self.mixed, older.mixed);
        if newer_mixed {
            self.unblock(bs);
            for ((ino, off), p) in newer_pending {
                self.place(ino, off, p);
            }
            self.extents.extend(newer_extents);
            self.crcs.extend(newer_crcs);
        } else {
            // In no particular order: the newer blocks do not overlap one another.
            for ((ino, off), (b, crc)) in newer_blocks {
                self.add_extent(ino, off, b, bs, &[crc], bs);
            }
            if self.mixed {
                self.extents.extend(newer_dead.iter().map(|&b| (b, bs)));
            } else {
                self.dead.extend(newer_dead);
            }
        }
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

impl Piece {
    /// All of the `len`-byte extent at `bytenr`.
    pub fn whole(bytenr: u64, len: u64) -> Piece {
        Piece {
            disk_bytenr: bytenr,
            disk_len: len,
            offset: 0,
            num_bytes: len,
        }
    }
}

/// A logged piece as [`LogState::lookup`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Logged {
    /// Where the piece starts in the file.
    pub off: u64,
    pub piece: Piece,
    /// The crc32c of a one-block extent's block, which the overlay keeps with its mapping.
    pub crc: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::super::record::encode;
    use super::*;

    const BS: u64 = 4096;

    /// `(file offset, extent, offset in it, bytes)` of the pieces of `ino`, in either form.
    fn pieces(log: &LogState, ino: u64) -> Vec<(u64, u64, u64, u64)> {
        let mut v: Vec<(u64, u64, u64, u64)> = log
            .pending
            .range((ino, 0)..=(ino, u64::MAX))
            .map(|(&(_, o), p)| (o, p.disk_bytenr, p.offset, p.num_bytes))
            .collect();
        assert!(
            log.mixed || v.is_empty(),
            "pieces in `pending` before it is used"
        );
        assert!(
            !log.mixed || log.blocks.is_empty(),
            "blocks left in a mixed overlay"
        );
        v.extend(
            log.blocks
                .iter()
                .filter(|((i, _), _)| *i == ino)
                .map(|(&(_, o), &(b, _))| (o, b, 0, BS)),
        );
        v.sort_unstable();
        v
    }

    #[test]
    fn map_extent_cuts_and_replaces_the_pieces_it_overlaps() {
        let mut log = LogState::default();
        // Inode 7: pieces at [0, 16K), [16K, 20K), [40K, 48K); inode 8 must stay untouched.
        log.map_extent(7, 0, 0x10_0000, 4 * BS, &[1, 2, 3, 4], BS);
        log.map_extent(7, 4 * BS, 0x20_0000, BS, &[5], BS);
        log.map_extent(7, 10 * BS, 0x30_0000, 2 * BS, &[6, 7], BS);
        log.map_extent(8, 0, 0x40_0000, BS, &[8], BS);
        // [8K, 44K) starts inside the first piece, covers the second, ends inside the third.
        log.map_extent(7, 2 * BS, 0x50_0000, 9 * BS, &[9; 9], BS);
        assert_eq!(
            pieces(&log, 7),
            vec![
                (0, 0x10_0000, 0, 2 * BS),
                (2 * BS, 0x50_0000, 0, 9 * BS),
                (11 * BS, 0x30_0000, BS, BS),
            ]
        );
        assert_eq!(pieces(&log, 8), vec![(0, 0x40_0000, 0, BS)]);
        // A piece that ends exactly where the new one starts is left whole.
        log.map_extent(7, 12 * BS, 0x60_0000, BS, &[10], BS);
        assert_eq!(pieces(&log, 7).len(), 4);
        let piece = log.pending[&(7, 11 * BS)];
        assert_eq!(
            log.lookup(7, 11 * BS, u64::MAX, BS).0,
            Some(Logged {
                off: 11 * BS,
                piece,
                crc: None
            })
        );
        assert_eq!(log.crcs[&(0x50_0000 + 8 * BS)], 9);
        assert_eq!(log.extent_bytes, (4 + 1 + 2 + 1 + 9 + 1) * BS);
    }

    #[test]
    fn an_exact_overwrite_replaces_the_piece_and_a_disjoint_one_is_added() {
        let mut log = LogState::default();
        log.map_extent(7, 4 * BS, 0x10_0000, BS, &[1], BS);
        log.map_extent(7, 4 * BS, 0x20_0000, BS, &[2], BS);
        log.map_extent(7, 5 * BS, 0x30_0000, BS, &[3], BS);
        log.map_extent(7, 3 * BS, 0x40_0000, BS, &[4], BS);
        log.map_extent(6, 4 * BS, 0x50_0000, BS, &[5], BS);
        assert_eq!(
            pieces(&log, 7),
            vec![
                (3 * BS, 0x40_0000, 0, BS),
                (4 * BS, 0x20_0000, 0, BS),
                (5 * BS, 0x30_0000, 0, BS),
            ]
        );
        assert_eq!(pieces(&log, 6), vec![(4 * BS, 0x50_0000, 0, BS)]);
        // A same-length piece at another offset of the range is no exact overwrite.
        log.map_extent(7, 4 * BS, 0x60_0000, 2 * BS, &[6, 6], BS);
        assert_eq!(
            pieces(&log, 7),
            vec![(3 * BS, 0x40_0000, 0, BS), (4 * BS, 0x60_0000, 0, 2 * BS)]
        );
    }

    /// While every extent is one block mapped whole at an aligned offset, the overlay keeps
    /// them hashed, with their checksums, and the replaced ones apart; the first other
    /// extent moves everything to the sorted form, where one-block pieces cut what they
    /// overlap.
    #[test]
    fn one_block_extents_stay_hashed_until_another_extent_comes() {
        let mut log = LogState::default();
        log.map_extent(7, 4 * BS, 0x10_0000, BS, &[1], BS);
        log.map_extent(7, 4 * BS, 0x20_0000, BS, &[2], BS);
        log.map_extent(7, 6 * BS, 0x30_0000, BS, &[3], BS);
        assert!(!log.mixed, "only aligned one-block extents so far");
        assert_eq!(log.blocks.len(), 2);
        assert_eq!(
            log.dead,
            vec![0x10_0000],
            "the replaced extent waits for the fold"
        );
        assert!(log.pending.is_empty() && log.extents.is_empty() && log.crcs.is_empty());
        assert_eq!(
            pieces(&log, 7),
            vec![(4 * BS, 0x20_0000, 0, BS), (6 * BS, 0x30_0000, 0, BS)]
        );
        // Found inside the block, with the checksum; the next block within the limit only.
        let cover = |l: Option<Logged>| l.map(|l| (l.off, l.piece.disk_bytenr, l.crc));
        let (c, next) = log.lookup(7, 4 * BS + 100, 8 * BS, BS);
        assert_eq!(
            (cover(c), next),
            (Some((4 * BS, 0x20_0000, Some(2))), Some(6 * BS))
        );
        assert_eq!(log.lookup(7, 5 * BS, 6 * BS, BS), (None, None));
        // A range longer than the map has blocks is scanned, not probed: same answers.
        assert_eq!(log.lookup(7, 0, u64::MAX, BS), (None, Some(4 * BS)));
        assert_eq!(log.lookup(7, 5 * BS, u64::MAX, BS), (None, Some(6 * BS)));
        assert_eq!(log.lookup(8, 0, u64::MAX, BS), (None, None));
        // [8K, 24K) replaces the piece at 16K and leaves the one at 24K alone.
        log.map_extent(7, 2 * BS, 0x40_0000, 4 * BS, &[4; 4], BS);
        assert!(log.mixed && log.blocks.is_empty() && log.dead.is_empty());
        // A one-block piece inside it must cut it, not sit beside it.
        log.map_extent(7, 3 * BS, 0x50_0000, BS, &[5], BS);
        assert_eq!(
            pieces(&log, 7),
            vec![
                (2 * BS, 0x40_0000, 0, BS),
                (3 * BS, 0x50_0000, 0, BS),
                (4 * BS, 0x40_0000, 2 * BS, 2 * BS),
                (6 * BS, 0x30_0000, 0, BS),
            ]
        );
        // Every extent is there to adopt or free, the replaced one too, with its checksums.
        let mut extents = log.extents.clone();
        extents.sort_unstable();
        assert_eq!(
            extents,
            vec![
                (0x10_0000, BS),
                (0x20_0000, BS),
                (0x30_0000, BS),
                (0x40_0000, 4 * BS),
                (0x50_0000, BS)
            ]
        );
        assert_eq!((log.crc(0x20_0000), log.crc(0x30_0000)), (Some(2), Some(3)));
        assert_eq!(log.extent_bytes, 8 * BS);
        // A fresh overlay starts hashed again.
        log.restart(1);
        assert!(!log.mixed && log.is_clean());
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
        assert!(!live.mixed);
        assert_eq!(
            pieces(&live, 7),
            vec![
                (0, 0x10_0000, 0, BS),
                (BS, 0x40_0000, 0, BS),
                (2 * BS, 0x50_0000, 0, BS)
            ]
        );
        let mut dead = live.dead.clone();
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
        assert_eq!(live.extents.len(), 3);
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
