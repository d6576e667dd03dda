//! [`Filesystem`]: format, mount, unmount, statfs and the path-based namespace API.

use std::sync::Arc;

use bdev::exec::DevId;
use bdev::BlockDevice;
use cow::{Direction, Key, TreeId, Volume};
use iomap::{Iomap, IomapConfig};

use crate::context::Context;
use crate::core::{Core, Items, FS_TREE};
use crate::data::DataOps;
use crate::error::{Error, Result};
use crate::items::{kind, mode, FileType, InodeFlags, ORPHAN_OBJECTID, ROOT_INO};
use crate::namespace::{self as ns, NewInode};
use crate::types::{DirEntryInfo, SetAttr, Stat, StatFs};

/// How to format.
#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// Metadata node size in bytes (power of two, 1–64 KiB; default 16 KiB).
    pub nodesize: u32,
    /// Filesystem block size (allocation and checksum unit): 512–4096, at least the device
    /// block size (default 4096).
    pub block_size: u32,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            nodesize: 16 << 10,
            block_size: 4096,
        }
    }
}

/// How to mount.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Refuse every change.
    pub read_only: bool,
    /// Mount read-write even if the device has a volatile cache that flush does not empty
    /// (`Geometry::durability_unknowable`): fsync then promises nothing. Off by default.
    pub accept_volatile_cache: bool,
    /// Page cache budget in bytes.
    pub cache_bytes: u64,
    /// Dirty bytes past which writers write back.
    pub dirty_bytes: u64,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            read_only: false,
            accept_volatile_cache: false,
            cache_bytes: 64 << 20,
            dirty_bytes: 16 << 20,
        }
    }
}

pub(crate) struct Inner {
    pub core: Arc<Core>,
    pub iomap: Iomap<DataOps>,
}

/// A mounted filesystem. `Send + Sync`: share it (or clones of it) between threads; each
/// thread doing I/O brings its own [`Context`].
#[derive(Clone)]
pub struct Filesystem {
    pub(crate) inner: Arc<Inner>,
}

const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Filesystem>();
};

/// The device's queue in every context of a filesystem (attached first).
pub(crate) const DEV: DevId = DevId(0);

impl Filesystem {
    /// Formats `dev` as an empty filesystem: a root directory (mode 0755).
    pub fn format(dev: Arc<dyn BlockDevice>, opts: FormatOptions) -> Result<()> {
        let mut io = dev.queue(128)?;
        let copts = cow::FormatOptions {
            nodesize: opts.nodesize,
            sectorsize: opts.block_size,
            ..cow::FormatOptions::default()
        };
        let vol = Volume::format(Arc::clone(&dev), &mut *io, &copts)?;
        let mut tx = vol.begin()?;
        tx.create_tree(TreeId::FS)?;
        let root = ns::NewInode {
            mode: mode::S_IFDIR | 0o755,
            uid: 0,
            gid: 0,
            flags: InodeFlags::default(),
            symlink: None,
        };
        let item = ns::fresh_inode(&root, tx.generation());
        tx.insert(
            &mut *io,
            FS_TREE,
            Key::new(ROOT_INO, kind::INODE_ITEM, 0),
            &item.encode(),
        )?;
        tx.commit(&mut *io)?;
        vol.close(&mut *io)?;
        Ok(())
    }

    /// Mounts the filesystem on `dev`.
    pub fn mount(dev: Arc<dyn BlockDevice>, opts: MountOptions) -> Result<Filesystem> {
        let geo = dev.geometry();
        if !opts.read_only && geo.durability_unknowable() && !opts.accept_volatile_cache {
            return Err(Error::Unsupported(format!(
                "device {} has a volatile write cache that flush does not empty, so fsync \
                 could not keep its promise; mount read-only or set accept_volatile_cache",
                dev.name()
            )));
        }
        let mut io = dev.queue(128)?;
        let vol = Volume::open(Arc::clone(&dev), &mut *io, &cow::OpenOptions::default())?;
        drop(io);
        let read_only = opts.read_only.then(|| "mounted read-only".to_string());
        let core = Arc::new(Core::new(vol, Arc::clone(&dev), read_only));
        core.read(|rd| {
            if !rd.r.trees().contains(&FS_TREE) {
                return Err(Error::Corrupt("the volume has no fs tree".into()));
            }
            let root = ns::load_inode(rd, ROOT_INO)
                .map_err(|e| Error::Corrupt(format!("root directory: {e}")))?;
            if !root.is_dir() {
                return Err(Error::Corrupt("the root inode is not a directory".into()));
            }
            Ok(())
        })?;
        let last = core.read(|rd| {
            let hi = Key::new(ORPHAN_OBJECTID - 1, u8::MAX, u64::MAX);
            let v = rd.range(Key::MIN, hi, Direction::Backward, 1)?;
            Ok(v.first().map_or(ROOT_INO, |(k, _)| k.objectid))
        })?;
        core.next_ino
            .store(last.max(ROOT_INO) + 1, std::sync::atomic::Ordering::Relaxed);
        crate::durability::replay(&core, !opts.read_only)?;
        if !opts.read_only {
            if let Err(e) = crate::durability::ensure_area(&core) {
                // Without a log, fsync commits instead: slower, as safe.
                log::warn!("fs-core: no fsync log area ({e}); fsync will commit");
            }
            crate::durability::remove_orphans(&core)?;
        }
        let cfg = IomapConfig {
            cache_bytes: opts.cache_bytes,
            dirty_bytes: opts.dirty_bytes,
            ..IomapConfig::default()
        };
        let ops = DataOps {
            core: Arc::clone(&core),
        };
        let iomap = Iomap::new(ops, dev, DEV, cfg)?;
        Ok(Filesystem {
            inner: Arc::new(Inner { core, iomap }),
        })
    }

    /// A context for this thread: its device queue and executor.
    pub fn context(&self) -> Result<Context> {
        Context::new(self)
    }

    pub(crate) fn core(&self) -> &Core {
        &self.inner.core
    }

    /// Writes back everything, commits, flushes; reports an earlier failure that made the
    /// filesystem read-only. Open files stay usable until dropped.
    pub fn unmount(self, ctx: &Context) -> Result<()> {
        if self.core().read_only.is_none() {
            self.sync(ctx)?;
        }
        if let Some(p) = self.core().vol.poisoned() {
            return Err(Error::ReadOnly(p));
        }
        Ok(())
    }

    /// Space and name limits.
    pub fn statfs(&self) -> Result<StatFs> {
        let c = self.core();
        let bs = c.bs;
        let total = c.dev.geometry().size_bytes() / bs;
        let free = c.vol.free_bytes();
        let reserved = *c.reserved();
        Ok(StatFs {
            block_size: bs,
            blocks: total,
            blocks_free: free / bs,
            blocks_avail: free.saturating_sub(reserved + c.slack) / bs,
            name_max: crate::items::NAME_MAX as u64,
            files: c.next_ino.load(std::sync::atomic::Ordering::Relaxed) - ROOT_INO,
        })
    }

    /// The inode `path` names (absolute; symlinks followed except in the last component).
    pub fn lookup(&self, path: &str) -> Result<u64> {
        self.core().resolve(path, false)
    }

    /// Attributes of what `path` names (the last component not followed, as `lstat`).
    pub fn stat(&self, path: &str) -> Result<Stat> {
        let ino = self.lookup(path)?;
        self.stat_ino(ino)
    }

    /// Attributes of inode `ino` (the size of a file open for writing includes cached
    /// writes).
    pub fn stat_ino(&self, ino: u64) -> Result<Stat> {
        let c = self.core();
        let item = c.read(|rd| ns::load_inode(rd, ino))?;
        let size = c.inodes().get(&ino).map_or(item.size, |m| m.size);
        Ok(Stat::from_item(ino, &item, size))
    }

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
            item.ctime_ns = crate::core::now_ns();
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
        let gone = self.core().inodes().remove(&ino);
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
            item.ctime_ns = crate::core::now_ns();
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

    /// Writes back every file and commits: everything written before is durable on return.
    pub fn sync(&self, ctx: &Context) -> Result<()> {
        crate::durability::sync_all(self, ctx)
    }

    /// Counters of the iomap layer (device requests issued by data I/O).
    pub fn io_counters(&self) -> &iomap::IoCounters {
        self.inner.iomap.counters()
    }
}
