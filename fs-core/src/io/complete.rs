//! Completion of writeback and direct writes (btrfs's ordered extents), for the
//! `IomapOps` of `iomap_ops.rs`.

use cow::Key;
use iomap::{IoDone, IterFlags, MapFlags};

use crate::data::gather;
use crate::data::insert_extent;
use crate::data::{block_crcs, punch};
use crate::error::Result;
use crate::io::private::MapPrivate;
use crate::io::space::OverlaySize;
use crate::items::{ExtentKind, FileExtent};
use crate::namespace::{save_inode, try_inode};
use crate::state::{now_ns, Core};

impl Core {
    /// Completes a direct write (iomap's `end` with its outcome) and, once its data is on
    /// the device, grows the file to `end`.
    pub(super) fn complete_direct(&self, ino: u64, done: &IoDone<'_>, end: u64) -> Result<()> {
        self.complete_io(ino, done)?;
        if done.result.is_ok() {
            self.grow_size(ino, end)?;
        }
        Ok(())
    }

    pub(super) fn complete_io(&self, ino: u64, done: &IoDone<'_>) -> Result<()> {
        let bs = self.bs();
        let m = done.write_map;
        let (pos, len) = (done.pos, done.len);
        let addr = m.device_addr(pos);
        let new = m.flags.contains(MapFlags::NEW);
        let writeback = done.flags.contains(IterFlags::WRITEBACK);
        if done.result.is_err() {
            // The pages stay dirty (writeback) or the write fails (direct): nothing to keep.
            return if new {
                Ok(self.vol().unreserve_data(addr, len)?)
            } else {
                Ok(())
            };
        }
        if done.by_fs {
            // Written with its fsync record, which mapped it in the overlay.
            return self.fold_if_large(self.overlay_size());
        }
        let (b0, b1) = (pos / bs, (pos + len) / bs);
        // A direct write needs only what its `begin` saw (in the map's `private`).
        let (size, nocow, logging, writing_end, accepted_at) = if writeback {
            self.mem(ino, |f| {
                let w = f.delalloc.filling_end(b0, b1);
                (f.size, f.nocow, f.log_writeback > 0, w, f.mtime_dirty)
            })
            .unwrap_or((0, false, false, None, None))
        } else {
            (0, MapPrivate::of(m).nocow, false, None, None)
        };
        // Writeback of blocks a truncate took away meanwhile is not kept; blocks a write
        // step is filling are, though the step has not grown the file yet.
        let keep_end = (size.div_ceil(bs) * bs).max(writing_end.map_or(0, |e| e * bs));
        let keep = if writeback {
            len.min(keep_end.saturating_sub(pos))
        } else {
            len
        };
        let crcs = if new && !nocow {
            block_crcs(done.data, bs as usize)
        } else {
            Vec::new()
        };
        let crcs = &crcs[..crcs.len().min((keep / bs) as usize)];
        // A tiny file written back whole (not for an fsync) goes inline into its extent
        // item with a commit; everything else new goes to the fsync log's overlay, made
        // durable by the next fsync record or commit.
        let tiny = writeback && !nocow && pos == 0 && size <= self.inline_max();
        let to_log = new && !nocow && keep > 0 && (logging || !tiny);
        if let Some(overlay) = to_log
            .then(|| self.log_extent(ino, pos, addr, keep, crcs))
            .flatten()
        {
            if keep < len {
                self.vol().unreserve_data(addr + keep, len - keep)?;
            }
            self.fold_if_large(overlay)?;
            return if writeback {
                self.writeback_done(ino, pos, len)
            } else {
                Ok(())
            };
        }
        let inline = (new && tiny).then(|| gather(done.data, 0, size as usize));
        let link = (new && keep > 0).then_some(Link {
            addr,
            len: keep,
            crcs,
            inline: inline.as_deref(),
        });
        let disk_size = writeback.then(|| size.min(pos + len));
        // Writeback stamps the time its writes were accepted (none if an explicit mtime
        // replaced it), never its own; a direct write completes now.
        let mtime = if writeback {
            accepted_at
        } else {
            Some(now_ns())
        };
        let (adopted, r) = self.commit_io(ino, pos, link.as_ref(), disk_size, mtime);
        // A failed commit hands an adopted extent back to our reservation.
        if new && (!adopted || r.is_err()) {
            self.vol().unreserve_data(addr, len)?;
        } else if new && keep < len {
            self.vol().unreserve_data(addr + keep, len - keep)?;
        }
        r?;
        if writeback {
            return self.writeback_done(ino, pos, len);
        }
        Ok(())
    }

    /// Commits one completion: the new data linked at `pos` (if any), the size grown to at
    /// least `disk_size`, the data's `mtime` (and ctime). Says whether the data extent was
    /// adopted (after a failure the reservation is the caller's either way).
    fn commit_io(
        &self,
        ino: u64,
        pos: u64,
        link: Option<&Link<'_>>,
        disk_size: Option<u64>,
        mtime: Option<i64>,
    ) -> (bool, Result<()>) {
        let adopted = std::cell::Cell::new(false);
        let r = self.commit(|tx| {
            let Some(mut item) = try_inode(tx, ino)? else {
                return Ok(None);
            };
            if let Some(l) = link {
                adopted.set(link_extent(tx, ino, pos, l)?);
            }
            if let Some(s) = disk_size {
                item.size = item.size.max(s);
            }
            if let Some(t) = mtime {
                item.mtime_ns = t;
                item.ctime_ns = item.ctime_ns.max(t);
            }
            save_inode(tx, ino, &item)?;
            Ok(Some(item.size))
        });
        let r = r.and_then(|disk| match disk {
            // The size on the device caught up with the file's: fsync has none to write.
            Some(d) => self.mem(ino, |f| f.size_dirty &= f.size != d),
            None => Ok(()),
        });
        (adopted.get(), r)
    }

    /// Written-back blocks are no longer delalloc: their reservation is used up. Those a
    /// write step is still filling must not become delalloc at its `end`.
    fn writeback_done(&self, ino: u64, pos: u64, len: u64) -> Result<()> {
        let bs = self.bs();
        let (b0, b1) = (pos / bs, (pos + len) / bs);
        let n = self.mem(ino, |f| f.delalloc.written_back(b0, b1))?;
        self.release(n * bs);
        Ok(())
    }

    /// The largest file stored inline: what fits one leaf item, at most half a block.
    pub(crate) fn inline_max(&self) -> u64 {
        let item_max = (u64::from(self.vol().nodesize()) - 64) / 4 - 25;
        (item_max - 1).min(self.bs() / 2)
    }

    /// Puts a written-back extent in the fsync log's overlay (the fsync running on the file
    /// makes it durable with one record); `None` if there is no log.
    fn log_extent(
        &self,
        ino: u64,
        pos: u64,
        addr: u64,
        len: u64,
        crcs: &[u32],
    ) -> Option<OverlaySize> {
        let mut log = self.log();
        log.area()?;
        log.log_extent(ino, pos, addr, len, crcs, self.bs());
        self.space().set_overlay_pieces(log.pieces());
        Some(overlay_size(&log))
    }

    fn overlay_size(&self) -> OverlaySize {
        overlay_size(&self.log())
    }
}

fn overlay_size(log: &crate::state::LogState) -> OverlaySize {
    OverlaySize {
        pieces: log.own_pieces(),
        mem_bytes: log.mem_bytes().0,
        bytes: log.extent_bytes(),
        folding: log.folding(),
    }
}

/// New data to point a file range at: a data extent, or inline bytes.
struct Link<'a> {
    addr: u64,
    len: u64,
    crcs: &'a [u32],
    inline: Option<&'a [u8]>,
}

/// Points `[pos, pos + l.len)` of `ino` at the new data; returns whether the data extent
/// was adopted (inline data leaves it unused).
fn link_extent(tx: &mut crate::state::Tx<'_>, ino: u64, pos: u64, l: &Link<'_>) -> Result<bool> {
    punch(tx, ino, pos, pos + l.len)?;
    if let Some(bytes) = l.inline {
        insert_extent(tx, ino, pos, &FileExtent::inline(bytes))?;
        return Ok(false);
    }
    tx.tx.adopt_data(l.addr, l.len)?;
    let fe = FileExtent::disk(ExtentKind::Regular, l.addr, l.len, 0, l.len);
    insert_extent(tx, ino, pos, &fe)?;
    if !l.crcs.is_empty() {
        tx.tx.csum_insert(tx.io, l.addr, l.crcs)?;
    }
    Ok(true)
}

/// The key of a file extent (for fsck and tests).
#[allow(dead_code)]
pub(crate) fn extent_key(ino: u64, off: u64) -> Key {
    Key::new(ino, crate::items::kind::EXTENT_DATA, off)
}
