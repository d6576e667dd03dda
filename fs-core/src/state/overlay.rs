//! The fsync log's overlay: the file mappings logged (or about to be) and not yet committed,
//! which reads consult before the trees, in one of two forms:
//! - [`Overlay::Blocks`] while every logged extent is one block mapped whole at a
//!   block-aligned offset (random 4 KiB overwrites): a hash map, where such an extent can
//!   only replace another whole, found with one probe;
//! - [`Overlay::Pieces`] once any other extent comes: pieces sorted by file offset, which a
//!   later extent cuts where it overlaps them. An overlay never goes back to `Blocks`; a
//!   fresh one (after a commit) starts there.
//!
//! Invariants:
//! - the pieces of one inode are disjoint;
//! - every extent logged is either mapped (by a block, or by some piece of it) or waits to be
//!   given back at the fold (`Blocks::dead`, or `Pieces::extents` with no piece mapping it);
//! - every block of a logged extent has its crc32c: with its mapping in `Blocks`, in
//!   `Pieces::crcs` otherwise.
//!
//! Its memory ([`Overlay::mem_bytes`]) is what the mount's overlay budget bounds
//! (`MountOptions::overlay_bytes`, enforced by `io/space.rs`): it grows with every extent
//! logged, even one that only replaces another (the replaced one waits for the fold).

use std::collections::BTreeMap;

use hashbrown::HashMap;

/// A piece of a logged extent mapped in a file (logged extents may be cut by later ones).
/// Plain data: the fields mean what they say, whatever the others hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub disk_bytenr: u64,
    pub disk_len: u64,
    pub offset: u64,
    pub num_bytes: u64,
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

/// A logged piece as a lookup finds it. Plain data (a lookup's answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// Where the piece starts in the file.
    pub off: u64,
    pub piece: Piece,
    /// The crc32c of a one-block extent's block, which `Blocks` keeps with its mapping.
    pub crc: Option<u32>,
}

/// The logged mappings, in the form their extents allow (see the module docs).
#[derive(Clone, Debug)]
pub(crate) enum Overlay {
    Blocks(Blocks),
    Pieces(Pieces),
}

/// One-block extents, each mapped whole at a block-aligned offset.
#[derive(Clone, Debug, Default)]
pub(crate) struct Blocks {
    /// `(ino, file_off) -> (extent, crc32c)`. A hash map: a random overwrite puts its block
    /// with one probe, where a sorted map costs a descent that misses the cache at every
    /// level; the fold sorts them once.
    map: HashMap<(u64, u64), (u64, u32)>,
    /// Extents of `map` that a later write replaced: given back at the fold.
    dead: Vec<u64>,
}

/// Pieces of extents of any length.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pieces {
    /// `(ino, file_off) -> piece`.
    mapped: BTreeMap<(u64, u64), Piece>,
    /// Every extent logged `(bytenr, len)`, mapped or not: adopted or freed at the fold.
    extents: Vec<(u64, u64)>,
    /// The crc32c of every block of `extents`, by device address.
    crcs: HashMap<u64, u32>,
}

/// Bytes of a hash table entry of `T`: the entry, its control byte, and the table's room
/// (hashbrown keeps at most 7/8 of its buckets full).
const fn hashed<T>() -> usize {
    (size_of::<T>() + 1) * 8 / 7
}

/// Bytes of a `BTreeMap` entry of `K, V`: nodes of 11 entries some two-thirds full, with
/// their headers and edges.
const fn sorted<K, V>() -> usize {
    (size_of::<K>() + size_of::<V>()) * 3 / 2 + 2 * size_of::<usize>()
}

impl Default for Overlay {
    fn default() -> Overlay {
        Overlay::Blocks(Blocks::default())
    }
}

impl Overlay {
    /// A fresh overlay for the one this replaces: sized like it, since the next one likely
    /// grows as large.
    pub fn sized_like(&self) -> Overlay {
        let map = match self {
            Overlay::Blocks(b) => HashMap::with_capacity(b.map.len()),
            Overlay::Pieces(_) => HashMap::new(),
        };
        Overlay::Blocks(Blocks {
            map,
            dead: Vec::new(),
        })
    }

    /// Whether nothing is mapped nor waits to be given back.
    pub fn is_empty(&self) -> bool {
        match self {
            Overlay::Blocks(b) => b.map.is_empty() && b.dead.is_empty(),
            Overlay::Pieces(p) => p.mapped.is_empty() && p.extents.is_empty(),
        }
    }

    /// The memory this overlay takes, estimated from its entries (not from its tables'
    /// capacity: a fresh overlay is sized like the one it replaces, [`Overlay::sized_like`],
    /// and should not look full before anything is logged).
    pub fn mem_bytes(&self) -> u64 {
        let bytes = match self {
            Overlay::Blocks(b) => {
                b.map.len() * hashed::<((u64, u64), (u64, u32))>() + b.dead.len() * size_of::<u64>()
            }
            Overlay::Pieces(p) => {
                p.mapped.len() * sorted::<(u64, u64), Piece>()
                    + p.extents.len() * size_of::<(u64, u64)>()
                    + p.crcs.len() * hashed::<(u64, u32)>()
            }
        };
        bytes as u64
    }

    /// Pieces mapped.
    pub fn len(&self) -> usize {
        match self {
            Overlay::Blocks(b) => b.map.len(),
            Overlay::Pieces(p) => p.mapped.len(),
        }
    }

    /// The checksum of the block at device address `addr` of an extent longer than a block
    /// (a one-block extent's comes with its mapping: [`Overlay::lookup`]).
    pub fn crc(&self, addr: u64) -> Option<u32> {
        match self {
            Overlay::Blocks(_) => None,
            Overlay::Pieces(p) => p.crc(addr),
        }
    }

    /// The file ranges `[start, end)` of `ino` mapped (`bs`: the block size).
    pub fn mapped_ranges(&self, ino: u64, bs: u64) -> Vec<(u64, u64)> {
        match self {
            Overlay::Blocks(b) if b.map.is_empty() => Vec::new(),
            Overlay::Blocks(b) => b
                .map
                .keys()
                .filter(|&&(i, _)| i == ino)
                .map(|&(_, off)| (off, off + bs))
                .collect(),
            Overlay::Pieces(p) => p
                .mapped
                .range((ino, 0)..=(ino, u64::MAX))
                .map(|(&(_, off), piece)| (off, off + piece.num_bytes))
                .collect(),
        }
    }

    /// The piece covering `pos` of `ino`, else the start of the next piece in `(pos, limit)`.
    pub fn lookup(&self, ino: u64, pos: u64, limit: u64, bs: u64) -> (Option<Found>, Option<u64>) {
        match self {
            Overlay::Blocks(b) => b.lookup(ino, pos, limit, bs),
            Overlay::Pieces(p) => p.lookup(ino, pos, limit),
        }
    }

    /// Maps `[off, off + len)` of `ino` to the whole new extent at `bytenr`, whose blocks
    /// have the checksums `crcs`; any other extent than one block at an aligned offset turns
    /// the overlay into `Pieces`.
    pub fn add(&mut self, ino: u64, off: u64, bytenr: u64, len: u64, crcs: &[u32], bs: u64) {
        if let (Overlay::Blocks(b), [crc]) = (&mut *self, crcs) {
            if len == bs && off % bs == 0 {
                // The only extent this can overlap is at `off`, exactly: replaced whole.
                if let Some((old, _)) = b.map.insert((ino, off), (bytenr, *crc)) {
                    b.dead.push(old);
                }
                return;
            }
        }
        let p = self.unblock(bs);
        p.place(ino, off, Piece::whole(bytenr, len));
        p.extents.push((bytenr, len));
        for (i, &c) in crcs.iter().enumerate() {
            p.crcs.insert(bytenr + i as u64 * bs, c);
        }
    }

    /// The overlay as `Pieces`, moving what `Blocks` held into it.
    fn unblock(&mut self, bs: u64) -> &mut Pieces {
        if let Overlay::Blocks(b) = self {
            let mut p = Pieces {
                mapped: BTreeMap::new(),
                extents: Vec::with_capacity(b.map.len() + b.dead.len()),
                crcs: HashMap::with_capacity(b.map.len()),
            };
            for ((ino, off), (bytenr, crc)) in b.map.drain() {
                p.mapped.insert((ino, off), Piece::whole(bytenr, bs));
                p.extents.push((bytenr, bs));
                p.crcs.insert(bytenr, crc);
            }
            p.extents.extend(b.dead.drain(..).map(|d| (d, bs)));
            *self = Overlay::Pieces(p);
        }
        match self {
            Overlay::Pieces(p) => p,
            Overlay::Blocks(_) => unreachable!("unblocked above"),
        }
    }

    /// Puts an older overlay whose fold failed under this one: this one's mappings win
    /// where both map, and what they replace is given back at the next fold.
    pub fn put_over(&mut self, older: &Overlay, bs: u64) {
        match std::mem::replace(self, older.clone()) {
            Overlay::Pieces(newer) => {
                let p = self.unblock(bs);
                for ((ino, off), piece) in newer.mapped {
                    p.place(ino, off, piece);
                }
                p.extents.extend(newer.extents);
                p.crcs.extend(newer.crcs);
            }
            Overlay::Blocks(newer) => {
                // In no particular order: the newer blocks do not overlap one another.
                for ((ino, off), (bytenr, crc)) in newer.map {
                    self.add(ino, off, bytenr, bs, &[crc], bs);
                }
                match self {
                    Overlay::Blocks(b) => b.dead.extend(newer.dead),
                    Overlay::Pieces(p) => p.extents.extend(newer.dead.iter().map(|&d| (d, bs))),
                }
            }
        }
    }
}

impl Blocks {
    /// `(ino, file_off) -> (extent, crc32c)` of every block mapped, in no order.
    pub fn mapped(&self) -> impl Iterator<Item = ((u64, u64), (u64, u32))> + '_ {
        self.map.iter().map(|(&k, &v)| (k, v))
    }

    /// One-block extents replaced since they were logged: to give back.
    pub fn dead(&self) -> &[u64] {
        &self.dead
    }

    fn lookup(&self, ino: u64, pos: u64, limit: u64, bs: u64) -> (Option<Found>, Option<u64>) {
        let at = pos - pos % bs;
        let cover = self.map.get(&(ino, at)).map(|&(b, crc)| Found {
            off: at,
            piece: Piece::whole(b, bs),
            crc: Some(crc),
        });
        (cover, self.next(ino, at.saturating_add(bs), limit, bs))
    }

    /// The first block of `ino` mapped in `[from, limit)` (block-aligned `from`): probes
    /// each block offset of the range, or scans the map when it is the smaller.
    fn next(&self, ino: u64, from: u64, limit: u64, bs: u64) -> Option<u64> {
        if from >= limit {
            return None;
        }
        if (limit - from) / bs <= self.map.len() as u64 {
            (from..limit)
                .step_by(bs as usize)
                .find(|&o| self.map.contains_key(&(ino, o)))
        } else {
            self.map
                .keys()
                .filter(|&&(i, o)| i == ino && (from..limit).contains(&o))
                .map(|&(_, o)| o)
                .min()
        }
    }
}

impl Pieces {
    /// `(ino, file_off) -> piece`, sorted.
    pub fn mapped(&self) -> &BTreeMap<(u64, u64), Piece> {
        &self.mapped
    }

    /// Every extent logged, `(bytenr, len)`, mapped or not.
    pub fn extents(&self) -> &[(u64, u64)] {
        &self.extents
    }

    /// The checksum of the block at device address `addr` of a logged extent.
    pub fn crc(&self, addr: u64) -> Option<u32> {
        self.crcs.get(&addr).copied()
    }

    fn lookup(&self, ino: u64, pos: u64, limit: u64) -> (Option<Found>, Option<u64>) {
        let cover = self
            .mapped
            .range(..=(ino, pos))
            .next_back()
            .filter(|((i, off), p)| *i == ino && off + p.num_bytes > pos)
            .map(|(&(_, off), &piece)| Found {
                off,
                piece,
                crc: None,
            });
        let from = pos.saturating_add(1);
        let next = (from < limit)
            .then(|| self.mapped.range((ino, from)..(ino, limit)).next())
            .flatten()
            .map(|(&(_, off), _)| off);
        (cover, next)
    }

    /// Puts `piece` at `off` of `ino`, cutting the pieces it overlaps.
    fn place(&mut self, ino: u64, off: u64, piece: Piece) {
        let end = off + piece.num_bytes;
        // One search settles the common cases (the map is large and its searches miss the
        // cache): the last piece starting before `end` is exactly the range (an overwrite),
        // or ends by `off`, and then, pieces being disjoint and sorted, none overlaps.
        match self.mapped.range_mut(..(ino, end)).next_back() {
            Some((&(i, o), p)) if i == ino && o == off && p.num_bytes == piece.num_bytes => {
                *p = piece;
                return;
            }
            Some((&(i, o), p)) if i == ino && o + p.num_bytes > off => {}
            _ => {
                self.mapped.insert((ino, off), piece);
                return;
            }
        }
        // Pieces are disjoint: at most one starts before `off` and reaches into the range.
        let before = self
            .mapped
            .range((ino, 0)..(ino, off))
            .next_back()
            .filter(|((_, o), p)| o + p.num_bytes > off);
        let hit: Vec<(u64, Piece)> = before
            .into_iter()
            .chain(self.mapped.range((ino, off)..(ino, end)))
            .map(|(&(_, o), &p)| (o, p))
            .collect();
        for (o, p) in hit {
            self.mapped.remove(&(ino, o));
            if o < off {
                let left = Piece {
                    num_bytes: off - o,
                    ..p
                };
                self.mapped.insert((ino, o), left);
            }
            if o + p.num_bytes > end {
                let cut = end - o;
                let right = Piece {
                    offset: p.offset + cut,
                    num_bytes: p.num_bytes - cut,
                    ..p
                };
                self.mapped.insert((ino, end), right);
            }
        }
        self.mapped.insert((ino, off), piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: u64 = 4096;

    /// `(file offset, extent, offset in it, bytes)` of the pieces of `ino`, in either form.
    fn pieces(o: &Overlay, ino: u64) -> Vec<(u64, u64, u64, u64)> {
        let mut v: Vec<(u64, u64, u64, u64)> = match o {
            Overlay::Pieces(p) => p
                .mapped
                .range((ino, 0)..=(ino, u64::MAX))
                .map(|(&(_, o), p)| (o, p.disk_bytenr, p.offset, p.num_bytes))
                .collect(),
            Overlay::Blocks(b) => b
                .map
                .iter()
                .filter(|((i, _), _)| *i == ino)
                .map(|(&(_, o), &(b, _))| (o, b, 0, BS))
                .collect(),
        };
        v.sort_unstable();
        v
    }

    fn as_pieces(o: &Overlay) -> &Pieces {
        match o {
            Overlay::Pieces(p) => p,
            Overlay::Blocks(_) => panic!("expected the pieces form"),
        }
    }

    fn as_blocks(o: &Overlay) -> &Blocks {
        match o {
            Overlay::Blocks(b) => b,
            Overlay::Pieces(_) => panic!("expected the blocks form"),
        }
    }

    /// Bytes of the extents to adopt or give back at the fold.
    fn extent_bytes(o: &Overlay) -> u64 {
        match o {
            Overlay::Pieces(p) => p.extents.iter().map(|e| e.1).sum(),
            Overlay::Blocks(b) => (b.map.len() + b.dead.len()) as u64 * BS,
        }
    }

    #[test]
    fn add_cuts_and_replaces_the_pieces_it_overlaps() {
        let mut o = Overlay::default();
        // Inode 7: pieces at [0, 16K), [16K, 20K), [40K, 48K); inode 8 must stay untouched.
        o.add(7, 0, 0x10_0000, 4 * BS, &[1, 2, 3, 4], BS);
        o.add(7, 4 * BS, 0x20_0000, BS, &[5], BS);
        o.add(7, 10 * BS, 0x30_0000, 2 * BS, &[6, 7], BS);
        o.add(8, 0, 0x40_0000, BS, &[8], BS);
        // [8K, 44K) starts inside the first piece, covers the second, ends inside the third.
        o.add(7, 2 * BS, 0x50_0000, 9 * BS, &[9; 9], BS);
        assert_eq!(
            pieces(&o, 7),
            vec![
                (0, 0x10_0000, 0, 2 * BS),
                (2 * BS, 0x50_0000, 0, 9 * BS),
                (11 * BS, 0x30_0000, BS, BS),
            ]
        );
        assert_eq!(pieces(&o, 8), vec![(0, 0x40_0000, 0, BS)]);
        // A piece that ends exactly where the new one starts is left whole.
        o.add(7, 12 * BS, 0x60_0000, BS, &[10], BS);
        assert_eq!(pieces(&o, 7).len(), 4);
        let piece = as_pieces(&o).mapped[&(7, 11 * BS)];
        assert_eq!(
            o.lookup(7, 11 * BS, u64::MAX, BS).0,
            Some(Found {
                off: 11 * BS,
                piece,
                crc: None
            })
        );
        assert_eq!(o.crc(0x50_0000 + 8 * BS), Some(9));
        assert_eq!(extent_bytes(&o), (4 + 1 + 2 + 1 + 9 + 1) * BS);
    }

    #[test]
    fn an_exact_overwrite_replaces_the_piece_and_a_disjoint_one_is_added() {
        let mut o = Overlay::default();
        o.add(7, 4 * BS, 0x10_0000, BS, &[1], BS);
        o.add(7, 4 * BS, 0x20_0000, BS, &[2], BS);
        o.add(7, 5 * BS, 0x30_0000, BS, &[3], BS);
        o.add(7, 3 * BS, 0x40_0000, BS, &[4], BS);
        o.add(6, 4 * BS, 0x50_0000, BS, &[5], BS);
        assert_eq!(
            pieces(&o, 7),
            vec![
                (3 * BS, 0x40_0000, 0, BS),
                (4 * BS, 0x20_0000, 0, BS),
                (5 * BS, 0x30_0000, 0, BS),
            ]
        );
        assert_eq!(pieces(&o, 6), vec![(4 * BS, 0x50_0000, 0, BS)]);
        // A same-length piece at another offset of the range is no exact overwrite.
        o.add(7, 4 * BS, 0x60_0000, 2 * BS, &[6, 6], BS);
        assert_eq!(
            pieces(&o, 7),
            vec![(3 * BS, 0x40_0000, 0, BS), (4 * BS, 0x60_0000, 0, 2 * BS)]
        );
    }

    /// While every extent is one block mapped whole at an aligned offset, the overlay keeps
    /// them hashed, with their checksums, and the replaced ones apart; the first other
    /// extent moves everything to the sorted form, where one-block pieces cut what they
    /// overlap.
    #[test]
    fn one_block_extents_stay_hashed_until_another_extent_comes() {
        let mut o = Overlay::default();
        o.add(7, 4 * BS, 0x10_0000, BS, &[1], BS);
        o.add(7, 4 * BS, 0x20_0000, BS, &[2], BS);
        o.add(7, 6 * BS, 0x30_0000, BS, &[3], BS);
        let b = as_blocks(&o);
        assert_eq!(b.mapped().count(), 2);
        assert_eq!(
            b.dead(),
            [0x10_0000],
            "the replaced extent waits for the fold"
        );
        assert_eq!(
            pieces(&o, 7),
            vec![(4 * BS, 0x20_0000, 0, BS), (6 * BS, 0x30_0000, 0, BS)]
        );
        // Found inside the block, with the checksum; the next block within the limit only.
        let cover = |l: Option<Found>| l.map(|l| (l.off, l.piece.disk_bytenr, l.crc));
        let (c, next) = o.lookup(7, 4 * BS + 100, 8 * BS, BS);
        assert_eq!(
            (cover(c), next),
            (Some((4 * BS, 0x20_0000, Some(2))), Some(6 * BS))
        );
        assert_eq!(o.lookup(7, 5 * BS, 6 * BS, BS), (None, None));
        // A range longer than the map has blocks is scanned, not probed: same answers.
        assert_eq!(o.lookup(7, 0, u64::MAX, BS), (None, Some(4 * BS)));
        assert_eq!(o.lookup(7, 5 * BS, u64::MAX, BS), (None, Some(6 * BS)));
        assert_eq!(o.lookup(8, 0, u64::MAX, BS), (None, None));
        // [8K, 24K) replaces the piece at 16K and leaves the one at 24K alone.
        o.add(7, 2 * BS, 0x40_0000, 4 * BS, &[4; 4], BS);
        assert!(matches!(o, Overlay::Pieces(_)));
        // A one-block piece inside it must cut it, not sit beside it.
        o.add(7, 3 * BS, 0x50_0000, BS, &[5], BS);
        assert_eq!(
            pieces(&o, 7),
            vec![
                (2 * BS, 0x40_0000, 0, BS),
                (3 * BS, 0x50_0000, 0, BS),
                (4 * BS, 0x40_0000, 2 * BS, 2 * BS),
                (6 * BS, 0x30_0000, 0, BS),
            ]
        );
        // Every extent is there to adopt or free, the replaced one too, with its checksums.
        let mut extents = as_pieces(&o).extents.clone();
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
        assert_eq!((o.crc(0x20_0000), o.crc(0x30_0000)), (Some(2), Some(3)));
        assert_eq!(extent_bytes(&o), 8 * BS);
        // A fresh overlay starts hashed again.
        let fresh = o.sized_like();
        assert!(matches!(fresh, Overlay::Blocks(_)) && fresh.is_empty());
    }
}
