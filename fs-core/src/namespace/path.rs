//! Path resolution: absolute paths from the root, `.` and `..`, symlinks followed in
//! intermediate components (and in the last one when asked), at most 40 of them.

use crate::error::{Error, Result};
use crate::items::{ExtentKind, FileType, ROOT_INO};
use crate::namespace::rename::parent_of;
use crate::namespace::{check_name, dir_lookup, load_inode};
use crate::state::{Core, Items};

/// Symlinks followed in one resolution before `ELOOP`.
const MAX_SYMLINKS: usize = 40;

/// Whether `ino` has open handles.
pub(crate) fn is_open(core: &Core, ino: u64) -> bool {
    core.inodes()
        .with_loaded(ino, |m| m.opens > 0)
        .unwrap_or(false)
}

impl Core {
    pub(crate) fn is_open(&self, ino: u64) -> bool {
        is_open(self, ino)
    }

    /// The inode `path` names.
    pub(crate) fn resolve(&self, path: &str, follow_last: bool) -> Result<u64> {
        let mut budget = MAX_SYMLINKS;
        self.walk(ROOT_INO, path, follow_last, &mut budget)
    }

    /// The directory holding the last component of `path`, and that component.
    pub(crate) fn resolve_parent<'p>(&self, path: &'p str) -> Result<(u64, &'p str)> {
        let trimmed = path.trim_end_matches('/');
        let (dir, name) = match trimmed.rfind('/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        check_name(name.as_bytes())?;
        let parent = self.resolve(if dir.is_empty() { "/" } else { dir }, true)?;
        Ok((parent, name))
    }

    /// One snapshot for the whole path (and the symlinks it follows): one read of the
    /// trees instead of two per component.
    fn walk(&self, start: u64, path: &str, follow_last: bool, budget: &mut usize) -> Result<u64> {
        self.read(|rd| walk_in(rd, start, path, follow_last, budget))
    }

    /// The target of symlink `ino` (the bytes of its inline extents, in order; see
    /// `link::put_symlink_target`).
    pub(crate) fn readlink_ino(&self, ino: u64) -> Result<Vec<u8>> {
        self.read(|rd| readlink_in(rd, ino))
    }
}

/// [`Core::walk`] on `rd`.
fn walk_in(
    rd: &mut impl Items,
    start: u64,
    path: &str,
    follow_last: bool,
    budget: &mut usize,
) -> Result<u64> {
    let mut cur = if path.starts_with('/') {
        ROOT_INO
    } else {
        start
    };
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let item = load_inode(rd, cur)?;
        if !item.is_dir() {
            return Err(Error::NotDir(path.to_string()));
        }
        if *part == ".." {
            cur = parent_of(rd, cur)?;
            continue;
        }
        if part.len() > crate::items::NAME_MAX {
            return Err(Error::NameTooLong(format!(
                "{} bytes in {path}",
                part.len()
            )));
        }
        let found = dir_lookup(rd, cur, part.as_bytes())?;
        let (e, _) = found.ok_or_else(|| Error::NotFound(path.to_string()))?;
        if e.ftype == FileType::Symlink && (!last || follow_last) {
            if *budget == 0 {
                return Err(Error::Loop(path.to_string()));
            }
            *budget -= 1;
            let target = readlink_in(rd, e.ino)?;
            cur = walk_in(rd, cur, &String::from_utf8_lossy(&target), true, budget)?;
            continue;
        }
        cur = e.ino;
    }
    Ok(cur)
}

/// [`Core::readlink_ino`] on `rd`.
fn readlink_in(rd: &mut impl Items, ino: u64) -> Result<Vec<u8>> {
    let item = load_inode(rd, ino)?;
    if FileType::of_mode(item.mode) != FileType::Symlink {
        return Err(Error::Invalid(format!("inode {ino} is not a symlink")));
    }
    let mut target = Vec::with_capacity(item.size as usize);
    while (target.len() as u64) < item.size {
        let at = target.len() as u64;
        let e = crate::data::extent_at(rd, ino, at)?
            .filter(|e| e.file_off == at && e.fe.kind == ExtentKind::Inline)
            .ok_or_else(|| Error::Corrupt(format!("symlink {ino}: no target bytes at {at}")))?;
        if e.fe.inline.is_empty() {
            return Err(Error::Corrupt(format!(
                "symlink {ino}: empty piece at {at}"
            )));
        }
        target.extend_from_slice(&e.fe.inline);
    }
    target.truncate(item.size as usize);
    Ok(target)
}
