//! [`AsyncFs`]: a mounted filesystem served by polling threads, for async callers.

use std::sync::{Arc, Weak};

use fs_core::{
    Context, DirEntryInfo, Error, Filesystem, OpenFlags, RenameFlags, Result, Stat, StatFs,
};

use super::file::AsyncFile;
use super::reply::{pair, Pending};
use super::worker::{Job, Lanes};

/// A handle on a mounted [`Filesystem`] whose calls return futures that any executor can
/// await ([`Pending`]). Cheap to clone; `Send + Sync`.
///
/// Its polling threads (see [`AsyncFs::start`]) each own a filesystem [`Context`] and run
/// the requests: reads and writes many at a time on each thread, the synchronous calls
/// (open, fsync, the namespace) one at a time on a thread while that thread's reads and
/// writes go on. Requests go to the threads in turn.
///
/// Dropping the last handle (this, its clones and every [`AsyncFile`] from it) waits for
/// the requests still running and ends the threads, so what was sent is done and the
/// threads' hold on the filesystem is gone when the drop returns.
#[derive(Clone)]
pub struct AsyncFs {
    fs: Filesystem,
    lanes: Arc<Lanes>,
}

const _: fn() = || {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<AsyncFs>();
    shareable::<AsyncFile>();
    shareable::<Pending<bdev::DmaBuf>>();
};

impl AsyncFs {
    /// Starts `threads` polling threads (`bypassfs-async-N`) serving `fs`. One thread keeps
    /// up to a device queue's depth of requests in flight (128); more threads spread the
    /// CPU work (page cache copies, checksums, B-tree lookups) over more cores.
    pub fn start(fs: &Filesystem, threads: usize) -> Result<AsyncFs> {
        Ok(AsyncFs {
            fs: fs.clone(),
            lanes: Arc::new(Lanes::start(fs, threads)?),
        })
    }

    /// The filesystem, for calls that need no I/O (or for native use on a thread's own
    /// [`Context`]).
    pub fn filesystem(&self) -> &Filesystem {
        &self.fs
    }

    /// How many polling threads serve this handle.
    pub fn threads(&self) -> usize {
        self.lanes.len()
    }

    /// Runs `f` on a polling thread with that thread's [`Context`], for any call of the
    /// synchronous API that this handle does not wrap. It blocks that thread while it runs
    /// (the thread's reads and writes in flight go on inside `f`'s own I/O waits), so keep
    /// it to one filesystem call, not a long computation.
    pub fn call<T, F>(&self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&Filesystem, &Context) -> Result<T> + Send + 'static,
    {
        let (reply, pending) = pair();
        self.lanes
            .send(Job::Call(Box::new(move |fs, ctx| reply.send(f(fs, ctx)))));
        pending
    }

    /// Opens the regular file at `path` (see [`Filesystem::open`]).
    pub fn open(&self, path: &str, flags: OpenFlags, perm: u32) -> Pending<AsyncFile> {
        let path = path.to_owned();
        let lanes = Arc::downgrade(&self.lanes);
        self.call(move |fs, ctx| {
            let file = fs.open(ctx, &path, flags, perm)?;
            AsyncFile::new(file, upgrade(&lanes)?)
        })
    }

    /// Opens regular file `ino` (see [`Filesystem::open_ino`]).
    pub fn open_ino(&self, ino: u64, flags: OpenFlags) -> Pending<AsyncFile> {
        let lanes = Arc::downgrade(&self.lanes);
        self.call(move |fs, ctx| {
            let file = fs.open_ino(ctx, ino, flags)?;
            AsyncFile::new(file, upgrade(&lanes)?)
        })
    }

    /// Creates a directory; returns its inode.
    pub fn mkdir(&self, path: &str, perm: u32) -> Pending<u64> {
        let path = path.to_owned();
        self.call(move |fs, _| fs.mkdir(&path, perm))
    }

    /// Removes a name of a file (the file goes when its last name and handle are gone).
    pub fn unlink(&self, path: &str) -> Pending<()> {
        let path = path.to_owned();
        self.call(move |fs, _| fs.unlink(&path))
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, path: &str) -> Pending<()> {
        let path = path.to_owned();
        self.call(move |fs, _| fs.rmdir(&path))
    }

    /// Renames `old` to `new` (see [`RenameFlags`] for no-replace and exchange).
    pub fn rename(&self, old: &str, new: &str, flags: RenameFlags) -> Pending<()> {
        let (old, new) = (old.to_owned(), new.to_owned());
        self.call(move |fs, _| fs.rename(&old, &new, flags))
    }

    /// Makes `path` a symlink to `target`; returns its inode.
    pub fn symlink(&self, target: &str, path: &str) -> Pending<u64> {
        let (target, path) = (target.to_owned(), path.to_owned());
        self.call(move |fs, _| fs.symlink(&target, &path))
    }

    /// The target of the symlink at `path`.
    pub fn readlink(&self, path: &str) -> Pending<String> {
        let path = path.to_owned();
        self.call(move |fs, _| fs.readlink(&path))
    }

    /// Gives the file at `old` the further name `new`.
    pub fn link(&self, old: &str, new: &str) -> Pending<()> {
        let (old, new) = (old.to_owned(), new.to_owned());
        self.call(move |fs, _| fs.link(&old, &new))
    }

    /// Attributes of what `path` names (see [`Filesystem::stat`]).
    pub fn stat(&self, path: &str) -> Pending<Stat> {
        let path = path.to_owned();
        self.call(move |fs, _| fs.stat(&path))
    }

    /// Up to `max` entries of the directory at `path` after `cookie` (0: from the start;
    /// then the last entry's cookie).
    pub fn readdir(&self, path: &str, cookie: u64, max: usize) -> Pending<Vec<DirEntryInfo>> {
        let path = path.to_owned();
        self.call(move |fs, _| fs.readdir(&path, cookie, max))
    }

    /// Space and name limits (from memory: no request to a thread).
    pub fn statfs(&self) -> Result<StatFs> {
        self.fs.statfs()
    }

    /// Writes back every file and commits: everything written before is durable.
    pub fn sync(&self) -> Pending<()> {
        self.call(|fs, ctx| fs.sync(ctx))
    }

    /// Unmounts (see [`Filesystem::unmount`]): everything durable and the mount's claim on
    /// the device released. Await the requests in flight first; drop the handles after.
    pub fn unmount(&self) -> Pending<()> {
        self.call(|fs, ctx| fs.clone().unmount(ctx))
    }
}

fn upgrade(lanes: &Weak<Lanes>) -> Result<Arc<Lanes>> {
    // The threads outlive every handle's request, so only a handle dropped during its own
    // open gets here.
    lanes
        .upgrade()
        .ok_or_else(|| Error::BadHandle("the async handle was dropped during open".into()))
}
