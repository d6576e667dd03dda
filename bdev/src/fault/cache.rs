//! The simulated volatile write cache: blocks written but not yet on the inner device.
//!
//! Invariants:
//! - an entry holds the newest acknowledged-or-in-flight content of its block that the inner
//!   device may not have; reads overlay it on what the inner device returns;
//! - an entry leaves the map only when a write-back of exactly that version completed
//!   (its `seq` still matches), when a FUA write or a write-through supersedes it, or at a
//!   crash. So a read never sees an older version than the cache acknowledged.

use std::collections::BTreeMap;

use crate::device::Bufs;
use crate::rng::SplitMix64;

use super::config::CrashKeep;

/// Longest run of blocks one write-back request carries.
const MAX_RUN_BLOCKS: u64 = 256;

/// One cached block: `None` stands for zeroes (write-zeroes, unmap) and costs no memory.
struct Cached {
    seq: u64,
    data: Option<Box<[u8]>>,
}

/// Contiguous cached blocks to put on the inner device, and the versions they were.
pub(super) struct Run {
    /// First block.
    pub lba: u64,
    /// The versions, one per block, to retire the entries once on the media.
    pub seqs: Vec<u64>,
    /// A run of zeroes (write-zeroes) rather than data.
    pub zeroes: bool,
}

/// What a [`Run`] is now: its bytes if nothing changed since it was cut, else new runs.
pub(super) enum Resolved {
    /// The run is current; here is its data (`None` for zeroes).
    Current(Option<Vec<u8>>),
    /// Some block changed: the same range cut again from what is cached now (maybe nothing).
    Recut(Vec<Run>),
}

/// Blocks cached at a read's submission, to lay over what the inner device returns.
pub(super) type Overlay = Vec<(u64, Option<Box<[u8]>>)>;

pub(super) struct VolatileCache {
    block_size: usize,
    blocks: BTreeMap<u64, Cached>,
    next_seq: u64,
}

impl VolatileCache {
    pub(super) fn new(block_size: u32) -> VolatileCache {
        VolatileCache {
            block_size: block_size as usize,
            blocks: BTreeMap::new(),
            next_seq: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    fn put(&mut self, lba: u64, data: Option<Box<[u8]>>) {
        self.next_seq += 1;
        self.blocks.insert(
            lba,
            Cached {
                seq: self.next_seq,
                data,
            },
        );
    }

    /// Caches the first `keep` blocks of `bufs` at `lba`.
    pub(super) fn write(&mut self, lba: u64, bufs: &Bufs, keep: u64) {
        let bs = self.block_size;
        let blocks = bufs.segments().iter().flat_map(|s| s.chunks(bs));
        for (i, block) in (0..keep).zip(blocks) {
            self.put(lba + i, Some(block.into()));
        }
    }

    /// Caches `n` blocks of zeroes at `lba`.
    pub(super) fn write_zeroes(&mut self, lba: u64, n: u64) {
        for b in lba..lba + n {
            self.put(b, None);
        }
    }

    /// Forgets cached blocks in `[lba, lba + n)`: a write-through made them stale.
    pub(super) fn evict(&mut self, lba: u64, n: u64) {
        let stale: Vec<u64> = self.blocks.range(lba..lba + n).map(|(&b, _)| b).collect();
        for b in stale {
            self.blocks.remove(&b);
        }
    }

    /// Copies of the cached blocks in `[lba, lba + n)`, as (offset in blocks, data), or
    /// `None` when there are none (the usual case, which then allocates nothing).
    pub(super) fn overlay(&self, lba: u64, n: u64) -> Option<Overlay> {
        let mut hits = self.blocks.range(lba..lba + n).peekable();
        hits.peek()?;
        Some(hits.map(|(&b, c)| (b - lba, c.data.clone())).collect())
    }

    /// Lays `overlay` over the data a read returned.
    pub(super) fn apply_overlay(overlay: &Overlay, bufs: &mut Bufs, block_size: usize) {
        for (offset, data) in overlay {
            let mut at = *offset as usize * block_size;
            for seg in bufs.segments_mut() {
                if at < seg.len() {
                    let dst = &mut seg[at..at + block_size];
                    match data {
                        Some(d) => dst.copy_from_slice(d),
                        None => dst.fill(0),
                    }
                    break;
                }
                at -= seg.len();
            }
        }
    }

    /// Everything cached, as runs to write back. Entries stay until [`Self::retire`]: until
    /// the inner device has them, reads must still find them here.
    pub(super) fn runs(&self) -> Vec<Run> {
        self.runs_of(0..u64::MAX, |_| true)
    }

    fn runs_of(&self, range: std::ops::Range<u64>, mut keep: impl FnMut(u64) -> bool) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for (&lba, c) in self.blocks.range(range) {
            if !keep(lba) {
                continue;
            }
            let zeroes = c.data.is_none();
            let extends = runs.last().is_some_and(|r| {
                r.lba + r.seqs.len() as u64 == lba
                    && (r.seqs.len() as u64) < MAX_RUN_BLOCKS
                    && r.zeroes == zeroes
            });
            if !extends {
                runs.push(Run {
                    lba,
                    seqs: Vec::new(),
                    zeroes,
                });
            }
            runs.last_mut().expect("pushed above").seqs.push(c.seq);
        }
        runs
    }

    /// The data to write back for `run`, taken when it is handed to the inner device (under
    /// the device lock), so a block superseded since the flush cut it is never written back
    /// over newer data.
    pub(super) fn resolve(&self, run: &Run) -> Resolved {
        let current = (run.lba..)
            .zip(&run.seqs)
            .all(|(b, &seq)| self.blocks.get(&b).is_some_and(|c| c.seq == seq));
        if !current {
            let end = run.lba + run.seqs.len() as u64;
            return Resolved::Recut(self.runs_of(run.lba..end, |_| true));
        }
        if run.zeroes {
            return Resolved::Current(None);
        }
        let mut data = Vec::with_capacity(run.seqs.len() * self.block_size);
        for b in run.lba..run.lba + run.seqs.len() as u64 {
            data.extend_from_slice(self.blocks[&b].data.as_deref().expect("not a zero run"));
        }
        Resolved::Current(Some(data))
    }

    /// Removes the entries a completed write-back put on the media, unless rewritten since.
    pub(super) fn retire(&mut self, lba: u64, seqs: &[u64]) {
        for (b, &seq) in (lba..).zip(seqs) {
            if self.blocks.get(&b).is_some_and(|c| c.seq == seq) {
                self.blocks.remove(&b);
            }
        }
    }

    /// Power loss: empties the cache and returns the blocks that reached the media anyway,
    /// as (first block, block count, data or `None` for zeroes): none, all, or each block
    /// with probability 1/2, which tears multi-block writes at block (sector) granularity.
    pub(super) fn crash(
        &mut self,
        keep: CrashKeep,
        rng: &mut SplitMix64,
    ) -> Vec<(u64, u64, Option<Vec<u8>>)> {
        let runs = match keep {
            CrashKeep::DropAll => Vec::new(),
            CrashKeep::KeepAll => self.runs(),
            CrashKeep::Random => self.runs_of(0..u64::MAX, |_| rng.chance(0.5)),
        };
        let landed = runs
            .iter()
            .map(|run| match self.resolve(run) {
                Resolved::Current(data) => (run.lba, run.seqs.len() as u64, data),
                Resolved::Recut(_) => unreachable!("runs cut just now are current"),
            })
            .collect();
        self.blocks.clear();
        landed
    }

    /// Number of cached blocks.
    pub(super) fn len(&self) -> usize {
        self.blocks.len()
    }
}
