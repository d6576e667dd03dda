//! Formatting and opening a volume: the empty trees a new volume starts with, and a mount
//! from the newest usable superblock copy (the root tree loaded, free space rebuilt from the
//! extent tree).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bdev::{BlockDevice, IoQueue};

use crate::alloc::FreeSpace;
use crate::btree::NodeCache;
use crate::error::{Error, Result};
use crate::format::{
    reserved_ranges, Superblock, TreeId, MAX_NODESIZE, MIN_DEVICE_BYTES, MIN_NODESIZE,
};
use crate::store::Shared;
use crate::superblocks::{candidates, read_superblock_copies, Candidates};
use crate::transaction::trees;
use crate::volume::{Committed, FormatOptions, OpenOptions, Volume};

impl Volume {
    /// Formats `dev` as an empty volume (root, extent and checksum trees) and opens it.
    pub fn format(
        dev: Arc<dyn BlockDevice>,
        io: &mut dyn IoQueue,
        opts: &FormatOptions,
    ) -> Result<Volume> {
        let geo = dev.geometry();
        let total = geo.size_bytes();
        let sectorsize = opts.sectorsize.min(opts.nodesize);
        if !opts.nodesize.is_power_of_two()
            || !(MIN_NODESIZE..=MAX_NODESIZE).contains(&opts.nodesize)
        {
            return Err(Error::Invalid(format!(
                "node size {} is not a power of two from {MIN_NODESIZE} to {MAX_NODESIZE}",
                opts.nodesize
            )));
        }
        if !sectorsize.is_power_of_two()
            || !(512..=4096).contains(&sectorsize)
            || geo.block_size > sectorsize
        {
            return Err(Error::Invalid(format!(
                "sector size {sectorsize} must be a power of two from 512 to 4096 and at least \
                 the device block size {}",
                geo.block_size
            )));
        }
        if total < MIN_DEVICE_BYTES {
            return Err(Error::Invalid(format!(
                "device {} has {total} bytes; a cow volume needs at least {MIN_DEVICE_BYTES}",
                dev.name()
            )));
        }
        if geo.durability_unknowable() {
            log::warn!("cow: device {} has a volatile cache that flush does not empty; commits are not crash-safe", dev.name());
        }
        let total = total - total % u64::from(sectorsize);
        let mut free = FreeSpace::default();
        free.free(0, total).expect("empty map");
        for (s, l) in reserved_ranges(total) {
            free.take(s, l)
                .expect("reserved ranges are disjoint and inside");
        }
        let sh = Shared {
            fsid: opts.fsid.unwrap_or_else(random_fsid),
            nodesize: opts.nodesize,
            sectorsize,
            total_bytes: total,
            block_size: geo.block_size,
            cache: NodeCache::new(opts.open.cache_nodes as u64 * u64::from(opts.nodesize)),
            peak_commit_nodes: AtomicU64::new(0),
            tree_nodes: AtomicU64::new(0),
            dev,
        };
        let committed = Committed {
            generation: 0,
            roots: BTreeMap::new(),
            bytes_used: 0,
        };
        let vol = Volume::assemble(sh, committed, free);
        let mut tx = vol.begin()?;
        for t in [TreeId::ROOT, TreeId::EXTENT, TreeId::CSUM] {
            tx.new_empty_root(t)?;
        }
        tx.commit(io)?;
        Ok(vol)
    }

    /// Opens the volume on `dev`: the newest usable superblock copy, the root tree, and free
    /// space rebuilt from the extent tree. When the trees of that copy do not load as valid
    /// metadata (a copy with a valid checksum but impossible contents), the next usable copy
    /// is tried, with a warning naming both (`superblocks.rs` has the rules).
    pub fn open(
        dev: Arc<dyn BlockDevice>,
        io: &mut dyn IoQueue,
        opts: &OpenOptions,
    ) -> Result<Volume> {
        let copies = read_superblock_copies(&*dev, io);
        let Candidates { usable, unusable } = candidates(&copies, dev.geometry().size_bytes())?;
        let mut failed: Vec<(u64, Error)> = Vec::new();
        for (offset, sb) in usable {
            match Volume::open_from(Arc::clone(&dev), io, opts, &sb) {
                Ok(vol) => {
                    let mut bad = unusable;
                    bad.extend(failed.iter().map(|(o, e)| format!("copy at {o:#x}: {e}")));
                    if !bad.is_empty() {
                        log::warn!(
                            "cow: {}: opened from the superblock copy at {offset:#x} \
                             (generation {}); unusable copies: {}",
                            dev.name(),
                            sb.generation,
                            bad.join("; ")
                        );
                    }
                    return Ok(vol);
                }
                // An I/O error says nothing about the copy: do not mount an older one.
                Err(e @ (Error::Io { .. } | Error::Device(_))) => return Err(e),
                Err(e) => failed.push((offset, e)),
            }
        }
        let (_, first) = failed.swap_remove(0);
        Err(first)
    }

    /// Opens the volume that the superblock copy `sb` describes.
    fn open_from(
        dev: Arc<dyn BlockDevice>,
        io: &mut dyn IoQueue,
        opts: &OpenOptions,
        sb: &Superblock,
    ) -> Result<Volume> {
        let geo = dev.geometry();
        let sh = Shared {
            fsid: sb.fsid,
            nodesize: sb.nodesize,
            sectorsize: sb.sectorsize,
            total_bytes: sb.total_bytes,
            block_size: geo.block_size,
            cache: NodeCache::new(opts.cache_nodes as u64 * u64::from(sb.nodesize)),
            peak_commit_nodes: AtomicU64::new(0),
            tree_nodes: AtomicU64::new(0),
            dev,
        };
        let mut committed = Committed {
            generation: sb.generation,
            roots: BTreeMap::from([(TreeId::ROOT, sb.root)]),
            bytes_used: sb.bytes_used,
        };
        let vol = Volume::assemble(sh, committed.clone(), FreeSpace::default());
        committed.roots = trees::root::load_roots(&vol.reader(), io)?;
        *vol.committed.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(committed);
        let (free, used, nodes) = trees::extent::rebuild_free_space(&vol.reader(), io)?;
        vol.sh.tree_nodes.store(nodes, Ordering::Relaxed);
        if used != sb.bytes_used {
            return Err(Error::Corrupt(format!(
                "superblock says {} bytes used, the extent tree accounts for {used}",
                sb.bytes_used
            )));
        }
        let mut free = free;
        free.count_slots(u64::from(vol.sh.nodesize));
        {
            let mut w = vol.space.lock();
            w.free = free;
            vol.note_free(&w);
        }
        Ok(vol)
    }
}

fn random_fsid() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(d.as_nanos());
        }
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}
