//! Creating inodes and names, and dropping links.

use cow::Key;

use crate::error::{Error, Result};
use crate::items::{
    kind, mode, FileExtent, FileType, InodeFlags, InodeItem, FIRST_INDEX, NAME_MAX, ORPHAN_OBJECTID,
};
use crate::namespace::{dir_add, dir_lookup, load_inode, save_inode};
use crate::state::{now_ns, ItemsMut};

/// Checks a single path component.
pub(crate) fn check_name(name: &[u8]) -> Result<()> {
    let shown = || String::from_utf8_lossy(name).into_owned();
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong(format!("{} bytes", name.len())));
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Error::Invalid(format!("bad name {:?}", shown())));
    }
    if name.contains(&0) {
        return Err(Error::Invalid("name contains NUL".into()));
    }
    Ok(())
}

/// What to create.
#[derive(Clone, Debug)]
pub(crate) struct NewInode<'a> {
    /// Type and permission bits.
    pub mode: u32,
    pub uid: u32,
    /// The group; a set-group-ID parent overrides it (see [`create_in`]).
    pub gid: u32,
    pub flags: InodeFlags,
    pub symlink: Option<&'a [u8]>,
    /// Character and block devices: the device number.
    pub rdev: u64,
}

/// A fresh inode item.
pub(crate) fn fresh_inode(n: &NewInode<'_>, generation: u64) -> InodeItem {
    let now = now_ns();
    let is_dir = n.mode & mode::S_IFMT == mode::S_IFDIR;
    let next_index = if FileType::of_mode(n.mode).has_rdev() {
        n.rdev
    } else {
        FIRST_INDEX
    };
    InodeItem {
        size: n.symlink.map_or(0, |t| t.len() as u64),
        nlink: if is_dir { 2 } else { 1 },
        mode: n.mode,
        uid: n.uid,
        gid: n.gid,
        flags: n.flags,
        atime_ns: now,
        mtime_ns: now,
        ctime_ns: now,
        btime_ns: now,
        next_index,
        generation,
    }
}

/// Creates inode `ino` described by `n` as `name` in `parent`; returns its item.
///
/// In a set-group-ID directory the new inode takes the directory's group, and a new
/// subdirectory the set-group-ID bit too (as on Linux filesystems).
pub(crate) fn create_in(
    tx: &mut impl ItemsMut,
    parent: u64,
    name: &[u8],
    ino: u64,
    n: &NewInode<'_>,
) -> Result<InodeItem> {
    check_name(name)?;
    let mut p = load_inode(tx, parent)?;
    if !p.is_dir() {
        return Err(Error::NotDir(format!("inode {parent}")));
    }
    if p.nlink == 0 {
        return Err(Error::NotFound(format!("directory {parent} was removed")));
    }
    if dir_lookup(tx, parent, name)?.is_some() {
        return Err(Error::Exists(String::from_utf8_lossy(name).into_owned()));
    }
    let mut item = fresh_inode(n, tx.generation());
    if p.mode & mode::S_ISGID != 0 {
        item.gid = p.gid;
        if item.is_dir() {
            item.mode |= mode::S_ISGID;
        }
    }
    if item.is_dir() {
        p.nlink += 1;
    }
    if let Some(target) = n.symlink {
        put_symlink_target(tx, ino, target)?;
    }
    save_inode(tx, ino, &item)?;
    dir_add(tx, parent, &mut p, name, ino, FileType::of_mode(n.mode))?;
    save_inode(tx, parent, &p)?;
    Ok(item)
}

/// Stores a symlink's target as inline extents at offsets 0, c, 2c, … of `c` bytes each, `c`
/// the most one item holds: a target up to `PATH_MAX - 1` bytes needs several items in
/// small nodes.
fn put_symlink_target(tx: &mut impl ItemsMut, ino: u64, target: &[u8]) -> Result<()> {
    let overhead = FileExtent::inline(&[]).encode().len();
    let chunk = tx.max_item_size() - overhead;
    for (i, part) in target.chunks(chunk).enumerate() {
        let off = (i * chunk) as u64;
        let fe = FileExtent::inline(part);
        tx.put(Key::new(ino, kind::EXTENT_DATA, off), &fe.encode())?;
    }
    Ok(())
}

/// One name of `ino` is gone (already removed from its directory): drops the link count
/// and deletes the inode at zero, unless it is `open`, in which case it becomes an orphan.
/// Returns whether the inode was deleted.
pub(crate) fn drop_link(tx: &mut impl ItemsMut, ino: u64, open: bool) -> Result<bool> {
    let mut item = load_inode(tx, ino)?;
    item.nlink = if item.is_dir() {
        0
    } else {
        item.nlink.saturating_sub(1)
    };
    item.ctime_ns = now_ns();
    if item.nlink > 0 {
        save_inode(tx, ino, &item)?;
        return Ok(false);
    }
    if open {
        save_inode(tx, ino, &item)?;
        tx.put(Key::new(ORPHAN_OBJECTID, kind::ORPHAN_ITEM, ino), &[])?;
        return Ok(false);
    }
    tx.delete_inode(ino)?;
    Ok(true)
}
