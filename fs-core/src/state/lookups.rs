//! [`Lookups`]: the name cache (a directory's DIR_ITEM buckets: every name of one hash, so a
//! bucket answers "absent" too) and the attribute cache (a file's inode item and the byte
//! ranges its committed extents cover), as readers of the fs tree see them: the pending
//! namespace changes over the last committed state. Path resolution and stat answer from
//! here without a snapshot; a miss reads the trees and fills the entry.
//!
//! Invariants:
//! - an entry holds what a read of the trees would return now, for every key it stands
//!   for ([`Slot`]: DIR_ITEM `(dir, hash)`; INODE_ITEM and EXTENT_DATA of one inode);
//! - every write of such a key removes or replaces the entry before readers can see the
//!   write: a namespace operation ([`Lookups::published`]) while it still holds the pending
//!   changes' write lock, so readers see its changes and the new entries at once; a
//!   transaction ([`Changing`]) marks the slot *in flux* at its write and clears it after
//!   its commit published or failed: no entry of the slot exists meanwhile;
//! - a miss fills an entry only if nothing changed since before its read ([`Lookups::stamp`]
//!   then [`Lookups::fill_names`] / [`Lookups::fill_attrs`]): every change bumps the
//!   version, and no slot in flux is filled;
//! - the commit applying the pending changes writes what readers see already
//!   ([`Tx::put_as_pending`](super::Tx::put_as_pending)): no entry changes;
//! - entries count against a budget (`MountOptions::lookup_cache_entries`); past it an
//!   eighth of them go (by key hash, a different eighth each time).
//!
//! What memory holds beyond the items (sizes and times of cached writes, delalloc, the fsync
//! log's overlay) is not cached here: stat reads it live (`InodeTable::sizes_seen`).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use cow::Key;
use hashbrown::{HashMap, HashSet};

use super::lock::{Level, Ordered};
use super::pending::Changes;
use crate::items::{kind, DirEntries, DirEntry, FileType, InodeItem};

/// [`MountOptions::lookup_cache_entries`](crate::MountOptions)'s default: names plus inodes
/// (a name takes about 100 bytes, an inode about 150).
pub const DEFAULT_LOOKUP_CACHE_ENTRIES: usize = 131_072;

/// Directory buckets read by a miss, to cache: `((dir, name hash), names)`.
pub(crate) type NameFills = Vec<((u64, u64), Box<[DirEntry]>)>;

/// What one cache entry stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    /// The DIR_ITEM `(dir, name hash)`.
    Names(u64, u64),
    /// The inode item and the extent items of an inode.
    Attrs(u64),
}

impl Slot {
    /// The slot of fs-tree key `key`, if the cache holds anything of it.
    pub fn of(key: &Key) -> Option<Slot> {
        match key.kind {
            kind::DIR_ITEM => Some(Slot::Names(key.objectid, key.offset)),
            kind::INODE_ITEM | kind::EXTENT_DATA => Some(Slot::Attrs(key.objectid)),
            _ => None,
        }
    }
}

/// An inode's cached attributes.
#[derive(Clone, Debug)]
pub(crate) struct Attrs {
    pub item: InodeItem,
    /// Byte ranges of its committed extents (a directory: none).
    pub extents: Vec<(u64, u64)>,
}

/// The caches and their bookkeeping, under one lock.
struct Cache {
    names: HashMap<(u64, u64), Box<[DirEntry]>>,
    attrs: HashMap<u64, Attrs>,
    /// Slots a transaction wrote and has not committed (or aborted) yet, with a count.
    in_flux: HashMap<Slot, u32>,
    /// Bumped by every change (the atomic mirror is what fillers read first).
    version: u64,
    budget: usize,
    /// Which eighth the next eviction drops.
    sweep: u64,
}

/// The name and attribute caches of a mount.
pub(crate) struct Lookups {
    cache: Ordered<Cache>,
    /// `Cache::version`, readable without the lock.
    version: AtomicU64,
    /// Transactions that wrote a cached slot and ended: a namespace operation that saw one
    /// end while it ran does not write its items through (the trees changed under it).
    tx_ends: AtomicU64,
}

impl Lookups {
    pub fn new(budget: usize) -> Lookups {
        Lookups {
            cache: Ordered::new(
                Level::Lookups,
                Cache {
                    names: HashMap::new(),
                    attrs: HashMap::new(),
                    in_flux: HashMap::new(),
                    version: 0,
                    budget,
                    sweep: 0,
                },
            ),
            version: AtomicU64::new(0),
            tx_ends: AtomicU64::new(0),
        }
    }

    /// Changes the budget (before the mount is shared).
    pub fn set_budget(&mut self, budget: usize) {
        self.cache.lock().budget = budget;
    }

    /// What a filler reads before its snapshot, to pass to `fill_*`.
    pub fn stamp(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// See [`Lookups::tx_ends`](Lookups#structfield.tx_ends): read before a namespace
    /// operation starts, passed to [`Lookups::published`].
    pub fn tx_ends(&self) -> u64 {
        self.tx_ends.load(Ordering::SeqCst)
    }

    /// Runs `f` on the cache's entries (one lock for a whole path).
    pub fn with<T>(&self, f: impl FnOnce(&Hits<'_>) -> T) -> T {
        let c = self.cache.lock();
        f(&Hits { cache: &c })
    }

    /// The attributes of `ino`, if cached.
    pub fn attrs(&self, ino: u64) -> Option<Attrs> {
        self.cache.lock().attrs.get(&ino).cloned()
    }

    /// Caches the names of `(dir, hash)` read after [`Lookups::stamp`] returned `stamp`.
    pub fn fill_names(&self, stamp: u64, fills: NameFills) {
        let mut c = self.cache.lock();
        for (key, names) in fills {
            if c.fillable(stamp, Slot::Names(key.0, key.1)) {
                c.names.insert(key, names);
            }
        }
        c.keep_budget();
    }

    /// Caches the attributes of `ino` read after [`Lookups::stamp`] returned `stamp`.
    pub fn fill_attrs(&self, stamp: u64, ino: u64, attrs: Attrs) {
        let mut c = self.cache.lock();
        if c.fillable(stamp, Slot::Attrs(ino)) {
            c.attrs.insert(ino, attrs);
            c.keep_budget();
        }
    }

    /// A namespace operation's `changes` join the pending ones (called under their write
    /// lock, after readers are told changes are pending: see `Core::ns_apply`). It read the
    /// trees as of generation `base`, and [`Lookups::tx_ends`] was `tx_ends` before it
    /// started. Its items are written through (what it wrote is what readers will see),
    /// unless a transaction changed the trees meanwhile or is changing the slot: then the
    /// entries go.
    pub fn published(&self, changes: &Changes, base: u64, tx_ends: u64) {
        let mut c = self.cache.lock();
        // Under the lock, where `Changing` counts its end.
        let through = self.tx_ends() == tx_ends;
        c.bump(&self.version);
        if c.budget == 0 {
            return;
        }
        // Extents a namespace operation writes (a symlink's target) or deletes: the entry
        // goes, whatever happens to the inode item.
        let mut extents_changed = HashSet::new();
        for (k, v) in changes {
            match Slot::of(k) {
                Some(Slot::Names(dir, hash)) => {
                    let parsed = match v {
                        None => Some(Box::default()),
                        Some(d) => DirEntries::parse(d).ok().map(bucket),
                    };
                    let slot = Slot::Names(dir, hash);
                    match parsed.filter(|_| through && !c.in_flux.contains_key(&slot)) {
                        Some(names) => drop(c.names.insert((dir, hash), names)),
                        None => drop(c.names.remove(&(dir, hash))),
                    }
                }
                Some(Slot::Attrs(ino)) if k.kind == kind::EXTENT_DATA => {
                    extents_changed.insert(ino);
                    c.attrs.remove(&ino);
                }
                _ => {}
            }
        }
        for (k, v) in changes {
            if k.kind != kind::INODE_ITEM {
                continue;
            }
            let ino = k.objectid;
            let item = v.as_ref().and_then(|d| InodeItem::parse(d).ok());
            let keep = through
                && !extents_changed.contains(&ino)
                && !c.in_flux.contains_key(&Slot::Attrs(ino));
            let cached = c.attrs.contains_key(&ino);
            match item {
                Some(item) if keep && cached => {
                    if let Some(a) = c.attrs.get_mut(&ino) {
                        a.item = item;
                    }
                }
                // A new inode (not in the trees the operation read) has no extents, unless
                // it is a symlink: the operation that made it wrote its target as one.
                Some(item) if keep && item.generation > base && !is_symlink(&item) => {
                    let extents = Vec::new();
                    c.attrs.insert(ino, Attrs { item, extents });
                }
                _ => drop(c.attrs.remove(&ino)),
            }
        }
        c.keep_budget();
    }

    /// A transaction's writes to cached slots (see [`Changing`]).
    pub fn changing(&self) -> Changing<'_> {
        Changing {
            lookups: self,
            slots: HashSet::new(),
        }
    }

    /// Entries cached now: names, inodes.
    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        let c = self.cache.lock();
        (c.names.len(), c.attrs.len())
    }
}

/// Cache lookups under the lock.
pub(crate) struct Hits<'a> {
    cache: &'a Cache,
}

impl Hits<'_> {
    /// What `name` (of hash `hash`) is in directory `dir`: `Some(None)` if known absent,
    /// `None` if not cached.
    pub fn name(&self, dir: u64, hash: u64, name: &[u8]) -> Option<Option<&DirEntry>> {
        let names = self.cache.names.get(&(dir, hash))?;
        Some(names.iter().find(|e| e.name == name))
    }
}

fn is_symlink(item: &InodeItem) -> bool {
    FileType::of_mode(item.mode) == FileType::Symlink
}

fn bucket(list: DirEntries) -> Box<[DirEntry]> {
    list.0.into_iter().map(|(e, _)| e).collect()
}

/// The names read from a DIR_ITEM (`None`: no such item), as a bucket to cache.
pub(crate) fn bucket_of(list: Option<DirEntries>) -> Box<[DirEntry]> {
    list.map_or_else(Box::default, bucket)
}

impl Cache {
    fn bump(&mut self, mirror: &AtomicU64) {
        self.version += 1;
        mirror.store(self.version, Ordering::SeqCst);
    }

    fn fillable(&self, stamp: u64, slot: Slot) -> bool {
        self.budget > 0 && self.version == stamp && !self.in_flux.contains_key(&slot)
    }

    /// Drops an eighth of the entries once past the budget: no recency is kept (a hit
    /// would then write under the lock), and an entry dropped costs one read of the trees.
    fn keep_budget(&mut self) {
        if self.names.len() + self.attrs.len() <= self.budget {
            return;
        }
        if self.budget == 0 {
            self.names.clear();
            self.attrs.clear();
            return;
        }
        while self.names.len() + self.attrs.len() > self.budget {
            let eighth = self.sweep % 8;
            self.sweep += 1;
            let h = *self.names.hasher();
            self.names.retain(|k, _| (h.hash_one(k) >> 7) % 8 != eighth);
            let h = *self.attrs.hasher();
            self.attrs.retain(|k, _| (h.hash_one(k) >> 7) % 8 != eighth);
        }
    }
}

/// The cached slots a transaction wrote: in flux (no entry, no fill) from its first write
/// of each until this is dropped, which [`Tx`](super::Tx) does after its commit published
/// (or after it aborted).
pub(crate) struct Changing<'a> {
    lookups: &'a Lookups,
    slots: HashSet<Slot>,
}

impl Changing<'_> {
    /// The transaction writes fs-tree key `key`.
    pub fn write(&mut self, key: &Key) {
        let Some(slot) = Slot::of(key) else { return };
        if !self.slots.insert(slot) {
            return;
        }
        let mut c = self.lookups.cache.lock();
        c.bump(&self.lookups.version);
        *c.in_flux.entry(slot).or_default() += 1;
        match slot {
            Slot::Names(dir, hash) => drop(c.names.remove(&(dir, hash))),
            Slot::Attrs(ino) => drop(c.attrs.remove(&ino)),
        }
    }
}

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        let mut c = self.lookups.cache.lock();
        for slot in self.slots.drain() {
            if let Some(n) = c.in_flux.get_mut(&slot) {
                *n -= 1;
                if *n == 0 {
                    c.in_flux.remove(&slot);
                }
            }
        }
        c.bump(&self.lookups.version);
        // Under the lock: see `Lookups::published`.
        self.lookups.tx_ends.fetch_add(1, Ordering::SeqCst);
        drop(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cow::ItemData;

    fn entry(ino: u64, name: &[u8]) -> DirEntry {
        DirEntry {
            ino,
            ftype: FileType::File,
            name: name.to_vec(),
        }
    }

    fn names(l: &Lookups, dir: u64, hash: u64, name: &[u8]) -> Option<Option<u64>> {
        l.with(|h| h.name(dir, hash, name).map(|e| e.map(|e| e.ino)))
    }

    #[test]
    fn a_fill_after_a_change_is_refused() {
        let l = Lookups::new(100);
        let stamp = l.stamp();
        let mut tx = l.changing();
        tx.write(&Key::new(5, kind::DIR_ITEM, 9));
        l.fill_names(stamp, vec![((5, 9), vec![entry(7, b"a")].into())]);
        assert_eq!(names(&l, 5, 9, b"a"), None, "a fill from before the write");
        // In flux: even a fill stamped after the write is refused.
        let stamp = l.stamp();
        l.fill_names(stamp, vec![((5, 9), vec![entry(7, b"a")].into())]);
        assert_eq!(names(&l, 5, 9, b"a"), None, "a fill while in flux");
        drop(tx);
        l.fill_names(stamp, vec![((5, 9), vec![entry(7, b"a")].into())]);
        assert_eq!(names(&l, 5, 9, b"a"), None, "a fill from before the commit");
        let stamp = l.stamp();
        l.fill_names(stamp, vec![((5, 9), vec![entry(8, b"a")].into())]);
        assert_eq!(names(&l, 5, 9, b"a"), Some(Some(8)));
        assert_eq!(
            names(&l, 5, 9, b"b"),
            Some(None),
            "the bucket knows absent names"
        );
        assert_eq!(l.tx_ends(), 1);
    }

    fn item(size: u64, generation: u64) -> InodeItem {
        InodeItem {
            size,
            nlink: 1,
            mode: crate::items::mode::S_IFREG | 0o644,
            uid: 0,
            gid: 0,
            flags: Default::default(),
            atime_ns: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            btime_ns: 0,
            next_index: crate::items::FIRST_INDEX,
            generation,
        }
    }

    fn attrs(size: u64) -> Attrs {
        Attrs {
            item: item(size, 1),
            extents: Vec::new(),
        }
    }

    /// A namespace operation's changes: `name` → `ino` in directory 256, and `ino`'s item
    /// (created in generation `generation`).
    fn create(name: &[u8], ino: u64, generation: u64) -> Changes {
        let list = DirEntries(vec![(entry(ino, name), 2)]);
        let mut c = Changes::new();
        let hkey = Key::new(256, kind::DIR_ITEM, crate::items::name_hash(name));
        c.insert(hkey, Some(ItemData::from(&list.encode()[..])));
        let ikey = Key::new(ino, kind::INODE_ITEM, 0);
        c.insert(
            ikey,
            Some(ItemData::from(&item(0, generation).encode()[..])),
        );
        c
    }

    #[test]
    fn a_transaction_write_drops_the_entry() {
        let l = Lookups::new(100);
        l.fill_attrs(l.stamp(), 300, attrs(1));
        assert_eq!(l.attrs(300).map(|a| a.item.size), Some(1));
        let mut tx = l.changing();
        tx.write(&Key::new(300, kind::EXTENT_DATA, 0));
        assert!(l.attrs(300).is_none());
        drop(tx);
    }

    #[test]
    fn a_namespace_operation_writes_its_items_through() {
        let l = Lookups::new(100);
        let h = crate::items::name_hash(b"f");
        let stamp = l.stamp();
        // Generation 5 read, the inode made for generation 6: new, so no extents.
        l.published(&create(b"f", 300, 6), 5, l.tx_ends());
        assert_eq!(names(&l, 256, h, b"f"), Some(Some(300)));
        assert_eq!(l.attrs(300).map(|a| a.item.generation), Some(6));
        // A fill from before the operation loses.
        l.fill_names(stamp, vec![((256, h), Box::default())]);
        assert_eq!(names(&l, 256, h, b"f"), Some(Some(300)));
        // An inode already in the trees read, not cached: its extents are unknown.
        l.published(&create(b"g", 301, 5), 5, l.tx_ends());
        assert!(l.attrs(301).is_none());
    }

    #[test]
    fn a_namespace_operation_racing_a_transaction_drops_its_entries() {
        let l = Lookups::new(100);
        let h = crate::items::name_hash(b"f");
        // A transaction ended while the operation ran: what it wrote may not be what
        // readers see (an inode item laid over a newer committed one).
        let before = l.tx_ends();
        let mut tx = l.changing();
        tx.write(&Key::new(999, kind::INODE_ITEM, 0));
        drop(tx);
        l.published(&create(b"f", 300, 6), 5, before);
        assert_eq!(names(&l, 256, h, b"f"), None);
        assert!(l.attrs(300).is_none());
        // A transaction changing the inode still: no entry until it ends.
        let mut tx = l.changing();
        tx.write(&Key::new(300, kind::INODE_ITEM, 0));
        l.published(&create(b"f", 300, 6), 5, l.tx_ends());
        assert_eq!(names(&l, 256, h, b"f"), Some(Some(300)));
        assert!(l.attrs(300).is_none());
        drop(tx);
    }

    #[test]
    fn the_budget_holds() {
        let l = Lookups::new(64);
        for i in 0..1000u64 {
            let stamp = l.stamp();
            l.fill_names(stamp, vec![((256, i), vec![entry(i, b"x")].into())]);
            let (n, a) = l.len();
            assert!(
                n + a <= 64,
                "{n} names, {a} inodes cached past a budget of 64"
            );
        }
        assert!(l.len().0 > 32, "evictions keep most entries");
        let off = Lookups::new(0);
        off.fill_names(off.stamp(), vec![((256, 1), vec![entry(1, b"x")].into())]);
        assert_eq!(off.len(), (0, 0), "a budget of 0 caches nothing");
    }
}
