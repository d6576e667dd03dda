//! The path-based namespace API of [`Filesystem`]: each call resolves its paths, then runs
//! one transaction (atomic and durable when it returns).

use crate::core::now_ns;
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::items::{mode, FileType, InodeFlags};
use crate::namespace::{self as ns, NewInode};
use crate::types::{DirEntryInfo, SetAttr};
use crate::Context;

impl Filesystem {
    /// Creates a regular file (`mode`: permission bits); `EEXIST` if the name exists.
    pub fn create(&self, path: &str, perm: u32) -> Result<u64> {
        self.make(
            path,
            mode::S_IFREG | (perm & 0o7777),
            InodeFlags::default(),
            None,
        )
    }

    /// Creates a regular NOCOW file: overwrites of its unshared blocks happen in place, and
    /// its data has no checksums.
    pub fn create_nocow(&self, path: &str, perm: u32) -> Result<u64> {
        self.make(
            path,
            mode::S_IFREG | (perm & 0o7777),
            InodeFlags::NOCOW,
            None,
        )
    }

    /// Creates a directory.
    pub fn mkdir(&self, path: &str, perm: u32) -> Result<u64> {
        self.make(
            path,
            mode::S_IFDIR | (perm & 0o7777),
            InodeFlags::default(),
            None,
        )
    }

    /// Creates a symbolic link at `path` pointing to `target`.
    pub fn symlink(&self, target: &str, path: &str) -> Result<u64> {
        if target.is_empty() || target.len() > 4095 {
            return Err(Error::NameTooLong(format!(
                "symlink target of {} bytes",
                target.len()
            )));
        }
        self.make(
            path,
            mode::S_IFLNK | 0o777,
            InodeFlags::default(),
            Some(target.as_bytes()),
        )
    }

    fn make(&self, path: &str, mode: u32, flags: InodeFlags, link: Option<&[u8]>) -> Result<u64> {
        let c = self.core();
        let (parent, name) = c.resolve_parent(path)?;
        let ino = c
            .next_ino
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = NewInode {
            mode,
            uid: 0,
            gid: 0,
            flags,
            symlink: link,
        };
        c.write(|tx| ns::create_in(tx, parent, name.as_bytes(), ino, &n))?;
        Ok(ino)
    }

    /// The target of the symlink at `path`.
    pub fn readlink(&self, path: &str) -> Result<String> {
        let c = self.core();
        let ino = c.resolve(path, false)?;
        c.readlink_ino(ino)
    }

    /// A new name `new` for the file `old` (not a directory: `EPERM`).
    pub fn link(&self, old: &str, new: &str) -> Result<()> {
        let c = self.core();
        let ino = c.resolve(old, false)?;
        let (parent, name) = c.resolve_parent(new)?;
        c.write(|tx| {
            let mut item = ns::load_inode(tx, ino)?;
            if item.is_dir() {
                return Err(Error::NotPermitted(format!("hard link to directory {old}")));
            }
            if item.nlink == 0 {
                return Err(Error::NotFound(old.to_string()));
            }
            if item.nlink >= 65_000 {
                return Err(Error::TooManyLinks(old.to_string()));
            }
            ns::check_name(name.as_bytes())?;
            let mut p = ns::load_inode(tx, parent)?;
            if !p.is_dir() {
                return Err(Error::NotDir(new.to_string()));
            }
            if ns::dir_lookup(tx, parent, name.as_bytes())?.is_some() {
                return Err(Error::Exists(new.to_string()));
            }
            ns::dir_add(
                tx,
                parent,
                &mut p,
                name.as_bytes(),
                ino,
                FileType::of_mode(item.mode),
            )?;
            ns::save_inode(tx, parent, &p)?;
            item.nlink += 1;
            item.ctime_ns = now_ns();
            ns::save_inode(tx, ino, &item)
        })
    }

    /// Removes the name `path` (not a directory: `EISDIR`).
    pub fn unlink(&self, path: &str) -> Result<()> {
        self.remove(path, false)
    }

    /// Removes the empty directory `path`.
    pub fn rmdir(&self, path: &str) -> Result<()> {
        self.remove(path, true)
    }

    fn remove(&self, path: &str, dir: bool) -> Result<()> {
        let c = self.core();
        let (parent, name) = c.resolve_parent(path)?;
        let deleted = c.write(|tx| {
            let (e, _) = ns::dir_lookup(tx, parent, name.as_bytes())?
                .ok_or_else(|| Error::NotFound(path.to_string()))?;
            match (dir, e.ftype == FileType::Dir) {
                (false, true) => return Err(Error::IsDir(path.to_string())),
                (true, false) => return Err(Error::NotDir(path.to_string())),
                (true, true) if !ns::readdir_items(tx, e.ino, 0, 1)?.is_empty() => {
                    return Err(Error::NotEmpty(path.to_string()))
                }
                _ => {}
            }
            let mut p = ns::load_inode(tx, parent)?;
            ns::dir_remove(tx, parent, &mut p, name.as_bytes())?;
            if dir {
                p.nlink -= 1;
            }
            ns::save_inode(tx, parent, &p)?;
            let open = c.is_open(e.ino);
            Ok(ns::drop_link(tx, e.ino, open)?.then_some(e.ino))
        })?;
        if let Some(ino) = deleted {
            self.forget(ino);
        }
        Ok(())
    }

    /// Drops the cached state of a deleted inode.
    pub(crate) fn forget(&self, ino: u64) {
        self.inner.iomap.cache().forget(iomap::Ino(ino));
        let gone = self.core().remove_mem(ino);
        if let Some(m) = gone {
            let n: u64 = m.delalloc.0.iter().map(|(s, e)| e - s).sum();
            self.core().release(n * self.core().bs);
        }
    }

    /// Renames `old` to `new` atomically (see [`RenameFlags`](crate::RenameFlags)).
    pub fn rename(&self, old: &str, new: &str, flags: crate::RenameFlags) -> Result<()> {
        let c = self.core();
        let (sp, sname) = c.resolve_parent(old)?;
        let (dp, dname) = c.resolve_parent(new)?;
        let is_open = |ino| c.is_open(ino);
        let deleted = c.write(|tx| {
            ns::rename_in(
                tx,
                (sp, sname.as_bytes()),
                (dp, dname.as_bytes()),
                flags,
                &is_open,
            )
        })?;
        if let Some(ino) = deleted {
            self.forget(ino);
        }
        Ok(())
    }

    /// Up to `max` entries of directory `path` from readdir cookie `cookie` on (start with
    /// 0). Each entry carries the cookie to resume after it; cookies stay valid across
    /// concurrent changes. `.` and `..` are not listed.
    pub fn readdir(&self, path: &str, cookie: u64, max: usize) -> Result<Vec<DirEntryInfo>> {
        let c = self.core();
        let ino = c.resolve(path, true)?;
        c.read(|rd| {
            if !ns::load_inode(rd, ino)?.is_dir() {
                return Err(Error::NotDir(path.to_string()));
            }
            let v = ns::readdir_items(rd, ino, cookie, max)?;
            Ok(v.into_iter()
                .map(|(index, e)| DirEntryInfo {
                    name: String::from_utf8_lossy(&e.name).into_owned(),
                    ino: e.ino,
                    file_type: e.ftype,
                    next_cookie: index + 1,
                })
                .collect())
        })
    }

    /// Changes attributes of `path` (following a final symlink). A size change truncates
    /// or extends the file (zeroes).
    pub fn set_attr(&self, ctx: &Context, path: &str, attr: &SetAttr) -> Result<()> {
        let c = self.core();
        let ino = c.resolve(path, true)?;
        if let Some(size) = attr.size {
            crate::file::truncate_ino(self, ctx, ino, size)?;
        }
        c.write(|tx| {
            let mut item = ns::load_inode(tx, ino)?;
            if let Some(m) = attr.mode {
                item.mode = (item.mode & mode::S_IFMT) | (m & 0o7777);
            }
            item.uid = attr.uid.unwrap_or(item.uid);
            item.gid = attr.gid.unwrap_or(item.gid);
            item.atime_ns = attr.atime_ns.unwrap_or(item.atime_ns);
            item.mtime_ns = attr.mtime_ns.unwrap_or(item.mtime_ns);
            item.ctime_ns = now_ns();
            ns::save_inode(tx, ino, &item)
        })
    }

    /// Sets the extended attribute `name` of `path`.
    pub fn set_xattr(
        &self,
        path: &str,
        name: &str,
        value: &[u8],
        flags: crate::XattrFlags,
    ) -> Result<()> {
        let c = self.core();
        let ino = c.resolve(path, true)?;
        c.write(|tx| ns::xattr_set(tx, ino, name.as_bytes(), value, flags))
    }

    /// The value of extended attribute `name` (`ENODATA` if absent).
    pub fn get_xattr(&self, path: &str, name: &str) -> Result<Vec<u8>> {
        let c = self.core();
        let ino = c.resolve(path, true)?;
        c.read(|rd| ns::xattr_get(rd, ino, name.as_bytes()))
    }

    /// Names of the extended attributes of `path`, sorted.
    pub fn list_xattr(&self, path: &str) -> Result<Vec<String>> {
        let c = self.core();
        let ino = c.resolve(path, true)?;
        let v = c.read(|rd| ns::xattr_list(rd, ino))?;
        Ok(v.into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect())
    }

    /// Removes extended attribute `name`.
    pub fn remove_xattr(&self, path: &str, name: &str) -> Result<()> {
        let c = self.core();
        let ino = c.resolve(path, true)?;
        c.write(|tx| ns::xattr_remove(tx, ino, name.as_bytes()))
    }
}
