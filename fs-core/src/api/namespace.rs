//! The namespace API of [`Filesystem`], in two forms: by inode (`*_at`, `*_ino`: a directory
//! inode and a name of bytes, as FUSE and the `*at` system calls address files) and by path
//! (absolute `&str` paths, resolved, then the inode form). Each call is atomic when it
//! returns and durable at the next commit (`durability/group.rs`; on return with
//! `MountOptions::dirsync`).

use crate::api::Context;
use crate::api::Filesystem;
use crate::error::{Error, Result};
use crate::items::{mode, FileType, InodeFlags, InodeItem};
use crate::namespace::{self as ns, NewInode};
use crate::state::now_ns;
use crate::types::{DirEntryInfo, SetAttr, Stat};

/// The longest symlink target: `PATH_MAX` (4096) less its terminating NUL.
pub const SYMLINK_MAX: usize = 4095;

/// Most names one inode may have ([`Filesystem::link_at`] fails with `EMLINK` past it). All
/// names of an inode in one directory share one item, so fewer fit there when names are
/// long: each takes its length plus 10 bytes of a node's largest item (4,055 bytes with the
/// default 16 KiB nodes, so 253 names of 6 bytes).
pub const LINK_MAX: u32 = 65_000;

/// What [`Filesystem::mknod_at`] creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewNode {
    /// File type and permission bits (`S_IFREG`, `S_IFDIR`, `S_IFIFO`, `S_IFSOCK`,
    /// `S_IFCHR`, `S_IFBLK`; symlinks come from [`Filesystem::symlink_at`]).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group (a set-group-ID directory gives its own instead).
    pub gid: u32,
    /// Character and block devices: the device number.
    pub rdev: u64,
}

impl NewNode {
    /// A node of `mode` owned by root.
    pub fn root_owned(mode: u32) -> NewNode {
        NewNode {
            mode,
            uid: 0,
            gid: 0,
            rdev: 0,
        }
    }
}

impl Filesystem {
    // ---- by inode ----

    /// The inode `name` names in directory `dir` (`.` and `..` included).
    pub fn lookup_at(&self, dir: u64, name: &[u8]) -> Result<u64> {
        let c = self.core();
        let plain = !matches!(name, b"." | b"..") && name.len() <= crate::items::NAME_MAX;
        if plain {
            // Through the name cache.
            return c.lookup_name(dir, name, &shown(name));
        }
        c.read(|rd| {
            let d = ns::load_inode(rd, dir)?;
            if !d.is_dir() {
                return Err(Error::NotDir(format!("inode {dir}")));
            }
            match name {
                b"." => Ok(dir),
                b".." => ns::parent_of(rd, dir),
                _ => Err(Error::NameTooLong(format!("{} bytes", name.len()))),
            }
        })
    }

    /// Creates `name` in directory `dir`: a regular file, directory, FIFO, socket or device
    /// node as `node.mode` says. `EEXIST` if the name exists.
    pub fn mknod_at(&self, dir: u64, name: &[u8], node: &NewNode) -> Result<Stat> {
        match FileType::from_mode(node.mode) {
            Some(FileType::Symlink) | None => Err(Error::Invalid(format!(
                "mknod of file type {:#o}",
                node.mode & mode::S_IFMT
            ))),
            Some(_) => self.make_at(dir, name, node, InodeFlags::default(), None),
        }
    }

    /// Creates a symbolic link `name` in directory `dir` pointing to `target` (bytes, up to
    /// [`SYMLINK_MAX`]; not resolved).
    pub fn symlink_at(
        &self,
        dir: u64,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Stat> {
        if target.is_empty() {
            return Err(Error::NotFound("empty symlink target".into()));
        }
        if target.len() > SYMLINK_MAX {
            return Err(Error::NameTooLong(format!(
                "symlink target of {} bytes",
                target.len()
            )));
        }
        if target.contains(&0) {
            return Err(Error::Invalid("symlink target contains NUL".into()));
        }
        let node = NewNode {
            mode: mode::S_IFLNK | 0o777,
            uid,
            gid,
            rdev: 0,
        };
        self.make_at(dir, name, &node, InodeFlags::default(), Some(target))
    }

    fn make_at(
        &self,
        dir: u64,
        name: &[u8],
        node: &NewNode,
        flags: InodeFlags,
        target: Option<&[u8]>,
    ) -> Result<Stat> {
        let c = self.core();
        let ino = c.alloc_ino();
        let n = NewInode {
            mode: node.mode & (mode::S_IFMT | 0o7777),
            uid: node.uid,
            gid: node.gid,
            flags,
            symlink: target,
            rdev: node.rdev,
        };
        let item = c.namespace_growing(|tx| ns::create_in(tx, dir, name, ino, &n))?;
        // As a later stat sees it, without reading it back: a new node has no data but a
        // symlink's inline target, which counts in `blocks`.
        let mut st = Stat::from_item(ino, &item, item.size);
        if target.is_some() {
            st.blocks = item.size.div_ceil(512);
        }
        Ok(st)
    }

    /// A new name `name` in directory `dir` for `ino` (not a directory: `EPERM`).
    pub fn link_at(&self, ino: u64, dir: u64, name: &[u8]) -> Result<Stat> {
        let c = self.core();
        c.namespace_growing(|tx| {
            let mut item = ns::load_inode(tx, ino)?;
            if item.is_dir() {
                return Err(Error::NotPermitted(format!("hard link to directory {ino}")));
            }
            if item.nlink == 0 {
                return Err(Error::NotFound(format!("inode {ino} was removed")));
            }
            if item.nlink >= LINK_MAX {
                return Err(Error::TooManyLinks(format!("inode {ino}")));
            }
            ns::check_name(name)?;
            let mut p = ns::load_inode(tx, dir)?;
            if !p.is_dir() {
                return Err(Error::NotDir(format!("inode {dir}")));
            }
            if p.nlink == 0 {
                return Err(Error::NotFound(format!("directory {dir} was removed")));
            }
            if ns::dir_lookup(tx, dir, name)?.is_some() {
                return Err(Error::Exists(shown(name)));
            }
            ns::dir_add(tx, dir, &mut p, name, ino, FileType::of_mode(item.mode))?;
            ns::save_inode(tx, dir, &p)?;
            item.nlink += 1;
            item.ctime_ns = now_ns();
            ns::save_inode(tx, ino, &item)
        })?;
        self.stat_ino(ino)
    }

    /// Removes the name `name` of directory `dir` (not a directory: `EISDIR`).
    pub fn unlink_at(&self, dir: u64, name: &[u8]) -> Result<()> {
        self.remove_at(dir, name, false)
    }

    /// Removes the empty directory `name` of directory `dir`.
    pub fn rmdir_at(&self, dir: u64, name: &[u8]) -> Result<()> {
        self.remove_at(dir, name, true)
    }

    fn remove_at(&self, parent: u64, name: &[u8], dir: bool) -> Result<()> {
        let c = self.core();
        match name {
            b"." if dir => return Err(Error::Invalid("rmdir of \".\"".into())),
            b".." if dir => return Err(Error::NotEmpty("rmdir of \"..\"".into())),
            _ => ns::check_name(name)?,
        }
        let deleted = c.namespace(|tx| {
            let (e, _) =
                ns::dir_lookup(tx, parent, name)?.ok_or_else(|| Error::NotFound(shown(name)))?;
            match (dir, e.ftype == FileType::Dir) {
                (false, true) => return Err(Error::IsDir(shown(name))),
                (true, false) => return Err(Error::NotDir(shown(name))),
                (true, true) if !ns::readdir_items(tx, e.ino, 0, 1)?.is_empty() => {
                    return Err(Error::NotEmpty(shown(name)))
                }
                _ => {}
            }
            let mut p = ns::load_inode(tx, parent)?;
            ns::dir_remove(tx, parent, &mut p, name)?;
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
        let gone = self.core().inodes().remove(ino);
        if let Some(m) = gone {
            let n: u64 = m.delalloc.cached().map(|(s, e)| e - s).sum();
            self.core().release(n * self.core().bs());
        }
    }

    /// Renames `sname` of directory `sdir` to `dname` of `ddir` atomically (see
    /// [`RenameFlags`](crate::RenameFlags)).
    pub fn rename_at(
        &self,
        sdir: u64,
        sname: &[u8],
        ddir: u64,
        dname: &[u8],
        flags: crate::RenameFlags,
    ) -> Result<()> {
        let c = self.core();
        let is_open = |ino| c.is_open(ino);
        let deleted =
            c.namespace(|tx| ns::rename_in(tx, (sdir, sname), (ddir, dname), flags, &is_open))?;
        if let Some(ino) = deleted {
            self.forget(ino);
        }
        Ok(())
    }

    /// The target of symlink `ino`, as bytes.
    pub fn readlink_ino(&self, ino: u64) -> Result<Vec<u8>> {
        self.core().readlink_ino(ino)
    }

    /// Up to `max` entries of directory `dir` from readdir cookie `cookie` on (start with
    /// 0). Each entry carries the cookie to resume after it; cookies stay valid across
    /// concurrent changes. `.` and `..` are not listed.
    pub fn readdir_ino(&self, dir: u64, cookie: u64, max: usize) -> Result<Vec<DirEntryInfo>> {
        self.core().read(|rd| {
            if !ns::load_inode(rd, dir)?.is_dir() {
                return Err(Error::NotDir(format!("inode {dir}")));
            }
            let v = ns::readdir_items(rd, dir, cookie, max)?;
            Ok(v.into_iter()
                .map(|(index, e)| DirEntryInfo {
                    name: e.name,
                    ino: e.ino,
                    file_type: e.ftype,
                    next_cookie: index + 1,
                })
                .collect())
        })
    }

    /// Changes attributes of inode `ino` itself (a symlink's own, never its target's). A
    /// size change truncates or extends the file (zeroes) and sets mtime; any change sets
    /// ctime (to `attr.ctime_ns` if given, else now). An explicit mtime replaces the time of
    /// writes accepted before it. Returns the new attributes.
    pub fn set_attr_ino(&self, ctx: &Context, ino: u64, attr: &SetAttr) -> Result<Stat> {
        let c = self.core();
        if let Some(size) = attr.size {
            crate::api::file::truncate_ino(self, ctx, ino, size)?;
        }
        let rest = SetAttr {
            size: None,
            ..attr.clone()
        };
        if !rest.is_empty() {
            if rest.mtime_ns.is_some() {
                // Writes accepted before this call no longer stamp their own time (a write
                // accepted from here on does: it comes after).
                c.forget_write_time(ino);
            }
            // A time the fsync log holds for the inode would win over the new one if the
            // change were pending (the commit folds the log after the pending changes):
            // then it commits after the fold, as before group commit.
            if rest.mtime_ns.is_some() && c.log().has_attrs(ino) {
                c.commit(|tx| {
                    let mut item = ns::load_inode(tx, ino)?;
                    apply(&mut item, &rest);
                    ns::save_inode(tx, ino, &item)
                })?;
            } else {
                c.namespace(|tx| {
                    let mut item = ns::load_inode(tx, ino)?;
                    apply(&mut item, &rest);
                    if rest.mtime_ns.is_some() {
                        tx.set_mtime_explicitly(ino);
                    }
                    ns::save_inode(tx, ino, &item)
                })?;
            }
        }
        self.stat_ino(ino)
    }

    /// Sets the extended attribute `name` of inode `ino`. POSIX ACLs
    /// (`system.posix_acl_access`, `system.posix_acl_default`) are not supported
    /// (`EOPNOTSUPP`, so tools such as `cp -a` fall back to the mode bits).
    pub fn set_xattr_ino(
        &self,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: crate::XattrFlags,
    ) -> Result<()> {
        if name.starts_with(b"system.") {
            return Err(Error::Unsupported(format!(
                "extended attribute {} (this filesystem has no POSIX ACLs and no other \
                 system.* attributes)",
                shown(name)
            )));
        }
        self.core().namespace(|tx| {
            ns::xattr_set(tx, ino, name, value, flags)?;
            let mut item = ns::load_inode(tx, ino)?;
            item.ctime_ns = now_ns();
            ns::save_inode(tx, ino, &item)
        })
    }

    /// The value of extended attribute `name` of inode `ino` (`ENODATA` if absent).
    pub fn get_xattr_ino(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        self.core().read(|rd| ns::xattr_get(rd, ino, name))
    }

    /// Names of the extended attributes of inode `ino`, sorted.
    pub fn list_xattr_ino(&self, ino: u64) -> Result<Vec<Vec<u8>>> {
        self.core().read(|rd| ns::xattr_list(rd, ino))
    }

    /// Removes extended attribute `name` of inode `ino`.
    pub fn remove_xattr_ino(&self, ino: u64, name: &[u8]) -> Result<()> {
        self.core().namespace(|tx| {
            ns::xattr_remove(tx, ino, name)?;
            let mut item = ns::load_inode(tx, ino)?;
            item.ctime_ns = now_ns();
            ns::save_inode(tx, ino, &item)
        })
    }

    // ---- by path ----

    /// Creates a regular file (`mode`: permission bits); `EEXIST` if the name exists.
    pub fn create(&self, path: &str, perm: u32) -> Result<u64> {
        self.make(path, mode::S_IFREG | (perm & 0o7777), InodeFlags::default())
    }

    /// Creates a regular NOCOW file: overwrites of its unshared blocks happen in place, and
    /// its data has no checksums.
    pub fn create_nocow(&self, path: &str, perm: u32) -> Result<u64> {
        self.make(path, mode::S_IFREG | (perm & 0o7777), InodeFlags::NOCOW)
    }

    /// Creates a directory.
    pub fn mkdir(&self, path: &str, perm: u32) -> Result<u64> {
        self.make(path, mode::S_IFDIR | (perm & 0o7777), InodeFlags::default())
    }

    /// Creates a symbolic link at `path` pointing to `target`.
    pub fn symlink(&self, target: &str, path: &str) -> Result<u64> {
        let (parent, name) = self.core().resolve_parent(path)?;
        Ok(self
            .symlink_at(parent, name.as_bytes(), target.as_bytes(), 0, 0)?
            .ino)
    }

    fn make(&self, path: &str, mode: u32, flags: InodeFlags) -> Result<u64> {
        let (parent, name) = self.core().resolve_parent(path)?;
        let node = NewNode::root_owned(mode);
        Ok(self
            .make_at(parent, name.as_bytes(), &node, flags, None)?
            .ino)
    }

    /// The target of the symlink at `path` (invalid UTF-8 replaced; see
    /// [`Filesystem::readlink_ino`]).
    pub fn readlink(&self, path: &str) -> Result<String> {
        let ino = self.core().resolve(path, false)?;
        let t = self.readlink_ino(ino)?;
        Ok(String::from_utf8_lossy(&t).into_owned())
    }

    /// A new name `new` for the file `old` (not a directory: `EPERM`).
    pub fn link(&self, old: &str, new: &str) -> Result<()> {
        let c = self.core();
        let ino = c.resolve(old, false)?;
        let (parent, name) = c.resolve_parent(new)?;
        self.link_at(ino, parent, name.as_bytes()).map(drop)
    }

    /// Removes the name `path` (not a directory: `EISDIR`).
    pub fn unlink(&self, path: &str) -> Result<()> {
        let (parent, name) = self.core().resolve_parent(path)?;
        self.unlink_at(parent, name.as_bytes())
    }

    /// Removes the empty directory `path`.
    pub fn rmdir(&self, path: &str) -> Result<()> {
        let (parent, name) = self.core().resolve_parent(path)?;
        self.rmdir_at(parent, name.as_bytes())
    }

    /// Renames `old` to `new` atomically (see [`RenameFlags`](crate::RenameFlags)).
    pub fn rename(&self, old: &str, new: &str, flags: crate::RenameFlags) -> Result<()> {
        let c = self.core();
        let (sp, sname) = c.resolve_parent(old)?;
        let (dp, dname) = c.resolve_parent(new)?;
        self.rename_at(sp, sname.as_bytes(), dp, dname.as_bytes(), flags)
    }

    /// Up to `max` entries of directory `path`; see [`Filesystem::readdir_ino`].
    pub fn readdir(&self, path: &str, cookie: u64, max: usize) -> Result<Vec<DirEntryInfo>> {
        let ino = self.core().resolve(path, true)?;
        self.readdir_ino(ino, cookie, max)
    }

    /// Changes attributes of `path` (following a final symlink); see
    /// [`Filesystem::set_attr_ino`].
    pub fn set_attr(&self, ctx: &Context, path: &str, attr: &SetAttr) -> Result<()> {
        let ino = self.core().resolve(path, true)?;
        self.set_attr_ino(ctx, ino, attr).map(drop)
    }

    /// Sets the extended attribute `name` of `path`; see [`Filesystem::set_xattr_ino`].
    pub fn set_xattr(
        &self,
        path: &str,
        name: &str,
        value: &[u8],
        flags: crate::XattrFlags,
    ) -> Result<()> {
        let ino = self.core().resolve(path, true)?;
        self.set_xattr_ino(ino, name.as_bytes(), value, flags)
    }

    /// The value of extended attribute `name` (`ENODATA` if absent).
    pub fn get_xattr(&self, path: &str, name: &str) -> Result<Vec<u8>> {
        let ino = self.core().resolve(path, true)?;
        self.get_xattr_ino(ino, name.as_bytes())
    }

    /// Names of the extended attributes of `path`, sorted.
    pub fn list_xattr(&self, path: &str) -> Result<Vec<String>> {
        let ino = self.core().resolve(path, true)?;
        let v = self.list_xattr_ino(ino)?;
        Ok(v.into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect())
    }

    /// Removes extended attribute `name`.
    pub fn remove_xattr(&self, path: &str, name: &str) -> Result<()> {
        let ino = self.core().resolve(path, true)?;
        self.remove_xattr_ino(ino, name.as_bytes())
    }
}

/// `attr` (less its size) applied to `item`.
fn apply(item: &mut InodeItem, attr: &SetAttr) {
    if let Some(m) = attr.mode {
        item.mode = (item.mode & mode::S_IFMT) | (m & 0o7777);
    }
    item.uid = attr.uid.unwrap_or(item.uid);
    item.gid = attr.gid.unwrap_or(item.gid);
    item.atime_ns = attr.atime_ns.unwrap_or(item.atime_ns);
    item.mtime_ns = attr.mtime_ns.unwrap_or(item.mtime_ns);
    item.ctime_ns = attr.ctime_ns.unwrap_or_else(now_ns);
}

/// A name for messages.
fn shown(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}
