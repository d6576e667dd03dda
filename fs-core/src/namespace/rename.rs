//! rename: atomic (one transaction), over an existing target, no-replace and exchange.

use cow::Key;

use crate::error::{Error, Result};
use crate::items::{kind, FileType, InodeRefs, ROOT_INO};
use crate::namespace::{
    check_name, dir_add, dir_lookup, dir_remove, drop_link, load_inode, readdir_items, save_inode,
};
use crate::state::{now_ns, Items, ItemsMut};

/// Variants of rename (Linux `renameat2` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenameFlags {
    /// Fail with `EEXIST` if the target exists (`RENAME_NOREPLACE`).
    pub noreplace: bool,
    /// Swap source and target, both of which must exist (`RENAME_EXCHANGE`).
    pub exchange: bool,
}

/// The parent of directory `dir` (from its single INODE_REF).
pub(crate) fn parent_of(it: &mut impl Items, dir: u64) -> Result<u64> {
    if dir == ROOT_INO {
        return Ok(ROOT_INO);
    }
    let refs = it.range(
        Key::new(dir, kind::INODE_REF, 0),
        Key::new(dir, kind::INODE_REF, u64::MAX),
        cow::Direction::Forward,
        1,
    )?;
    refs.first()
        .map(|(k, _)| k.offset)
        .ok_or_else(|| Error::NotFound(format!("directory {dir} has no parent")))
}

/// Whether `dir` is `anc` or lies below it.
fn is_under(it: &mut impl Items, mut dir: u64, anc: u64) -> Result<bool> {
    for _ in 0..4096 {
        if dir == anc {
            return Ok(true);
        }
        if dir == ROOT_INO {
            return Ok(false);
        }
        dir = parent_of(it, dir)?;
    }
    Err(Error::Corrupt(format!(
        "directory {dir}: parent chain too deep"
    )))
}

fn is_empty_dir(tx: &mut impl ItemsMut, ino: u64) -> Result<bool> {
    Ok(readdir_items(tx, ino, 0, 1)?.is_empty())
}

/// Renames `(sp, sname)` to `(dp, dname)`; `is_open` says whether an inode has open
/// handles (a replaced target then becomes an orphan). Returns the inode deleted, if any.
pub(crate) fn rename_in(
    tx: &mut impl ItemsMut,
    (sp, sname): (u64, &[u8]),
    (dp, dname): (u64, &[u8]),
    flags: RenameFlags,
    is_open: &dyn Fn(u64) -> bool,
) -> Result<Option<u64>> {
    check_name(sname)?;
    check_name(dname)?;
    if flags.noreplace && flags.exchange {
        return Err(Error::Invalid(
            "rename: noreplace and exchange together".into(),
        ));
    }
    for p in [sp, dp] {
        if !load_inode(tx, p)?.is_dir() {
            return Err(Error::NotDir(format!("inode {p}")));
        }
    }
    let shown = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
    let (src, _) = dir_lookup(tx, sp, sname)?.ok_or_else(|| Error::NotFound(shown(sname)))?;
    let dst = dir_lookup(tx, dp, dname)?.map(|(e, _)| e);
    if src.ftype == FileType::Dir && is_under(tx, dp, src.ino)? {
        return Err(Error::Invalid(format!(
            "rename: {} would move into itself",
            shown(sname)
        )));
    }
    if flags.exchange {
        let dst = dst.ok_or_else(|| Error::NotFound(shown(dname)))?;
        if dst.ftype == FileType::Dir && is_under(tx, sp, dst.ino)? {
            return Err(Error::Invalid("rename: exchange into itself".into()));
        }
        exchange(tx, (sp, sname), (dp, dname))?;
        return Ok(None);
    }
    let mut deleted = None;
    if let Some(dst) = dst {
        // Linux checks RENAME_NOREPLACE first: an existing name is EEXIST even when it
        // is another link of the source.
        if flags.noreplace {
            return Err(Error::Exists(shown(dname)));
        }
        if dst.ino == src.ino {
            return Ok(None);
        }
        match (src.ftype == FileType::Dir, dst.ftype == FileType::Dir) {
            (true, false) => return Err(Error::NotDir(shown(dname))),
            (false, true) => return Err(Error::IsDir(shown(dname))),
            (true, true) if !is_empty_dir(tx, dst.ino)? => {
                return Err(Error::NotEmpty(shown(dname)))
            }
            _ => {}
        }
        let mut d = load_inode(tx, dp)?;
        dir_remove(tx, dp, &mut d, dname)?;
        if dst.ftype == FileType::Dir {
            d.nlink -= 1;
        }
        save_inode(tx, dp, &d)?;
        if drop_link(tx, dst.ino, is_open(dst.ino))? {
            deleted = Some(dst.ino);
        }
    }
    move_entry(tx, (sp, sname), (dp, dname))?;
    Ok(deleted)
}

/// Moves one existing entry to a free name.
fn move_entry(
    tx: &mut impl ItemsMut,
    (sp, sname): (u64, &[u8]),
    (dp, dname): (u64, &[u8]),
) -> Result<()> {
    let mut s = load_inode(tx, sp)?;
    let e = dir_remove(tx, sp, &mut s, sname)?;
    let is_dir = e.ftype == FileType::Dir;
    if is_dir && sp != dp {
        s.nlink -= 1;
    }
    save_inode(tx, sp, &s)?;
    let mut d = load_inode(tx, dp)?;
    dir_add(tx, dp, &mut d, dname, e.ino, e.ftype)?;
    if is_dir && sp != dp {
        d.nlink += 1;
    }
    save_inode(tx, dp, &d)?;
    touch_ctime(tx, e.ino)
}

fn exchange(
    tx: &mut impl ItemsMut,
    (sp, sname): (u64, &[u8]),
    (dp, dname): (u64, &[u8]),
) -> Result<()> {
    let mut s = load_inode(tx, sp)?;
    let a = dir_remove(tx, sp, &mut s, sname)?;
    save_inode(tx, sp, &s)?;
    let mut d = load_inode(tx, dp)?;
    let b = dir_remove(tx, dp, &mut d, dname)?;
    dir_add(tx, dp, &mut d, dname, a.ino, a.ftype)?;
    save_inode(tx, dp, &d)?;
    let mut s = load_inode(tx, sp)?;
    dir_add(tx, sp, &mut s, sname, b.ino, b.ftype)?;
    save_inode(tx, sp, &s)?;
    if sp != dp {
        let delta = i64::from(a.ftype == FileType::Dir) - i64::from(b.ftype == FileType::Dir);
        for (p, dl) in [(sp, -delta), (dp, delta)] {
            let mut it = load_inode(tx, p)?;
            it.nlink = (i64::from(it.nlink) + dl) as u32;
            save_inode(tx, p, &it)?;
        }
    }
    touch_ctime(tx, a.ino)?;
    touch_ctime(tx, b.ino)
}

fn touch_ctime(tx: &mut impl ItemsMut, ino: u64) -> Result<()> {
    let mut it = load_inode(tx, ino)?;
    it.ctime_ns = now_ns();
    save_inode(tx, ino, &it)
}

/// Names of `ino` in `dir`.
#[allow(dead_code)]
pub(crate) fn names_in(it: &mut impl Items, ino: u64, dir: u64) -> Result<InodeRefs> {
    match it.get(Key::new(ino, kind::INODE_REF, dir))? {
        Some(d) => InodeRefs::parse(&d).map_err(Error::Corrupt),
        None => Ok(InodeRefs::default()),
    }
}
