//! The write transaction: copy-on-write changes, delayed references, and the commit protocol.
//!
//! Commit, in order:
//! 1. until nothing changes: record changed tree roots in the root tree, apply the delayed
//!    references to the extent tree (both copy more nodes, but only nodes not yet copied);
//! 2. write every dirty node to its new address (all in flight at once), validated first;
//! 3. flush; 4. write every superblock copy with FUA; 5. flush.
//!
//! Only after 5 is the new state published to readers and are the extents this transaction
//! freed queued for reuse. A failure in 2–5 poisons the volume. Dropping a transaction without
//! committing it discards its changes and gives back what it allocated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, MutexGuard};

use bdev::IoQueue;
use hashbrown::{HashMap, HashSet};

use crate::btree::{self, Direction, Finger, Iter, NodeAddr, NodeSource, NodeWriter, PutMode};
use crate::delayed::{DelayedRefs, RefTarget};
use crate::error::{Error, Result};
use crate::format::{kind, Body, ItemData, Key, Node, RootItem, RootPtr, Superblock, TreeId};
use crate::volume::{lock, Committed, SpaceGuard, Volume, WriterScratch};

pub(crate) mod trees;

/// Passes of commit's fix-point loop before it gives up (it converges in a handful).
const MAX_COMMIT_PASSES: usize = 64;

/// The dirty nodes are reported to the node cache each time this many more are dirty (the
/// cache makes room for them: `NodeCache::set_dirty_bytes`).
const DIRTY_REPORT_STEP: usize = 32;

/// The single write transaction of a volume. Reads through it see its own changes.
pub struct Transaction<'v> {
    pub(crate) vol: &'v Volume,
    /// The writer lock: one transaction at a time.
    writer: MutexGuard<'v, WriterScratch>,
    pub(crate) gen: u64,
    pub(crate) roots: BTreeMap<TreeId, RootPtr>,
    changed: BTreeSet<TreeId>,
    dirty: HashMap<u64, Arc<Node>>,
    /// How many dirty nodes the node cache was last told of.
    dirty_reported: usize,
    /// Per tree, the leaf its last change ended in (`btree::Finger`).
    fingers: Vec<(TreeId, Finger)>,
    pub(crate) delayed: DelayedRefs,
    /// Extents allocated by this transaction: given back on abort.
    allocated: HashMap<u64, u64>,
    /// Reservations taken over with `adopt_data`: readers may have seen them before this
    /// transaction (through the filesystem), so if freed they wait for readers like any
    /// committed extent, and an abort hands them back to the caller's reservation.
    adopted: HashSet<u64>,
    /// Allocations whose +1 reference is already in the extent tree.
    pub(crate) applied: HashSet<u64>,
    /// Data extents allocated and not yet referenced: freed at commit if still unreferenced.
    /// `start -> (bytes, whether their referrers keep the checksums)`
    /// (`adopt_data_csums_elsewhere`).
    pub(crate) unreferenced_data: BTreeMap<u64, (u64, bool)>,
    /// Extents allocated and freed again by this transaction after their reference reached the
    /// extent tree: reusable right after commit (no committed state ever saw them).
    local_frees: Vec<(u64, u64)>,
    /// Committed nodes this transaction replaced `(bytenr, generation)`: dropped from the
    /// node cache when it commits.
    replaced: Vec<(u64, u64)>,
    /// Extents of committed states freed by this transaction: reusable after commit and after
    /// the readers of older states are gone.
    pinned: Vec<(u64, u64)>,
    /// Extents this transaction allocated or adopted whose checksums it has inserted.
    csummed: HashSet<u64>,
    pub(crate) bytes_used: u64,
    /// B-tree nodes allocated minus nodes freed: what the commit adds to `Shared::tree_nodes`.
    nodes_delta: i64,
    failed: Option<String>,
    done: bool,
}

impl Volume {
    /// Starts the (single) write transaction; blocks while another one runs.
    pub fn begin(&self) -> Result<Transaction<'_>> {
        if let Some(p) = self.poisoned() {
            return Err(Error::Poisoned(p));
        }
        let w = lock(&self.writer);
        self.release_pending(&mut self.space.lock());
        let base = Arc::clone(&self.committed.read().unwrap_or_else(|e| e.into_inner()));
        Ok(Transaction::new(self, w, base))
    }
}

impl<'v> Transaction<'v> {
    pub(crate) fn new(
        vol: &'v Volume,
        mut writer: MutexGuard<'v, WriterScratch>,
        base: Arc<Committed>,
    ) -> Self {
        let delayed = std::mem::take(&mut writer.delayed);
        Transaction {
            vol,
            writer,
            gen: base.generation + 1,
            roots: base.roots.clone(),
            bytes_used: base.bytes_used,
            changed: BTreeSet::new(),
            dirty: HashMap::new(),
            dirty_reported: 0,
            fingers: Vec::new(),
            delayed,
            allocated: HashMap::new(),
            applied: HashSet::new(),
            adopted: HashSet::new(),
            unreferenced_data: BTreeMap::new(),
            local_frees: Vec::new(),
            replaced: Vec::new(),
            pinned: Vec::new(),
            csummed: HashSet::new(),
            nodes_delta: 0,
            failed: None,
            done: false,
        }
    }

    /// The generation this transaction will commit as.
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// The largest item data a tree of this volume holds.
    pub fn max_item_size(&self) -> usize {
        crate::format::max_item_size(self.vol.sh.nodesize)
    }

    /// The trees as this transaction sees them.
    pub fn trees(&self) -> Vec<TreeId> {
        self.roots.keys().copied().collect()
    }

    pub(crate) fn usable(&self) -> Result<()> {
        if let Some(f) = &self.failed {
            return Err(Error::TransactionFailed(f.clone()));
        }
        if let Some(p) = self.vol.poisoned() {
            return Err(Error::Poisoned(p));
        }
        Ok(())
    }

    /// Runs a change; an error that may have left the trees half-changed fails the
    /// transaction.
    pub(crate) fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.usable()?;
        let r = f(self);
        if let Err(e) = &r {
            if !matches!(
                e,
                Error::KeyExists { .. } | Error::NotFound { .. } | Error::Invalid(_)
            ) {
                self.failed = Some(e.to_string());
            }
        }
        r
    }

    fn user_tree(&self, tree: TreeId) -> Result<()> {
        if !tree.is_user() {
            return Err(Error::Invalid(format!(
                "tree {tree} is internal; only the fs tree and trees from 256 take items"
            )));
        }
        Ok(())
    }

    /// The data of `key` in `tree`.
    pub fn get(&self, io: &mut dyn IoQueue, tree: TreeId, key: Key) -> Result<Option<ItemData>> {
        btree::get(self, io, tree, key)
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

    /// Inserts a new item; [`Error::KeyExists`] if the key is there.
    pub fn insert(
        &mut self,
        io: &mut dyn IoQueue,
        tree: TreeId,
        key: Key,
        data: &[u8],
    ) -> Result<()> {
        self.user_tree(tree)?;
        self.guarded(|tx| btree::put(tx, io, tree, key, data, PutMode::Insert))
    }

    /// Replaces an item's data; [`Error::NotFound`] if the key is not there.
    pub fn update(
        &mut self,
        io: &mut dyn IoQueue,
        tree: TreeId,
        key: Key,
        data: &[u8],
    ) -> Result<()> {
        self.user_tree(tree)?;
        self.guarded(|tx| btree::put(tx, io, tree, key, data, PutMode::Update))
    }

    /// Inserts or replaces an item.
    pub fn upsert(
        &mut self,
        io: &mut dyn IoQueue,
        tree: TreeId,
        key: Key,
        data: &[u8],
    ) -> Result<()> {
        self.user_tree(tree)?;
        self.guarded(|tx| btree::put(tx, io, tree, key, data, PutMode::Upsert))
    }

    /// Removes an item; returns whether it was there.
    pub fn delete(&mut self, io: &mut dyn IoQueue, tree: TreeId, key: Key) -> Result<bool> {
        self.user_tree(tree)?;
        self.guarded(|tx| btree::delete(tx, io, tree, key))
    }

    /// Creates an empty tree (the fs tree, or an id from 256).
    pub fn create_tree(&mut self, tree: TreeId) -> Result<()> {
        self.user_tree(tree)?;
        if self.roots.contains_key(&tree) {
            return Err(Error::Invalid(format!("tree {tree} exists")));
        }
        self.guarded(|tx| tx.new_empty_root(tree))
    }

    pub(crate) fn new_empty_root(&mut self, tree: TreeId) -> Result<()> {
        let bytenr = self.alloc_node(tree, 0)?;
        self.put(Node {
            bytenr,
            generation: self.gen,
            owner: tree,
            level: 0,
            body: Body::Leaf(Vec::new()),
        });
        self.set_root(
            tree,
            RootPtr {
                bytenr,
                generation: self.gen,
                level: 0,
            },
        );
        Ok(())
    }

    /// Internal put into any tree (extent, csum, root trees).
    pub(crate) fn put_internal(
        &mut self,
        io: &mut dyn IoQueue,
        tree: TreeId,
        key: Key,
        data: &[u8],
    ) -> Result<()> {
        btree::put(self, io, tree, key, data, PutMode::Upsert)
    }

    /// Internal delete from any tree of an item the caller has just read (so the
    /// existence check of [`Transaction::delete`] is skipped).
    pub(crate) fn delete_internal(
        &mut self,
        io: &mut dyn IoQueue,
        tree: TreeId,
        key: Key,
    ) -> Result<()> {
        btree::delete_present(self, io, tree, key)
    }

    /// Free space, locked for one allocation or release (never across tree work).
    fn space(&self) -> SpaceGuard<'v> {
        lock_space(self.vol)
    }

    /// An extent of `len` bytes (whole sectors) reaches zero references: free it.
    pub(crate) fn release_extent(&mut self, start: u64, len: u64) {
        if self.allocated.contains_key(&start) && !self.adopted.contains(&start) {
            self.local_frees.push((start, len));
        } else {
            self.pinned.push((start, len));
        }
    }

    /// Allocates `len` bytes from free space; the caller records what it is.
    pub(crate) fn alloc_extent(&mut self, len: u64) -> Result<u64> {
        let mut space = self.space();
        let start = space.free.alloc(len).ok_or_else(|| {
            let free = space.free.free_bytes();
            // Said apart: "full" would be wrong advice when the bytes are there but no node
            // fits between the live blocks (a nearly full volume after many overwrites).
            let how = if free >= len {
                "all in pieces too small for it: the free space is fragmented"
            } else {
                "in all"
            };
            Error::NoSpace(format!(
                "no free range of {len} bytes for a B-tree node ({free} bytes free, {how})"
            ))
        })?;
        drop(space);
        self.allocated.insert(start, len);
        Ok(start)
    }

    /// Allocates a data extent of between `min` and `max` bytes (whole sectors), preferring
    /// one piece of `max`; returns `(bytenr, len)`. It must be referenced with
    /// [`Transaction::add_data_ref`] in this transaction or it is freed again at commit.
    pub fn alloc_data(&mut self, min: u64, max: u64) -> Result<(u64, u64)> {
        self.usable()?;
        let ss = u64::from(self.vol.sh.sectorsize);
        if min == 0 || min > max || min % ss != 0 || max % ss != 0 {
            return Err(Error::Invalid(format!(
                "data extent of {min}..{max} bytes is not whole {ss}-byte sectors"
            )));
        }
        let keep = self.vol.metadata_reserve_slots();
        let (start, len) = self
            .space()
            .free
            .alloc_up_to_keeping(min, max, keep)
            .ok_or_else(|| {
                Error::NoSpace(format!(
                    "no free range of {min} bytes for data outside the metadata reserve"
                ))
            })?;
        self.allocated.insert(start, len);
        self.unreferenced_data.insert(start, (len, false));
        Ok((start, len))
    }

    /// Takes over `[bytenr, bytenr + len)` (whole sectors) of a reservation made with
    /// [`Volume::reserve_data`]: on commit it is this transaction's allocation, as if
    /// [`Transaction::alloc_data`] had returned it (referenced here, or freed at commit), except
    /// that when freed it waits for older readers like a committed extent (readers may have
    /// been shown it already). If the transaction is dropped, the range is the caller's
    /// reservation again.
    pub fn adopt_data(&mut self, bytenr: u64, len: u64) -> Result<()> {
        self.adopt(bytenr, len, false)
    }

    /// [`Transaction::adopt_data`] for an extent whose checksums its referrers keep (a
    /// filesystem stores a one-block extent's crc32c in its file extent item): none go to
    /// the checksum tree, and freeing the extent deletes none from it. The extent item
    /// records this (format flag 8), so a later transaction freeing it knows too.
    pub fn adopt_data_csums_elsewhere(&mut self, bytenr: u64, len: u64) -> Result<()> {
        self.adopt(bytenr, len, true)
    }

    fn adopt(&mut self, bytenr: u64, len: u64, csums_elsewhere: bool) -> Result<()> {
        self.check_reserved(bytenr, len, "adopting data extent")?;
        self.allocated.insert(bytenr, len);
        self.adopted.insert(bytenr);
        self.unreferenced_data
            .insert(bytenr, (len, csums_elsewhere));
        Ok(())
    }

    /// Takes `[bytenr, bytenr + len)` off the unreferenced data extents, if it is one, for
    /// its first reference; returns whether its referrers keep its checksums.
    pub(crate) fn take_unreferenced(&mut self, bytenr: u64, len: u64) -> Option<bool> {
        match self.unreferenced_data.entry(bytenr) {
            std::collections::btree_map::Entry::Occupied(e) if e.get().0 == len => {
                Some(e.remove().1)
            }
            _ => None,
        }
    }

    /// Gives up `[bytenr, bytenr + len)` (whole sectors) of a reservation made with
    /// [`Volume::reserve_data`] that nothing will reference: on commit it becomes free once
    /// the readers of older states are gone (readers may have been shown it, as with
    /// [`Transaction::adopt_data`]). If the transaction is dropped, the range stays the
    /// caller's reservation. Costs no tree change, where adopting the range would cost its
    /// checksums' insertion and deletion.
    pub fn free_reserved(&mut self, bytenr: u64, len: u64) -> Result<()> {
        self.check_reserved(bytenr, len, "freeing reserved data")?;
        self.pinned.push((bytenr, len));
        Ok(())
    }

    /// The checks shared by the calls that take over part of a reservation: a usable
    /// transaction, whole sectors, not adopted already.
    fn check_reserved(&self, bytenr: u64, len: u64, what: &str) -> Result<()> {
        self.usable()?;
        let ss = u64::from(self.vol.sh.sectorsize);
        if len == 0 || bytenr % ss != 0 || len % ss != 0 || self.allocated.contains_key(&bytenr) {
            return Err(Error::Invalid(format!(
                "{what} {bytenr:#x}+{len:#x}: not whole sectors or already adopted"
            )));
        }
        Ok(())
    }

    /// Whether `[bytenr, bytenr + len)` lies in an extent this transaction allocated or
    /// adopted whose checksums it has not inserted yet, and notes that it now has. Free space
    /// holds no checksums (every release deletes them), so such a range has none to replace.
    pub(crate) fn first_csums_of_new_extent(&mut self, bytenr: u64, len: u64) -> bool {
        let inside = self.allocated.get(&bytenr).is_some_and(|&l| len <= l);
        inside && self.csummed.insert(bytenr)
    }

    /// Makes room for `n` reference changes about to be queued (a caller that knows it will
    /// make many, as a filesystem folding a batch of writes does, spares the queue its
    /// step-by-step growth).
    pub fn expect_ref_changes(&mut self, n: usize) {
        self.delayed.reserve(n);
    }

    /// Adds a reference from `backref` to the data extent `[bytenr, bytenr + len)`, which was
    /// allocated by this transaction or is already referenced. Applied at commit.
    pub fn add_data_ref(
        &mut self,
        bytenr: u64,
        len: u64,
        backref: crate::format::DataBackref,
    ) -> Result<()> {
        self.usable()?;
        self.delayed
            .add(bytenr, RefTarget::Data { len, backref }, 1);
        Ok(())
    }

    /// Drops a reference from `backref` to a data extent; at zero references the extent and
    /// its checksums are freed. Applied at commit.
    pub fn drop_data_ref(
        &mut self,
        bytenr: u64,
        len: u64,
        backref: crate::format::DataBackref,
    ) -> Result<()> {
        self.usable()?;
        self.delayed
            .add(bytenr, RefTarget::Data { len, backref }, -1);
        Ok(())
    }

    /// Records the crc32c of consecutive data blocks starting at `bytenr` (replacing any).
    pub fn csum_insert(&mut self, io: &mut dyn IoQueue, bytenr: u64, csums: &[u32]) -> Result<()> {
        self.guarded(|tx| trees::csum::insert(tx, io, bytenr, csums))
    }

    /// Removes the checksums of the data blocks in `[bytenr, bytenr + len)`.
    pub fn csum_delete(&mut self, io: &mut dyn IoQueue, bytenr: u64, len: u64) -> Result<()> {
        self.guarded(|tx| trees::csum::delete(tx, io, bytenr, len))
    }

    /// The crc32c recorded for the data block at `bytenr`.
    pub fn csum_lookup(&self, io: &mut dyn IoQueue, bytenr: u64) -> Result<Option<u32>> {
        trees::csum::lookup(self, io, self.vol.sh.sectorsize, bytenr)
    }

    /// Makes the transaction durable; returns its generation.
    pub fn commit(mut self, io: &mut dyn IoQueue) -> Result<u64> {
        self.usable()?;
        if let Err(e) = self.run_until_stable(io) {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        let sb = Superblock {
            fsid: self.vol.sh.fsid,
            generation: self.gen,
            root: self.roots[&TreeId::ROOT],
            nodesize: self.vol.sh.nodesize,
            sectorsize: self.vol.sh.sectorsize,
            total_bytes: self.vol.sh.total_bytes,
            bytes_used: self.bytes_used,
        };
        if let Err(e) = self.write_out(io, &sb) {
            self.vol.set_poison(e.to_string());
            self.failed = Some(e.to_string());
            return Err(e);
        }
        self.finish();
        Ok(self.gen)
    }

    /// Discards the transaction's changes (same as dropping it).
    pub fn abort(self) {}

    fn run_until_stable(&mut self, io: &mut dyn IoQueue) -> Result<()> {
        for _ in 0..MAX_COMMIT_PASSES {
            let changed: Vec<TreeId> = std::mem::take(&mut self.changed)
                .into_iter()
                .filter(|&t| t != TreeId::ROOT)
                .collect();
            for t in &changed {
                let item = RootItem(self.roots[t]).encode();
                self.put_internal(io, TreeId::ROOT, Key::new(t.0, kind::ROOT_ITEM, 0), &item)?;
            }
            self.changed.remove(&TreeId::ROOT);
            if self.delayed.is_empty() && changed.is_empty() {
                // Data extents allocated here whose references cancelled out are freed at
                // commit; their checksums go with them (which changes the csum tree: loop).
                if self.unreferenced_data.is_empty() {
                    return Ok(());
                }
                for (b, (l, csums_elsewhere)) in std::mem::take(&mut self.unreferenced_data) {
                    if !csums_elsewhere {
                        trees::csum::delete(self, io, b, l)?;
                    }
                    if self.adopted.contains(&b) {
                        self.pinned.push((b, l));
                    } else {
                        self.local_frees.push((b, l));
                    }
                }
                continue;
            }
            while let Some((bytenr, target, delta)) = self.delayed.pop_next() {
                trees::extent::apply_ref(self, io, bytenr, target, delta)?;
            }
        }
        Err(Error::Corrupt(format!(
            "commit of generation {} did not converge after {MAX_COMMIT_PASSES} passes",
            self.gen
        )))
    }

    fn write_out(&mut self, io: &mut dyn IoQueue, sb: &Superblock) -> Result<()> {
        self.fingers.clear();
        let sh = &self.vol.sh;
        sh.peak_commit_nodes.fetch_max(
            self.dirty.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        sh.write_nodes(io, self.dirty.values().map(|n| &**n))?;
        sh.flush(
            io,
            &format!("after writing the nodes of generation {}", self.gen),
        )?;
        sh.write_superblocks(io, sb)?;
        sh.flush(
            io,
            &format!("after writing the superblocks of generation {}", self.gen),
        )
    }

    /// Publishes the committed state and hands freed space on.
    fn finish(&mut self) {
        self.done = true;
        let nodes = &self.vol.sh.tree_nodes;
        let now = nodes.load(std::sync::atomic::Ordering::Relaxed);
        let after = now.saturating_add_signed(self.nodes_delta);
        nodes.store(after, std::sync::atomic::Ordering::Relaxed);
        self.vol.publish(Committed {
            generation: self.gen,
            roots: std::mem::take(&mut self.roots),
            bytes_used: self.bytes_used,
        });
        for (b, g) in std::mem::take(&mut self.replaced) {
            self.vol.sh.cache.forget(b, g);
        }
        self.report_dirty(0);
        for (_, n) in self.dirty.drain() {
            self.vol.sh.cache.insert(n);
        }
        let mut space = lock_space(self.vol);
        for (s, l) in std::mem::take(&mut self.local_frees) {
            if let Err(e) = space.free.free(s, l) {
                log::error!("cow: freeing after commit: {e}");
            }
        }
        let pinned = std::mem::take(&mut self.pinned);
        space.pending.push((self.gen, pinned));
        self.vol.release_pending(&mut space);
        self.vol.note_free(&space);
    }

    /// Tells the node cache that `nodes` dirty nodes take memory now. A dirty node is
    /// counted as 3/2 of the node size: a leaf copied for writing keeps room for a quarter
    /// more items, each 80 bytes in memory against some 60 on the device.
    fn report_dirty(&mut self, nodes: usize) {
        if nodes != self.dirty_reported {
            self.dirty_reported = nodes;
            let each = u64::from(self.vol.sh.nodesize) * 3 / 2;
            self.vol.sh.cache.set_dirty_bytes(nodes as u64 * each);
        }
    }

    pub(crate) fn mark_applied(&mut self, bytenr: u64) {
        if self.allocated.contains_key(&bytenr) {
            self.applied.insert(bytenr);
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.report_dirty(0);
        self.delayed.clear();
        std::mem::swap(&mut self.delayed, &mut self.writer.delayed);
        if self.done {
            return;
        }
        // Adopted ranges go back to being the caller's reservation.
        let adopted = std::mem::take(&mut self.adopted);
        let mut back: Vec<(u64, u64)> = self
            .allocated
            .drain()
            .filter(|(s, _)| !adopted.contains(s))
            .collect();
        back.sort_unstable();
        let mut space = self.space();
        for (s, l) in back {
            if let Err(e) = space.free.free(s, l) {
                log::error!("cow: giving back an aborted allocation: {e}");
            }
        }
    }
}

impl NodeSource for Transaction<'_> {
    fn load(&self, io: &mut dyn IoQueue, tree: TreeId, at: &NodeAddr) -> Result<Arc<Node>> {
        if at.generation == self.gen {
            return self.dirty.get(&at.bytenr).cloned().ok_or_else(|| {
                Error::Corrupt(format!(
                    "node {:#x} of tree {tree} claims this transaction's generation but is not \
                     one of its nodes",
                    at.bytenr
                ))
            });
        }
        self.vol.sh.read_node(io, tree, at)
    }

    fn root(&self, tree: TreeId) -> Result<RootPtr> {
        self.roots
            .get(&tree)
            .copied()
            .ok_or(Error::NoSuchTree(tree))
    }

    fn finger_leaf(&self, tree: TreeId, key: Key) -> Option<(Arc<Node>, Option<Key>)> {
        let f = self.finger(tree)?;
        let leaf = self.dirty.get(&f.leaf)?;
        let first = leaf.items().first()?.key;
        (leaf.level == 0 && f.holds(first, key)).then(|| (Arc::clone(leaf), f.hi))
    }
}

impl NodeWriter for Transaction<'_> {
    fn generation(&self) -> u64 {
        self.gen
    }

    fn nodesize(&self) -> u32 {
        self.vol.sh.nodesize
    }

    fn take(&mut self, bytenr: u64) -> Result<Node> {
        let n = self.dirty.remove(&bytenr).ok_or_else(|| {
            Error::Corrupt(format!(
                "node {bytenr:#x} is not dirty in generation {}",
                self.gen
            ))
        })?;
        Ok(Arc::try_unwrap(n).unwrap_or_else(|n| n.copy_for_write()))
    }

    fn put(&mut self, node: Node) {
        self.dirty.insert(node.bytenr, Arc::new(node));
        if self.dirty.len() >= self.dirty_reported + DIRTY_REPORT_STEP {
            self.report_dirty(self.dirty.len());
        }
    }

    fn alloc_node(&mut self, tree: TreeId, level: u8) -> Result<u64> {
        let bytenr = self.alloc_extent(u64::from(self.vol.sh.nodesize))?;
        self.nodes_delta += 1;
        self.delayed
            .add(bytenr, RefTarget::Tree { level, root: tree }, 1);
        Ok(bytenr)
    }

    fn free_node(&mut self, tree: TreeId, bytenr: u64, level: u8, generation: u64) {
        self.fingers.retain(|(_, f)| f.leaf != bytenr);
        self.dirty.remove(&bytenr);
        self.nodes_delta -= 1;
        let target = RefTarget::Tree { level, root: tree };
        if generation == self.gen && !self.applied.contains(&bytenr) {
            // Allocated by this transaction and not yet in the extent tree: the queued +1
            // cancels and the space is reusable at once; no committed state knows it.
            self.delayed.add(bytenr, target, -1);
            debug_assert_eq!(self.delayed.pending(bytenr, target), 0);
            let len = self
                .allocated
                .remove(&bytenr)
                .unwrap_or(u64::from(self.vol.sh.nodesize));
            if let Err(e) = self.space().free.free(bytenr, len) {
                log::error!("cow: freeing a node of this transaction: {e}");
            }
        } else {
            self.delayed.add(bytenr, target, -1);
            if generation != self.gen {
                self.replaced.push((bytenr, generation));
            }
        }
    }

    fn set_root(&mut self, tree: TreeId, root: RootPtr) {
        self.set_finger(tree, None);
        self.roots.insert(tree, root);
        self.changed.insert(tree);
    }

    fn finger(&self, tree: TreeId) -> Option<Finger> {
        self.fingers
            .iter()
            .find(|(t, _)| *t == tree)
            .map(|&(_, f)| f)
    }

    fn set_finger(&mut self, tree: TreeId, finger: Option<Finger>) {
        self.fingers.retain(|(t, _)| *t != tree);
        if let Some(f) = finger {
            self.fingers.push((tree, f));
        }
    }

    fn dirty_mut(&mut self, bytenr: u64) -> Option<&mut Node> {
        self.dirty.get_mut(&bytenr).map(Arc::make_mut)
    }
}

fn lock_space(vol: &Volume) -> SpaceGuard<'_> {
    vol.space.lock()
}
