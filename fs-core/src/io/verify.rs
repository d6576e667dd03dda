//! Read verification: every device read of file data is checked against the crc32c its
//! blocks were written with, before anyone sees the bytes (`IomapOps::verify_read`).
//!
//! Where a block's checksum comes from, first hit wins:
//! - the mapping itself (`IoMap::block_csum`, one-block mappings): `begin` looked it up in
//!   the same snapshot (or overlay) as the mapping, under the I/O's pin, so it is the
//!   checksum of exactly the block the read went to; the common direct read needs no
//!   other lookup;
//! - the fsync log's overlay, then the last committed snapshot's checksum tree, then (a
//!   one-block extent folded since it was mapped) its file extent item.
//!
//! A mismatch is corruption only if the file still maps the block where the read went;
//! otherwise a concurrent write replaced it and the read must map again (`Moved`).

use bdev::DmaBuf;
use iomap::{IoMap, MapKind};

use crate::data::{block_crcs, crc_of, extent_at};
use crate::error::{Error, Result};
use crate::state::Core;

/// What `Core::verify` found.
pub(super) enum Verified {
    /// Every whole block matches its checksum.
    Good,
    /// The block at this file offset failed, and the file maps it elsewhere now.
    Moved(u64),
}

impl Core {
    /// Checks the crc32c of every whole block of a device read of `map` at file offset
    /// `pos`. `Moved(pos)`: the block at `pos` failed, but it no longer maps where the read
    /// went (a concurrent write replaced it and a commit dropped the old checksums): not
    /// corruption, the read is of an older version and must map again.
    pub(super) fn verify(
        &self,
        ino: u64,
        pos: u64,
        map: &IoMap,
        data: &[DmaBuf],
    ) -> Result<Verified> {
        if map.kind != MapKind::Mapped {
            return Ok(Verified::Good);
        }
        if let Some(good) = self.verify_with_map(pos, map, data) {
            return Ok(good);
        }
        self.verify_looked_up(ino, pos, map, data)
    }

    /// A read of exactly the one block of a mapping that carries its checksum (only a COW
    /// file's do): `Some(Good)` if it matches, `None` to look further (the slow path
    /// decides between corruption and a moved block).
    fn verify_with_map(&self, pos: u64, map: &IoMap, data: &[DmaBuf]) -> Option<Verified> {
        let bs = self.bs();
        let want = map.block_csum?;
        let total: usize = data.iter().map(|d| d.len()).sum();
        let one_block = map.length == bs && pos == map.offset && total as u64 == bs;
        (one_block && crc_of(data, 0, total) == want).then_some(Verified::Good)
    }

    /// Every whole block, its checksum looked up.
    fn verify_looked_up(
        &self,
        ino: u64,
        pos: u64,
        map: &IoMap,
        data: &[DmaBuf],
    ) -> Result<Verified> {
        if self.mem(ino, |f| f.nocow)? {
            return Ok(Verified::Good);
        }
        let bs = self.bs();
        let total: u64 = data.iter().map(|d| d.len() as u64).sum();
        let first = pos.div_ceil(bs) * bs;
        let blocks: Vec<u64> = (first..)
            .step_by(bs as usize)
            .take_while(|b| b + bs <= pos + total)
            .collect();
        // The overlay first, the snapshot after: a fold publishes its commit before it
        // clears the overlay, so a block missing from the overlay is in the later snapshot.
        let logged: Vec<Option<u32>> = {
            let log = self.log();
            let crcs = |b: &u64| log.crc(map.device_addr(*b));
            blocks.iter().map(crcs).collect()
        };
        // A one-block extent's checksum came with its mapping.
        let with_map = |dev: u64| {
            map.block_csum
                .filter(|_| map.length == bs && dev == map.addr)
        };
        // The checksums read, in one pass over the pieces when the read starts on a block.
        let got: Vec<u32> = if pos % bs == 0 {
            block_crcs(data, bs as usize)
        } else {
            let crc = |b: &u64| crc_of(data, (b - pos) as usize, bs as usize);
            blocks.iter().map(crc).collect()
        };
        let bad = self.read(|rd| {
            // The blocks' device addresses are consecutive (one mapping): the checksum
            // tree is walked once for all that the overlay and the mapping do not have.
            let need_tree = blocks
                .iter()
                .zip(&logged)
                .any(|(&b, l)| l.is_none() && with_map(map.device_addr(b)).is_none());
            let tree = match blocks.first() {
                Some(&b) if need_tree => {
                    rd.r.csum_lookup_range(rd.io, map.device_addr(b), blocks.len())?
                }
                _ => Vec::new(),
            };
            for (i, (&blk, logged)) in blocks.iter().zip(logged).enumerate() {
                let dev = map.device_addr(blk);
                let got = got[i];
                let want = match logged.or_else(|| with_map(dev)) {
                    Some(c) => Some(c),
                    None => match tree.get(i).copied().flatten() {
                        Some(c) => Some(c),
                        // Mapped through the overlay, which a fold has emptied since: the
                        // checksum of a one-block extent went to its file extent item.
                        None => extent_at(rd, ino, blk)?
                            .filter(|e| e.file_off == blk && e.fe.addr() == dev)
                            .and_then(|e| e.fe.csum),
                    },
                };
                match want {
                    Some(want) if want == got => {}
                    want => return Ok(Some((blk, dev, want, got))),
                }
            }
            Ok(None)
        })?;
        let Some((off, dev, want, got)) = bad else {
            return Ok(Verified::Good);
        };
        let now = self.current(ino, off / bs, off / bs + 1, true)?;
        if now.kind != MapKind::Mapped || now.device_addr(off) != dev {
            return Ok(Verified::Moved(off));
        }
        Err(Error::Io(format!(
            "inode {ino}: data checksum mismatch at file offset {off}, device address \
             {dev:#x}: recorded {}, read {got:#010x}",
            want.map_or("none".to_string(), |w| format!("{w:#010x}"))
        )))
    }
}
