//! The FUSE operations: each calls fs-core's inode API on this thread's context and
//! replies. FUSE addresses files by inode number and so does fs-core (`*_at`, `*_ino`): no
//! path is ever built here, so an operation acts on exactly the inode the kernel named
//! (a symlink itself, an open file that was unlinked or renamed over).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fs_core::{
    Context, Error, FallocMode, File, Filesystem, NewNode, OpenFlags, RenameFlags, Result, SetAttr,
    Stat, XattrFlags,
};
use fuser::{
    AccessFlags, Errno, FileHandle, FopenFlags, Generation, INodeNo, IoctlFlags, KernelConfig,
    LockOwner, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyIoctl, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};

use super::attr::{errno, file_attr, kind, ns_of, TTL};
use super::handles::{Handles, Open};
use super::inodes::{to_fs, to_fuse, FUSE_ROOT};
use super::options::CloseSync;

/// Offsets 1 and 2 of a directory stream are `.` and `..`; fs-core cookies follow, shifted.
const DOT_ENTRIES: u64 = 2;

/// A direct request must be aligned to this (a multiple of every device sector size).
const DIRECT_ALIGN: u64 = 4096;

pub(crate) struct Fuse {
    fs: Arc<Filesystem>,
    id: u64,
    handles: Handles,
    block_size: u32,
    /// When a close(2) or rename makes data durable (`CloseSync`).
    close_sync: CloseSync,
    /// Inodes truncated to 0 from a non-empty size, until a handle that wrote them closes
    /// (ext4's `auto_da_alloc` pattern: a file being replaced by rewriting it).
    truncated: Mutex<HashSet<u64>>,
}

fn ino_of(ino: INodeNo) -> u64 {
    to_fs(ino.0)
}

fn open_flags(flags: i32) -> OpenFlags {
    let acc = flags & libc::O_ACCMODE;
    OpenFlags {
        read: acc != libc::O_WRONLY,
        write: acc != libc::O_RDONLY,
        direct: flags & libc::O_DIRECT != 0,
        append: flags & libc::O_APPEND != 0,
        truncate: flags & libc::O_TRUNC != 0,
        sync: flags & libc::O_SYNC == libc::O_SYNC,
        dsync: flags & libc::O_DSYNC != 0,
        ..OpenFlags::default()
    }
}

fn fopen_flags(direct: bool) -> FopenFlags {
    if direct {
        FopenFlags::FOPEN_DIRECT_IO
    } else {
        FopenFlags::empty()
    }
}

impl Fuse {
    pub fn new(fs: Arc<Filesystem>, id: u64, close_sync: CloseSync) -> Fuse {
        let block_size = fs.statfs().map_or(4096, |s| s.block_size as u32);
        Fuse {
            fs,
            id,
            handles: Handles::default(),
            block_size,
            close_sync,
            truncated: Mutex::default(),
        }
    }

    fn truncated(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.truncated.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before a rename replaces `dname` of `ddir` with `sname` of `sdir`: the source's data
    /// is made durable first (`auto_da_alloc`), so a crash never leaves the replaced name
    /// pointing at a file whose data was lost, the old contents gone with it. Says whether
    /// it did: the rename is then made durable too (the pattern's promise: after a crash,
    /// the new contents), since a rename is otherwise durable only at the next commit.
    fn sync_before_replace(
        &self,
        sdir: u64,
        sname: &[u8],
        ddir: u64,
        dname: &[u8],
    ) -> Result<bool> {
        if self.close_sync == CloseSync::Never || self.fs.lookup_at(ddir, dname).is_err() {
            return Ok(false);
        }
        let src = self.fs.lookup_at(sdir, sname)?;
        if self.fs.stat_ino(src)?.file_type != fs_core::FileType::File {
            return Ok(false);
        }
        self.ctx(|c| {
            self.fs
                .open_ino(c, src, OpenFlags::read_only())?
                .fdatasync(c)
        })?;
        Ok(true)
    }

    fn ctx<T>(&self, f: impl FnOnce(&Context) -> Result<T>) -> Result<T> {
        super::ctx::with_ctx(self.id, &self.fs, f)
    }

    fn reply_entry(&self, r: Result<Stat>, reply: ReplyEntry) {
        match r {
            Ok(st) => reply.entry(&TTL, &file_attr(&st, self.block_size), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn reply_attr(&self, r: Result<Stat>, reply: ReplyAttr) {
        match r {
            Ok(st) => reply.attr(&TTL, &file_attr(&st, self.block_size)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    /// A new node of `mode` in `parent`, owned by the caller.
    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> Result<Stat> {
        let node = NewNode {
            mode,
            uid: req.uid(),
            gid: req.gid(),
            rdev: u64::from(rdev),
        };
        self.fs.mknod_at(ino_of(parent), name.as_bytes(), &node)
    }

    /// Opens inode `ino`: for `O_DIRECT` with a buffered twin that serves requests not
    /// aligned for the direct path (the kernel passes the caller's offsets through).
    fn open_ino(&self, ino: u64, flags: i32) -> Result<(u64, bool)> {
        let of = open_flags(flags);
        let (file, buffered) = self.ctx(|c| {
            let file = self.fs.open_ino(c, ino, of)?;
            let buffered = if of.direct {
                let bf = OpenFlags {
                    direct: false,
                    truncate: false,
                    ..of
                };
                Some(self.fs.open_ino(c, ino, bf)?)
            } else {
                None
            };
            Ok((file, buffered))
        })?;
        let fh = self.handles.insert(Open::new(file, buffered));
        Ok((fh, of.direct))
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

    fn readdir_into(&self, ino: INodeNo, offset: u64, reply: &mut ReplyDirectory) -> Result<()> {
        let dir = ino_of(ino);
        let mut off = offset;
        if off == 0 {
            if reply.add(ino, 1, fuser::FileType::Directory, ".") {
                return Ok(());
            }
            off = 1;
        }
        if off == 1 {
            // A removed directory (someone's cwd) has no parent left: itself, as Linux says.
            let parent = self.fs.lookup_at(dir, b"..").unwrap_or(dir);
            if reply.add(
                INodeNo(to_fuse(parent)),
                2,
                fuser::FileType::Directory,
                "..",
            ) {
                return Ok(());
            }
            off = 2;
        }
        let mut cookie = off - DOT_ENTRIES;
        loop {
            let batch = self.fs.readdir_ino(dir, cookie, 128)?;
            if batch.is_empty() {
                return Ok(());
            }
            for e in batch {
                let full = reply.add(
                    INodeNo(to_fuse(e.ino)),
                    e.next_cookie + DOT_ENTRIES,
                    kind(e.file_type),
                    OsStr::from_bytes(&e.name),
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
        let r = self
            .fs
            .lookup_at(ino_of(parent), name.as_bytes())
            .and_then(|ino| self.fs.stat_ino(ino));
        self.reply_entry(r, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.reply_attr(self.fs.stat_ino(ino_of(ino)), reply);
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
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut a = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime_ns: to_ns(atime),
            mtime_ns: to_ns(mtime),
            ctime_ns: ctime.map(ns_of),
        };
        if a.is_empty() {
            // What `chown(f, -1, -1)` arrives as: Linux filesystems mark ctime (as tmpfs,
            // ext4 and pjdfstest's Linux expectations do).
            a.ctime_ns = Some(ns_of(SystemTime::now()));
        }
        // The inode the kernel names, open or not, linked or not: never a path.
        let was = a
            .size
            .filter(|&s| s == 0)
            .and_then(|_| self.fs.stat_ino(ino_of(ino)).ok());
        let r = self.ctx(|c| self.fs.set_attr_ino(c, ino_of(ino), &a));
        if r.is_ok() && was.is_some_and(|st| st.size > 0) && self.close_sync != CloseSync::Never {
            self.truncated().insert(ino_of(ino));
        }
        self.reply_attr(r, reply);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink_ino(ino_of(ino)) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let mode = (mode & libc::S_IFMT) | (mode & !umask & 0o7777);
        self.reply_entry(self.make(req, parent, name, mode, rdev), reply);
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
        let mode = libc::S_IFDIR | (mode & !umask & 0o7777);
        self.reply_entry(self.make(req, parent, name, mode, 0), reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(self.fs.unlink_at(ino_of(parent), name.as_bytes()), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(self.fs.rmdir_at(ino_of(parent), name.as_bytes()), reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.fs.symlink_at(
            ino_of(parent),
            link_name.as_bytes(),
            target.as_os_str().as_bytes(),
            req.uid(),
            req.gid(),
        );
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
        let r = if flags.contains(fuser::RenameFlags::RENAME_WHITEOUT) {
            Err(Error::Unsupported("rename with RENAME_WHITEOUT".into()))
        } else {
            let f = RenameFlags {
                noreplace: flags.contains(fuser::RenameFlags::RENAME_NOREPLACE),
                exchange: flags.contains(fuser::RenameFlags::RENAME_EXCHANGE),
            };
            let (sdir, ddir) = (ino_of(parent), ino_of(newparent));
            let mut replacing = false;
            if !f.noreplace && !f.exchange {
                // A failure here fails the rename: better than a replace that may lose both.
                match self.sync_before_replace(sdir, name.as_bytes(), ddir, newname.as_bytes()) {
                    Ok(r) => replacing = r,
                    Err(e) => return done(Err(e), reply),
                }
            }
            self.fs
                .rename_at(sdir, name.as_bytes(), ddir, newname.as_bytes(), f)
                .and_then(|()| match replacing {
                    true => self.fs.fsync_dir_ino(ddir),
                    false => Ok(()),
                })
        };
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
        let r = self
            .fs
            .link_at(ino_of(ino), ino_of(newparent), newname.as_bytes());
        self.reply_entry(r, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: fuser::OpenFlags, reply: ReplyOpen) {
        match self.open_ino(ino_of(ino), flags.0) {
            Ok((fh, direct)) => reply.opened(FileHandle(fh), fopen_flags(direct)),
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
            let perm = mode & !umask & 0o7777;
            let ino = match self.make(req, parent, name, libc::S_IFREG | perm, 0) {
                Ok(st) => st.ino,
                // Made by someone else since the kernel's lookup: open it, as open(2) would.
                Err(Error::Exists(_)) if flags & libc::O_EXCL == 0 => {
                    self.fs.lookup_at(ino_of(parent), name.as_bytes())?
                }
                Err(e) => return Err(e),
            };
            let opened = self.open_ino(ino, flags)?;
            Ok((opened, self.fs.stat_ino(ino)?))
        })();
        match r {
            Ok(((fh, direct), st)) => {
                let a = file_attr(&st, self.block_size);
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), fopen_flags(direct))
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
            o.wrote.store(true, Ordering::Relaxed);
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
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Every close(2) comes here, and its error reaches the caller. A handle that wrote
        // is fdatasync'd when `close_sync` says so: always (`sync_on_close`), or when it
        // rewrote a file truncated from a non-empty size (`auto_da_alloc`, the default,
        // as ext4: the old contents are gone, the new ones must not wait for a commit).
        let r = match self.handle(fh) {
            Ok(o) if o.wrote.load(Ordering::Relaxed) => {
                let replacing = self.truncated().contains(&ino_of(ino));
                let sync = match self.close_sync {
                    CloseSync::Always => true,
                    CloseSync::Replace => replacing,
                    CloseSync::Never => false,
                };
                if sync {
                    o.wrote.store(false, Ordering::Relaxed);
                    self.truncated().remove(&ino_of(ino));
                    self.ctx(|c| o.file.fdatasync(c))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        };
        done(r, reply);
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
            o.wrote.store(false, Ordering::Relaxed);
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
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Namespace changes are durable at the next commit: an fsync of a directory makes
        // its entries durable (a commit when any is pending). The kernel does not forward
        // syncfs(2) to FUSE, so an fsync of the mount's root directory (`sync MOUNTPOINT`)
        // stands for it: everything is written back and committed.
        let r = if ino.0 == FUSE_ROOT {
            self.ctx(|c| self.fs.sync(c))
        } else {
            self.fs.fsync_dir_ino(ino_of(ino))
        };
        done(r, reply);
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
        let f = XattrFlags {
            create: flags & libc::XATTR_CREATE != 0,
            replace: flags & libc::XATTR_REPLACE != 0,
        };
        let r = self
            .fs
            .set_xattr_ino(ino_of(ino), name.as_bytes(), value, f);
        done(r, reply);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.fs.get_xattr_ino(ino_of(ino), name.as_bytes()) {
            Ok(v) => Self::xattr_reply(v, size, reply),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.fs.list_xattr_ino(ino_of(ino)) {
            Ok(names) => {
                let mut data = Vec::new();
                for n in names {
                    data.extend_from_slice(&n);
                    data.push(0);
                }
                Self::xattr_reply(data, size, reply)
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(
            self.fs.remove_xattr_ino(ino_of(ino), name.as_bytes()),
            reply,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // default_permissions: the kernel checks modes itself.
        reply.ok();
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        // No ioctl of any filesystem (FS_IOC_GETFLAGS, FICLONE, …) is implemented: the
        // answer a tool expects for that, quietly.
        reply.error(Errno::from_i32(libc::ENOTTY));
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: fuser::CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        // No shared-extent copy yet. ENOSYS makes the kernel copy through read and write
        // itself and stop asking this mount; `cp` within the mount takes this path.
        reply.error(Errno::ENOSYS);
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: fuser::PollNotifier,
        _events: fuser::PollEvents,
        _flags: fuser::PollFlags,
        reply: fuser::ReplyPoll,
    ) {
        // A file here is always ready, as on a kernel filesystem: ENOSYS makes the kernel
        // answer so itself from now on.
        reply.error(Errno::ENOSYS);
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
                return Ok(None);
            }
            let found = match whence {
                libc::SEEK_DATA => self.ctx(|c| o.file.seek_data(c, pos))?,
                libc::SEEK_HOLE => Some(self.ctx(|c| o.file.seek_hole(c, pos))?.unwrap_or(size)),
                _ => return Err(Error::Invalid(format!("whence {whence}"))),
            };
            Ok(found.map(|p| p.min(size) as i64))
        })();
        match r {
            Ok(Some(p)) => reply.offset(p),
            Ok(None) => reply.error(Errno::from_i32(libc::ENXIO)),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
