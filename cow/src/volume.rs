//! A cow volume's state: the committed roots, free space, readers and poisoning, and read
//! snapshots. Formatting and opening are in `open.rs`; `begin` and the single writer are in
//! `transaction.rs`, which builds on this.
//!
//! Concurrency and consistency:
//! - one writer [`Transaction`](crate::Transaction) at a time (a mutex); it sees its own changes;
//! - a [`ReadTxn`] sees the last committed state at the moment it was created, unchanged for
//!   as long as it lives (snapshot isolation), whatever later transactions commit;
//! - extents freed by the transaction of generation `T` become allocatable only once `T` is
//!   durable (its superblock written and flushed) **and** no reader of a generation below `T`
//!   is alive, so a reader never sees a node overwritten under it.
//!
//! After a failed metadata write or flush the volume is poisoned: every later `begin` and
//! `commit` fails with [`Error::Poisoned`] naming the first failure, until the volume is
//! reopened (the state on the media is then whatever the last durable superblock says).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use parking_lot::MutexGuard as FairGuard;

use bdev::IoQueue;

use crate::alloc::FreeSpace;
use crate::btree::{Direction, Iter, LeafCache, NodeAddr, NodeSource};
pub(crate) use crate::committed::Committed;
use crate::delayed::DelayedRefs;
use crate::error::{Error, Result};
use crate::format::{ItemData, Key, Node, RootPtr, TreeId};
use crate::readers::Readers;
use crate::store::Shared;

/// How to format a volume.
#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// Node size in bytes: a power of two from 1 KiB to 64 KiB (default 16 KiB).
    pub nodesize: u32,
    /// Sector size (allocation and checksum unit): 512 to 4096, at least the device's block
    /// size (default 4096, or the node size if smaller).
    pub sectorsize: u32,
    /// Filesystem id; random if `None`.
    pub fsid: Option<[u8; 16]>,
    /// Options for the volume returned.
    pub open: OpenOptions,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            nodesize: 16 << 10,
            sectorsize: 4096,
            fsid: None,
            open: OpenOptions::default(),
        }
    }
}

/// How to open a volume.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// The node cache's budget in nodes: `cache_nodes` × the node size bytes of memory
    /// (decoded nodes take more than their size on the device, so fewer nodes fit).
    /// [`Volume::set_cache_bytes`] changes it later.
    pub cache_nodes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { cache_nodes: 4096 }
    }
}

/// Free space: what the writer allocates nodes from and data reservations come from.
/// Behind its own lock, taken briefly per allocation, so that reserving data space (every
/// data write does) never waits for a running transaction. The lock is parking_lot's for
/// its fair hand-over (`MutexGuard::bump`): handing back the extents a large commit freed
/// takes many milliseconds, and lets a waiting reservation in between pieces of it.
pub(crate) struct Space {
    pub free: FreeSpace,
    /// Extents freed by committed generation `T`, waiting for readers older than `T`.
    pub pending: Vec<(u64, Vec<(u64, u64)>)>,
    /// Bytes taken out of `pending` that `release_pending` is handing back to `free`.
    pub releasing: u64,
}

/// The free-space lock held.
pub(crate) type SpaceGuard<'a> = parking_lot::MutexGuard<'a, Space>;

/// Nodes the metadata reserve (`Volume::metadata_reserve`) holds beyond the copies of the
/// existing ones: the trees' growth within one commit (splits, new items).
const METADATA_RESERVE_GROWTH: u64 = 64;

/// How many freed extents [`Volume::release_pending`] hands back per hold of the
/// free-space lock: about a tenth of a millisecond.
const RELEASE_CHUNK: usize = 256;

/// [`Volume::release_pending`] rebuilds the free-space map in one go when it hands back at
/// least one range per this many ranges the map holds ...
const BULK_RELEASE_SHARE: usize = 4;

/// ... and the map and the batch together are at most this many ranges: a rebuild holds
/// the free-space lock throughout, about 30 ns per range (1.1 ms for 23 k ranges freed
/// into 17 k on the development VM), so a few milliseconds at most.
const BULK_RELEASE_MAX: usize = 1 << 18;

/// What one write transaction leaves for the next: its reference-change queue, emptied.
/// A fold of many writes queues millions of bytes of changes; allocated afresh each time,
/// the queue's growth and the first touch of its pages were a tenth of the folding thread.
#[derive(Debug, Default)]
pub(crate) struct WriterScratch {
    pub(crate) delayed: DelayedRefs,
}

/// An open cow volume. `Send + Sync`: share it between threads; each thread brings its own
/// I/O queue to every call.
pub struct Volume {
    pub(crate) sh: Shared,
    pub(crate) committed: RwLock<Arc<Committed>>,
    /// Held by the (single) write transaction for its whole life. It keeps the queues a
    /// transaction fills, empty and with their capacity, for the next one.
    pub(crate) writer: Mutex<WriterScratch>,
    pub(crate) space: parking_lot::Mutex<Space>,
    poison: Mutex<Option<String>>,
    /// Whether `poison` is set: read on every change without taking the lock.
    is_poisoned: AtomicBool,
    /// Live readers and pins by the generation they see, per thread (`readers.rs`).
    readers: Readers,
    /// Free bytes as the last reservation, release or commit left them
    /// ([`Volume::free_bytes_hint`]).
    free_hint: AtomicU64,
    /// `committed`'s generation, stored after each publication: [`Volume::generation`]
    /// (every data write pins one) reads it without the lock. It is never newer than the
    /// state a reader then takes, so a pin never claims a generation it cannot see.
    generation: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Volume {
    pub(crate) fn assemble(sh: Shared, committed: Committed, mut free: FreeSpace) -> Volume {
        free.count_slots(u64::from(sh.nodesize));
        let free_hint = AtomicU64::new(free.free_bytes());
        let generation = AtomicU64::new(committed.generation);
        Volume {
            sh,
            committed: RwLock::new(Arc::new(committed)),
            writer: Mutex::new(WriterScratch::default()),
            space: parking_lot::Mutex::new(Space {
                free,
                pending: Vec::new(),
                releasing: 0,
            }),
            poison: Mutex::new(None),
            is_poisoned: AtomicBool::new(false),
            readers: Readers::new(),
            free_hint,
            generation,
        }
    }

    /// The size of the volume in bytes (at most the device's).
    pub fn total_bytes(&self) -> u64 {
        self.sh.total_bytes
    }

    /// Closes the volume. Everything committed is already durable; this reports an earlier
    /// failure that poisoned the volume, if any.
    pub fn close(self, io: &mut dyn IoQueue) -> Result<()> {
        if let Some(p) = self.poisoned() {
            return Err(Error::Poisoned(p));
        }
        self.sh.flush(io, "at close")
    }

    /// A read-only view of the last committed state.
    pub fn reader(&self) -> ReadTxn<'_> {
        self.registered_reader(None)
    }

    fn registered_reader<'a>(&'a self, leaves: Option<&'a RefCell<LeafCache>>) -> ReadTxn<'a> {
        let (_, snap) = self.readers.register(|| {
            let snap = self.committed_now();
            (snap.generation, snap)
        });
        ReadTxn {
            vol: self,
            snap,
            registered: true,
            leaves,
        }
    }

    /// A read-only view of the last committed state for a caller that holds a
    /// [`Volume::pin`] of `pinned` for as long as the view lives. The pin already keeps
    /// what the view reaches from reuse (extents a generation `T` freed wait for every pin
    /// below `T`, and the view shows `pinned` or later), so the view is not registered as
    /// a reader of its own: no lock and no shared counter per view (a direct read takes
    /// one per I/O). Falls back to a registered view if the state is older than `pinned`,
    /// which a pin taken from this volume never is.
    ///
    /// With `leaves`, lookups through the view start at a leaf an earlier view of the same
    /// generation found (see [`LeafCache`]) and leaves it finds are added; and the view
    /// shows the caller's own copy of the committed state kept there while no commit
    /// published a newer one, so that taking a view writes no cache line another thread
    /// writes too (the lock over the shared state and its reference count were two per
    /// direct read).
    pub fn pinned_reader<'a>(
        &'a self,
        pinned: u64,
        leaves: Option<&'a RefCell<LeafCache>>,
    ) -> ReadTxn<'a> {
        let now = self.generation();
        let own = leaves.and_then(|l| l.try_borrow().ok()?.snapshot(now));
        if let Some(snap) = own.filter(|s| s.generation >= pinned) {
            return ReadTxn {
                vol: self,
                snap,
                registered: false,
                leaves,
            };
        }
        let snap = self.committed_now();
        if let Some(Ok(mut l)) = leaves.map(RefCell::try_borrow_mut) {
            l.keep_snapshot(&snap);
        }
        if snap.generation < pinned {
            return self.registered_reader(leaves);
        }
        ReadTxn {
            vol: self,
            snap,
            registered: false,
            leaves,
        }
    }

    /// The last committed state, shared.
    fn committed_now(&self) -> Arc<Committed> {
        Arc::clone(&self.committed.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The generation of the last committed transaction.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Why the volume refuses writes, if it does.
    pub fn poisoned(&self) -> Option<String> {
        if !self.is_poisoned.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.poison).clone()
    }

    /// Sets the node cache's budget in bytes of memory (`OpenOptions::cache_nodes` at open).
    /// Lowering it evicts at once. The running transaction's dirty nodes count against it
    /// (cached nodes make room for them) up to 7/8 of it; beyond that they exceed it until
    /// their commit (`docs/decisions/memory-budgets.md`).
    pub fn set_cache_bytes(&self, bytes: u64) {
        self.sh.cache.set_budget(bytes);
    }

    /// The memory the node cache's nodes take now, in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.sh.cache.bytes()
    }

    /// The most node bytes one commit has written since the volume was opened: about what
    /// a commit of changes as scattered needs free (plus what the tree grew by since).
    pub fn peak_commit_bytes(&self) -> u64 {
        self.sh.peak_commit_nodes.load(Ordering::Relaxed) * u64::from(self.sh.nodesize)
    }

    /// Node size in bytes.
    pub fn nodesize(&self) -> u32 {
        self.sh.nodesize
    }

    /// Sector size in bytes (allocation and data checksum unit).
    pub fn sectorsize(&self) -> u32 {
        self.sh.sectorsize
    }

    /// The filesystem id.
    pub fn fsid(&self) -> [u8; 16] {
        self.sh.fsid
    }

    /// Bytes allocatable now (excluding extents waiting for commit or readers). A running
    /// transaction's allocations so far count as taken.
    pub fn free_bytes(&self) -> u64 {
        let mut w = self.space.lock();
        // Extents whose last older reader just went are allocatable now.
        self.release_pending(&mut w);
        self.note_free(&w)
    }

    /// [`Volume::free_bytes`] as the last data reservation, give-back or commit saw it,
    /// without taking the free-space lock (which the committing thread takes for every node
    /// it allocates): for decisions taken on every write that tolerate a small lag.
    pub fn free_bytes_hint(&self) -> u64 {
        self.free_hint.load(Ordering::Relaxed)
    }

    /// Records the free bytes of `w` for [`Volume::free_bytes_hint`] and returns them.
    pub(crate) fn note_free(&self, w: &Space) -> u64 {
        let free = w.free.free_bytes();
        self.free_hint.store(free, Ordering::Relaxed);
        free
    }

    /// Free bytes in whole node-sized pieces: what B-tree nodes can still be allocated
    /// from, however the rest of the free space is cut up. Counts exactly: a held data run
    /// goes back into the free ranges first (the next data allocation holds it again).
    pub fn node_slot_bytes(&self) -> u64 {
        let mut w = self.space.lock();
        self.release_pending(&mut w);
        w.free.release_run();
        w.free.slot_bytes()
    }

    /// Bytes freed by committed transactions that are not allocatable yet because a reader
    /// (or pin) of an older generation is still alive. They come back as those readers end.
    pub fn pinned_bytes(&self) -> u64 {
        let mut w = self.space.lock();
        self.release_pending(&mut w);
        let pending: u64 = w.pending.iter().flat_map(|(_, v)| v).map(|&(_, l)| l).sum();
        pending + w.releasing
    }

    /// Reserves a data extent of between `min` and `max` bytes (whole sectors, preferring
    /// one piece of `max`) outside any transaction; returns `(bytenr, len)`. Nothing on the
    /// media records a reservation: after a crash the space is free again. The caller either
    /// hands (parts of) it to a transaction with [`Transaction::adopt_data`](crate::Transaction::adopt_data) or gives them
    /// back with [`Volume::unreserve_data`]. This is how a filesystem allocates space for
    /// data before writing it and references it only once the write is done (btrfs's
    /// ordered extents), without holding the single writer across the I/O. It does not wait
    /// for a running transaction.
    pub fn reserve_data(&self, min: u64, max: u64) -> Result<(u64, u64)> {
        let mut w = self.space.lock();
        self.release_pending(&mut w);
        self.reserve_data_locked(&mut w, min, max, 0)
    }

    /// The reservation itself, under the free-space lock, after the caller released what
    /// older readers no longer pin: never taking a node-sized piece of the last
    /// `keep_slots` bytes of free space in whole node-sized pieces (nor of the last
    /// [`Volume::metadata_reserve`]); pieces too small for a node are always taken first.
    fn reserve_data_locked(
        &self,
        w: &mut Space,
        min: u64,
        max: u64,
        keep_slots: u64,
    ) -> Result<(u64, u64)> {
        if let Some(p) = self.poisoned() {
            return Err(Error::Poisoned(p));
        }
        let ss = u64::from(self.sh.sectorsize);
        if min == 0 || min > max || min % ss != 0 || max % ss != 0 {
            return Err(Error::Invalid(format!(
                "data reservation of {min}..{max} bytes is not whole {ss}-byte sectors"
            )));
        }
        let node = u64::from(self.sh.nodesize);
        let keep = keep_slots.div_ceil(node).max(self.metadata_reserve_slots());
        // Small data may spread into the largest free ranges while a quarter of the volume
        // is free; a fuller volume keeps them for nodes (`FreeSpace::alloc_data`).
        let spread = w.free.free_bytes() >= self.sh.total_bytes / 4;
        let r = w.free.alloc_data_keeping(min, max, spread, keep);
        self.note_free(w);
        r.ok_or_else(|| {
            Error::NoSpace(format!(
                "no free range of {min} bytes for data that leaves {} bytes in whole nodes \
                 for commits ({} bytes free in all, {} in whole nodes)",
                keep * node,
                w.free.free_bytes(),
                w.free.slot_bytes()
            ))
        })
    }

    /// The free space, in whole node-sized pieces, that no data allocation cuts into: enough
    /// for a commit that copies every B-tree node of the volume once (a transaction copies
    /// a node at most once) plus 64 nodes for the trees' growth, the way btrfs's global
    /// block reserve is sized from its trees. Commits, including those of unlinks and
    /// truncations, allocate their nodes from it; data allocations fail with `NoSpace`
    /// first. At most half the volume.
    pub fn metadata_reserve(&self) -> u64 {
        self.metadata_reserve_slots() * u64::from(self.sh.nodesize)
    }

    pub(crate) fn metadata_reserve_slots(&self) -> u64 {
        let nodes = self.sh.tree_nodes.load(Ordering::Relaxed);
        let most = self.sh.total_bytes / 2 / u64::from(self.sh.nodesize);
        (nodes + nodes / 4 + METADATA_RESERVE_GROWTH).min(most)
    }

    /// [`Volume::reserve_data`] that leaves room behind, all under one hold of the
    /// free-space lock: at most what keeps `keep_free` bytes free is taken (less than `min`
    /// of it: `NoSpace`), and the reservation never cuts into the last `keep_slots` bytes
    /// (or [`Volume::metadata_reserve`], if more) of free space in whole node-sized pieces
    /// (if it cannot be placed elsewhere, it is refused, nothing taken). A commit needs its
    /// nodes whole, and small
    /// data taken from node-sized ranges can leave plenty of free bytes none of which a node
    /// fits in: a filesystem passes what its next commit needs, so that data waiting for
    /// the commit cannot starve it. When the usual placement would leave too few, the
    /// smallest pieces that cost no whole node are taken instead, even while fewer are left
    /// than kept (`FreeSpace::alloc_data_keeping`).
    pub fn reserve_data_keeping(
        &self,
        min: u64,
        max: u64,
        keep_free: u64,
        keep_slots: u64,
    ) -> Result<(u64, u64)> {
        let ss = u64::from(self.sh.sectorsize);
        let mut w = self.space.lock();
        self.release_pending(&mut w);
        let room = w.free.free_bytes().saturating_sub(keep_free) / ss * ss;
        if room < min {
            return Err(Error::NoSpace(format!(
                "{} bytes free, {keep_free} of them kept: no room for {min}",
                w.free.free_bytes()
            )));
        }
        self.reserve_data_locked(&mut w, min, max.min(room), keep_slots)
    }

    /// Reserves exactly `[bytenr, bytenr + len)`, which must be free: for a filesystem
    /// replaying a log that names extents written after the last commit. Same locking rule
    /// and hand-over as [`Volume::reserve_data`].
    pub fn reserve_exact(&self, bytenr: u64, len: u64) -> Result<()> {
        let ss = u64::from(self.sh.sectorsize);
        if len == 0 || bytenr % ss != 0 || len % ss != 0 {
            return Err(Error::Invalid(format!(
                "exact reservation {bytenr:#x}+{len:#x} is not whole {ss}-byte sectors"
            )));
        }
        let mut w = self.space.lock();
        self.release_pending(&mut w);
        w.free
            .take(bytenr, len)
            .map_err(|e| Error::Invalid(format!("reserving {bytenr:#x}+{len:#x}: {e}")))
    }

    /// Gives back `[bytenr, bytenr + len)` of a reservation of [`Volume::reserve_data`].
    /// Same locking rule as `reserve_data`.
    pub fn unreserve_data(&self, bytenr: u64, len: u64) -> Result<()> {
        let mut w = self.space.lock();
        let r = w.free.free(bytenr, len);
        self.note_free(&w);
        r.map_err(|e| Error::Invalid(format!("unreserving {bytenr:#x}+{len:#x}: {e}")))
    }

    /// Registers a reader of the last committed generation without a [`ReadTxn`] and returns
    /// that generation: until [`Volume::unpin`] of it, nothing freed after it is reused. For
    /// a filesystem whose reads outlive the snapshot they were mapped from (the device read
    /// happens after the mapping lookup returned).
    pub fn pin(&self) -> u64 {
        self.readers.register(|| (self.generation(), ())).0
    }

    /// Ends a [`Volume::pin`] of `generation`.
    pub fn unpin(&self, generation: u64) {
        self.drop_reader(generation);
    }

    pub(crate) fn set_poison(&self, why: String) {
        let mut p = lock(&self.poison);
        if p.is_none() {
            log::error!("cow: volume poisoned, refusing writes until reopened: {why}");
            *p = Some(why);
            self.is_poisoned.store(true, Ordering::Release);
        }
    }

    /// Publishes a committed state (called by commit once its superblock is durable).
    pub(crate) fn publish(&self, c: Committed) {
        let generation = c.generation;
        *self.committed.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(c);
        self.generation.store(generation, Ordering::Release);
    }

    /// Hands extents back to the allocator whose generation no live reader can still see.
    /// A commit of a large fold frees a hundred thousand extents and more; they go back
    /// `RELEASE_CHUNK` at a time, and between chunks a thread waiting for the lock gets it
    /// first (data writes waiting out whole releases stalled the I/O thread for 0.43 s of a
    /// 4 s trace, 2 ms at a time, at 300 k random writes a second). Meanwhile
    /// the extents still to go count as pinned ([`Volume::pinned_bytes`]). A batch that is
    /// a good part of a map of moderate size goes back in one rebuild instead
    /// (`BULK_RELEASE_SHARE`, `BULK_RELEASE_MAX`), which takes about a millisecond where
    /// the chunks took several.
    pub(crate) fn release_pending(&self, w: &mut SpaceGuard<'_>) {
        // Called on every data reservation: nothing to do must cost no lock and no Vec.
        let Some(first) = w.pending.iter().map(|(gen, _)| *gen).min() else {
            return;
        };
        let oldest = self.readers.oldest();
        if oldest.is_some_and(|o| o < first) {
            return;
        }
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut w.pending)
            .into_iter()
            .partition(|(gen, _)| oldest.is_none_or(|o| o >= *gen));
        w.pending = wait;
        let mut ready: Vec<(u64, u64)> = ready.into_iter().flat_map(|(_, v)| v).collect();
        let bytes: u64 = ready.iter().map(|&(_, l)| l).sum();
        w.releasing += bytes;
        // In address order, each free descends next to the last one, and neighbours
        // freed together are one free.
        FairGuard::unlocked(w, || {
            ready.sort_unstable();
            ready.dedup_by(|b, a| {
                let adjacent = a.0 + a.1 == b.0;
                if adjacent {
                    a.1 += b.1;
                }
                adjacent
            });
        });
        // A batch that is a good part of the map goes back in one rebuild of it, four to
        // five times faster than range by range (after a commit of random overwrites: more
        // ranges than the map holds, each a descent and up to four B-tree changes one by
        // one). On an error, range by range, which logs each range refused.
        let ranges = w.free.range_count();
        let bulk =
            ready.len() * BULK_RELEASE_SHARE >= ranges && ranges + ready.len() <= BULK_RELEASE_MAX;
        if bulk && w.free.free_many(&ready).is_ok() {
            w.releasing -= bytes;
            self.note_free(w);
            return;
        }
        for chunk in ready.chunks(RELEASE_CHUNK) {
            for &(s, l) in chunk {
                if let Err(e) = w.free.free(s, l) {
                    log::error!("cow: releasing a freed extent: {e}");
                }
                w.releasing -= l;
            }
            self.note_free(w);
            FairGuard::bump(w);
        }
    }

    fn drop_reader(&self, generation: u64) {
        self.readers.release(generation);
    }
}

/// The filesystem shares one volume across threads.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Volume>();
};

/// A read-only snapshot of the last committed state when it was taken. While it lives, the
/// extents it can reach are not reused.
pub struct ReadTxn<'v> {
    pub(crate) vol: &'v Volume,
    snap: Arc<Committed>,
    /// Counted in `Volume::readers` (false: a caller's pin covers it).
    registered: bool,
    /// The caller's cache of leaves, if it keeps one.
    leaves: Option<&'v RefCell<LeafCache>>,
}

impl NodeSource for ReadTxn<'_> {
    fn load(&self, io: &mut dyn IoQueue, tree: TreeId, at: &NodeAddr) -> Result<Arc<Node>> {
        self.vol.sh.read_node(io, tree, at)
    }

    fn root(&self, tree: TreeId) -> Result<RootPtr> {
        self.snap
            .roots
            .get(&tree)
            .copied()
            .ok_or(Error::NoSuchTree(tree))
    }

    fn finger_leaf(&self, tree: TreeId, key: Key) -> Option<(Arc<Node>, Option<Key>)> {
        let c = self.leaves?.try_borrow().ok()?;
        c.find(self.snap.generation, tree, key)
    }

    fn note_leaf(&self, tree: TreeId, leaf: &Arc<Node>, hi: Option<Key>) {
        if let Some(Ok(mut c)) = self.leaves.map(RefCell::try_borrow_mut) {
            c.note(self.snap.generation, tree, leaf, hi);
        }
    }
}

impl ReadTxn<'_> {
    /// The generation this snapshot shows.
    pub fn generation(&self) -> u64 {
        self.snap.generation
    }

    /// The trees of this snapshot.
    pub fn trees(&self) -> Vec<TreeId> {
        self.snap.roots.keys().copied().collect()
    }

    /// The data of `key` in `tree`.
    pub fn get(&self, io: &mut dyn IoQueue, tree: TreeId, key: Key) -> Result<Option<ItemData>> {
        crate::btree::get(self, io, tree, key)
    }

    /// Items of `tree` with keys in `lo..=hi`, in direction `dir`.
    pub fn iter<'a>(
        &'a self,
        io: &'a mut dyn IoQueue,
        tree: TreeId,
        lo: Key,
        hi: Key,
        dir: Direction,
    ) -> Iter<'a> {
        Iter::new(self, io, tree, lo, hi, dir)
    }

    /// The last item of `tree` with a key in `lo..=hi`, handed to `f` in place (no copy of
    /// its data): a point lookup for the hot read path, where [`ReadTxn::iter`] would
    /// allocate its path and share the item.
    pub fn last_at_or_before<R>(
        &self,
        io: &mut dyn IoQueue,
        tree: TreeId,
        lo: Key,
        hi: Key,
        f: impl FnOnce(&Key, &[u8]) -> R,
    ) -> Result<Option<R>> {
        crate::btree::last_at_or_before(self, io, tree, lo, hi, f)
    }

    /// Bytes allocated to extents in this snapshot.
    pub fn bytes_used(&self) -> u64 {
        self.snap.bytes_used
    }
}

impl Drop for ReadTxn<'_> {
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        self.vol.drop_reader(self.snap.generation);
    }
}
