//! [`File`]: an open regular file: synchronous and asynchronous reads and writes, buffered
//! or direct, fsync, truncate, fallocate.

use bdev::DmaBuf;
use iomap::{Ino, IterFlags};

use crate::api::Context;
use crate::api::Filesystem;
use crate::error::{Error, Result};
use crate::io::FallocMode;
use crate::items::FileType;
use crate::namespace as ns;
use crate::types::Stat;

/// How to open a file (the `O_*` flags that matter here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Bypass the page cache (`O_DIRECT`): offsets and lengths aligned to the device
    /// sector. Durable after fsync, as buffered data (add `dsync` for durable writes).
    pub direct: bool,
    /// Every write goes to the end of the file (`O_APPEND`).
    pub append: bool,
    /// Create the file if it does not exist (`O_CREAT`).
    pub create: bool,
    /// With `create`: fail with `EEXIST` if it exists (`O_EXCL`).
    pub exclusive: bool,
    /// Truncate to 0 on open (`O_TRUNC`).
    pub truncate: bool,
    /// Every write is followed by an fsync (`O_SYNC`).
    pub sync: bool,
    /// Every write is followed by an fdatasync (`O_DSYNC`).
    pub dsync: bool,
}

impl OpenFlags {
    /// Read-only.
    pub fn read_only() -> OpenFlags {
        OpenFlags {
            read: true,
            ..OpenFlags::default()
        }
    }

    /// Read-write, created if missing.
    pub fn read_write_create() -> OpenFlags {
        OpenFlags {
            read: true,
            write: true,
            create: true,
            ..OpenFlags::default()
        }
    }
}

/// An open regular file. `Send + Sync`; every call takes the calling thread's [`Context`].
/// Dropping the last handle of an unlinked file deletes it.
pub struct File {
    fs: Filesystem,
    ino: u64,
    flags: OpenFlags,
}

impl Filesystem {
    /// Opens the regular file at `path` (a final symlink is followed); `perm` is used when
    /// it is created.
    pub fn open(&self, ctx: &Context, path: &str, flags: OpenFlags, perm: u32) -> Result<File> {
        let c = self.core();
        let ino = match c.resolve(path, true) {
            Ok(_) if flags.create && flags.exclusive => {
                return Err(Error::Exists(path.to_string()))
            }
            Ok(ino) => ino,
            Err(Error::NotFound(_)) if flags.create => match self.create(path, perm) {
                Ok(ino) => ino,
                // Created by someone else meanwhile.
                Err(Error::Exists(_)) if !flags.exclusive => c.resolve(path, true)?,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        self.open_ino(ctx, ino, flags).map_err(|e| match e {
            Error::IsDir(_) => Error::IsDir(format!("{path}: open a directory with readdir")),
            e => e,
        })
    }

    /// Opens regular file `ino` (`create` and `exclusive` mean nothing here).
    pub fn open_ino(&self, ctx: &Context, ino: u64, flags: OpenFlags) -> Result<File> {
        let c = self.core();
        let item = c.read(|rd| ns::load_inode(rd, ino))?;
        match FileType::of_mode(item.mode) {
            FileType::File => {}
            FileType::Dir => {
                return Err(Error::IsDir(format!(
                    "inode {ino}: open a directory with readdir"
                )))
            }
            t => {
                return Err(Error::Unsupported(format!(
                    "inode {ino} is a {t:?}: only regular files have data here"
                )))
            }
        }
        // As open(2): a read-only mount (or one that went read-only after an error)
        // refuses a handle that could write at open, not at its first write.
        if flags.write || flags.truncate || flags.append {
            c.check_writable()?;
        }
        c.mem(ino, |m| m.opens += 1)?;
        let file = File {
            fs: self.clone(),
            ino,
            flags,
        };
        if flags.truncate && flags.write {
            file.set_len(ctx, 0)?;
        }
        Ok(file)
    }
}

/// Truncates or extends `ino` to `size` and commits the size.
pub(crate) fn truncate_ino(fs: &Filesystem, ctx: &Context, ino: u64, size: u64) -> Result<()> {
    let c = fs.core();
    c.check_writable()?;
    if size > i64::MAX as u64 {
        return Err(Error::TooBig(format!("size {size}")));
    }
    let item = c.read(|rd| ns::load_inode(rd, ino))?;
    if FileType::of_mode(item.mode) != FileType::File {
        return Err(Error::IsDir(format!("inode {ino} is not a regular file")));
    }
    let io = &fs.inner.iomap;
    ctx.block_on(io.truncate(ctx.exec(), Ino(ino), size))?;
    // truncate(2) and O_TRUNC mark mtime and ctime, growing or shrinking (as Linux).
    let now = crate::state::now_ns();
    c.mem(ino, |m| m.mtime_dirty = Some(now))?;
    // The zeroed tail of the last block goes to the device before the size is durable.
    let bs = c.bs();
    let a = size / bs * bs;
    ctx.block_on(io.writeback_range(ctx.exec(), Ino(ino), a, a + bs))?;
    c.persist_inode(ino)
}

impl File {
    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The flags it was opened with.
    pub fn flags(&self) -> OpenFlags {
        self.flags
    }

    /// Attributes (the size includes cached writes).
    pub fn stat(&self) -> Result<Stat> {
        self.fs.stat_ino(self.ino)
    }

    /// The current size.
    pub fn size(&self) -> Result<u64> {
        self.fs.core().mem(self.ino, |m| m.size)
    }

    fn can_read(&self) -> Result<()> {
        if !self.flags.read {
            return Err(Error::BadHandle(format!(
                "inode {} not open for reading",
                self.ino
            )));
        }
        Ok(())
    }

    fn can_write(&self) -> Result<()> {
        if !self.flags.write {
            return Err(Error::BadHandle(format!(
                "inode {} not open for writing",
                self.ino
            )));
        }
        self.fs.core().check_writable()
    }

    /// Reads at `pos` into `dst`; returns the bytes read (short at the end of the file).
    pub fn read_at(&self, ctx: &Context, pos: u64, dst: &mut [u8]) -> Result<usize> {
        self.can_read()?;
        let io = &self.fs.inner.iomap;
        if self.flags.direct {
            return Ok(io.read_direct_sync(ctx.exec(), Ino(self.ino), pos, dst)?);
        }
        Ok(ctx.block_on(io.read(ctx.exec(), Ino(self.ino), pos, dst))?)
    }

    fn write_pos(&self, pos: u64) -> Result<u64> {
        if self.flags.append {
            return self.size();
        }
        Ok(pos)
    }

    /// Writes `src` at `pos` (at the end with `append`); returns the bytes written.
    /// `ENOSPC` comes from here, never from a later writeback.
    pub fn write_at(&self, ctx: &Context, pos: u64, src: &[u8]) -> Result<usize> {
        self.can_write()?;
        let pos = self.write_pos(pos)?;
        check_range(pos, src.len())?;
        let io = &self.fs.inner.iomap;
        let n = if self.flags.direct {
            io.write_direct_sync(ctx.exec(), Ino(self.ino), pos, src)?
        } else {
            ctx.block_on(io.write(ctx.exec(), Ino(self.ino), pos, src))?
        };
        self.touch(n);
        self.after_write(ctx)?;
        Ok(n)
    }

    /// A data write of `n` bytes marks mtime and ctime (written with the data's metadata).
    fn touch(&self, n: usize) {
        if n > 0 {
            let now = crate::state::now_ns();
            let _ = self.fs.core().mem(self.ino, |m| m.mtime_dirty = Some(now));
        }
    }

    fn after_write(&self, ctx: &Context) -> Result<()> {
        if self.flags.sync || self.flags.dsync {
            self.fsync(ctx)?;
        }
        Ok(())
    }

    /// Asynchronous read into an owned DMA buffer (`direct`: zero-copy); returns the buffer
    /// and the bytes read. Many of these futures may run at once on one context.
    pub async fn read_at_async(
        &self,
        ctx: &Context,
        pos: u64,
        mut buf: DmaBuf,
    ) -> (DmaBuf, Result<usize>) {
        if let Err(e) = self.can_read() {
            return (buf, Err(e));
        }
        let io = &self.fs.inner.iomap;
        if self.flags.direct {
            let (buf, r) = io
                .read_direct(ctx.exec(), Ino(self.ino), pos, buf, IterFlags::EMPTY)
                .await;
            return (buf, r.map_err(Error::from));
        }
        let r = io.read(ctx.exec(), Ino(self.ino), pos, &mut buf).await;
        (buf, r.map_err(Error::from))
    }

    /// Asynchronous write from an owned DMA buffer (`direct`: zero-copy, checksummed from
    /// the buffer itself); returns the buffer and the bytes written. `sync`/`dsync` are not
    /// applied here: call [`File::fsync`] when the batch is done.
    pub async fn write_at_async(
        &self,
        ctx: &Context,
        pos: u64,
        buf: DmaBuf,
    ) -> (DmaBuf, Result<usize>) {
        let pos = match self.can_write().and_then(|()| self.write_pos(pos)) {
            Ok(p) => p,
            Err(e) => return (buf, Err(e)),
        };
        if let Err(e) = check_range(pos, buf.len()) {
            return (buf, Err(e));
        }
        let io = &self.fs.inner.iomap;
        if self.flags.direct {
            let (buf, r) = io
                .write_direct(ctx.exec(), Ino(self.ino), pos, buf, IterFlags::EMPTY)
                .await;
            if let Ok(n) = r {
                self.touch(n);
            }
            return (buf, r.map_err(Error::from));
        }
        let r = io.write(ctx.exec(), Ino(self.ino), pos, &buf).await;
        if let Ok(n) = r {
            self.touch(n);
        }
        (buf, r.map_err(Error::from))
    }

    /// A DMA buffer of `len` bytes for the asynchronous forms.
    pub fn alloc_buf(&self, len: usize) -> Result<DmaBuf> {
        Ok(self.fs.inner.iomap.alloc_buf(len)?)
    }

    /// Makes the file's data and metadata durable.
    pub fn fsync(&self, ctx: &Context) -> Result<()> {
        crate::api::fsync_ino(&self.fs, ctx, self.ino, false)
    }

    /// Makes the file's data and the metadata needed to read it (its size) durable; not
    /// its times.
    pub fn fdatasync(&self, ctx: &Context) -> Result<()> {
        crate::api::fsync_ino(&self.fs, ctx, self.ino, true)
    }

    /// Truncates or extends (with zeroes) to `size`; durable on return.
    pub fn set_len(&self, ctx: &Context, size: u64) -> Result<()> {
        self.can_write()?;
        truncate_ino(&self.fs, ctx, self.ino, size)
    }

    /// Preallocates, punches or zeroes `[pos, pos + len)`; durable on return.
    pub fn fallocate(&self, ctx: &Context, mode: FallocMode, pos: u64, len: u64) -> Result<()> {
        self.can_write()?;
        if len == 0 {
            return Err(Error::Invalid("fallocate of 0 bytes".into()));
        }
        check_range(pos, len as usize)?;
        crate::io::fallocate_file(&self.fs.inner.iomap, ctx.exec(), self.ino, mode, pos, len)
    }

    /// The first data byte at or after `pos` (`None`: only a hole follows).
    pub fn seek_data(&self, ctx: &Context, pos: u64) -> Result<Option<u64>> {
        let io = &self.fs.inner.iomap;
        Ok(ctx.block_on(io.seek_data(ctx.exec(), Ino(self.ino), pos))?)
    }

    /// The first hole byte at or after `pos`.
    pub fn seek_hole(&self, ctx: &Context, pos: u64) -> Result<Option<u64>> {
        let io = &self.fs.inner.iomap;
        Ok(ctx.block_on(io.seek_hole(ctx.exec(), Ino(self.ino), pos))?)
    }
}

fn check_range(pos: u64, len: usize) -> Result<()> {
    match pos.checked_add(len as u64) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(Error::TooBig(format!("{len} bytes at {pos}"))),
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let c = self.fs.core();
        let last = c
            .mem(self.ino, |m| {
                m.opens = m.opens.saturating_sub(1);
                m.opens == 0
            })
            .unwrap_or(false);
        if !last {
            return;
        }
        // The last handle of an unlinked file: delete it now (its orphan item made sure a
        // crash would too).
        let orphan = c.read(|rd| ns::try_inode(rd, self.ino)).ok().flatten();
        if orphan.is_some_and(|i| i.nlink == 0) && c.check_writable().is_ok() {
            if let Err(e) = c.commit(|tx| ns::delete_inode(tx, self.ino)) {
                log::error!(
                    "fs-core: deleting unlinked inode {} at close: {e}",
                    self.ino
                );
            }
            self.fs.forget(self.ino);
            return;
        }
        c.evict_mem(self.ino);
    }
}
