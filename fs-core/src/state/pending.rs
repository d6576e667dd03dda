//! [`Pending`]: the namespace changes not yet committed (group commit).
//!
//! A namespace operation (create, mkdir, link, unlink, rename, set attributes, xattrs) runs
//! on an [`Ns`] view, which collects its item changes privately and hands them here all at
//! once under the write lock: the operation is atomic for every reader at once, and durable
//! at the next commit, which applies these changes first in its transaction
//! (`durability/commit.rs`), then folds the fsync log, then deletes the inodes unlinked
//! meanwhile (their data references need the extent tree).
//!
//! Invariants:
//! - reads of the fs tree see `current` over `committing` over their snapshot of the
//!   committed state (`Core::read` holds the read lock for the whole read);
//! - `committing` is the layer of the one commit in flight (cow has one writer), tagged with
//!   the generation it commits as; a reader whose snapshot is of that generation or later
//!   skips it (its items are in the snapshot, where the fold may have changed them since);
//! - the layer leaves `committing` only under the write lock, after its commit published (it
//!   is dropped) or failed (its changes go back under `current`, nothing is lost);
//! - `active` is false only while both layers are empty: a read that sees it false reads
//!   the committed state alone, which then holds every change made before;
//! - operations are numbered in the order they apply; `committed` is the number of the last
//!   one durable, so a caller that needs operation `n` durable waits for or runs a commit
//!   only while `committed < n`.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bdev::IoQueue;
use cow::{Direction, ItemData, Key, ReadTxn};
use hashbrown::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::items::{kind, InodeItem, ORPHAN_OBJECTID};
use crate::state::lock::{Level, OrderedRw, ReadGuard, WriteGuard};
use crate::state::record::Entry;
use crate::state::tree::{Items, FS_TREE};

/// Item changes: the new data, or `None` for a deleted item.
pub(crate) type Changes = BTreeMap<Key, Option<ItemData>>;

/// Changes of the operations between two commits.
#[derive(Default)]
pub(crate) struct Layer {
    pub items: Changes,
    /// The inodes whose items changed, with the number of the last operation that did.
    pub inos: HashMap<u64, u64>,
    /// Inodes unlinked for good: the commit deletes what is left of them.
    pub deletes: Vec<u64>,
    /// Files whose mtime an operation set explicitly (`set_attr_ino`): their pending item's
    /// mtime wins over the committed one (see `durability/commit.rs`).
    pub explicit_mtime: HashSet<u64>,
    /// For each inode item in the layer, the committed generation it was read over: a
    /// reader of that generation (or an older one) takes the item as it is.
    pub inode_base: HashMap<u64, u64>,
    /// The number of the last operation in the layer.
    pub seq: u64,
    /// What of the layer no durable fsync-log record holds yet: each changed key, and each
    /// inode unlinked for good, with the number of the last operation that changed it.
    unlogged: BTreeMap<Key, u64>,
    unlogged_deletes: Vec<(u64, u64)>,
    /// The number of the last operation that a log record cannot carry (an explicit
    /// mtime: its item must win over a time the fold raises, which replay cannot tell).
    unloggable: u64,
}

impl Layer {
    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.deletes.is_empty()
    }

    /// A layer of the namespace entries of replayed fsync-log records (in record order),
    /// as if one operation, number `seq`, made them all.
    pub fn replayed(entries: &[Entry], base_generation: u64, seq: u64) -> Layer {
        let mut l = Layer {
            seq,
            ..Layer::default()
        };
        for e in entries {
            match e {
                Entry::Item { key, data } => {
                    let ino = e.ino();
                    if key.kind == kind::INODE_ITEM {
                        l.inode_base.insert(ino, base_generation);
                    }
                    l.inos.insert(ino, seq);
                    l.items.insert(*key, data.as_deref().map(ItemData::from));
                }
                Entry::Forget { ino } => l.deletes.push(*ino),
                _ => {}
            }
        }
        l
    }
}

/// The two layers, under [`Pending`]'s lock.
#[derive(Default)]
pub(crate) struct Layers {
    current: Layer,
    committing: Option<(u64, Arc<Layer>)>,
    next_seq: u64,
}

impl Layers {
    /// The committing layer, if a reader of a snapshot of `generation` must see it.
    fn committing_for(&self, generation: u64) -> Option<&Layer> {
        match &self.committing {
            Some((g, l)) if generation < *g => Some(l),
            _ => None,
        }
    }

    /// What the layers say of `key` (`Some(None)`: deleted; `None`: nothing), and the layer
    /// that holds it.
    fn get_in(&self, generation: u64, key: &Key) -> Option<(&Option<ItemData>, &Layer)> {
        if let Some(v) = self.current.items.get(key) {
            return Some((v, &self.current));
        }
        let l = self.committing_for(generation)?;
        l.items.get(key).map(|v| (v, l))
    }

    /// The layers' changes to keys in `lo..=hi`, in the order `dir` walks.
    fn range<'a>(
        &'a self,
        generation: u64,
        lo: Key,
        hi: Key,
        dir: Direction,
    ) -> impl Iterator<Item = (Key, Option<ItemData>)> + 'a {
        let empty = &EMPTY;
        let below = self.committing_for(generation).map_or(empty, |l| &l.items);
        Over::new(
            walk(&self.current.items, lo, hi, dir),
            walk(below, lo, hi, dir),
            dir,
        )
    }
}

static EMPTY: Changes = BTreeMap::new();

impl Layers {
    /// Whether an operation in the layers a reader of `generation` sees set the mtime of
    /// `ino` explicitly.
    fn explicit_mtime(&self, generation: u64, ino: u64) -> bool {
        self.current.explicit_mtime.contains(&ino)
            || self
                .committing_for(generation)
                .is_some_and(|l| l.explicit_mtime.contains(&ino))
    }
}

/// A pending inode item of file `ino` as it stands over the `committed` one, which may be
/// newer in what data writes change: an operation that read the item while a commit (a
/// fold, a completion) was changing the file's size or times wrote back what it read.
/// Namespace operations never change a file's size (truncate commits), and they keep its
/// times but for ctime (now) and an explicit mtime; commits of data only raise size and
/// times. So the committed size stands, and each time is the later of the two (the pending
/// mtime when it was set explicitly). A directory's item is the namespace's alone.
pub(crate) fn inode_over(
    ino: u64,
    pending: &[u8],
    committed: &[u8],
    explicit_mtime: bool,
) -> Result<ItemData> {
    let parse = |d: &[u8], what: &str| {
        InodeItem::parse(d).map_err(|e| Error::Corrupt(format!("{what} inode {ino}: {e}")))
    };
    let mut item = parse(pending, "pending")?;
    if item.is_dir() {
        return Ok(ItemData::from(pending));
    }
    let old = parse(committed, "committed")?;
    item.size = old.size;
    item.ctime_ns = item.ctime_ns.max(old.ctime_ns);
    if !explicit_mtime {
        item.mtime_ns = item.mtime_ns.max(old.mtime_ns);
    }
    Ok(ItemData::from(&item.encode()[..]))
}

/// What a read through the layers gets for `key`: their change, with a file's inode item
/// over the committed one read from `base` (see [`inode_over`]).
fn layered_get(
    layers: &Layers,
    generation: u64,
    key: Key,
    base: impl FnOnce() -> Result<Option<ItemData>>,
) -> Result<Option<Option<ItemData>>> {
    let Some((v, layer)) = layers.get_in(generation, &key) else {
        return Ok(None);
    };
    let ino = key.objectid;
    let newer_base = || layer.inode_base.get(&ino).is_none_or(|&b| b < generation);
    match v {
        // Read over the state this reader sees, or an older one that a commit since may
        // have changed.
        Some(d) if key.kind == kind::INODE_ITEM && newer_base() => match base()? {
            Some(c) => {
                let explicit = layers.explicit_mtime(generation, ino);
                Ok(Some(Some(inode_over(ino, d, &c, explicit)?)))
            }
            None => Ok(Some(Some(d.clone()))),
        },
        v => Ok(Some(v.clone())),
    }
}

fn walk(
    m: &Changes,
    lo: Key,
    hi: Key,
    dir: Direction,
) -> Box<dyn Iterator<Item = (Key, Option<ItemData>)> + '_> {
    let r = m.range(lo..=hi).map(|(k, v)| (*k, v.clone()));
    match dir {
        Direction::Forward => Box::new(r),
        Direction::Backward => Box::new(r.rev()),
    }
}

/// Two ordered walks merged, the first winning where both have a key.
struct Over<A: Iterator, B: Iterator> {
    a: Peekable<A>,
    b: Peekable<B>,
    forward: bool,
}

impl<A, B> Over<A, B>
where
    A: Iterator<Item = (Key, Option<ItemData>)>,
    B: Iterator<Item = (Key, Option<ItemData>)>,
{
    fn new(a: A, b: B, dir: Direction) -> Self {
        Over {
            a: a.peekable(),
            b: b.peekable(),
            forward: dir == Direction::Forward,
        }
    }
}

impl<A, B> Iterator for Over<A, B>
where
    A: Iterator<Item = (Key, Option<ItemData>)>,
    B: Iterator<Item = (Key, Option<ItemData>)>,
{
    type Item = (Key, Option<ItemData>);

    fn next(&mut self) -> Option<Self::Item> {
        let ka = self.a.peek().map(|x| x.0);
        let kb = self.b.peek().map(|x| x.0);
        match (ka, kb) {
            (Some(x), Some(y)) if x == y => {
                self.b.next();
                self.a.next()
            }
            (Some(x), Some(y)) if (y < x) == self.forward => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// Up to `max` items: the changes `over` (in `dir`'s order) applied over `base`'s items.
pub(crate) fn merged(
    over: impl Iterator<Item = (Key, Option<ItemData>)>,
    base: impl Iterator<Item = cow::Result<(Key, ItemData)>>,
    dir: Direction,
    max: usize,
) -> Result<Vec<(Key, ItemData)>> {
    let base = base.map(|r| r.map(|(k, v)| (k, Some(v))));
    let mut base = base.peekable();
    let mut over = over.peekable();
    let forward = dir == Direction::Forward;
    let mut out = Vec::new();
    while out.len() < max {
        let kb = match base.peek() {
            Some(Ok((k, _))) => Some(*k),
            Some(Err(_)) => match base.next() {
                Some(Err(e)) => return Err(e.into()),
                _ => unreachable!("peeked an error"),
            },
            None => None,
        };
        let ko = over.peek().map(|x| x.0);
        let next = match (ko, kb) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => {
                base.next();
                over.next()
            }
            (Some(x), Some(y)) if (y < x) == forward => base.next().and_then(|r| r.ok()),
            (Some(_), _) => over.next(),
            (None, _) => base.next().and_then(|r| r.ok()),
        };
        if let Some((k, Some(v))) = next {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// The namespace changes not yet committed, and the progress of their commits.
pub(crate) struct Pending {
    layers: OrderedRw<Layers>,
    active: AtomicBool,
    /// The number of the last operation a commit made durable.
    committed: AtomicU64,
    /// The number of the last operation a durable fsync-log record holds (with every one
    /// before it, committed or logged).
    logged: AtomicU64,
    /// The number of the last operation of the layer being committed (0: none).
    in_flight: AtomicU64,
    /// Signalled when a commit of pending changes ends; a leaf lock.
    ended: Mutex<()>,
    ended_cv: Condvar,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            layers: OrderedRw::new(Level::Pending, Layers::default()),
            active: AtomicBool::new(false),
            committed: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            ended: Mutex::new(()),
            ended_cv: Condvar::new(),
        }
    }
}

/// What a read sees of the pending changes: the layers, read-locked, for a snapshot of
/// `generation`.
pub(crate) struct View<'a> {
    layers: ReadGuard<'a, Layers>,
    generation: u64,
}

impl<'a> View<'a> {
    pub fn new(layers: ReadGuard<'a, Layers>, generation: u64) -> View<'a> {
        View { layers, generation }
    }

    /// The layers' change to `key` (`Some(None)`: deleted), `base` reading the committed
    /// item when a file's inode item must be laid over it.
    pub fn get(
        &self,
        key: Key,
        base: impl FnOnce() -> Result<Option<ItemData>>,
    ) -> Result<Option<Option<ItemData>>> {
        layered_get(&self.layers, self.generation, key, base)
    }

    pub fn range(
        &self,
        lo: Key,
        hi: Key,
        dir: Direction,
    ) -> impl Iterator<Item = (Key, Option<ItemData>)> + '_ {
        self.layers.range(self.generation, lo, hi, dir)
    }
}

impl Pending {
    /// The pending changes for a read, or `None` when nothing is pending (no lock then).
    /// The caller takes its snapshot after this, then makes it a [`View`].
    pub fn layers(&self) -> Option<ReadGuard<'_, Layers>> {
        if !self.active.load(Ordering::SeqCst) {
            return None;
        }
        Some(self.layers.read())
    }

    /// Whether any change waits for a commit.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Whether a commit would delete files unlinked meanwhile (and free their space).
    pub fn frees_space(&self) -> bool {
        self.is_active() && !self.layers.read().current.deletes.is_empty()
    }

    /// Changes in `current`, for the "enough work" trigger.
    pub fn current_items(&self) -> usize {
        if !self.is_active() {
            return 0;
        }
        self.layers.read().current.items.len()
    }

    /// The number of the last operation that changed `ino` and is not durable yet.
    pub fn seq_of(&self, ino: u64) -> Option<u64> {
        if !self.is_active() {
            return None;
        }
        let l = self.layers.read();
        let committed = self.durable();
        let committing = l.committing.as_ref().and_then(|(_, c)| c.inos.get(&ino));
        l.current
            .inos
            .get(&ino)
            .or(committing)
            .copied()
            .filter(|&s| s > committed)
    }

    /// The number of the last operation durable, committed or in a durable log record.
    fn durable(&self) -> u64 {
        let committed = self.committed.load(Ordering::SeqCst);
        committed.max(self.logged.load(Ordering::SeqCst))
    }

    /// Whether operation `seq` is durable; else whether a commit in flight makes it so.
    pub fn progress(&self, seq: u64) -> (bool, bool) {
        let done = self.durable() >= seq;
        (done, self.in_flight.load(Ordering::SeqCst) >= seq)
    }

    /// Waits until the commit in flight (if any) ended.
    pub fn wait_commit(&self) {
        let g = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let in_flight = self.in_flight.load(Ordering::SeqCst);
        if in_flight == 0 {
            return;
        }
        let _g = self
            .ended_cv
            .wait_while(g, |_| self.in_flight.load(Ordering::SeqCst) == in_flight)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// The namespace entries a log record must carry so that every operation pending now
    /// is durable with it, and the number of the last of them; `None` when a record
    /// cannot carry them (an operation set an mtime explicitly), or a commit is in
    /// flight. Called by a record writer holding the log (so no commit starts meanwhile).
    pub fn unlogged(&self) -> Option<(Vec<Entry>, u64)> {
        if !self.is_active() {
            return Some((Vec::new(), 0));
        }
        let l = self.layers.read();
        let cur = &l.current;
        if l.committing.is_some() || cur.unloggable > self.durable() {
            return None;
        }
        let mut v = Vec::with_capacity(cur.unlogged.len() + cur.unlogged_deletes.len());
        for k in cur.unlogged.keys() {
            let data = cur.items.get(k)?.as_deref().map(<[u8]>::to_vec);
            v.push(Entry::Item { key: *k, data });
        }
        v.extend(
            cur.unlogged_deletes
                .iter()
                .map(|&(_, ino)| Entry::Forget { ino }),
        );
        Some((v, cur.seq))
    }

    /// A record holding every operation up to `seq` ([`Pending::unlogged`]) is durable:
    /// what those operations changed needs no record any more (newer changes of the same
    /// keys still do).
    pub fn logged_through(&self, seq: u64) {
        if seq == 0 {
            return;
        }
        self.logged.fetch_max(seq, Ordering::SeqCst);
        let mut l = self.layers.write();
        let cur = &mut l.current;
        cur.unlogged.retain(|_, s| *s > seq);
        cur.unlogged_deletes.retain(|&(s, _)| s > seq);
    }

    /// Installs the namespace changes replayed from the fsync log (mount, before anything
    /// else is pending): reads see them, and the replay's commit applies them.
    pub fn replayed(&self, layer: Layer) {
        let mut l = self.layers.write();
        debug_assert!(l.current.is_empty() && l.committing.is_none());
        l.next_seq = l.next_seq.max(layer.seq);
        l.current = layer;
        self.active.store(!l.current.is_empty(), Ordering::SeqCst);
    }

    /// Starts a commit as `generation`: `current` becomes the committing layer (`None` when
    /// nothing is pending).
    pub fn take(&self, generation: u64) -> Option<Arc<Layer>> {
        if !self.is_active() {
            return None;
        }
        let mut l = self.layers.write();
        if l.current.is_empty() {
            return None;
        }
        debug_assert!(l.committing.is_none(), "one commit at a time");
        let layer = Arc::new(std::mem::take(&mut l.current));
        self.in_flight.store(layer.seq, Ordering::SeqCst);
        l.committing = Some((generation, Arc::clone(&layer)));
        Some(layer)
    }

    /// The commit of `generation` that took the committing layer ended: published (`ok`)
    /// or not. Commits never overlap (the fsync log's lock or its fold serialize them, and
    /// this runs before either is let go), so the layer is this commit's; checked anyway.
    pub fn end(&self, generation: u64, ok: bool) {
        let mut l = self.layers.write();
        let ours = matches!(l.committing, Some((g, _)) if g == generation);
        debug_assert!(
            ours,
            "the committing layer belongs to generation {generation}"
        );
        if let (true, Some((_, layer))) = (ours, l.committing.take()) {
            if ok {
                self.committed.fetch_max(layer.seq, Ordering::SeqCst);
            } else {
                give_back(&mut l.current, &layer);
            }
        }
        self.active.store(!l.current.is_empty(), Ordering::SeqCst);
        drop(l);
        let _g = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        self.in_flight.store(0, Ordering::SeqCst);
        self.ended_cv.notify_all();
    }
}

/// Puts a failed commit's `layer` back under `current` (whose changes are newer).
fn give_back(current: &mut Layer, layer: &Layer) {
    for (k, v) in &layer.items {
        current.items.entry(*k).or_insert_with(|| v.clone());
    }
    for (&ino, &seq) in &layer.inos {
        current.inos.entry(ino).or_insert(seq);
    }
    current
        .explicit_mtime
        .extend(layer.explicit_mtime.iter().copied());
    for (&ino, &g) in &layer.inode_base {
        current.inode_base.entry(ino).or_insert(g);
    }
    let mut deletes = layer.deletes.clone();
    deletes.append(&mut current.deletes);
    current.deletes = deletes;
    current.seq = current.seq.max(layer.seq);
    for (k, &seq) in &layer.unlogged {
        current.unlogged.entry(*k).or_insert(seq);
    }
    let mut unlogged = layer.unlogged_deletes.clone();
    unlogged.append(&mut current.unlogged_deletes);
    current.unlogged_deletes = unlogged;
    current.unloggable = current.unloggable.max(layer.unloggable);
}

/// A namespace operation's view: reads see its own changes over the pending ones over the
/// committed state; its changes join the pending ones when it succeeds ([`Ns::finish`]).
/// It holds the write lock throughout, so operations apply one at a time.
pub(crate) struct Ns<'a> {
    layers: WriteGuard<'a, Layers>,
    pending: &'a Pending,
    r: ReadTxn<'a>,
    io: &'a mut dyn IoQueue,
    changes: Changes,
    /// The last few keys this operation read from under its changes (pending layers or
    /// the snapshot), with what it found: both are fixed while it holds the write lock,
    /// and an operation reads some keys twice (an unlink its name's bucket).
    reads: Vec<(Key, Option<ItemData>)>,
    deletes: Vec<u64>,
    explicit_mtime: Vec<u64>,
    max_item: usize,
}

/// Entries of [`Ns`]'s read memo.
const NS_READ_MEMO: usize = 4;

impl<'a> Ns<'a> {
    pub fn new(pending: &'a Pending, vol: &'a cow::Volume, io: &'a mut dyn IoQueue) -> Ns<'a> {
        // The lock before the snapshot: a commit cannot end meanwhile, and one that
        // published already is skipped by its generation.
        let layers = pending.layers.write();
        Ns {
            layers,
            pending,
            r: vol.reader(),
            io,
            changes: Changes::new(),
            reads: Vec::new(),
            deletes: Vec::new(),
            explicit_mtime: Vec::new(),
            max_item: cow::format::max_item_size(vol.nodesize()),
        }
    }

    /// The generation new inodes are stamped with: the next commit's at the earliest.
    pub fn generation(&self) -> u64 {
        self.r.generation() + 1
    }

    pub fn max_item_size(&self) -> usize {
        self.max_item
    }

    pub fn put(&mut self, key: Key, data: &[u8]) -> Result<()> {
        self.changes.insert(key, Some(ItemData::from(data)));
        Ok(())
    }

    /// Deletes `key`, whether or not it exists: no read of the trees (an unlink deletes
    /// five keys; looking each up first was a third of its B-tree descents). Deleting a
    /// key that is not there is harmless: readers see it absent, the commit's delete
    /// finds nothing.
    pub fn del(&mut self, key: Key) -> Result<()> {
        self.changes.insert(key, None);
        Ok(())
    }

    /// `ino` has no name left and no handle: its inode item goes now, the rest (data
    /// references included) at the commit.
    pub fn delete_inode_later(&mut self, ino: u64) -> Result<()> {
        self.del(crate::state::tree::inode_key(ino))?;
        self.del(Key::new(ORPHAN_OBJECTID, kind::ORPHAN_ITEM, ino))?;
        self.deletes.push(ino);
        Ok(())
    }

    /// This operation sets the mtime of `ino` explicitly.
    pub fn set_mtime_explicitly(&mut self, ino: u64) {
        self.explicit_mtime.push(ino);
    }

    /// Adds the operation's changes to the pending ones; returns its number. `published`
    /// sees them (and the generation of the trees the operation read) once readers are
    /// told changes are pending, before any reader can see them.
    pub fn finish(mut self, published: impl FnOnce(&Changes, u64)) -> u64 {
        let base = self.r.generation();
        if !self.changes.is_empty() {
            // Readers that look from here on wait for the write lock, then see the changes.
            self.pending.active.store(true, Ordering::SeqCst);
            published(&self.changes, base);
        }
        let op = Op {
            changes: std::mem::take(&mut self.changes),
            deletes: std::mem::take(&mut self.deletes),
            explicit_mtime: std::mem::take(&mut self.explicit_mtime),
            base,
        };
        self.pending.apply(&mut self.layers, op)
    }
}

/// One operation's changes, as [`Ns::finish`] hands them over.
struct Op {
    changes: Changes,
    deletes: Vec<u64>,
    explicit_mtime: Vec<u64>,
    /// The committed generation the operation read over.
    base: u64,
}

impl Pending {
    /// Adds `op`'s changes to the pending ones, under the write lock `l`; returns its number.
    fn apply(&self, l: &mut Layers, op: Op) -> u64 {
        l.next_seq += 1;
        let seq = l.next_seq;
        for (k, v) in op.changes {
            let ino = if k.objectid == ORPHAN_OBJECTID {
                k.offset
            } else {
                k.objectid
            };
            if k.kind == kind::INODE_ITEM {
                // What the operation read was laid over its snapshot (`layered_get`).
                l.current.inode_base.insert(ino, op.base);
            }
            l.current.inos.insert(ino, seq);
            l.current.unlogged.insert(k, seq);
            l.current.items.insert(k, v);
        }
        let deletes = op.deletes.iter().map(|&ino| (seq, ino));
        l.current.unlogged_deletes.extend(deletes);
        l.current.deletes.extend(op.deletes);
        if !op.explicit_mtime.is_empty() {
            l.current.unloggable = seq;
        }
        l.current.explicit_mtime.extend(op.explicit_mtime);
        l.current.seq = seq;
        if !l.current.is_empty() {
            self.active.store(true, Ordering::SeqCst);
        }
        seq
    }
}

impl Items for Ns<'_> {
    fn get(&mut self, key: Key) -> Result<Option<ItemData>> {
        if let Some(v) = self.changes.get(&key) {
            return Ok(v.clone());
        }
        if let Some((_, v)) = self.reads.iter().find(|(k, _)| *k == key) {
            return Ok(v.clone());
        }
        let (r, io) = (&self.r, &mut *self.io);
        let base = || Ok(r.get(io, FS_TREE, key)?);
        let v = match layered_get(&self.layers, r.generation(), key, base)? {
            Some(v) => v,
            None => self.r.get(self.io, FS_TREE, key)?,
        };
        if self.reads.len() == NS_READ_MEMO {
            self.reads.remove(0);
        }
        self.reads.push((key, v.clone()));
        Ok(v)
    }

    fn range(
        &mut self,
        lo: Key,
        hi: Key,
        dir: Direction,
        max: usize,
    ) -> Result<Vec<(Key, ItemData)>> {
        let generation = self.r.generation();
        let over = Over::new(
            walk(&self.changes, lo, hi, dir),
            self.layers.range(generation, lo, hi, dir),
            dir,
        );
        let base = self.r.iter(self.io, FS_TREE, lo, hi, dir);
        merged(over, base, dir, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64, kind: u8, off: u64) -> Key {
        Key::new(ino, kind, off)
    }

    /// Applies an operation that puts `puts`, deletes `dels` and forgets `forget`.
    fn op(p: &Pending, puts: &[(Key, u8)], dels: &[Key], forget: &[u64], explicit: bool) -> u64 {
        let mut changes = Changes::new();
        for &(k, b) in puts {
            changes.insert(k, Some(ItemData::from(&[b][..])));
        }
        for &k in dels {
            changes.insert(k, None);
        }
        let op = Op {
            changes,
            deletes: forget.to_vec(),
            explicit_mtime: if explicit { vec![300] } else { Vec::new() },
            base: 4,
        };
        let mut l = p.layers.write();
        p.apply(&mut l, op)
    }

    /// A record takes every unlogged change with its latest value; once durable, only what
    /// changed after it stays unlogged; a later record takes the newer value of a key again.
    #[test]
    fn a_record_takes_what_no_record_holds_yet() {
        let p = Pending::default();
        let dir = key(256, kind::INODE_ITEM, 0);
        let name = key(256, kind::DIR_ITEM, 7);
        let a = op(
            &p,
            &[(dir, 1), (name, 1), (key(300, kind::INODE_ITEM, 0), 1)],
            &[],
            &[],
            false,
        );
        let (entries, upto) = p.unlogged().expect("loggable");
        assert_eq!((entries.len(), upto), (3, a));
        // An operation between building the record and its landing stays unlogged.
        let inode = key(300, kind::INODE_ITEM, 0);
        let b = op(&p, &[(dir, 2)], &[name, inode], &[300], false);
        p.logged_through(a);
        assert_eq!(p.seq_of(256), Some(b), "the directory changed again");
        assert_eq!(p.seq_of(300), Some(b), "300 was forgotten after the record");
        assert!(p.progress(a).0 && !p.progress(b).0);
        let (entries, upto) = p.unlogged().unwrap();
        assert_eq!(upto, b);
        assert_eq!(
            entries,
            vec![
                Entry::Item {
                    key: dir,
                    data: Some(vec![2])
                },
                Entry::Item {
                    key: name,
                    data: None
                },
                Entry::Item {
                    key: inode,
                    data: None
                },
                Entry::Forget { ino: 300 },
            ]
        );
        p.logged_through(b);
        assert_eq!(p.unlogged().unwrap(), (Vec::new(), b));
        assert_eq!(p.seq_of(256), None);
        // An explicit mtime cannot be logged until a commit takes it.
        let c = op(&p, &[(key(301, kind::INODE_ITEM, 0), 3)], &[], &[], true);
        assert!(p.unlogged().is_none());
        assert_eq!(p.seq_of(301), Some(c));
    }

    /// Replay's layer: later values of a key win, forgotten inodes are deleted at the
    /// commit, and the operations numbered after it.
    #[test]
    fn replayed_entries_become_one_pending_layer() {
        let k = key(257, kind::INODE_ITEM, 0);
        let entries = [
            Entry::Item {
                key: k,
                data: Some(vec![1]),
            },
            Entry::Size { ino: 257, size: 9 },
            Entry::Item {
                key: k,
                data: Some(vec![2]),
            },
            Entry::Forget { ino: 258 },
        ];
        let p = Pending::default();
        p.replayed(Layer::replayed(&entries, 6, 1));
        assert!(p.is_active());
        let l = p.layers.read();
        assert_eq!(l.current.items[&k].as_deref(), Some(&[2u8][..]));
        assert_eq!(l.current.deletes, vec![258]);
        assert_eq!(l.current.inode_base[&257], 6);
        drop(l);
        assert_eq!(op(&p, &[(k, 3)], &[], &[], false), 2);
    }
}
