//! Creating inodes and names, and dropping links.

use cow::Key;

use crate::core::{now_ns, Tx};
use crate::error::{Error, Result};
use crate::items::{
    kind, mode, FileExtent, FileType, InodeFlags, InodeItem, FIRST_INDEX, NAME_MAX, ORPHAN_OBJECTID,
};
use crate::namespace::{delete_inode, dir_add, dir_lookup, load_inode, save_inode};

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
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub flags: InodeFlags,
    pub symlink: Option<&'a [u8]>,
}

/// A fresh inode item.
pub(crate) fn fresh_inode(n: &NewInode<'_>, generation: u64) -> InodeItem {
    let now = now_ns();
    let is_dir = n.mode & mode::S_IFMT == mode::S_IFDIR;
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
        next_index: FIRST_INDEX,
        generation,
    }
}

/// Creates inode `ino` described by `n` as `name` in `parent`.
pub(crate) fn create_in(
    tx: &mut Tx<'_>,
    parent: u64,
    name: &[u8],
    ino: u64,
    n: &NewInode<'_>,
) -> Result<()> {
    check_name(name)?;
    let mut p = load_inode(tx, parent)?;
    if !p.is_dir() {
        return Err(Error::NotDir(format!("inode {parent}")));
    }
    if dir_lookup(tx, parent, name)?.is_some() {
        return Err(Error::Exists(String::from_utf8_lossy(name).into_owned()));
    }
    let item = fresh_inode(n, tx.tx.generation());
    if item.is_dir() {
        p.nlink += 1;
    }
    if let Some(target) = n.symlink {
        let fe = FileExtent::inline(target);
        tx.put(Key::new(ino, kind::EXTENT_DATA, 0), &fe.encode())?;
    }
    save_inode(tx, ino, &item)?;
    dir_add(tx, parent, &mut p, name, ino, FileType::of_mode(n.mode))?;
    save_inode(tx, parent, &p)
}

/// One name of `ino` is gone (already removed from its directory): drops the link count
/// and deletes the inode at zero, unless it is `open`, in which case it becomes an orphan.
/// Returns whether the inode was deleted.
pub(crate) fn drop_link(tx: &mut Tx<'_>, ino: u64, open: bool) -> Result<bool> {
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
    delete_inode(tx, ino)?;
    Ok(true)
}
