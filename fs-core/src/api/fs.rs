//! [`Filesystem`]: format, mount, unmount, statfs and the path-based namespace API.

use std::sync::Arc;
use std::time::Duration;

use bdev::BlockDevice;
use cow::{Direction, Key, TreeId, Volume};
use iomap::{Iomap, IomapConfig};

use crate::api::timer::{Clock, CommitTimer, SystemClock, Tick};
use crate::api::{Context, DEV};
use crate::error::{Error, Result};
use crate::io::DataOps;
use crate::items::{kind, mode, InodeFlags, ORPHAN_OBJECTID, ROOT_INO};
use crate::namespace as ns;
pub use crate::state::DEFAULT_LOOKUP_CACHE_ENTRIES;
use crate::state::{Core, Items, FS_TREE};
use crate::types::{Stat, StatFs};

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
    /// Mount read-write even if a damaged fsync-log record has valid records after it,
    /// dropping what it and they logged (replay keeps the records before it). Off by
    /// default: such a mount fails, naming the record (a read-only mount shows the records
    /// before it, and fsck reports the loss).
    pub accept_log_loss: bool,
    /// Mount read-write although the device says another host mounted it read-write and
    /// did not unmount (its mount claim, `cow::claim`): the caller vouches that the other
    /// host is down. Off by default: such a mount fails, naming the host.
    pub take_over: bool,
    /// Page cache budget in bytes (default 64 MiB). Cached pages and the recycled buffers
    /// of evicted ones stay within it, except that an operation under way may overshoot it
    /// by the pages of its current batch (a quarter of the budget, at most 1 MiB) when
    /// nothing clean is left to evict; an operation that needs room evicts clean pages,
    /// least recently used first, and writes dirty ones back when only dirty ones are left
    /// (`tests/page_budget.rs` holds it to that).
    pub cache_bytes: u64,
    /// Dirty bytes past which writers write back, until half of it is left (default
    /// 16 MiB). The kernel's equivalent is `vm.dirty_ratio` of available memory, gigabytes
    /// on most machines: raise both options for large buffered writes that are rewritten
    /// or fsynced later.
    pub dirty_bytes: u64,
    /// Metadata (B-tree node) cache budget in bytes of memory: the cached nodes as
    /// decoded (about 1.5 times their size on the device) plus the nodes a running commit
    /// changed, which cached ones make room for; those alone may exceed it until they are
    /// committed (`docs/decisions/memory-budgets.md`). A tree that does not fit is read from
    /// the device again and again, synchronously: size it to the metadata of the working set
    /// (about 3 leaves of 16 KiB per 180 separately written blocks of file data).
    pub metadata_cache_bytes: u64,
    /// Memory budget in bytes of the fsync log's overlay: the completed writes not yet
    /// folded into the B-trees (with their checksums, until a commit). A quarter of it asks
    /// the mount's folder thread for a fold; writers that outrun the folder are slowed, and
    /// wait once the live overlay holds half of it (the fold in progress holds at most the
    /// other half), so a stream of writes without fsync stays within it
    /// (`docs/decisions/memory-budgets.md`). Default 64 MiB.
    pub overlay_bytes: u64,
    /// Every namespace operation (create, mkdir, link, unlink, rename, set attributes,
    /// xattrs) durable when it returns, as Linux's `dirsync`. Off by default: an operation
    /// is atomic when it returns and durable at the next commit (an fsync of the file or
    /// directory it changed, `sync`, unmount; see the README's durability contract).
    pub dirsync: bool,
    /// Sync the filesystem this often when something is unsynced (dirty pages, unfolded
    /// log entries, pending namespace changes), from a thread of the mount
    /// (`bypassfs-commit`), so that nothing stays only in memory for longer when nobody
    /// calls fsync or sync. Default 30 s (btrfs's `commit=`); `None` or zero: never (only
    /// fsync, sync and unmount make things durable). Read-write mounts only.
    pub commit_interval: Option<Duration>,
    /// Entries of the name and attribute caches that answer path resolution and stat
    /// without reading the trees (a name about 100 bytes, an inode about 150); past it an
    /// eighth of them go. 0: no caching. Default [`DEFAULT_LOOKUP_CACHE_ENTRIES`]
    /// (`docs/decisions/name-cache.md`).
    pub lookup_cache_entries: usize,
    /// The clock of `commit_interval`: `None` is real time; a
    /// [`ManualClock`](crate::ManualClock) lets a test move time forward at will.
    pub clock: Option<Arc<dyn Clock>>,
    /// CPUs the mount's own threads run on: the folder (`bypassfs-fold`, which folds
    /// completed writes into the B-trees and commits) and the timed commit
    /// (`bypassfs-commit`). `None` (the default): wherever the scheduler puts them. An
    /// application that pins its I/O threads gives their cores here to keep the
    /// filesystem's background work on them too, as SPDK's core mask holds all of an
    /// application's pollers (`bfsperf -m` does). The mount fails if a CPU cannot be used.
    pub background_cpus: Option<Vec<usize>>,
    /// The folder thread's nice value, set when the process may (root, or
    /// `CAP_SYS_NICE` for a value below its own); otherwise it keeps the process's.
    /// Default [`DEFAULT_FOLDER_NICE`]: on CPUs it shares with writers, the folder gets the
    /// CPU it needs before them, as a fold poller on an SPDK reactor runs to the end of its
    /// work between I/O pollers (`docs/decisions/folder-priority.md`). `None`: unchanged.
    pub folder_nice: Option<i32>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            read_only: false,
            accept_volatile_cache: false,
            accept_log_loss: false,
            take_over: false,
            cache_bytes: 64 << 20,
            dirty_bytes: 16 << 20,
            metadata_cache_bytes: 256 << 20,
            overlay_bytes: crate::state::DEFAULT_OVERLAY_BUDGET,
            dirsync: false,
            commit_interval: Some(DEFAULT_COMMIT_INTERVAL),
            lookup_cache_entries: DEFAULT_LOOKUP_CACHE_ENTRIES,
            clock: None,
            background_cpus: None,
            folder_nice: Some(DEFAULT_FOLDER_NICE),
        }
    }
}

/// [`MountOptions::folder_nice`]'s default.
pub const DEFAULT_FOLDER_NICE: i32 = -7;

/// [`MountOptions::commit_interval`]'s default: btrfs's.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(30);

pub(crate) struct Inner {
    pub core: Arc<Core>,
    pub iomap: Iomap<DataOps>,
    /// Folds the fsync log's overlay in the background (read-write mounts with a log).
    _folder: Option<crate::durability::Folder>,
    /// A read-write mount's claim on the device, released by a clean unmount.
    claim: std::sync::Mutex<Option<cow::claim::Claim>>,
    /// The timed commit (`api/timer.rs`), taken and stopped by `unmount` before its sync.
    pub timer: std::sync::Mutex<Option<CommitTimer>>,
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
            rdev: 0,
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

    /// Mounts the filesystem on `dev`. A read-write mount starts one thread of its own,
    /// `bypassfs-fold`, which folds completed writes into the B-trees while writes go on
    /// (its metadata I/O uses its own device queue); it ends when the last clone of the
    /// returned `Filesystem` is dropped.
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
        // Before anything is written (replay, orphans): no second writer, even one a lock
        // on this host cannot see.
        let claim = if opts.read_only {
            cow::claim::check_read_only(&*dev, &mut *io, vol.fsid())?;
            None
        } else {
            let policy = if opts.take_over {
                cow::claim::ClaimPolicy::TakeOver
            } else {
                cow::claim::ClaimPolicy::Refuse
            };
            Some(cow::claim::claim(&*dev, &mut *io, vol.fsid(), policy)?)
        };
        vol.set_cache_bytes(opts.metadata_cache_bytes);
        drop(io);
        let read_only = opts.read_only.then(|| "mounted read-only".to_string());
        let mut core = Core::new(vol, Arc::clone(&dev), read_only);
        core.set_dirsync(opts.dirsync);
        core.set_overlay_budget(opts.overlay_bytes);
        core.set_lookup_budget(opts.lookup_cache_entries);
        let core = Arc::new(core);
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
        crate::durability::replay(&core, !opts.read_only, opts.accept_log_loss)?;
        // After replay: the log's records may have created inodes.
        let last = core.read(|rd| {
            let hi = Key::new(ORPHAN_OBJECTID - 1, u8::MAX, u64::MAX);
            let v = rd.range(Key::MIN, hi, Direction::Backward, 1)?;
            Ok(v.first().map_or(ROOT_INO, |(k, _)| k.objectid))
        })?;
        core.inos_above(last.max(ROOT_INO));
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
        let folder = match core.log().area() {
            Some(_) if !opts.read_only => Some(crate::durability::Folder::start(
                &core,
                opts.background_cpus.as_deref(),
                opts.folder_nice,
            )?),
            _ => None,
        };
        let inner = Arc::new(Inner {
            core,
            iomap,
            _folder: folder,
            claim: std::sync::Mutex::new(claim),
            timer: std::sync::Mutex::new(None),
        });
        let interval = opts.commit_interval.filter(|d| !d.is_zero());
        if let Some(every) = interval.filter(|_| !opts.read_only) {
            let clock = opts
                .clock
                .unwrap_or_else(|| Arc::new(SystemClock::default()));
            let weak = Arc::downgrade(&inner);
            let cpus = opts.background_cpus.as_deref();
            let timer = CommitTimer::start(every, clock, cpus, move || tick(weak))
                .map_err(|e| Error::Io(format!("starting the timed commit thread: {e}")))?;
            *inner.timer.lock().unwrap_or_else(|e| e.into_inner()) = Some(timer);
        }
        Ok(Filesystem { inner })
    }

    /// How many times the timed commit ([`MountOptions::commit_interval`]) found something
    /// unsynced and synced it.
    pub fn timed_commits(&self) -> u64 {
        let t = self.inner.timer.lock().unwrap_or_else(|e| e.into_inner());
        t.as_ref().map_or(0, CommitTimer::syncs)
    }

    /// Whether anything is only in memory: dirty pages, log entries not yet folded into
    /// the trees, namespace changes not yet committed, sizes or times not yet written.
    pub(crate) fn has_unsynced(&self) -> bool {
        let c = self.core();
        self.inner.iomap.cache().stats().dirty > 0
            || c.pending().is_active()
            || !c.log().is_clean()
            || !c
                .inodes()
                .select(|m| m.size_dirty || m.mtime_dirty.is_some())
                .is_empty()
    }

    /// The page cache's counters, in pages of [`Filesystem::page_size`] bytes (the budget,
    /// [`MountOptions::cache_bytes`], is `limit`).
    pub fn page_cache_stats(&self) -> iomap::cache::CacheStats {
        self.inner.iomap.cache().stats()
    }

    /// The page cache's page size in bytes.
    pub fn page_size(&self) -> u64 {
        self.inner.iomap.cache().page_size()
    }

    /// Drops the clean pages of the page cache (as Linux's `drop_caches`), so that reads
    /// go to the device again; dirty pages stay. Returns the pages dropped.
    pub fn drop_clean_pages(&self) -> usize {
        self.inner.iomap.cache().drop_clean()
    }

    /// A context for this thread: its device queue and executor.
    pub fn context(&self) -> Result<Context> {
        Context::new(self)
    }
}

impl Context {
    /// A fresh context for `fs` on this thread. It also becomes the thread's I/O engine for
    /// `fs`'s metadata (B-tree reads, commits, fsync records), so one thread's data and
    /// metadata requests share one device queue and one poll loop.
    pub fn new(fs: &Filesystem) -> Result<Context> {
        let exec = crate::state::new_exec(&**fs.core().dev())?;
        fs.core().adopt_engine(&exec);
        Ok(Context::on(exec))
    }
}

impl Filesystem {
    pub(crate) fn core(&self) -> &Core {
        &self.inner.core
    }

    /// Clears a read-write mount's claim on the device (the last step of a clean unmount:
    /// `api/sync.rs`).
    pub(crate) fn release_claim(&self) -> Result<()> {
        let claim = self
            .inner
            .claim
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(claim) = claim {
            let c = self.core();
            c.with_io(|io| Ok(claim.release(&**c.dev(), io)?))?;
        }
        Ok(())
    }

    /// Space and name limits.
    pub fn statfs(&self) -> Result<StatFs> {
        let c = self.core();
        let bs = c.bs();
        let total = c.dev().geometry().size_bytes() / bs;
        let free = c.vol().free_bytes();
        let reserved = c.space().reserved();
        Ok(StatFs {
            block_size: bs,
            blocks: total,
            blocks_free: free / bs,
            blocks_avail: free.saturating_sub(reserved + c.space().slack(c.vol())) / bs,
            name_max: crate::items::NAME_MAX as u64,
            files: c.next_ino() - ROOT_INO,
        })
    }

    /// Free bytes in whole B-tree-node-sized pieces: the space commits can still allocate
    /// nodes from (the rest of the free space may be in pieces too small for a node).
    pub fn node_free_bytes(&self) -> u64 {
        self.core().vol().node_slot_bytes()
    }

    /// The inode `path` names (absolute; symlinks followed except in the last component).
    pub fn lookup(&self, path: &str) -> Result<u64> {
        self.core().resolve(path, false)
    }

    /// The inode `path` names, a final symlink followed too (as `stat(2)` and `access(2)`
    /// resolve).
    pub fn lookup_follow(&self, path: &str) -> Result<u64> {
        self.core().resolve(path, true)
    }

    /// The directory that holds (or would hold) the last component of `path`, and that
    /// component: what the `*_at` calls take to create a name by path.
    pub fn lookup_parent<'p>(&self, path: &'p str) -> Result<(u64, &'p str)> {
        self.core().resolve_parent(path)
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
        let (item, mut blocks, mut seen) = self.stat_parts(ino, None)?;
        let whole = seen.size.div_ceil(c.bs()) * c.bs();
        if !item.is_dir() && blocks < whole {
            // Sparse, or data on its way from the cache to the fsync log's overlay to the
            // trees, which a count without the log's lock could miss entirely (0 blocks:
            // tar --sparse would archive zeroes). With the lock held nothing moves.
            let log = c.log();
            (_, blocks, seen) = self.stat_parts(ino, Some(&log))?;
        }
        let mut st = Stat::from_item(ino, &item, seen.size);
        // The last accepted write's time: later than the item's, or an explicit time set
        // since would have cleared it (`Core::forget_write_time`).
        if let Some(t) = seen.mtime {
            st.mtime_ns = t;
            st.ctime_ns = st.ctime_ns.max(t);
        }
        st.blocks = blocks.div_ceil(512);
        Ok(st)
    }

    /// The item of `ino`, the bytes its data takes (committed extents, cached writes and,
    /// given the log, the overlay's pieces) and what memory knows of it.
    fn stat_parts(
        &self,
        ino: u64,
        log: Option<&crate::state::LogState>,
    ) -> Result<(crate::items::InodeItem, u64, crate::state::SeenSizes)> {
        let c = self.core();
        loop {
            let seen = c.inodes().evictions();
            let (item, mut ranges) = match log {
                // From the attribute cache (read and cached on a miss).
                None => c.attrs(ino)?,
                Some(log) => {
                    let (item, mut ranges) = c.read(|rd| ns::attrs_in(rd, ino))?;
                    ranges.extend(log.mapped_ranges(ino, c.bs()));
                    (item, ranges)
                }
            };
            // Without committed extents the cached ranges are the whole union: their sum.
            let want = !ranges.is_empty();
            if let Some(s) = c.inodes().sizes_seen(ino, item.size, seen, c.bs(), want) {
                if !want {
                    return Ok((item, s.delalloc_bytes, s));
                }
                ranges.extend(s.delalloc.iter().copied());
                return Ok((item, crate::data::union_bytes(ranges), s));
            }
        }
    }

    /// How many times the mount's folder thread has folded the fsync log's overlay into the
    /// trees and committed (diagnostics: data writes hand this work to the folder once the
    /// overlay is large, see `docs/ARCHITECTURE.md`).
    pub fn background_folds(&self) -> u64 {
        self.core().background_folds()
    }

    /// Counters of the iomap layer (device requests issued by data I/O).
    pub fn io_counters(&self) -> &iomap::IoCounters {
        self.inner.iomap.counters()
    }

    /// What the memory that [`MountOptions`]' budgets bound holds now.
    pub fn memory_use(&self) -> MemoryUse {
        let (live, frozen) = self.core().log().mem_bytes();
        MemoryUse {
            metadata_cache_bytes: self.core().vol().cache_bytes(),
            overlay_bytes: live + frozen,
        }
    }
}

/// Memory a mount holds under its budgets ([`Filesystem::memory_use`]). Plain data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// The node cache's nodes (budget: [`MountOptions::metadata_cache_bytes`]; a running
    /// commit's changed nodes are not counted here).
    pub metadata_cache_bytes: u64,
    /// The fsync log's overlay, live and being folded ([`MountOptions::overlay_bytes`]).
    pub overlay_bytes: u64,
}

/// The timed commit's tick for the mount `inner`, which it holds only weakly: a sync on a
/// context of the timer's thread when anything is unsynced. The strong handle is dropped
/// before the tick returns, so the thread never keeps the mount alive between ticks.
fn tick(inner: std::sync::Weak<Inner>) -> impl FnMut() -> Tick {
    let mut ctx: Option<Context> = None;
    move || {
        let Some(inner) = inner.upgrade() else {
            return Tick::Gone;
        };
        let fs = Filesystem { inner };
        if !fs.has_unsynced() {
            return Tick::Idle;
        }
        Tick::Synced(match &ctx {
            Some(c) => fs.sync(c),
            None => fs.context().and_then(|c| fs.sync(ctx.insert(c))),
        })
    }
}
