//! `Core`: what every part of a mounted filesystem shares: the cow volume, the in-memory
//! inode state, space reservations and the per-thread metadata queues.
//!
//! Invariants:
//! - every namespace change is one cow transaction, committed before the call returns, so
//!   namespace operations are atomic and durable on return (no tree-log yet: see
//!   `durability/`);
//! - a cow transaction is never held across an `.await`: futures of one thread would
//!   deadlock on the single writer;
//! - `reserved` counts delalloc blocks (buffered data in the cache, space promised, not yet
//!   allocated); each also promises the metadata its writeback's fold will need
//!   (`fold_need`), so a write that returned Ok survives unmount on a full filesystem;
//! - data reservations and namespace operations that add items (`write_growing`) never dip
//!   into `slack`, the space kept for commits, so a full filesystem can still delete files
//!   and fold what it accepted.

use std::cell::RefCell;
use std::collections::BTreeMap;

use hashbrown::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use bdev::{BlockDevice, IoQueue};
use cow::{Direction, Key, ReadTxn, Transaction, TreeId, Volume};

use crate::error::{Error, Result};

/// The fs tree.
pub(crate) const FS_TREE: TreeId = TreeId::FS;

/// A set of disjoint half-open block ranges `start → end`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ranges(pub BTreeMap<u64, u64>);

impl Ranges {
    /// The range containing `b`.
    pub fn containing(&self, b: u64) -> Option<(u64, u64)> {
        self.0
            .range(..=b)
            .next_back()
            .map(|(&s, &e)| (s, e))
            .filter(|&(_, e)| e > b)
    }

    /// The first range starting after `b`.
    pub fn next_after(&self, b: u64) -> Option<u64> {
        self.0.range(b + 1..).next().map(|(&s, _)| s)
    }

    /// Removes `[a, b)`; returns how many blocks were in the set.
    pub fn remove(&mut self, a: u64, b: u64) -> u64 {
        let hit: Vec<(u64, u64)> = self
            .0
            .range(..b)
            .filter(|&(_, &e)| e > a)
            .map(|(&s, &e)| (s, e))
            .collect();
        let mut n = 0;
        for (s, e) in hit {
            self.0.remove(&s);
            n += e.min(b) - s.max(a);
            if s < a {
                self.0.insert(s, a);
            }
            if e > b {
                self.0.insert(b, e);
            }
        }
        n
    }

    /// Adds `[a, b)`; returns how many blocks are new.
    pub fn insert(&mut self, a: u64, b: u64) -> u64 {
        let had = self.remove(a, b);
        let (mut s, mut e) = (a, b);
        if let Some((ps, pe)) = self.0.range(..a).next_back().map(|(&s, &e)| (s, e)) {
            if pe == a {
                self.0.remove(&ps);
                s = ps;
            }
        }
        if let Some(ne) = self.0.get(&b).copied() {
            self.0.remove(&b);
            e = ne;
        }
        self.0.insert(s, e);
        (b - a) - had
    }
}

/// What is known of an open or recently used inode beyond its item.
#[derive(Clone, Debug, Default)]
pub(crate) struct InodeMem {
    /// The file size as the API sees it (ahead of the item while writes are cached).
    pub size: u64,
    /// `size` differs from the item's: fsync must write it.
    pub size_dirty: bool,
    /// Blocks written to the cache and not yet written back (space reserved).
    pub delalloc: Ranges,
    /// Open handles.
    pub opens: u32,
    /// The inode is NOCOW.
    pub nocow: bool,
    /// fsyncs running on the file: its writeback completions go to the fsync log.
    pub log_writeback: u32,
    /// The last data write (ns): mtime and ctime the item does not have yet.
    pub mtime_dirty: Option<i64>,
    /// Blocks reserved by buffered write steps between their `begin` and `end` (a count per
    /// block: steps of several threads may overlap). Another thread's writeback may take
    /// such a block as soon as its bytes are copied, before the step grows the file.
    pub writing: BTreeMap<u64, u32>,
    /// Blocks of `writing` that a writeback already made durable-able: their step's `end`
    /// must not mark them delalloc again (their page is clean).
    pub written_while_writing: HashSet<u64>,
    /// Direct writes (pieces) since the file's last fsync (`durability/synced.rs`).
    pub direct_writes: u32,
    /// The last fsyncs in a row that each followed exactly one direct write.
    pub sync_streak: u32,
}

impl InodeMem {
    /// One past the last block of `[b0, b1)` that a write step is filling, if any.
    pub fn writing_end(&self, b0: u64, b1: u64) -> Option<u64> {
        self.writing.range(b0..b1).next_back().map(|(&b, _)| b + 1)
    }
}

/// What [`Core::sizes_seen`] reports.
pub(crate) struct SeenSizes {
    pub size: u64,
    /// The time of the last write accepted and not yet in the item.
    pub mtime: Option<i64>,
    /// Byte ranges of cached writes not written back yet.
    pub delalloc: Vec<(u64, u64)>,
}

/// Metadata queues of this thread, one per mounted filesystem (by mount id).
type Queues = Vec<(u64, Box<dyn IoQueue>)>;

thread_local! {
    static QUEUES: RefCell<Queues> = const { RefCell::new(Vec::new()) };
}

/// Ids of live mounts, so queues of unmounted filesystems are dropped.
static LIVE: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn live() -> MutexGuard<'static, Option<HashSet<u64>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queue depth of a metadata queue (cow issues a commit's node writes at once).
const META_DEPTH: usize = 128;

/// The shared state of a mounted filesystem.
pub(crate) struct Core {
    pub vol: Volume,
    pub dev: Arc<dyn BlockDevice>,
    pub id: u64,
    /// Filesystem block size (= cow sector size).
    pub bs: u64,
    pub next_ino: AtomicU64,
    pub inodes: Mutex<HashMap<u64, InodeMem>>,
    /// Delalloc bytes promised.
    pub reserved: Mutex<u64>,
    /// Bytes data may never take (metadata room).
    pub slack: u64,
    pub read_only: Option<String>,
    /// The fsync log and the overlay of what it logged (see `durability/fslog.rs`).
    pub log: Mutex<crate::durability::LogState>,
    /// Signalled when a background fold ends (`LogState::folding` goes false).
    pub fold_done: Condvar,
    /// Wakes the background folder (see `durability/background.rs`).
    pub folder: crate::durability::FolderSignal,
    /// Folds the folder committed so far.
    pub background_folds: AtomicU64,
    /// Completions seen while throttling writers (`Core::throttle`).
    pub throttle_ticks: AtomicU64,
    /// Pieces in the overlay (`log.pending.len()`), readable without the log's lock: space
    /// checks run under `reserved`, which must not wait for the log.
    pub overlay_pieces: AtomicUsize,
    /// Generations pinned by mappings in use (`begin` to `end`), by `(ino, pos)`.
    pub pins: Mutex<HashMap<(u64, u64), Vec<u64>>>,
    /// Entries dropped from `inodes` so far (changed only under its lock): a thread that
    /// read an item without the lock uses it only if no entry went meanwhile.
    pub evictions: AtomicU64,
}

impl Core {
    pub fn new(vol: Volume, dev: Arc<dyn BlockDevice>, read_only: Option<String>) -> Core {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        live().get_or_insert_with(HashSet::new).insert(id);
        let bs = u64::from(vol.sectorsize());
        let total = dev.geometry().size_bytes();
        // Room for a few commits' worth of copied nodes at any fill level.
        let slack = (u64::from(vol.nodesize()) * 64).max(total / 50);
        Core {
            vol,
            dev,
            id,
            bs,
            next_ino: AtomicU64::new(crate::items::ROOT_INO + 1),
            inodes: Mutex::new(HashMap::new()),
            reserved: Mutex::new(0),
            slack,
            read_only,
            log: Mutex::new(crate::durability::LogState::default()),
            fold_done: Condvar::new(),
            folder: crate::durability::FolderSignal::default(),
            background_folds: AtomicU64::new(0),
            throttle_ticks: AtomicU64::new(0),
            overlay_pieces: AtomicUsize::new(0),
            pins: Mutex::new(HashMap::new()),
            evictions: AtomicU64::new(0),
        }
    }

    pub fn inodes(&self) -> MutexGuard<'_, HashMap<u64, InodeMem>> {
        self.inodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reserved(&self) -> MutexGuard<'_, u64> {
        self.reserved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` with this thread's metadata queue for this filesystem.
    pub fn with_io<T>(&self, f: impl FnOnce(&mut dyn IoQueue) -> Result<T>) -> Result<T> {
        let mine = QUEUES.with(|q| {
            let mut q = q.borrow_mut();
            if let Some(i) = q.iter().position(|(id, _)| *id == self.id) {
                return Some(q.swap_remove(i).1);
            }
            // About to make a queue: drop this thread's queues of unmounted filesystems.
            let live = live();
            q.retain(|(id, _)| live.as_ref().is_some_and(|l| l.contains(id)));
            None
        });
        let mut io = match mine {
            Some(io) => io,
            None => self.dev.queue(META_DEPTH)?,
        };
        let r = f(&mut *io);
        QUEUES.with(|q| {
            let mut q = q.borrow_mut();
            // A nested call made its own queue: keep one per filesystem.
            if !q.iter().any(|(id, _)| *id == self.id) {
                q.push((self.id, io));
            }
        });
        r
    }

    /// Drops the in-memory state of a closed inode whose item says everything it knows
    /// (nothing cached dirty, no size or logged size waiting), so memory stays bounded by
    /// the open and dirty files.
    pub fn evict_mem(&self, ino: u64) {
        // Both locks at once (log before inodes, the crate's order), so no fsync can log a
        // size between the two checks.
        let log = self.log();
        let logged = log.has_attrs(ino);
        let mut map = self.inodes();
        let idle = map.get(&ino).is_some_and(|m| {
            m.opens == 0
                && m.delalloc.0.is_empty()
                && m.writing.is_empty()
                && !m.size_dirty
                && m.mtime_dirty.is_none()
                && m.log_writeback == 0
        });
        if idle && !logged {
            map.remove(&ino);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops the in-memory state of a deleted inode; returns it.
    pub fn remove_mem(&self, ino: u64) -> Option<InodeMem> {
        let mut map = self.inodes();
        let gone = map.remove(&ino);
        self.evictions.fetch_add(1, Ordering::Relaxed);
        gone
    }

    /// The size, unwritten mtime and cached (delalloc) blocks of `ino` as the API sees
    /// them, given its item: what memory knows, else the item's. `None`: the item may
    /// predate the state of a concurrently evicted entry (read it again).
    pub fn sizes_seen(&self, ino: u64, item_size: u64, seen: u64) -> Option<SeenSizes> {
        let map = self.inodes();
        match map.get(&ino) {
            Some(m) => Some(SeenSizes {
                size: m.size,
                mtime: m.mtime_dirty,
                delalloc: (m.delalloc.0.iter())
                    .map(|(&s, &e)| (s * self.bs, e * self.bs))
                    .collect(),
            }),
            None if self.evictions.load(Ordering::Relaxed) == seen => Some(SeenSizes {
                size: item_size,
                mtime: None,
                delalloc: Vec::new(),
            }),
            None => None,
        }
    }

    /// Writes accepted so far no longer carry their own mtime: an explicit one replaced it.
    pub fn forget_write_time(&self, ino: u64) {
        if let Some(m) = self.inodes().get_mut(&ino) {
            m.mtime_dirty = None;
        }
    }

    /// Pins the committed generation for the mapping of `ino` at `pos` about to be used:
    /// extents freed later are not reused while the data I/O of the mapping may still read
    /// them.
    pub fn pin(&self, ino: u64, pos: u64) {
        let g = self.vol.pin();
        self.pins().entry((ino, pos)).or_default().push(g);
    }

    /// Ends one pin of the mapping of `ino` at `pos` (`end` does not know which generation
    /// its `begin` pinned). Pins of one key are taken in nondecreasing generation order, so
    /// releasing its newest keeps, for every mapping of that key still in use, a pin no
    /// newer than its own. Keying by mapping (not one multiset for the filesystem) is what
    /// lets old generations go while other I/O keeps running: releasing the newest pin of
    /// the whole filesystem kept the oldest alive for as long as any I/O was in flight,
    /// so freed extents never came back (ENOSPC under steady overwrites).
    pub fn unpin(&self, ino: u64, pos: u64) {
        let mut pins = self.pins();
        let Some(gens) = pins.get_mut(&(ino, pos)) else {
            return;
        };
        let g = gens.pop();
        if gens.is_empty() {
            pins.remove(&(ino, pos));
        }
        drop(pins);
        if let Some(g) = g {
            self.vol.unpin(g);
        }
    }

    fn pins(&self) -> MutexGuard<'_, HashMap<(u64, u64), Vec<u64>>> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
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

    pub fn log(&self) -> MutexGuard<'_, crate::durability::LogState> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log, once no background fold runs: what commits and writes of fsync records must
    /// hold (a record written during a fold would extend the generation the fold replaces).
    pub fn log_idle(&self) -> MutexGuard<'_, crate::durability::LogState> {
        let log = self.log();
        self.fold_done
            .wait_while(log, |l| l.folding)
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one transaction and commits it (durable on return). Everything the fsync
    /// log holds is folded into the same transaction first, and the log restarts after it.
    pub fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        let mut log = self.log_idle();
        let r = self.with_io(|io| {
            let tx = self.vol.begin()?;
            let mut t = Tx { tx, io };
            if !log.is_clean() {
                crate::durability::fold(&mut t, &log, self.bs)?;
            }
            let v = f(&mut t)?;
            let Tx { tx, io } = t;
            let generation = tx.commit(io)?;
            Ok((v, generation))
        });
        match r {
            Ok((v, generation)) => {
                log.restart(generation);
                self.overlay_pieces.store(0, Ordering::Relaxed);
                Ok(v)
            }
            // The aborted transaction handed the logged extents back to their reservation:
            // the overlay still owns them.
            Err(e) => Err(e),
        }
    }

    /// Runs `f` on a snapshot of the last committed state.
    pub fn read<T>(&self, f: impl FnOnce(&mut Rd<'_>) -> Result<T>) -> Result<T> {
        self.with_io(|io| {
            let r = self.vol.reader();
            let mut rd = Rd { r, io };
            f(&mut rd)
        })
    }

    /// Bytes data may still take: free space minus delalloc promises minus metadata room
    /// (`slack`, and what folding the overlay and the delalloc blocks will need).
    pub fn data_room(&self, reserved: u64) -> u64 {
        self.vol
            .free_bytes()
            .saturating_sub(reserved)
            .saturating_sub(self.slack)
            .saturating_sub(self.fold_need(reserved))
    }

    /// Node space the fold of everything accepted and not yet folded may need: the
    /// overlay's pieces and `delalloc_bytes` of cached data (each block may become a piece
    /// of its own at writeback). Counting the delalloc blocks is what makes a buffered
    /// write that returned Ok foldable at unmount on a full filesystem: without them,
    /// creates and writes took the room the final commit needed, and the sync failed.
    ///
    /// A piece adds leaf items that stay (`PIECE_GROWTH`), and the commit copies the nodes
    /// it touches before the old ones are freed: a leaf of the fs tree, a leaf of the extent
    /// tree for its data extent and, on a fragmented filesystem, for each copied node's old
    /// and new address, with their parents (`COPY_NODES_PER_PIECE`). A fold copies each node
    /// at most once however many pieces it holds, and sync commits after every
    /// `SYNC_BATCH` pieces, so the copies are counted up to one batch (or twice the most
    /// any commit has written, or `slack`, if more).
    pub fn fold_need(&self, delalloc_bytes: u64) -> u64 {
        let pieces =
            self.overlay_pieces.load(Ordering::Relaxed) as u64 + delalloc_bytes.div_ceil(self.bs);
        let per_piece = COPY_NODES_PER_PIECE * u64::from(self.vol.nodesize());
        let cap = (2 * self.vol.peak_commit_bytes())
            .max(self.slack)
            .max(SYNC_BATCH as u64 * per_piece);
        (pieces * per_piece).min(cap) + pieces * PIECE_GROWTH
    }

    /// Checks that a namespace operation that adds items (create, mkdir, symlink, link)
    /// leaves what accepted writes and deletes need: the room for their commits
    /// (`fold_need`) and `slack`, which only deletes and folds may spend. Without it,
    /// creates on a full filesystem took the space promised to cached writes (lost at
    /// unmount) and the room unlink needs to commit.
    pub fn check_ns_room(&self) -> Result<()> {
        let r = self.reserved();
        let room = self.data_room(*r);
        let want = NS_GROWTH_NODES * u64::from(self.vol.nodesize());
        if room < want {
            return Err(Error::NoSpace(format!(
                "{want} bytes of metadata wanted, {room} available"
            )));
        }
        Ok(())
    }

    /// [`Core::write`] for a namespace operation that adds items: `ENOSPC` up front when
    /// it would eat into what accepted writes and deletes need (`check_ns_room`).
    pub fn write_growing<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        self.check_ns_room()?;
        self.write(f)
    }
}

/// Nodes a fold may copy per piece it holds (see `Core::fold_need`): a commit of 132
/// one-block pieces on a full 64 MiB filesystem with 4 KiB nodes copied about 8.6 per piece
/// (`tests/enospc.rs`), most of them extent-tree leaves.
const COPY_NODES_PER_PIECE: u64 = 12;

/// Written-back pieces after which `sync` commits before writing back more files, so each
/// of its commits stays within what `Core::fold_need` keeps for copied nodes.
pub(crate) const SYNC_BATCH: usize = 32;

/// Leaf bytes one folded piece may add for good: its file extent item (about 70 bytes with
/// its header), its data extent's item with the back-reference (about 90) and checksums,
/// doubled since split leaves are only half full, and rounded up.
const PIECE_GROWTH: u64 = 512;

/// Nodes a namespace operation that adds items may take for good: its items split a leaf
/// (one new leaf and a parent slot) in the fs tree, with margin for a split reaching up.
const NS_GROWTH_NODES: u64 = 4;

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(l) = live().as_mut() {
            l.remove(&self.id);
        }
        let id = self.id;
        QUEUES.with(|q| q.borrow_mut().retain(|(i, _)| *i != id));
    }
}

/// Read access to the fs tree, through a transaction or a snapshot.
pub(crate) trait Items {
    fn get(&mut self, key: Key) -> Result<Option<cow::ItemData>>;
    fn range(
        &mut self,
        lo: Key,
        hi: Key,
        dir: Direction,
        max: usize,
    ) -> Result<Vec<(Key, cow::ItemData)>>;
}

/// A write transaction with its queue.
pub(crate) struct Tx<'a> {
    pub tx: Transaction<'a>,
    pub io: &'a mut dyn IoQueue,
}

/// A snapshot with its queue.
pub(crate) struct Rd<'a> {
    pub r: ReadTxn<'a>,
    pub io: &'a mut dyn IoQueue,
}

impl Items for Tx<'_> {
    fn get(&mut self, key: Key) -> Result<Option<cow::ItemData>> {
        Ok(self.tx.get(self.io, FS_TREE, key)?)
    }
    fn range(
        &mut self,
        lo: Key,
        hi: Key,
        dir: Direction,
        max: usize,
    ) -> Result<Vec<(Key, cow::ItemData)>> {
        let it = self.tx.iter(self.io, FS_TREE, lo, hi, dir);
        Ok(it.take(max).collect::<cow::Result<Vec<_>>>()?)
    }
}

impl Items for Rd<'_> {
    fn get(&mut self, key: Key) -> Result<Option<cow::ItemData>> {
        Ok(self.r.get(self.io, FS_TREE, key)?)
    }
    fn range(
        &mut self,
        lo: Key,
        hi: Key,
        dir: Direction,
        max: usize,
    ) -> Result<Vec<(Key, cow::ItemData)>> {
        let it = self.r.iter(self.io, FS_TREE, lo, hi, dir);
        Ok(it.take(max).collect::<cow::Result<Vec<_>>>()?)
    }
}

impl Tx<'_> {
    pub fn put(&mut self, key: Key, data: &[u8]) -> Result<()> {
        Ok(self.tx.upsert(self.io, FS_TREE, key, data)?)
    }
    pub fn del(&mut self, key: Key) -> Result<bool> {
        Ok(self.tx.delete(self.io, FS_TREE, key)?)
    }
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
