//! `IomapOps` over cow: mapping, delalloc reservation, copy-on-write allocation (here),
//! completion (file extents + checksums + dropped references, `complete.rs`), read
//! verification (`verify.rs`), waiting for space (`space.rs`), synced direct writes
//! (`durability/synced.rs`).
//!
//! Lock order: `Core::reserved` → cow writer → `Core::inodes`; a transaction is never open
//! while `reserved` is taken, and `inodes` is never held across a cow call.

use std::sync::Arc;

use bdev::exec::Context;
use bdev::{Bufs, DmaBuf};
use iomap::{
    DirectWrite, Ended, Ino, IoDone, IoMap, IomapOps, IterArgs, IterFlags, MapFlags, MapKind, Maps,
    Submitted,
};

use crate::data::extent_at;
use crate::data::is_shared;
use crate::durability::count_direct_write;
use crate::error::{Error, Result};
use crate::io::private::MapPrivate;
use crate::io::verify::Verified;
use crate::items::ExtentKind;
use crate::state::{Core, Rd};

/// The filesystem side of the iomap layer.
pub(crate) struct DataOps {
    pub core: Arc<Core>,
}

impl Core {
    /// The mapping of the block range `[b0, b1)` as it is now; `delalloc` says whether
    /// cached, not yet written back blocks count (they do, except for writeback itself).
    pub(crate) fn current(&self, ino: u64, b0: u64, b1: u64, delalloc: bool) -> Result<IoMap> {
        self.current_as(ino, b0, b1, delalloc, None)
    }

    /// [`Core::current`] for a read whose `begin` pinned generation `pinned`: the snapshot
    /// needs no registration of its own (the pin covers it), and a one-block mapping of a
    /// checksummed file carries its block's checksum, looked up in the same snapshot, so
    /// that verifying the read needs no second lookup (`verify.rs`). Safe to keep until
    /// `end`: the pin keeps the block from reuse, and only NOCOW files (no checksums)
    /// overwrite in place.
    fn current_read(&self, ino: u64, b0: u64, b1: u64, pinned: u64) -> Result<IoMap> {
        self.current_as(ino, b0, b1, true, Some(pinned))
    }

    fn current_as(
        &self,
        ino: u64,
        b0: u64,
        b1: u64,
        delalloc: bool,
        pinned: Option<u64>,
    ) -> Result<IoMap> {
        let bs = self.bs();
        let (da, next_da, nocow) = self.mem(ino, |m| {
            (
                m.delalloc.containing(b0),
                m.delalloc.next_after(b0),
                m.nocow,
            )
        })?;
        if delalloc {
            if let Some((_, e)) = da {
                return Ok(IoMap::delalloc(b0 * bs, (e.min(b1) - b0) * bs));
            }
        }
        let limit = if delalloc {
            next_da.map_or(b1, |d| d.min(b1))
        } else {
            b1
        };
        let (p0, p1) = (b0 * bs, limit * bs);
        // Written back and logged, not yet committed: the fsync log's overlay (when it maps
        // anything: its lock is the one lock every reader would share).
        let (logged, next_logged) = if self.nothing_logged() {
            (None, None)
        } else {
            self.log().lookup(ino, p0, p1, bs)
        };
        if let Some(l) = logged {
            let end = (l.off + l.piece.num_bytes).min(p1);
            let addr = l.piece.disk_bytenr + l.piece.offset + (p0 - l.off);
            let mut m = IoMap::mapped(p0, end - p0, addr);
            m.block_csum = l.crc;
            return Ok(m);
        }
        let p1 = next_logged.map_or(p1, |n| n.min(p1));
        let with_csum = pinned.is_some() && !nocow;
        let look = |rd: &mut Rd<'_>| {
            let Some(e) = extent_at(rd, ino, p0)? else {
                return Ok((None, None));
            };
            let one_block = e.file_off <= p0 && e.end().min(p1) - p0 == bs;
            let csum = if with_csum && one_block && e.fe.kind == ExtentKind::Regular {
                match e.fe.csum {
                    Some(c) => Some(c),
                    None => rd.r.csum_lookup(rd.io, e.fe.addr() + (p0 - e.file_off))?,
                }
            } else {
                e.fe.csum
            };
            Ok((Some(e), csum))
        };
        let (found, csum) = match pinned {
            Some(p) => self.read_pinned(p, look)?,
            None => self.read(look)?,
        };
        match found {
            Some(e) if e.file_off <= p0 && e.fe.kind != ExtentKind::Inline => {
                let len = e.end().min(p1) - p0;
                let addr = e.fe.addr() + (p0 - e.file_off);
                Ok(if e.fe.kind == ExtentKind::Regular {
                    let mut m = IoMap::mapped(p0, len, addr);
                    m.block_csum = csum;
                    m
                } else {
                    IoMap::unwritten(p0, len, addr)
                })
            }
            // Inline bytes are the whole first block (zeroes past them).
            Some(e) if e.fe.kind == ExtentKind::Inline && p0 == 0 => {
                Ok(IoMap::inline(0, bs, e.fe.inline.into()))
            }
            Some(e) if e.file_off > p0 => Ok(IoMap::hole(p0, e.file_off.min(p1) - p0)),
            _ => Ok(IoMap::hole(p0, p1 - p0)),
        }
    }

    /// The maps of a `begin` whose caller pinned generation `pinned` until its `end`.
    pub(crate) fn begin_map(
        &self,
        ino: u64,
        pos: u64,
        len: u64,
        flags: IterFlags,
        pinned: u64,
    ) -> Result<Maps> {
        let bs = self.bs();
        let (b0, b1) = (pos / bs, (pos + len).div_ceil(bs));
        if flags.contains(IterFlags::WRITEBACK) {
            return self.map_writeback(ino, b0, b1);
        }
        if flags.contains(IterFlags::DIRECT) && flags.contains(IterFlags::WRITE) {
            return self.map_direct_write(ino, pos, len);
        }
        let cur = if flags.is_write() {
            self.current(ino, b0, b1, true)?
        } else {
            self.current_read(ino, b0, b1, pinned)?
        };
        let zero_skip = flags.contains(IterFlags::ZERO)
            && matches!(cur.kind, MapKind::Hole | MapKind::Unwritten);
        if !flags.is_write() || zero_skip || cur.kind == MapKind::Delalloc {
            return Ok(Maps::one(cur));
        }
        // A buffered write: promise space now, so ENOSPC is the write's, never writeback's.
        self.check_writable()?;
        self.reserve(cur.length)?;
        let (r0, r1) = (cur.offset / bs, cur.end() / bs);
        self.mem(ino, |m| m.delalloc.begin_step(r0, r1))?;
        let write = IoMap::delalloc(cur.offset, cur.length).with_flags(MapFlags::NEW);
        Ok(Maps {
            write,
            source: Some(cur),
        })
    }

    /// An unshared regular extent of a NOCOW file at `b0`, to overwrite in place.
    fn nocow_target(&self, ino: u64, b0: u64, b1: u64) -> Result<Option<IoMap>> {
        if !self.mem(ino, |m| m.nocow)? {
            return Ok(None);
        }
        self.in_place(ino, b0, b1)
    }

    /// An unshared regular extent of `ino` (a NOCOW file) at `b0`, to overwrite in place.
    fn in_place(&self, ino: u64, b0: u64, b1: u64) -> Result<Option<IoMap>> {
        let p0 = b0 * self.bs();
        let found = self.read(|rd| {
            let Some(e) = extent_at(rd, ino, p0)? else {
                return Ok(None);
            };
            let ok = e.file_off <= p0
                && e.fe.kind == ExtentKind::Regular
                && !is_shared(rd, e.fe.disk_bytenr, e.fe.disk_len)?;
            Ok(ok.then_some(e))
        })?;
        Ok(found.map(|e| {
            let len = e.end().min(b1 * self.bs()) - p0;
            IoMap::mapped(p0, len, e.fe.addr() + (p0 - e.file_off))
        }))
    }

    fn map_writeback(&self, ino: u64, b0: u64, b1: u64) -> Result<Maps> {
        self.check_writable()?;
        if let Some(m) = self.nocow_target(ino, b0, b1)? {
            return Ok(Maps::one(m));
        }
        let bs = self.bs();
        let (addr, got) = self.vol().reserve_data(bs, (b1 - b0) * bs)?;
        let m = IoMap::mapped(b0 * bs, got, addr).with_flags(MapFlags::NEW);
        Ok(Maps::one(m))
    }

    fn map_direct_write(&self, ino: u64, pos: u64, len: u64) -> Result<Maps> {
        let bs = self.bs();
        let (b0, b1) = (pos / bs, (pos + len).div_ceil(bs));
        self.check_writable()?;
        // The one look at the file's memory a direct write needs: the rest rides in the
        // write map's `private`.
        let (nocow, synced) = self.mem(ino, |m| (m.nocow, count_direct_write(m)))?;
        if nocow {
            if let Some(m) = self.in_place(ino, b0, b1)? {
                let p = MapPrivate {
                    nocow,
                    ..MapPrivate::default()
                };
                return Ok(Maps::one(IoMap {
                    private: p.bits(),
                    ..m
                }));
            }
        }
        // Whole blocks replace what is there without reading it: no source map, so no
        // lookup of the current mapping (a B-tree descent per random write otherwise).
        let (end, source) = if pos % bs == 0 && len % bs == 0 {
            (b1 * bs, None)
        } else {
            let cur = self.current(ino, b0, b1, true)?;
            (cur.end(), (cur.kind != MapKind::Delalloc).then_some(cur))
        };
        let want = end - b0 * bs;
        let (addr, got) = {
            let r = self.space().lock_reserved();
            // What `data_room` leaves, checked and taken in one hold of cow's free-space
            // lock. Nor may it leave the next commit without whole nodes: with the fold
            // running in the background, small data taken from node-sized free ranges while
            // the fold allocates its nodes could leave free bytes no node fits in (16 KiB
            // nodes on a half-full device, `tests/enospc.rs`).
            let keep = self.space().slack(self.vol()) + self.fold_need(*r);
            self.vol()
                .reserve_data_keeping(bs, want, *r + keep, keep)
                .map_err(|e| match e {
                    cow::Error::NoSpace(why) => {
                        Error::NoSpace(format!("direct write of {want} bytes: {why}"))
                    }
                    e => e.into(),
                })?
        };
        let mut write = IoMap::mapped(b0 * bs, got, addr).with_flags(MapFlags::NEW);
        let p = MapPrivate {
            pinned: 0,
            nocow,
            synced: synced && !nocow,
        };
        write.private = p.bits();
        Ok(Maps { write, source })
    }

    pub(crate) fn end_map(
        &self,
        ino: u64,
        pos: u64,
        written: u64,
        flags: IterFlags,
        m: &IoMap,
    ) -> Result<()> {
        let bs = self.bs();
        if !flags.is_write() || !m.flags.contains(MapFlags::NEW) {
            return Ok(());
        }
        let (m0, m1) = (m.offset / bs, m.end() / bs);
        let used_end = if written == 0 {
            pos / bs
        } else {
            (pos + written).div_ceil(bs)
        };
        let (u0, u1) = ((pos / bs).max(m0), used_end.min(m1).max(pos / bs));
        match m.kind {
            MapKind::Delalloc => {
                let added = self.mem(ino, |f| f.delalloc.end_step((m0, m1), (u0, u1)))?;
                self.release(((m1 - m0) - added) * bs);
            }
            MapKind::Mapped if flags.intersects(IterFlags::WRITEBACK | IterFlags::DIRECT) => {
                // Blocks past what was submitted were never used; `complete` owns the rest.
                let keep_end = if written == 0 { m0 } else { u1.max(m0) };
                if m1 > keep_end {
                    let at = m.addr + (keep_end - m0) * bs;
                    self.vol().unreserve_data(at, (m1 - keep_end) * bs)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl IomapOps for DataOps {
    fn block_size(&self) -> u32 {
        self.core.bs() as u32
    }

    fn size(&self, ino: Ino) -> iomap::Result<u64> {
        self.core.mem(ino.0, |m| m.size).map_err(Error::into_iomap)
    }

    fn set_size(&self, ino: Ino, size: u64) -> iomap::Result<()> {
        self.core.set_size(ino.0, size).map_err(Error::into_iomap)
    }

    fn grow_size(&self, ino: Ino, end: u64) -> iomap::Result<bool> {
        self.core.grow_size(ino.0, end).map_err(Error::into_iomap)
    }

    async fn submit_direct(&self, ctx: &Context, w: &DirectWrite<'_>, bufs: Bufs) -> Submitted {
        if !MapPrivate::of(w.write_map).synced {
            return w.submit(ctx, bufs).await;
        }
        self.core.submit_synced(ctx, w, bufs).await
    }

    async fn begin(&self, ctx: &Context, args: IterArgs) -> iomap::Result<Maps> {
        self.core
            .begin_with_room(ctx, args)
            .await
            .map_err(Error::into_iomap)
    }

    async fn end(&self, _: &Context, ended: &Ended<'_>) -> iomap::Result<()> {
        let a = ended.args;
        let completed = match ended.io {
            Some(done) => self
                .core
                .complete_direct(a.ino.0, done, a.pos + ended.written),
            None => Ok(()),
        };
        let r = self
            .core
            .end_map(a.ino.0, a.pos, ended.written, a.flags, ended.write_map);
        self.core.end_pin(ended.write_map);
        completed.and(r).map_err(Error::into_iomap)
    }

    async fn complete(&self, _: &Context, ino: Ino, done: &IoDone<'_>) -> iomap::Result<()> {
        self.core
            .complete_io(ino.0, done)
            .map_err(Error::into_iomap)
    }

    async fn verify_read(
        &self,
        _: &Context,
        ino: Ino,
        pos: u64,
        map: &IoMap,
        data: &[DmaBuf],
    ) -> iomap::Result<()> {
        match self.core.verify(ino.0, pos, map, data) {
            Ok(Verified::Good) => Ok(()),
            Ok(Verified::Moved(pos)) => Err(iomap::IomapError::MappingChanged { ino: ino.0, pos }),
            Err(e) => Err(e.into_iomap()),
        }
    }
}
