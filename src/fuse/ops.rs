//! The FUSE operations: each resolves FUSE inodes to paths, calls fs-core on this thread's
//! context and replies.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use fs_core::{
    Context, Error, FallocMode, File, Filesystem, OpenFlags, RenameFlags, Result, SetAttr, Stat,
    XattrFlags,
};
use fuser::{
    AccessFlags, Errno, FileHandle, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLseek,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::attr::{errno, file_attr, kind, ns_of, TTL};
use super::handles::{Handles, Open};
use super::inodes::{join, to_fs, to_fuse, Inodes};

/// Offsets 1 and 2 of a directory stream are `.` and `..`; fs-core cookies follow, shifted.
const DOT_ENTRIES: u64 = 2;

/// A direct request must be aligned to this (a multiple of every device sector size).
const DIRECT_ALIGN: u64 = 4096;

pub(crate) struct Fuse {
    fs: Arc<Filesystem>,
    id: u64,
    inodes: Inodes,
    handles: Handles,
    block_size: u32,
}

fn name_str(name: &OsStr) -> Result<&str> {
    name.to_str()
        .ok_or_else(|| Error::Invalid(format!("name {name:?} is not UTF-8")))
}

impl Fuse {
    pub fn new(fs: Arc<Filesystem>, id: u64) -> Fuse {
        let block_size = fs.statfs().map_or(4096, |s| s.block_size as u32);
        Fuse {
            fs,
            id,
            inodes: Inodes::default(),
            handles: Handles::default(),
            block_size,
        }
    }

    fn ctx<T>(&self, f: impl FnOnce(&Context) -> Result<T>) -> Result<T> {
        super::ctx::with_ctx(self.id, &self.fs, f)
    }

    fn path(&self, ino: INodeNo) -> Result<String> {
        self.inodes
            .path(to_fs(ino.0))
            .ok_or_else(|| Error::NotFound(format!("inode {} has no known path", ino.0)))
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<String> {
        Ok(join(&self.path(parent)?, name_str(name)?))
    }

    fn stat(&self, ino: u64) -> Result<Stat> {
        self.fs.stat_ino(ino)
    }

    /// Looks `path` up, records it and returns its attributes.
    fn entry(&self, path: String) -> Result<Stat> {
        let ino = self.fs.lookup(&path)?;
        let st = self.stat(ino)?;
        self.inodes.add(ino, path);
        Ok(st)
    }

    fn reply_entry(&self, r: Result<Stat>, reply: ReplyEntry) {
        match r {
            Ok(st) => reply.entry(&TTL, &file_attr(&st, self.block_size), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    /// Gives a new inode the caller's owner and group (fs-core creates as root).
    fn own(&self, path: &str, req: &Request) -> Result<()> {
        if req.uid() == 0 && req.gid() == 0 {
            return Ok(());
        }
        let attr = SetAttr {
            uid: Some(req.uid()),
            gid: Some(req.gid()),
            ..SetAttr::default()
        };
        self.ctx(|c| self.fs.set_attr(c, path, &attr))
    }

    fn make(&self, req: &Request, path: String, made: Result<u64>) -> Result<Stat> {
        made?;
        self.own(&path, req)?;
        self.entry(path)
    }

    fn open_file(&self, path: &str, flags: i32, perm: Option<u32>) -> Result<(u64, Stat, bool)> {
        let acc = flags & libc::O_ACCMODE;
        let mut of = OpenFlags {
            read: acc != libc::O_WRONLY,
            write: acc != libc::O_RDONLY,
            direct: flags & libc::O_DIRECT != 0,
            append: flags & libc::O_APPEND != 0,
            truncate: flags & libc::O_TRUNC != 0,
            sync: flags & libc::O_SYNC == libc::O_SYNC,
            dsync: flags & libc::O_DSYNC != 0,
            ..OpenFlags::default()
        };
        if let Some(_perm) = perm {
            of.create = true;
            of.exclusive = flags & libc::O_EXCL != 0;
        }
        let (file, buffered) = self.ctx(|c| {
            let file = self.fs.open(c, path, of, perm.unwrap_or(0o644))?;
            let buffered = if of.direct {
                let bf = OpenFlags {
                    direct: false,
                    truncate: false,
                    create: false,
                    exclusive: false,
                    ..of
                };
                Some(self.fs.open(c, path, bf, 0)?)
            } else {
                None
            };
            Ok((file, buffered))
        })?;
        let st = file.stat()?;
        let direct = of.direct;
        let fh = self.handles.insert(Open { file, buffered });
        Ok((fh, st, direct))
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Open>> {
        self.handles
            .get(fh.0)
            .ok_or_else(|| Error::BadHandle(format!("file handle {}", fh.0)))
    }

    /// The file to serve `[off, off + len)`: the direct one only for aligned requests.
    fn pick(o: &Open, off: u64, len: u64) -> &File {
        match &o.buffered {
            Some(b) if off % DIRECT_ALIGN != 0 || len % DIRECT_ALIGN != 0 => b,
            _ => &o.file,
        }
    }

    fn set_attr(&self, ino: INodeNo, a: &SetAttr, fh: Option<FileHandle>) -> Result<Stat> {
        let fs_ino = to_fs(ino.0);
        if let (Some(size), Some(fh)) = (a.size, fh) {
            let o = self.handle(fh)?;
            self.ctx(|c| o.file.set_len(c, size))?;
        }
        let rest = SetAttr {
            size: if fh.is_some() { None } else { a.size },
            ..a.clone()
        };
        if rest != SetAttr::default() {
            let path = self.path(ino)?;
            self.ctx(|c| self.fs.set_attr(c, &path, &rest))?;
        }
        self.stat(fs_ino)
    }

    fn readdir_into(&self, ino: INodeNo, offset: u64, reply: &mut ReplyDirectory) -> Result<()> {
        let path = self.path(ino)?;
        let mut off = offset;
        if off == 0 {
            if reply.add(ino, 1, fuser::FileType::Directory, ".") {
                return Ok(());
            }
            off = 1;
        }
        if off == 1 {
            if reply.add(ino, 2, fuser::FileType::Directory, "..") {
                return Ok(());
            }
            off = 2;
        }
        let mut cookie = off - DOT_ENTRIES;
        loop {
            let batch = self.fs.readdir(&path, cookie, 128)?;
            if batch.is_empty() {
                return Ok(());
            }
            for e in batch {
                let full = reply.add(
                    INodeNo(to_fuse(e.ino)),
                    e.next_cookie + DOT_ENTRIES,
                    kind(e.file_type),
                    &e.name,
                );
                if full {
                    return Ok(());
                }
                cookie = e.next_cookie;
            }
        }
    }

    fn xattr_reply(data: Vec<u8>, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(data.len() as u32);
        } else if data.len() > size as usize {
            reply.error(Errno::ERANGE);
        } else {
            reply.data(&data);
        }
    }
}

fn to_ns(t: Option<TimeOrNow>) -> Option<i64> {
    t.map(|t| match t {
        TimeOrNow::SpecificTime(t) => ns_of(t),
        TimeOrNow::Now => ns_of(SystemTime::now()),
    })
}

fn falloc_mode(mode: i32) -> Result<FallocMode> {
    let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
    match mode & !libc::FALLOC_FL_KEEP_SIZE {
        0 => Ok(FallocMode::Preallocate { keep_size }),
        libc::FALLOC_FL_PUNCH_HOLE if keep_size => Ok(FallocMode::PunchHole),
        libc::FALLOC_FL_ZERO_RANGE => Ok(FallocMode::ZeroRange { keep_size }),
        m => Err(Error::Unsupported(format!("fallocate mode {m:#x}"))),
    }
}

/// Replies `ok` or the error.
fn done(r: Result<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(&e)),
    }
}

impl fuser::Filesystem for Fuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn destroy(&mut self) {
        self.handles.clear();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.child(parent, name).and_then(|p| self.entry(p));
        self.reply_entry(r, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.stat(to_fs(ino.0)) {
            Ok(st) => reply.attr(&TTL, &file_attr(&st, self.block_size)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let a = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime_ns: to_ns(atime),
            mtime_ns: to_ns(mtime),
        };
        match self.set_attr(ino, &a, fh) {
            Ok(st) => reply.attr(&TTL, &file_attr(&st, self.block_size)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.path(ino).and_then(|p| self.fs.readlink(&p)) {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.child(parent, name).and_then(|p| {
            let made = self.fs.mkdir(&p, mode & !umask & 0o7777);
            self.make(req, p, made)
        });
        self.reply_entry(r, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.child(parent, name).and_then(|p| {
            self.fs.unlink(&p)?;
            self.inodes.remove(&p);
            Ok(())
        });
        done(r, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.child(parent, name).and_then(|p| {
            self.fs.rmdir(&p)?;
            self.inodes.remove(&p);
            Ok(())
        });
        done(r, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.child(parent, link_name).and_then(|p| {
            let t = target
                .to_str()
                .ok_or_else(|| Error::Invalid("symlink target is not UTF-8".into()))?;
            let made = self.fs.symlink(t, &p);
            self.make(req, p, made)
        });
        self.reply_entry(r, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            let old = self.child(parent, name)?;
            let new = self.child(newparent, newname)?;
            if flags.contains(fuser::RenameFlags::RENAME_WHITEOUT) {
                return Err(Error::Unsupported("rename with RENAME_WHITEOUT".into()));
            }
            let f = RenameFlags {
                noreplace: flags.contains(fuser::RenameFlags::RENAME_NOREPLACE),
                exchange: flags.contains(fuser::RenameFlags::RENAME_EXCHANGE),
            };
            self.fs.rename(&old, &new, f)?;
            if f.exchange {
                self.inodes.exchange(&old, &new);
            } else {
                self.inodes.rename(&old, &new);
            }
            Ok(())
        })();
        done(r, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            let old = self.path(ino)?;
            let new = self.child(newparent, newname)?;
            self.fs.link(&old, &new)?;
            self.entry(new)
        })();
        self.reply_entry(r, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: fuser::OpenFlags, reply: ReplyOpen) {
        match self
            .path(ino)
            .and_then(|p| self.open_file(&p, flags.0, None))
        {
            Ok((fh, _, direct)) => {
                let f = if direct {
                    FopenFlags::FOPEN_DIRECT_IO
                } else {
                    FopenFlags::empty()
                };
                reply.opened(FileHandle(fh), f)
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = (|| {
            let path = self.child(parent, name)?;
            let opened = self.open_file(&path, flags, Some(mode & !umask & 0o7777))?;
            self.own(&path, req)?;
            let st = self.entry(path)?;
            Ok((opened, st))
        })();
        match r {
            Ok(((fh, _, direct), st)) => {
                let f = if direct {
                    FopenFlags::FOPEN_DIRECT_IO
                } else {
                    FopenFlags::empty()
                };
                let a = file_attr(&st, self.block_size);
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), f)
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: fuser::OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.handle(fh).and_then(|o| {
            let mut buf = vec![0u8; size as usize];
            let f = Self::pick(&o, offset, u64::from(size));
            let n = self.ctx(|c| f.read_at(c, offset, &mut buf))?;
            buf.truncate(n);
            Ok(buf)
        });
        match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: fuser::OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.handle(fh).and_then(|o| {
            let f = Self::pick(&o, offset, data.len() as u64);
            self.ctx(|c| f.write_at(c, offset, data))
        });
        match r {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() is not a durability point (as on kernel filesystems); fsync is.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: fuser::OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles.remove(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.handle(fh).and_then(|o| {
            self.ctx(|c| {
                if datasync {
                    o.file.fdatasync(c)
                } else {
                    o.file.fsync(c)
                }
            })
        });
        done(r, reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.readdir_into(ino, offset, &mut reply) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Every namespace change is its own committed transaction: already durable.
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.fs.statfs() {
            Ok(s) => {
                let bs = s.block_size as u32;
                let ffree = u64::MAX >> 8;
                reply.statfs(
                    s.blocks,
                    s.blocks_free,
                    s.blocks_avail,
                    s.files,
                    ffree,
                    bs,
                    s.name_max as u32,
                    bs,
                )
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            let path = self.path(ino)?;
            let f = XattrFlags {
                create: flags & libc::XATTR_CREATE != 0,
                replace: flags & libc::XATTR_REPLACE != 0,
            };
            self.fs.set_xattr(&path, name_str(name)?, value, f)
        })();
        done(r, reply);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let r = self
            .path(ino)
            .and_then(|p| self.fs.get_xattr(&p, name_str(name)?));
        match r {
            Ok(v) => Self::xattr_reply(v, size, reply),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.path(ino).and_then(|p| self.fs.list_xattr(&p)) {
            Ok(names) => {
                let mut data = Vec::new();
                for n in names {
                    data.extend_from_slice(n.as_bytes());
                    data.push(0);
                }
                Self::xattr_reply(data, size, reply)
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self
            .path(ino)
            .and_then(|p| self.fs.remove_xattr(&p, name_str(name)?));
        done(r, reply);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // default_permissions: the kernel checks modes itself.
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            let o = self.handle(fh)?;
            let m = falloc_mode(mode)?;
            self.ctx(|c| o.file.fallocate(c, m, offset, length))
        })();
        done(r, reply);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let r = (|| {
            let o = self.handle(fh)?;
            let pos =
                u64::try_from(offset).map_err(|_| Error::Invalid("negative offset".into()))?;
            let size = o.file.size()?;
            if pos >= size {
                return Err(Error::Io("ENXIO".into()));
            }
            let found = match whence {
                libc::SEEK_DATA => self.ctx(|c| o.file.seek_data(c, pos))?,
                libc::SEEK_HOLE => Some(self.ctx(|c| o.file.seek_hole(c, pos))?.unwrap_or(size)),
                _ => return Err(Error::Invalid(format!("whence {whence}"))),
            };
            found
                .map(|p| p.min(size) as i64)
                .ok_or_else(|| Error::Io("ENXIO".into()))
        })();
        match r {
            Ok(p) => reply.offset(p),
            Err(Error::Io(m)) if m == "ENXIO" => reply.error(Errno::from_i32(libc::ENXIO)),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
