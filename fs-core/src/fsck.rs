//! fsck: a read-only check of a whole filesystem image.
//!
//! Walks every tree through cow's own check (every node read and validated, metadata
//! extent items against reachable nodes, bytes used against the extent tree, free space
//! rebuilt without overlaps), then the fs level: every item parses; each name is in its
//! DIR_ITEM, DIR_INDEX and INODE_REF, pointing at an inode of the right type; link counts
//! match names; unlinked inodes are orphans; file extents do not overlap; every data
//! extent's reference count and back-references match the file extents exactly (no leak,
//! no dangling reference); every block of a checksummed extent matches its crc32c on the
//! device. Before the trees: every superblock copy of the volume (a damaged copy is an error
//! even when another one opened the volume). Keys must be where lookups look: an inode at
//! offset 0, an attribute or name at its hash.
//!
//! Exit codes as e2fsck: 0 clean, 4 errors found, 8 operational error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bdev::{BlockDevice, Bufs, Lba, Op};
use cow::format::{kind as ckind, superblock_offsets, DataBackref, ExtentItem, CSUM_OBJECTID};
use cow::{Direction, Key, TreeId, Volume};

use crate::error::{Error, Result};
use crate::items::{
    kind, DirEntries, DirEntry, ExtentKind, FileExtent, FileType, InodeFlags, InodeItem, InodeRefs,
    Xattrs, ORPHAN_OBJECTID, ROOT_INO,
};

/// Where a running fsck is, passed to [`FsckOptions::progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsckProgress {
    /// The phase: [`PHASE_METADATA`], [`PHASE_NAMESPACE`] or [`PHASE_DATA`], in this order
    /// (the data phase only with [`FsckOptions::check_data`] and no error found before it).
    pub phase: &'static str,
    /// Work done in this phase, in [`FsckProgress::unit`]s.
    pub done: u64,
    /// The phase's whole work, or 0 when unknown (indeterminate). When known, `done`
    /// never exceeds it and the phase's last report has `done == total`.
    pub total: u64,
    /// What `done` and `total` count: `"bytes"` or `"items"`.
    pub unit: &'static str,
}

/// Reading and validating every metadata node (`done`: bytes of nodes read; total unknown).
pub const PHASE_METADATA: &str = "metadata";
/// Walking the fs, extent and checksum trees (`done`: items; total unknown).
pub const PHASE_NAMESPACE: &str = "namespace";
/// Reading every checksummed data block (`done`/`total`: bytes; total known).
pub const PHASE_DATA: &str = "data checksums";

/// A progress callback (see [`FsckOptions::progress`]).
pub type FsckProgressFn = Arc<dyn Fn(FsckProgress) + Send + Sync>;

/// Items between two namespace-phase reports.
const PROGRESS_ITEMS: u64 = 4096;
/// Data bytes between two data-phase reports.
const PROGRESS_BYTES: u64 = 1 << 20;

/// What to check.
#[derive(Clone)]
pub struct FsckOptions {
    /// Read every data block and compare it with its checksum.
    pub check_data: bool,
    /// Stop collecting after this many errors.
    pub max_errors: usize,
    /// Called as fsck goes: once when each phase starts (`done == 0`), then every few
    /// hundred nodes, every 4096 items or every MiB of data, and once when it ends.
    pub progress: Option<FsckProgressFn>,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions {
            check_data: true,
            max_errors: 100,
            progress: None,
        }
    }
}

impl std::fmt::Debug for FsckOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsckOptions")
            .field("check_data", &self.check_data)
            .field("max_errors", &self.max_errors)
            .field(
                "progress",
                &self.progress.as_ref().map(|_| "Fn(FsckProgress)"),
            )
            .finish()
    }
}

impl FsckOptions {
    fn report(&self, phase: &'static str, done: u64, total: u64, unit: &'static str) {
        if let Some(p) = &self.progress {
            p(FsckProgress {
                phase,
                done,
                total,
                unit,
            });
        }
    }
}

/// What fsck found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Problems, each naming the structure and what is wrong.
    pub errors: Vec<String>,
    /// Metadata nodes read and validated.
    pub nodes: usize,
    /// Inodes.
    pub inodes: usize,
    /// Directory entries.
    pub entries: usize,
    /// Data extents.
    pub data_extents: usize,
    /// Data blocks whose checksum was verified.
    pub blocks_verified: u64,
    /// Free bytes.
    pub free_bytes: u64,
    /// Free bytes in whole B-tree-node-sized pieces: what commits can allocate nodes from.
    pub node_free_bytes: u64,
    /// The part of those no data write takes (`cow::Volume::metadata_reserve`). Less free
    /// in whole nodes than this is no error (nothing is inconsistent), but writes then get
    /// ENOSPC while bytes are free, until deleted files give whole nodes back.
    pub metadata_reserve: u64,
}

impl FsckReport {
    /// No error found.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// The e2fsck exit code: 0 clean, 4 errors found.
    pub fn exit_code(&self) -> i32 {
        if self.is_clean() {
            0
        } else {
            4
        }
    }
}

/// The exit code of an fsck run: the report's, or 8 for an operational error.
pub fn fsck_exit_code(r: &Result<FsckReport>) -> i32 {
    match r {
        Ok(rep) => rep.exit_code(),
        Err(_) => 8,
    }
}

/// Checks the filesystem on `dev` (read-only). A volume that cannot even be opened because
/// its metadata is corrupt is a report with that error; `Err` is an operational error
/// (the device cannot be used).
pub fn fsck(dev: Arc<dyn BlockDevice>, opts: &FsckOptions) -> Result<FsckReport> {
    let mut rep = FsckReport::default();
    let mut io = dev.queue(64)?;
    let vol = match Volume::open(Arc::clone(&dev), &mut *io, &cow::OpenOptions::default()) {
        Ok(v) => v,
        Err(e @ (cow::Error::Device(_) | cow::Error::Io { .. })) => return Err(e.into()),
        Err(e) => {
            rep.errors.push(format!("volume does not open: {e}"));
            return Ok(rep);
        }
    };
    rep.errors.extend(check_superblocks(&*dev, &mut *io, &vol));
    rep.free_bytes = vol.free_bytes();
    rep.node_free_bytes = vol.node_slot_bytes();
    rep.metadata_reserve = vol.metadata_reserve();
    let r = vol.reader();
    let nodesize = u64::from(vol.nodesize());
    opts.report(PHASE_METADATA, 0, 0, "bytes");
    let mut meta = |n: usize| opts.report(PHASE_METADATA, n as u64 * nodesize, 0, "bytes");
    match r.check_with_progress(&mut *io, &mut meta) {
        Ok(c) => rep.nodes = c.nodes,
        Err(e) => {
            rep.errors.push(format!("tree check: {e}"));
            return Ok(rep);
        }
    }
    if !r.trees().contains(&TreeId::FS) {
        rep.errors.push("no fs tree".into());
        return Ok(rep);
    }
    let mut w = Walk {
        opts: opts.clone(),
        ..Walk::default()
    };
    opts.report(PHASE_NAMESPACE, 0, 0, "items");
    let items = r.iter(&mut *io, TreeId::FS, Key::MIN, Key::MAX, Direction::Forward);
    for item in items {
        match item {
            Ok((k, d)) => {
                w.item(&k, &d);
                w.tick_item();
            }
            Err(e) => {
                w.err(format!("reading the fs tree: {e}"));
                break;
            }
        }
    }
    w.check_namespace();
    w.check_extent_refs(&r, &mut *io);
    w.check_csum_ranges(&r, &mut *io, u64::from(vol.sectorsize()));
    opts.report(PHASE_NAMESPACE, w.items, 0, "items");
    if opts.check_data && w.errors.is_empty() {
        w.check_data(&*dev, &vol, &r, &mut *io, &mut rep);
    }
    rep.inodes = w.inodes.len();
    rep.entries = w.index.len();
    rep.data_extents = w.refs.len();
    w.errors.truncate(opts.max_errors);
    rep.errors.extend(w.errors);
    drop(r);
    drop(vol);
    check_fsync_log(dev, &mut rep)?;
    Ok(rep)
}

/// The fsync log: a damaged record with valid records after it means fsync'd changes a
/// mount cannot replay (`durability/gap.rs`): an error naming the record and the inodes.
fn check_fsync_log(dev: Arc<dyn BlockDevice>, rep: &mut FsckReport) -> Result<()> {
    if let Some(gap) = crate::durability::log_gap(dev)? {
        rep.errors.push(gap.message());
    }
    Ok(())
}

/// Every superblock copy of the volume: a damaged one is an error naming it, though the
/// volume opened from another (a destroyed primary is not "clean"). A copy of an older
/// generation is not an error: a commit interrupted between the copies leaves one, and the
/// next commit rewrites every copy.
fn check_superblocks(
    dev: &dyn BlockDevice,
    io: &mut dyn bdev::IoQueue,
    vol: &Volume,
) -> Vec<String> {
    let ours = superblock_offsets(vol.total_bytes());
    let repair = "a read-write mount rewrites every copy at its first commit";
    let mut errs = Vec::new();
    for c in cow::read_superblock_copies(dev, io) {
        if !ours.contains(&c.offset) {
            continue;
        }
        match &c.state {
            Err(why) => errs.push(format!(
                "{} is damaged: {why} (the volume opened from another copy; {repair})",
                c.name()
            )),
            Ok(sb) if sb.fsid != vol.fsid() => errs.push(format!(
                "{} belongs to another filesystem (its fsid differs); {repair}",
                c.name()
            )),
            Ok(sb) if sb.generation > vol.generation() => errs.push(format!(
                "{} (generation {}) is unusable: its trees do not load, so the volume opened \
                 from an older copy (generation {}); {repair}",
                c.name(),
                sb.generation,
                vol.generation()
            )),
            Ok(_) => {}
        }
    }
    errs
}

/// What the fs tree holds, gathered in one pass.
#[derive(Default)]
struct Walk {
    errors: Vec<String>,
    inodes: BTreeMap<u64, InodeItem>,
    /// (dir, index) → entry.
    index: BTreeMap<(u64, u64), DirEntry>,
    /// (dir, name) → (ino, index) from DIR_ITEMs.
    by_name: HashMap<(u64, Vec<u8>), (u64, u64)>,
    /// (child, dir, index, name) from INODE_REFs.
    refs_of: Vec<(u64, u64, u64, Vec<u8>)>,
    /// (ino, file offset) → extent.
    extents: BTreeMap<(u64, u64), FileExtent>,
    orphans: HashSet<u64>,
    /// data extent (bytenr, len) → backref → count, from file extents.
    refs: BTreeMap<(u64, u64), BTreeMap<DataBackref, u64>>,
    /// Data extents of the extent tree.
    data_extents: std::collections::BTreeSet<(u64, u64)>,
    /// Data extents whose checksums their file extents keep (extent item flag).
    csums_elsewhere: HashSet<u64>,
    /// Where progress goes.
    opts: FsckOptions,
    /// Tree items walked (namespace phase progress).
    items: u64,
}

impl Walk {
    fn tick_item(&mut self) {
        self.items += 1;
        if self.items % PROGRESS_ITEMS == 0 {
            self.opts.report(PHASE_NAMESPACE, self.items, 0, "items");
        }
    }

    fn err(&mut self, e: String) {
        self.errors.push(e);
    }

    fn item(&mut self, k: &Key, d: &[u8]) {
        let r: std::result::Result<(), String> = (|| {
            match k.kind {
                // Lookups find an inode only at offset 0: elsewhere it is unreachable.
                kind::INODE_ITEM if k.offset != 0 => {
                    InodeItem::parse(d)?;
                    return Err(format!(
                        "an inode item's key offset must be 0, so inode {} cannot be found",
                        k.objectid
                    ));
                }
                kind::INODE_ITEM => {
                    self.inodes.insert(k.objectid, InodeItem::parse(d)?);
                }
                kind::INODE_REF => {
                    for (index, name) in InodeRefs::parse(d)?.0 {
                        self.refs_of.push((k.objectid, k.offset, index, name));
                    }
                }
                kind::DIR_ITEM => {
                    for (e, index) in DirEntries::parse(d)?.0 {
                        if crate::items::name_hash(&e.name) != k.offset {
                            return Err("name does not hash to its key".into());
                        }
                        self.by_name.insert((k.objectid, e.name), (e.ino, index));
                    }
                }
                kind::DIR_INDEX => {
                    self.index
                        .insert((k.objectid, k.offset), DirEntry::parse(d)?);
                }
                kind::EXTENT_DATA => {
                    self.extents
                        .insert((k.objectid, k.offset), FileExtent::parse(d)?);
                }
                kind::XATTR_ITEM => {
                    // Lookups go by the name's hash: an attribute elsewhere is unreachable.
                    for (name, _) in Xattrs::parse(d)?.0 {
                        if crate::items::name_hash(&name) != k.offset {
                            return Err(format!(
                                "attribute {:?} does not hash to its key",
                                String::from_utf8_lossy(&name)
                            ));
                        }
                    }
                }
                kind::ORPHAN_ITEM if k.objectid == ORPHAN_OBJECTID => {
                    self.orphans.insert(k.offset);
                }
                other => return Err(format!("unknown item type {other}")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.err(format!("fs tree item {k}: {e}"));
        }
    }

    fn check_namespace(&mut self) {
        let mut errs = Vec::new();
        let mut names: HashMap<u64, u32> = HashMap::new();
        let mut subdirs: HashMap<u64, u32> = HashMap::new();
        for (&(dir, index), e) in &self.index {
            match self.by_name.get(&(dir, e.name.clone())) {
                Some(&(ino, ix)) if ino == e.ino && ix == index => {}
                _ => errs.push(format!("dir {dir} index {index}: no matching dir item")),
            }
            let has_ref = self
                .refs_of
                .iter()
                .any(|r| (r.0, r.1, r.2) == (e.ino, dir, index));
            if !has_ref {
                errs.push(format!(
                    "dir {dir} index {index}: inode {} has no ref",
                    e.ino
                ));
            }
            match self.inodes.get(&e.ino) {
                Some(i) if FileType::of_mode(i.mode) == e.ftype => {}
                Some(_) => errs.push(format!("dir {dir} index {index}: wrong type")),
                None => errs.push(format!("dir {dir} index {index}: inode {} missing", e.ino)),
            }
            match self.inodes.get(&dir) {
                Some(d) if d.is_dir() && d.next_index > index => {}
                _ => errs.push(format!(
                    "dir {dir}: not a directory or index {index} too high"
                )),
            }
            *names.entry(e.ino).or_default() += 1;
            if e.ftype == FileType::Dir {
                *subdirs.entry(dir).or_default() += 1;
            }
        }
        self.check_links(&names, &subdirs, &mut errs);
        self.check_extents(&mut errs);
        self.errors.extend(errs);
    }

    /// Item counts agree; link counts match names; nameless inodes are orphans.
    fn check_links(
        &self,
        names: &HashMap<u64, u32>,
        subdirs: &HashMap<u64, u32>,
        errs: &mut Vec<String>,
    ) {
        if self.by_name.len() != self.index.len() || self.refs_of.len() != self.index.len() {
            errs.push(format!(
                "{} dir items, {} dir index items, {} inode refs",
                self.by_name.len(),
                self.index.len(),
                self.refs_of.len()
            ));
        }
        for (&ino, i) in &self.inodes {
            if ino == crate::state::LOG_INO {
                // The fsync log's owner has no name.
                continue;
            }
            let n = names.get(&ino).copied().unwrap_or(0);
            let want = if i.is_dir() {
                if ino != ROOT_INO && n != 1 && !(n == 0 && self.orphans.contains(&ino)) {
                    errs.push(format!("directory {ino} has {n} names"));
                }
                if i.nlink == 0 {
                    0
                } else {
                    2 + subdirs.get(&ino).copied().unwrap_or(0)
                }
            } else {
                n
            };
            if i.nlink != want {
                errs.push(format!(
                    "inode {ino}: nlink {} but {want} expected",
                    i.nlink
                ));
            }
            if ino != ROOT_INO && n == 0 && !self.orphans.contains(&ino) {
                errs.push(format!("inode {ino} has no name and is no orphan"));
            }
        }
        for o in &self.orphans {
            if self.inodes.get(o).is_none_or(|i| i.nlink != 0) {
                errs.push(format!("orphan item for inode {o}, which is not unlinked"));
            }
        }
    }

    fn check_extents(&mut self, errs: &mut Vec<String>) {
        let mut prev: Option<(u64, u64)> = None;
        for (&(ino, off), fe) in &self.extents {
            if !self.inodes.contains_key(&ino) {
                errs.push(format!("extent of missing inode {ino} at {off}"));
            }
            if let Some((pino, pend)) = prev {
                if pino == ino && pend > off {
                    errs.push(format!("inode {ino}: extents overlap at {off}"));
                }
            }
            prev = Some((ino, off + fe.num_bytes));
            if fe.kind != ExtentKind::Inline {
                let b = crate::data::backref(ino, off - fe.offset);
                *self
                    .refs
                    .entry((fe.disk_bytenr, fe.disk_len))
                    .or_default()
                    .entry(b)
                    .or_default() += 1;
            }
        }
    }

    fn check_extent_refs(&mut self, r: &cow::ReadTxn<'_>, io: &mut dyn bdev::IoQueue) {
        let mut found: BTreeMap<(u64, u64), (u64, BTreeMap<DataBackref, u64>)> = BTreeMap::new();
        let mut last_len: HashMap<u64, u64> = HashMap::new();
        for item in r.iter(io, TreeId::EXTENT, Key::MIN, Key::MAX, Direction::Forward) {
            let (k, d) = match item {
                Ok(x) => x,
                Err(e) => return self.err(format!("reading the extent tree: {e}")),
            };
            self.tick_item();
            match k.kind {
                ckind::EXTENT_ITEM => match ExtentItem::parse(&d) {
                    Ok(e) => {
                        let entry = found.entry((k.objectid, k.offset)).or_default();
                        entry.0 = e.refs;
                        if let Some((b, n)) = e.inline {
                            *entry.1.entry(b).or_default() += u64::from(n);
                        }
                        if e.csums_elsewhere {
                            self.csums_elsewhere.insert(k.objectid);
                        }
                        last_len.insert(k.objectid, k.offset);
                    }
                    Err(e) => self.err(format!("extent item {k}: {e}")),
                },
                ckind::EXTENT_DATA_REF => match DataBackref::parse(&d) {
                    Ok((b, n)) => {
                        let len = last_len.get(&k.objectid).copied().unwrap_or(0);
                        *found
                            .entry((k.objectid, len))
                            .or_default()
                            .1
                            .entry(b)
                            .or_default() += u64::from(n);
                    }
                    Err(e) => self.err(format!("data ref {k}: {e}")),
                },
                _ => {}
            }
        }
        self.data_extents = found.keys().copied().collect();
        // A file extent carries its block's checksum exactly when its data extent says its
        // checksums are kept by its referrers.
        let mut mismatched = Vec::new();
        for (&(ino, off), fe) in &self.extents {
            if fe.kind != ExtentKind::Regular {
                continue;
            }
            let elsewhere = self.csums_elsewhere.contains(&fe.disk_bytenr);
            if fe.csum.is_some() != elsewhere {
                mismatched.push(format!(
                    "inode {ino} offset {off}: the file extent {} a checksum, but data extent \
                     {:#x} keeps its checksums {}",
                    if fe.csum.is_some() {
                        "carries"
                    } else {
                        "lacks"
                    },
                    fe.disk_bytenr,
                    if elsewhere {
                        "with its referrers"
                    } else {
                        "in the checksum tree"
                    }
                ));
            }
        }
        self.errors.extend(mismatched);
        for (ext, (refs, backrefs)) in &found {
            let sum: u64 = backrefs.values().sum();
            if *refs != sum {
                self.err(format!(
                    "data extent {:#x}: refs {refs}, back-references {sum}",
                    ext.0
                ));
            }
            match self.refs.get(ext) {
                Some(want) if want == backrefs => {}
                Some(want) => self.err(format!(
                    "data extent {:#x}+{:#x}: extent tree has {backrefs:?}, files have {want:?}",
                    ext.0, ext.1
                )),
                None => self.err(format!(
                    "data extent {:#x}+{:#x} is referenced by no file (leaked)",
                    ext.0, ext.1
                )),
            }
        }
        for ext in self.refs.keys() {
            if !found.contains_key(ext) {
                self.errors.push(format!(
                    "file extent points at {:#x}+{:#x}, which the extent tree does not know",
                    ext.0, ext.1
                ));
            }
        }
    }

    /// Every checksum item lies inside one data extent (checksums of freed space are
    /// leaks, and would make a later extent there look checksummed).
    fn check_csum_ranges(&mut self, r: &cow::ReadTxn<'_>, io: &mut dyn bdev::IoQueue, bs: u64) {
        let extents: Vec<(u64, u64)> = self.data_extents.iter().copied().collect();
        let lo = Key::new(CSUM_OBJECTID, ckind::EXTENT_CSUM, 0);
        let hi = Key::new(CSUM_OBJECTID, ckind::EXTENT_CSUM, u64::MAX);
        for item in r.iter(io, TreeId::CSUM, lo, hi, Direction::Forward) {
            let (k, d) = match item {
                Ok(x) => x,
                Err(e) => return self.err(format!("reading the checksum tree: {e}")),
            };
            self.tick_item();
            let end = k.offset + d.len() as u64 / 4 * bs;
            let i = extents.partition_point(|&(b, _)| b <= k.offset);
            let inside = i > 0 && {
                let (b, l) = extents[i - 1];
                k.offset >= b && end <= b + l
            };
            if !inside {
                self.err(format!(
                    "checksums of {:#x}..{end:#x} lie outside every data extent",
                    k.offset
                ));
            } else if self.csums_elsewhere.contains(&extents[i - 1].0) {
                self.err(format!(
                    "checksums of {:#x}..{end:#x} in the checksum tree belong to an extent \
                     whose file extents keep its checksum",
                    k.offset
                ));
            }
        }
    }

    fn check_data(
        &mut self,
        dev: &dyn BlockDevice,
        vol: &Volume,
        r: &cow::ReadTxn<'_>,
        io: &mut dyn bdev::IoQueue,
        rep: &mut FsckReport,
    ) {
        let bs = u64::from(vol.sectorsize());
        let sector = u64::from(dev.geometry().block_size);
        let exec = bdev::exec::Context::new();
        let Ok(id) = exec.attach(dev, 16) else {
            return self.err("cannot attach the device to read data".into());
        };
        let verified = |ino: u64| {
            !self
                .inodes
                .get(&ino)
                .is_some_and(|i| i.flags.contains(InodeFlags::NOCOW))
        };
        // The blocks to read, each once however many files share it: counted first so the
        // data phase has a known total.
        let mut to_check: HashSet<u64> = HashSet::new();
        for (&(ino, _), fe) in &self.extents {
            if fe.kind == ExtentKind::Regular && verified(ino) {
                to_check.extend((fe.addr()..fe.addr() + fe.num_bytes).step_by(bs as usize));
            }
        }
        let total = to_check.len() as u64 * bs;
        let mut done = 0u64;
        let mut last = 0u64;
        self.opts.report(PHASE_DATA, 0, total, "bytes");
        let mut errs = Vec::new();
        for (&(ino, off), fe) in &self.extents {
            if fe.kind != ExtentKind::Regular || !verified(ino) {
                continue;
            }
            let mut at = fe.addr();
            while at < fe.addr() + fe.num_bytes {
                if to_check.remove(&at) {
                    done += bs;
                    if done - last >= PROGRESS_BYTES {
                        last = done;
                        self.opts.report(PHASE_DATA, done, total, "bytes");
                    }
                    match read_block(&exec, id, dev, at, bs, sector) {
                        Ok(bytes) => {
                            let got = crc32c::crc32c(&bytes);
                            let recorded = match fe.csum {
                                Some(c) => Ok(Some(c)),
                                None => r.csum_lookup(io, at),
                            };
                            match recorded {
                                Ok(Some(w)) if w == got => rep.blocks_verified += 1,
                                Ok(w) => errs.push(format!(
                                    "inode {ino} offset {}: block {at:#x} crc {got:#010x}, recorded {w:?}",
                                    off + (at - fe.addr())
                                )),
                                Err(e) => errs.push(format!("checksum lookup {at:#x}: {e}")),
                            }
                        }
                        Err(e) => errs.push(format!("reading data block {at:#x}: {e}")),
                    }
                }
                at += bs;
            }
        }
        if last != done || total == 0 {
            self.opts.report(PHASE_DATA, done, total, "bytes");
        }
        self.errors.extend(errs);
    }
}

fn read_block(
    exec: &bdev::exec::Context,
    id: bdev::exec::DevId,
    dev: &dyn BlockDevice,
    at: u64,
    bs: u64,
    sector: u64,
) -> std::result::Result<Vec<u8>, Error> {
    let buf = dev.alloc_buf(bs as usize)?;
    let op = Op::Read {
        lba: Lba(at / sector),
        bufs: Bufs::One(buf),
    };
    let (op, r) = exec.block_on(exec.io(id, op));
    r.map_err(|e| Error::Io(e.to_string()))?;
    let buf = op.into_bufs().and_then(Bufs::into_one);
    Ok(buf.map(|b| b.to_vec()).unwrap_or_default())
}
