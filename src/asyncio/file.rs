//! [`AsyncFile`]: an open regular file of an [`AsyncFs`](super::AsyncFs).

use std::sync::Arc;

use bdev::DmaBuf;
use fs_core::{Context, FallocMode, File, OpenFlags, Result, Stat};

use super::reply::{pair, Pending, Reply};
use super::worker::{Job, Lanes, LocalTask};

/// An open regular file whose reads, writes, syncs, space and seek calls return futures
/// ([`Pending`]).
/// `Send + Sync`: share it between tasks (behind an `Arc`) or move it.
///
/// Each request owns its buffer until it completes: the DMA forms move a [`DmaBuf`] in and
/// give it back (zero-copy on a `direct` file), the others copy into one. Requests in flight
/// at once run in any order, as on any filesystem: await a write before the fsync meant to
/// cover it. `sync`/`dsync` files make each write durable before it answers.
///
/// Dropping it closes the file on a polling thread (closing the last handle of an unlinked
/// file deletes it, which is I/O) once the requests already sent are done with it.
pub struct AsyncFile {
    /// `None` only inside `drop`.
    file: Option<Arc<File>>,
    lanes: Arc<Lanes>,
    flags: OpenFlags,
    ino: u64,
}

impl AsyncFile {
    pub(super) fn new(file: File, lanes: Arc<Lanes>) -> Result<AsyncFile> {
        Ok(AsyncFile {
            flags: file.flags(),
            ino: file.ino(),
            file: Some(Arc::new(file)),
            lanes,
        })
    }

    fn file(&self) -> Arc<File> {
        match &self.file {
            Some(f) => Arc::clone(f),
            None => unreachable!("AsyncFile's file is taken only by its drop"),
        }
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The flags it was opened with.
    pub fn flags(&self) -> OpenFlags {
        self.flags
    }

    /// The current size, cached writes included (from memory: no request to a thread).
    pub fn size(&self) -> Result<u64> {
        self.file().size()
    }

    /// A DMA buffer of `len` bytes for [`AsyncFile::read_dma`] and [`AsyncFile::write_dma`]
    /// (from the device's pool: hugepage memory on SPDK), made on the calling thread.
    pub fn alloc_buf(&self, len: usize) -> Result<DmaBuf> {
        self.file().alloc_buf(len)
    }

    /// Runs a synchronous call of the file on a polling thread.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&File, &Context) -> Result<T> + Send + 'static,
    ) -> Pending<T> {
        let (reply, pending) = pair();
        let file = self.file();
        let job = move |_: &fs_core::Filesystem, ctx: &Context| reply.send(f(&file, ctx));
        self.lanes.send(Job::Call(Box::new(job)));
        pending
    }

    /// Reads at `pos` into `buf` (its whole length); answers with the buffer and the bytes
    /// read (short at the end of the file). On a `direct` file the device writes into `buf`
    /// itself; `pos` and the length are then aligned to the device sector. On an error the
    /// buffer is freed.
    pub fn read_dma(&self, pos: u64, buf: DmaBuf) -> Pending<(DmaBuf, usize)> {
        let (reply, pending) = pair();
        let file = self.file();
        self.spawn(reply, move |ctx| async move {
            let (buf, r) = file.read_at_async(&ctx, pos, buf).await;
            r.map(|n| (buf, n))
        });
        pending
    }

    /// Writes all of `buf` at `pos` (at the end with `append`); answers with the buffer and
    /// the bytes written. On a `direct` file the device reads `buf` itself (checksummed from
    /// it); `pos` and the length are then aligned to the device sector. On an error the
    /// buffer is freed.
    pub fn write_dma(&self, pos: u64, buf: DmaBuf) -> Pending<(DmaBuf, usize)> {
        if self.flags.sync || self.flags.dsync {
            return self.call(move |file, ctx| {
                let (buf, r) = ctx.block_on(file.write_at_async(ctx, pos, buf));
                let n = r?;
                durable_after_write(file, ctx)?;
                Ok((buf, n))
            });
        }
        let (reply, pending) = pair();
        let file = self.file();
        self.spawn(reply, move |ctx| async move {
            let (buf, r) = file.write_at_async(&ctx, pos, buf).await;
            r.map(|n| (buf, n))
        });
        pending
    }

    /// Reads up to `len` bytes at `pos` into a new vector (short at the end of the file):
    /// the data is copied once, from a DMA buffer, on the polling thread.
    pub fn read(&self, pos: u64, len: usize) -> Pending<Vec<u8>> {
        if len == 0 {
            // No DMA buffer has 0 bytes; the synchronous call answers as natively.
            return self.call(move |file, ctx| file.read_at(ctx, pos, &mut []).map(|_| Vec::new()));
        }
        let (reply, pending) = pair();
        let file = self.file();
        self.spawn(reply, move |ctx| async move {
            let buf = file.alloc_buf(len)?;
            let (buf, r) = file.read_at_async(&ctx, pos, buf).await;
            let n = r?;
            Ok(buf[..n].to_vec())
        });
        pending
    }

    /// Writes `data` at `pos` (at the end with `append`); answers with the bytes written.
    /// `data` is copied into a DMA buffer before this returns, on the calling thread, so the
    /// caller keeps its slice.
    pub fn write(&self, pos: u64, data: &[u8]) -> Pending<usize> {
        if data.is_empty() {
            // No DMA buffer has 0 bytes; the synchronous call answers as natively.
            return self.call(move |file, ctx| file.write_at(ctx, pos, &[]));
        }
        let buf = match self.alloc_buf(data.len()) {
            Ok(mut buf) => {
                buf.copy_from_slice(data);
                buf
            }
            Err(e) => {
                let (reply, pending) = pair();
                reply.send(Err(e));
                return pending;
            }
        };
        if self.flags.sync || self.flags.dsync {
            return self.call(move |file, ctx| {
                let (_, r) = ctx.block_on(file.write_at_async(ctx, pos, buf));
                let n = r?;
                durable_after_write(file, ctx)?;
                Ok(n)
            });
        }
        let (reply, pending) = pair();
        let file = self.file();
        self.spawn(reply, move |ctx| async move {
            let (_, r) = file.write_at_async(&ctx, pos, buf).await;
            r
        });
        pending
    }

    /// Makes the file's data and metadata durable (see [`File::fsync`]).
    pub fn fsync(&self) -> Pending<()> {
        self.call(|file, ctx| file.fsync(ctx))
    }

    /// Makes the file's data and size durable, not its times (see [`File::fdatasync`]).
    pub fn fdatasync(&self) -> Pending<()> {
        self.call(|file, ctx| file.fdatasync(ctx))
    }

    /// Truncates or extends (with zeroes) to `size`; durable when it answers.
    pub fn set_len(&self, size: u64) -> Pending<()> {
        self.call(move |file, ctx| file.set_len(ctx, size))
    }

    /// Preallocates, punches or zeroes `[pos, pos + len)`; durable when it answers (see
    /// [`File::fallocate`]).
    pub fn fallocate(&self, mode: FallocMode, pos: u64, len: u64) -> Pending<()> {
        self.call(move |file, ctx| file.fallocate(ctx, mode, pos, len))
    }

    /// The first data byte at or after `pos` (`None`: only a hole follows).
    pub fn seek_data(&self, pos: u64) -> Pending<Option<u64>> {
        self.call(move |file, ctx| file.seek_data(ctx, pos))
    }

    /// The first hole byte at or after `pos`.
    pub fn seek_hole(&self, pos: u64) -> Pending<Option<u64>> {
        self.call(move |file, ctx| file.seek_hole(ctx, pos))
    }

    /// Attributes (the size includes cached writes).
    pub fn stat(&self) -> Pending<Stat> {
        self.call(|file, _| file.stat())
    }

    /// Sends a task made by `make` (on the polling thread, with its context) whose outcome
    /// answers `reply`.
    fn spawn<T, F, M>(&self, reply: Reply<T>, make: M)
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
        M: FnOnce(Context) -> F + Send + 'static,
    {
        let job = move |_: &fs_core::Filesystem, ctx: &Context| -> LocalTask {
            let fut = make(ctx.clone());
            Box::pin(async move { reply.send(fut.await) })
        };
        self.lanes.send(Job::Spawn(Box::new(job)));
    }
}

/// What `sync`/`dsync` ask after each write, as [`File::write_at`] does.
fn durable_after_write(file: &File, ctx: &Context) -> Result<()> {
    let flags = file.flags();
    if flags.sync {
        file.fsync(ctx)
    } else if flags.dsync {
        file.fdatasync(ctx)
    } else {
        Ok(())
    }
}

impl Drop for AsyncFile {
    fn drop(&mut self) {
        // Requests in flight hold the file too; whichever of them or this job lets it go
        // last closes it on a polling thread, where closing an unlinked file can do its I/O
        // on that thread's context.
        if let Some(file) = self.file.take() {
            self.lanes.send(Job::Call(Box::new(move |_, _| drop(file))));
        }
    }
}
