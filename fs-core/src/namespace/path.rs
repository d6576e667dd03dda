//! Path resolution: absolute paths from the root, `.` and `..`, symlinks followed in
//! intermediate components (and in the last one when asked), at most 40 of them; and the
//! lookups of names and attributes behind it, answered by the caches (`state/lookups.rs`)
//! when they know, else read from the trees and cached.

use crate::error::{Error, Result};
use crate::items::{name_hash, ExtentKind, FileType, InodeItem, NAME_MAX, ROOT_INO};
use crate::namespace::rename::parent_of;
use crate::namespace::{check_name, dir_names, load_inode};
use crate::state::{bucket_of, Attrs, Core, Items, NameFills, Rd};

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
        let stamp = self.lookups().stamp();
        if let Some(r) = self.resolve_cached(path, follow_last) {
            #[cfg(debug_assertions)]
            self.check_hit(stamp, &r, |rd| {
                let mut budget = MAX_SYMLINKS;
                walk_in(
                    rd,
                    ROOT_INO,
                    path,
                    follow_last,
                    &mut budget,
                    &mut Vec::new(),
                )
            });
            let _ = stamp;
            return r;
        }
        let mut budget = MAX_SYMLINKS;
        self.walk(ROOT_INO, path, follow_last, &mut budget)
    }

    /// [`Core::resolve`] from the name cache alone (one lock, no snapshot), if it knows
    /// every component and no symlink is to be followed; `..` is left to the trees.
    fn resolve_cached(&self, path: &str, follow_last: bool) -> Option<Result<u64>> {
        self.lookups().with(|hits| {
            let mut cur = ROOT_INO;
            let mut parts = path
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .peekable();
            while let Some(part) = parts.next() {
                let name = part.as_bytes();
                if part == ".." || name.len() > NAME_MAX {
                    return None;
                }
                // A bucket exists only for a directory, so `cur` is one.
                let Some(e) = hits.name(cur, name_hash(name), name)? else {
                    return Some(Err(Error::NotFound(path.to_string())));
                };
                let last = parts.peek().is_none();
                let follow = e.ftype == FileType::Symlink && (!last || follow_last);
                if follow || (!last && e.ftype != FileType::Dir) {
                    return None;
                }
                cur = e.ino;
            }
            Some(Ok(cur))
        })
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
    /// trees instead of two per component. The directory buckets it read are cached.
    fn walk(&self, start: u64, path: &str, follow_last: bool, budget: &mut usize) -> Result<u64> {
        let stamp = self.lookups().stamp();
        let mut fills = NameFills::new();
        let r = self.read(|rd| walk_in(rd, start, path, follow_last, budget, &mut fills));
        if !fills.is_empty() {
            self.lookups().fill_names(stamp, fills);
        }
        r
    }

    /// The inode `name` names in directory `dir` (not `.` or `..`, at most `NAME_MAX`
    /// bytes); `NotFound` names it as `shown`.
    pub(crate) fn lookup_name(&self, dir: u64, name: &[u8], shown: &str) -> Result<u64> {
        let hash = name_hash(name);
        let stamp = self.lookups().stamp();
        let hit = self
            .lookups()
            .with(|hits| hits.name(dir, hash, name).map(|e| e.map(|e| e.ino)));
        let not_found = || Error::NotFound(shown.to_string());
        let read = |rd: &mut Rd<'_>| {
            if !load_inode(rd, dir)?.is_dir() {
                return Err(Error::NotDir(format!("inode {dir}")));
            }
            dir_names(rd, dir, hash)
        };
        if let Some(hit) = hit {
            let r = hit.ok_or_else(not_found);
            #[cfg(debug_assertions)]
            self.check_hit(stamp, &r, |rd| {
                let b = bucket_of(read(rd)?);
                let found = b.iter().find(|e| e.name == name).map(|e| e.ino);
                found.ok_or_else(not_found)
            });
            return r;
        }
        let names = self.read(read)?;
        let bucket = bucket_of(names);
        let found = bucket.iter().find(|e| e.name == name).map(|e| e.ino);
        self.lookups()
            .fill_names(stamp, vec![((dir, hash), bucket)]);
        found.ok_or_else(not_found)
    }

    /// The inode item of `ino` and the byte ranges of its committed extents: the attribute
    /// cache's entry, read and cached on a miss.
    pub(crate) fn attrs(&self, ino: u64) -> Result<(InodeItem, Vec<(u64, u64)>)> {
        let stamp = self.lookups().stamp();
        if let Some(a) = self.lookups().attrs(ino) {
            let r = Ok((a.item, a.extents));
            #[cfg(debug_assertions)]
            self.check_hit(stamp, &r, |rd| attrs_in(rd, ino));
            return r;
        }
        let (item, extents) = self.read(|rd| attrs_in(rd, ino))?;
        let cached = Attrs {
            item: item.clone(),
            extents: extents.clone(),
        };
        self.lookups().fill_attrs(stamp, ino, cached);
        Ok((item, extents))
    }

    /// Debug builds: a cache hit equals what the trees say, unless something changed
    /// between the stamp taken before the hit and the end of this read.
    #[cfg(debug_assertions)]
    fn check_hit<T: PartialEq + std::fmt::Debug>(
        &self,
        stamp: u64,
        hit: &Result<T>,
        read: impl FnOnce(&mut Rd<'_>) -> Result<T>,
    ) {
        let trees = self.read(|rd| Ok(read(rd)));
        if self.lookups().stamp() != stamp {
            return;
        }
        let same = match (hit, trees.and_then(|t| t)) {
            (Ok(a), Ok(b)) => *a == b,
            (Err(a), Err(b)) => std::mem::discriminant(a) == std::mem::discriminant(&b),
            _ => false,
        };
        assert!(same, "lookup cache hit {hit:?} differs from the trees");
    }

    /// The target of symlink `ino` (the bytes of its inline extents, in order; see
    /// `link::put_symlink_target`).
    pub(crate) fn readlink_ino(&self, ino: u64) -> Result<Vec<u8>> {
        self.read(|rd| readlink_in(rd, ino))
    }
}

/// [`Core::attrs`] read from `rd`.
pub(crate) fn attrs_in(rd: &mut impl Items, ino: u64) -> Result<(InodeItem, Vec<(u64, u64)>)> {
    let item = load_inode(rd, ino)?;
    let ranges = if item.is_dir() {
        Vec::new()
    } else {
        crate::data::extent_ranges(rd, ino)?
    };
    Ok((item, ranges))
}

/// [`Core::walk`] on `rd`; the directory buckets it reads go to `fills`.
fn walk_in(
    rd: &mut impl Items,
    start: u64,
    path: &str,
    follow_last: bool,
    budget: &mut usize,
    fills: &mut NameFills,
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
        if part.len() > NAME_MAX {
            return Err(Error::NameTooLong(format!(
                "{} bytes in {path}",
                part.len()
            )));
        }
        let hash = name_hash(part.as_bytes());
        let bucket = bucket_of(dir_names(rd, cur, hash)?);
        let found = bucket.iter().find(|e| e.name == part.as_bytes()).cloned();
        fills.push(((cur, hash), bucket));
        let e = found.ok_or_else(|| Error::NotFound(path.to_string()))?;
        if e.ftype == FileType::Symlink && (!last || follow_last) {
            if *budget == 0 {
                return Err(Error::Loop(path.to_string()));
            }
            *budget -= 1;
            let target = readlink_in(rd, e.ino)?;
            let target = String::from_utf8_lossy(&target);
            cur = walk_in(rd, cur, &target, true, budget, fills)?;
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
