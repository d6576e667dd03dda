//! [`Space`]: delalloc reservations and the room kept for metadata.
//!
//! Invariants:
//! - `reserved` counts delalloc blocks (buffered data in the cache, space promised, not yet
//!   allocated); each also promises the metadata its writeback's fold will need
//!   (`fold_need`), so a write that returned Ok survives unmount on a full filesystem;
//! - data reservations and namespace operations that add items (`check_ns_room`) never dip
//!   into `slack`, the space kept for commits (at least cow's metadata reserve, which cow
//!   keeps in whole nodes against every data allocation), so a full filesystem can still
//!   delete files and fold what it accepted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use cow::Volume;

use super::lock::{Guard, Level, Ordered};
use crate::error::{Error, Result};

/// Nodes a fold may copy per piece it holds (see `Space::fold_need`): a commit of 132
/// one-block pieces on a full 64 MiB filesystem with 4 KiB nodes copied about 8.6 per piece
/// (`tests/enospc.rs`), most of them extent-tree leaves.
const COPY_NODES_PER_PIECE: u64 = 12;

/// Written-back pieces after which `sync` commits before writing back more files, so each
/// of its commits stays within what `Space::fold_need` keeps for copied nodes.
pub(crate) const SYNC_BATCH: usize = 32;

/// The most files or pieces `sync` writes back between two commits (`Space::sync_batch`).
const SYNC_BATCH_MAX: usize = 4096;

/// Leaf bytes one folded piece may add for good: its file extent item (about 70 bytes with
/// its header), its data extent's item with the back-reference (about 90) and checksums,
/// doubled since split leaves are only half full, and rounded up.
const PIECE_GROWTH: u64 = 512;

/// Nodes a namespace operation that adds items may take for good: its items split a leaf
/// (one new leaf and a parent slot) in the fs tree, with margin for a split reaching up.
const NS_GROWTH_NODES: u64 = 4;

/// Space accounting of a mount.
pub(crate) struct Space {
    /// Delalloc bytes promised.
    reserved: Ordered<u64>,
    /// Bytes data may never take (metadata room).
    slack: u64,
    /// Filesystem block size.
    bs: u64,
    /// Pieces in the fsync log's overlay, readable without the log's lock: space checks run
    /// under `reserved`, which must not wait for the log.
    overlay_pieces: AtomicUsize,
    /// Completions seen while throttling writers (`io/space.rs`).
    throttle_ticks: AtomicU64,
}

impl Space {
    pub fn new(vol: &Volume, device_bytes: u64) -> Space {
        // Room for a few commits' worth of copied nodes at any fill level.
        let slack = (u64::from(vol.nodesize()) * 64).max(device_bytes / 50);
        Space {
            reserved: Ordered::new(Level::Reserved, 0),
            slack,
            bs: u64::from(vol.sectorsize()),
            overlay_pieces: AtomicUsize::new(0),
            throttle_ticks: AtomicU64::new(0),
        }
    }

    /// Bytes data may never take: room for a few commits' copied nodes, or cow's metadata
    /// reserve (a commit copying every node once, `Volume::metadata_reserve`) if more. cow
    /// refuses data allocations that would leave less than the reserve in whole nodes;
    /// counting it here too makes buffered writes, whose space is allocated only at
    /// writeback, fail with ENOSPC when written rather than at writeback.
    pub fn slack(&self, vol: &Volume) -> u64 {
        self.slack.max(vol.metadata_reserve())
    }

    /// Delalloc bytes promised now.
    pub fn reserved(&self) -> u64 {
        *self.reserved.lock()
    }

    /// The reservations, locked: a caller that checks the room and takes space in one
    /// step holds it meanwhile.
    pub fn lock_reserved(&self) -> Guard<'_, u64> {
        self.reserved.lock()
    }

    /// Reserves `bytes` of delalloc space, or fails with `NoSpace`.
    pub fn reserve(&self, vol: &Volume, bytes: u64) -> Result<()> {
        let mut r = self.reserved.lock();
        let room = self.data_room(vol, *r);
        if room < bytes {
            return Err(Error::NoSpace(format!(
                "{bytes} bytes of data wanted, {room} available"
            )));
        }
        *r += bytes;
        Ok(())
    }

    /// Gives back `bytes` of delalloc space.
    pub fn release(&self, bytes: u64) {
        let mut r = self.reserved.lock();
        *r = r.saturating_sub(bytes);
    }

    /// Records the overlay's piece count (under the log's lock, by whoever changed it).
    pub fn set_overlay_pieces(&self, n: usize) {
        self.overlay_pieces.store(n, Ordering::Relaxed);
    }

    /// The overlay's piece count as last recorded.
    pub fn overlay_pieces(&self) -> usize {
        self.overlay_pieces.load(Ordering::Relaxed)
    }

    /// Counts one throttled completion; returns the count before it.
    pub fn throttle_tick(&self) -> u64 {
        self.throttle_ticks.fetch_add(1, Ordering::Relaxed)
    }

    /// Bytes data may still take: free space minus delalloc promises minus metadata room
    /// (`slack`, and what folding the overlay and the delalloc blocks will need).
    pub fn data_room(&self, vol: &Volume, reserved: u64) -> u64 {
        vol.free_bytes()
            .saturating_sub(reserved)
            .saturating_sub(self.slack(vol))
            .saturating_sub(self.fold_need(vol, reserved))
    }

    /// Files or overlay pieces `sync` may write back before it commits: `SYNC_BATCH` when
    /// space is short, more (up to `SYNC_BATCH_MAX`) while half the room data may still
    /// take covers the nodes their commit copies at worst. A commit per 32 small files made
    /// syncing 20,000 of them 625 commits.
    pub fn sync_batch(&self, vol: &Volume) -> usize {
        let per_piece = COPY_NODES_PER_PIECE * u64::from(vol.nodesize());
        let room = self.data_room(vol, self.reserved());
        let fits = usize::try_from(room / 2 / per_piece).unwrap_or(usize::MAX);
        fits.clamp(SYNC_BATCH, SYNC_BATCH_MAX)
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
    pub fn fold_need(&self, vol: &Volume, delalloc_bytes: u64) -> u64 {
        let pieces = self.overlay_pieces() as u64 + delalloc_bytes.div_ceil(self.bs);
        let per_piece = COPY_NODES_PER_PIECE * u64::from(vol.nodesize());
        let cap = (2 * vol.peak_commit_bytes())
            .max(self.slack)
            .max(SYNC_BATCH as u64 * per_piece);
        (pieces * per_piece).min(cap) + pieces * PIECE_GROWTH
    }

    /// Checks that a namespace operation that adds items (create, mkdir, symlink, link)
    /// leaves what accepted writes and deletes need: the room for their commits
    /// (`fold_need`) and `slack`, which only deletes and folds may spend. Without it,
    /// creates on a full filesystem took the space promised to cached writes (lost at
    /// unmount) and the room unlink needs to commit. `pending_items` namespace item changes
    /// wait for the next commit (`Pending`): each may copy a node there, at worst.
    pub fn check_ns_room(&self, vol: &Volume, pending_items: u64) -> Result<()> {
        let r = self.reserved.lock();
        let room = self.data_room(vol, *r);
        let want = (NS_GROWTH_NODES + pending_items) * u64::from(vol.nodesize());
        if room < want {
            return Err(Error::NoSpace(format!(
                "{want} bytes of metadata wanted, {room} available"
            )));
        }
        Ok(())
    }
}
