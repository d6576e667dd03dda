//! The fsync log's area: the log inode ([`LOG_INO`]) and its one prealloc extent, where
//! records go (`state/record.rs` has their format).

use crate::data::extent_at;
use crate::error::Result;
use crate::items::{ExtentKind, FileExtent};
use crate::namespace::{save_inode, try_inode};
use crate::state::{Core, Tx, LOG_INO};

/// The log area `(device address, bytes)`: the log inode's prealloc extent.
pub(crate) fn find_area(core: &Core) -> Result<Option<(u64, u64)>> {
    core.read(|rd| {
        if try_inode(rd, LOG_INO)?.is_none() {
            return Ok(None);
        }
        let e = extent_at(rd, LOG_INO, 0)?;
        Ok(
            e.filter(|e| e.file_off == 0 && e.fe.kind == ExtentKind::Prealloc)
                .map(|e| (e.fe.addr(), e.fe.num_bytes)),
        )
    })
}

/// The log area size for a device of `total` bytes: 1/64 of it, 4 to 1024 blocks (a full
/// area costs a commit, so a stream of small fsyncs commits once per 1024 of them).
pub(crate) fn area_bytes(total: u64, bs: u64) -> u64 {
    (total / 64 / bs).clamp(4, 1024) * bs
}

/// Creates the log inode and its area in `tx`.
fn create_area(tx: &mut Tx<'_>, total: u64, bs: u64) -> Result<()> {
    let len = area_bytes(total, bs);
    let (b, l) = tx.tx.alloc_data(len, len)?;
    let n = crate::namespace::NewInode {
        mode: crate::items::mode::S_IFREG,
        uid: 0,
        gid: 0,
        flags: crate::items::InodeFlags::default(),
        symlink: None,
        rdev: 0,
    };
    let mut item = crate::namespace::fresh_inode(&n, tx.tx.generation());
    item.size = l;
    save_inode(tx, LOG_INO, &item)?;
    let fe = FileExtent::disk(ExtentKind::Prealloc, b, l, 0, l);
    crate::data::insert_extent(tx, LOG_INO, 0, &fe)
}

/// Gives a filesystem without a log area one (formats create it at the first mount).
pub(crate) fn ensure_area(core: &Core) -> Result<()> {
    if core.log().area().is_some() {
        return Ok(());
    }
    let total = core.dev().geometry().size_bytes();
    let bs = core.bs();
    core.commit(|tx| create_area(tx, total, bs))?;
    let area = find_area(core)?;
    let generation = core.vol().generation();
    core.log().start(area, generation);
    Ok(())
}
