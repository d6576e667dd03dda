//! The state of a mounted filesystem that every layer above shares: [`Core`], made of
//! parts that each own their state and their lock (`lock.rs` orders them):
//! - the cow volume and the device (`store.rs`: transactions and snapshots of the fs tree;
//!   `engine.rs`: the thread's one I/O engine they use);
//! - the namespace changes not yet committed (`pending.rs`: group commit);
//! - the in-memory inodes with their cached-write bookkeeping (`inodes.rs`);
//! - the name and attribute caches of path resolution and stat (`lookups.rs`);
//! - space reservations and the room kept for metadata (`space.rs`);
//! - the fsync log's state (`log.rs`): its record format (`record.rs`), its overlay of
//!   logged mappings (`overlay.rs`) and what no durable record has yet (`unwritten.rs`);
//!   and the folder thread's signal (`folder.rs`).
//!
//! Nothing here commits: the one commit function is `durability::commit` (`Core::commit`),
//! which applies the pending namespace changes and folds the log's overlay into the
//! transaction it commits.
//!
//! Invariants:
//! - a cow transaction is never held across an `.await`: futures of one thread would
//!   deadlock on the single writer;
//! - the locks are taken in the order of `lock.rs` (checked in debug builds).

mod engine;
mod folder;
mod inodes;
mod lock;
mod log;
mod lookups;
mod overlay;
mod pending;
mod ranges;
mod record;
mod space;
mod store;
mod tree;
mod unwritten;

pub(crate) use engine::{new_exec, DEV};
pub(crate) use folder::FolderSignal;
pub(crate) use inodes::{InodeMem, InodeTable, SeenSizes};
pub(crate) use lock::Guard;
pub(crate) use log::{LogState, Logged, Record, Submit};
pub use lookups::DEFAULT_LOOKUP_CACHE_ENTRIES;
pub(crate) use lookups::{bucket_of, Attrs, Lookups, NameFills};
pub(crate) use overlay::{Blocks, Overlay, Pieces};
pub(crate) use pending::{inode_over, Layer, Ns, Pending};
pub use record::LOG_INO;
pub(crate) use record::{decode, Entry};
pub(crate) use space::{Space, SYNC_BATCH};
pub(crate) use store::{Rd, Tx};
pub(crate) use tree::{inode_key, load_inode, try_inode, Items, ItemsMut, FS_TREE};

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use bdev::{BlockDevice, IoQueue};
use cow::Volume;
use hashbrown::HashSet;

use crate::error::{Error, Result};
use lock::{Level, Ordered};

/// Ids of live mounts, so engines of unmounted filesystems are dropped (`engine.rs`).
static LIVE: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn live() -> MutexGuard<'static, Option<HashSet<u64>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_live(mount: u64) -> bool {
    live().as_ref().is_some_and(|l| l.contains(&mount))
}

/// [`Core::overlay_budget`]'s default (`MountOptions::overlay_bytes`).
pub(crate) const DEFAULT_OVERLAY_BUDGET: u64 = 64 << 20;

/// The shared state of a mounted filesystem.
pub(crate) struct Core {
    vol: Volume,
    dev: Arc<dyn BlockDevice>,
    id: u64,
    /// Filesystem block size (= cow sector size).
    bs: u64,
    next_ino: AtomicU64,
    inodes: InodeTable,
    /// Namespace changes waiting for the next commit.
    pending: Pending,
    /// Names and attributes as readers see them (`lookups.rs`).
    lookups: Lookups,
    space: Space,
    read_only: Option<String>,
    /// Every namespace operation durable on return (`MountOptions::dirsync`).
    dirsync: bool,
    /// The memory budget of the fsync log's overlay (`MountOptions::overlay_bytes`).
    overlay_budget: u64,
    /// The fsync log and the overlay of what it logged (see `log.rs`).
    log: Ordered<LogState>,
    /// The overlay's mapped pieces (live and frozen) as the last holder of `log` left
    /// them: stored under the lock by every guard as it is released ([`Core::nothing_logged`]).
    log_pieces: Arc<AtomicUsize>,
    /// Signalled when a background fold or a synced record ends (`Core::log_changed`).
    log_cv: Condvar,
    /// Wakes the background folder (see `durability/background.rs`).
    folder: FolderSignal,
    /// Folds the folder committed so far.
    background_folds: AtomicU64,
}

impl Core {
    pub fn new(vol: Volume, dev: Arc<dyn BlockDevice>, read_only: Option<String>) -> Core {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        live().get_or_insert_with(HashSet::new).insert(id);
        let bs = u64::from(vol.sectorsize());
        let space = Space::new(&vol, dev.geometry().size_bytes());
        let log_pieces = Arc::new(AtomicUsize::new(0));
        let published = Arc::clone(&log_pieces);
        let log = Ordered::with_release(
            Level::Log,
            LogState::default(),
            Box::new(move |l: &LogState| published.store(l.pieces(), Ordering::Release)),
        );
        Core {
            vol,
            dev,
            id,
            bs,
            next_ino: AtomicU64::new(crate::items::ROOT_INO + 1),
            inodes: InodeTable::new(),
            pending: Pending::default(),
            lookups: Lookups::new(lookups::DEFAULT_LOOKUP_CACHE_ENTRIES),
            space,
            read_only,
            dirsync: false,
            overlay_budget: DEFAULT_OVERLAY_BUDGET,
            log,
            log_pieces,
            log_cv: Condvar::new(),
            folder: FolderSignal::default(),
            background_folds: AtomicU64::new(0),
        }
    }

    /// The cow volume.
    pub fn vol(&self) -> &Volume {
        &self.vol
    }

    /// The device.
    pub fn dev(&self) -> &Arc<dyn BlockDevice> {
        &self.dev
    }

    /// The filesystem block size in bytes.
    pub fn bs(&self) -> u64 {
        self.bs
    }

    /// The in-memory inodes.
    pub fn inodes(&self) -> &InodeTable {
        &self.inodes
    }

    /// The namespace changes not yet committed.
    pub fn pending(&self) -> &Pending {
        &self.pending
    }

    /// The name and attribute caches.
    pub fn lookups(&self) -> &Lookups {
        &self.lookups
    }

    /// Caps the name and attribute caches at `entries` (before the core is shared).
    pub fn set_lookup_budget(&mut self, entries: usize) {
        self.lookups.set_budget(entries);
    }

    /// Runs namespace operation `f` on a view of the pending changes over the committed
    /// state; on success its changes join the pending ones (atomically for readers, the
    /// lookup caches' entries with them), and its number comes back with its value. Not
    /// durable yet: see `durability::group`.
    pub fn ns_apply<T>(&self, f: impl FnOnce(&mut Ns<'_>) -> Result<T>) -> Result<(T, u64)> {
        self.check_writable()?;
        let tx_ends = self.lookups.tx_ends();
        self.with_io(|io| {
            let mut ns = Ns::new(&self.pending, &self.vol, io);
            let v = f(&mut ns)?;
            let seq = ns.finish(|changes, base| self.lookups.published(changes, base, tx_ends));
            Ok((v, seq))
        })
    }

    /// Space accounting.
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// The folder thread's signal.
    pub fn folder(&self) -> &FolderSignal {
        &self.folder
    }

    /// Makes every namespace operation durable on return (before the core is shared).
    pub fn set_dirsync(&mut self, on: bool) {
        self.dirsync = on;
    }

    /// Whether every namespace operation is durable on return.
    pub fn dirsync(&self) -> bool {
        self.dirsync
    }

    /// Sets the overlay's memory budget (before the core is shared).
    pub fn set_overlay_budget(&mut self, bytes: u64) {
        self.overlay_budget = bytes;
    }

    /// The overlay's memory budget in bytes, live and frozen changes together.
    pub fn overlay_budget(&self) -> u64 {
        self.overlay_budget
    }

    /// Why the mount refuses changes, if it was mounted read-only.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// A fresh inode number.
    pub fn alloc_ino(&self) -> u64 {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }

    /// Inode numbers handed out so far start above `last` (at mount: the highest in use).
    pub fn inos_above(&self, last: u64) {
        self.next_ino.fetch_max(last + 1, Ordering::Relaxed);
    }

    /// The next inode number to hand out.
    pub fn next_ino(&self) -> u64 {
        self.next_ino.load(Ordering::Relaxed)
    }

    /// Folds the folder committed so far.
    pub fn background_folds(&self) -> u64 {
        self.background_folds.load(Ordering::Relaxed)
    }

    /// The state of `ino`, loaded from its item the first time.
    pub fn mem<T>(&self, ino: u64, f: impl FnOnce(&mut InodeMem) -> T) -> Result<T> {
        self.inodes
            .with(ino, || self.read(|rd| try_inode(rd, ino)), f)
    }

    /// Drops the in-memory state of a closed inode whose item says everything it knows, so
    /// memory stays bounded by the open and dirty files.
    pub fn evict_mem(&self, ino: u64) {
        // Both locks at once (log before inodes), so no fsync can log a size between the
        // two checks.
        let log = self.log();
        self.inodes.evict_if_idle(ino, log.has_attrs(ino));
    }

    /// Writes accepted so far no longer carry their own mtime: an explicit one replaced it.
    pub fn forget_write_time(&self, ino: u64) {
        self.inodes.with_loaded(ino, |m| m.mtime_dirty = None);
    }

    /// Reserves `bytes` of delalloc space, or fails with `NoSpace`.
    pub fn reserve(&self, bytes: u64) -> Result<()> {
        self.space.reserve(&self.vol, bytes)
    }

    /// Gives back `bytes` of delalloc space.
    pub fn release(&self, bytes: u64) {
        self.space.release(bytes)
    }

    /// See [`Space::fold_need`].
    pub fn fold_need(&self, delalloc_bytes: u64) -> u64 {
        self.space.fold_need(&self.vol, delalloc_bytes)
    }

    /// See [`Space::check_ns_room`].
    pub fn check_ns_room(&self) -> Result<()> {
        let pending = self.pending.current_items() as u64;
        self.space.check_ns_room(&self.vol, pending)
    }

    /// Makes `exec` (an fs-core `Context`'s executor, with the device attached as
    /// [`DEV`]) the engine this thread's metadata I/O for this mount goes through.
    pub fn adopt_engine(&self, exec: &bdev::exec::Context) {
        engine::adopt(self.id, exec, is_live);
    }

    /// Runs `f` with a queue of this thread's I/O engine for this filesystem: metadata
    /// requests share the device queue and executor of the thread's data I/O (`engine.rs`).
    pub fn with_io<T>(&self, f: impl FnOnce(&mut dyn IoQueue) -> Result<T>) -> Result<T> {
        engine::with_view(self.id, &*self.dev, is_live, |q, _| f(q))
    }

    /// Runs `f` on a snapshot of the last committed state with the pending namespace
    /// changes over it.
    pub fn read<T>(&self, f: impl FnOnce(&mut Rd<'_>) -> Result<T>) -> Result<T> {
        self.with_io(|io| {
            // The pending changes before the snapshot (see `pending.rs`).
            let layers = self.pending.layers();
            let r = self.vol.reader();
            let pending = layers.map(|l| pending::View::new(l, r.generation()));
            let mut rd = Rd { r, io, pending };
            f(&mut rd)
        })
    }

    /// [`Core::read`] for a caller that holds a pin of generation `pinned` (from
    /// `Volume::pin`) until `f` returns: the snapshot needs no registration of its own, and
    /// its lookups start at leaves this thread found before in the same generation (cow's
    /// `LeafCache`). It sees no pending namespace changes (`pending.rs`): it serves file
    /// extent and checksum lookups of regular files, items no namespace operation writes (a
    /// symlink's target, the inline extents a namespace operation writes, is read through
    /// `read`).
    pub fn read_pinned<T>(
        &self,
        pinned: u64,
        f: impl FnOnce(&mut Rd<'_>) -> Result<T>,
    ) -> Result<T> {
        engine::with_view(self.id, &*self.dev, is_live, |io, leaves| {
            let r = self.vol.pinned_reader(pinned, Some(leaves));
            let mut rd = Rd {
                r,
                io,
                pending: None,
            };
            f(&mut rd)
        })
    }

    pub fn check_writable(&self) -> Result<()> {
        if let Some(why) = &self.read_only {
            return Err(Error::ReadOnly(why.clone()));
        }
        if let Some(p) = self.vol.poisoned() {
            return Err(Error::ReadOnly(p));
        }
        Ok(())
    }

    /// The fsync log's state, locked.
    pub fn log(&self) -> Guard<'_, LogState> {
        self.log.lock()
    }

    /// Whether the overlay maps nothing, live or frozen, read without the log's lock: a
    /// mapping lookup (every direct read makes one) then goes straight to the trees. Safe
    /// because a commit or fold publishes its generation before the holder that empties
    /// the overlay releases the lock, which is when the count is stored (release order):
    /// a reader that loads 0 takes a snapshot at least that new. A write logged after the
    /// load is one concurrent with the read, which may see the older data (kept by its pin).
    pub fn nothing_logged(&self) -> bool {
        self.log_pieces.load(Ordering::Acquire) == 0
    }

    /// The log, once no background fold runs: what commits and writes of fsync records must
    /// hold (a record written during a fold would extend the generation the fold replaces).
    pub fn log_idle(&self) -> Guard<'_, LogState> {
        self.log_when(|l| l.folding())
    }

    /// The log once `wait` no longer holds (checked under the lock, woken by
    /// [`Core::log_changed`]).
    pub fn log_when(&self, wait: impl FnMut(&mut LogState) -> bool) -> Guard<'_, LogState> {
        self.log.lock_when(&self.log_cv, wait)
    }

    /// Something those waiting in [`Core::log_idle`] or [`Core::log_when`] wait for may
    /// have changed (a fold or a synced record ended).
    pub fn log_changed(&self) {
        self.log_cv.notify_all();
    }

    /// A background fold ended (`LogState::thaw`): wakes those waiting in
    /// [`Core::log_idle`].
    pub fn fold_ended(&self, committed: bool) {
        if committed {
            self.background_folds.fetch_add(1, Ordering::Relaxed);
        }
        self.log_changed();
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(l) = live().as_mut() {
            l.remove(&self.id);
        }
        engine::forget(self.id);
    }
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
