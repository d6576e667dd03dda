//! The write log and the rebuilding of crash states from it.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::BdevError;
use crate::rng::SplitMix64;

/// The log proper, shared by the device and its queues.
#[derive(Default)]
pub(super) struct Log {
    pub entries: Vec<LogEntry>,
    /// Flushes logged so far: the epoch of the next entry.
    pub flushes: u64,
}

impl Log {
    pub(super) fn push_write(&mut self, lba: u64, blocks: u64, data: Option<Arc<[u8]>>, fua: bool) {
        let epoch = self.flushes;
        self.entries.push(LogEntry::Write {
            lba,
            blocks,
            data,
            fua,
            epoch,
        });
    }

    pub(super) fn push_flush(&mut self, covers: usize) {
        self.entries.push(LogEntry::Flush {
            covers,
            epoch: self.flushes,
        });
        self.flushes += 1;
    }
}

#[derive(Default)]
pub(super) struct Shared {
    log: Mutex<Log>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Log> {
        // A panicking test thread must not hide the log from the others.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One logged event, in completion order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEntry {
    /// A write, write-zeroes or unmap that completed successfully.
    Write {
        /// First block.
        lba: u64,
        /// Number of blocks.
        blocks: u64,
        /// The bytes written; `None` for write-zeroes and unmap (logged as zeroes).
        data: Option<Arc<[u8]>>,
        /// Force unit access: durable on completion.
        fua: bool,
        /// Number of flushes logged before this entry.
        epoch: u64,
    },
    /// A flush that completed successfully.
    Flush {
        /// It made durable the writes among the first `covers` log entries: those that had
        /// completed when the flush was submitted.
        covers: usize,
        /// Number of flushes logged before this one.
        epoch: u64,
    },
}

impl LogEntry {
    /// Whether this is a write that is durable on its own (FUA).
    fn is_fua(&self) -> bool {
        matches!(self, LogEntry::Write { fua: true, .. })
    }
}

/// Which of the not-yet-durable writes at a crash point reached the media.
///
/// The writes in question are those [`RecordDevice::unflushed_writes`](super::RecordDevice::unflushed_writes)
/// lists, in log order. A harness enumerates all `2^n` [`Subset`](CrashPick::Subset)s when
/// [`unflushed_at`](super::RecordDevice::unflushed_at) is small and samples
/// [`Random`](CrashPick::Random) seeds when it is large.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrashPick {
    /// Every unflushed write landed.
    All,
    /// No unflushed write landed: the durable state.
    None,
    /// Unflushed write `i` landed whole iff `subset[i]`.
    Subset(Vec<bool>),
    /// As `Subset`, except that for each `(i, sectors)` in `torn`, write `i` landed only in
    /// the blocks (sectors) where `sectors` is `true` (one entry per block of the write).
    Torn {
        /// Whole writes that landed.
        subset: Vec<bool>,
        /// Writes that landed partly, overriding `subset`.
        torn: Vec<(usize, Vec<bool>)>,
    },
    /// Each unflushed write landed with probability 1/2; a landed multi-block write is torn
    /// with probability 1/4, each of its blocks then landing with probability 1/2.
    Random {
        /// Seeds the choices (splitmix64), so a failing state can be rebuilt.
        seed: u64,
    },
}

/// How much of one unflushed write landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Landing {
    Whole,
    Nothing,
    Blocks(Vec<bool>),
}

/// The length of the log prefix whose writes are all durable at `point`: the widest
/// coverage of any flush logged before `point`. (Flushes from different queues may complete
/// out of submission order, so coverage is not monotonic along the log.)
pub(super) fn durable_prefix(entries: &[LogEntry], point: usize) -> usize {
    entries[..point]
        .iter()
        .filter_map(|e| match e {
            LogEntry::Flush { covers, .. } => Some(*covers),
            LogEntry::Write { .. } => None,
        })
        .max()
        .unwrap_or(0)
}

/// Log indices of the writes not durable at `point`, in log order.
pub(super) fn unflushed(entries: &[LogEntry], point: usize) -> Vec<usize> {
    let durable = durable_prefix(entries, point);
    (durable..point)
        .filter(|&i| matches!(entries[i], LogEntry::Write { .. }) && !entries[i].is_fua())
        .collect()
}

/// Turns `pick` into one [`Landing`] per unflushed write (`blocks[i]` blocks each).
pub(super) fn landings(
    name: &str,
    pick: &CrashPick,
    blocks: &[u64],
) -> Result<Vec<Landing>, BdevError> {
    let n = blocks.len();
    let bad = |what: String| BdevError::Config(format!("record {name}: {what}"));
    let from_subset = |subset: &[bool]| {
        if subset.len() != n {
            return Err(bad(format!(
                "the pick has {} entries but there are {n} unflushed writes",
                subset.len()
            )));
        }
        Ok(subset
            .iter()
            .map(|&b| if b { Landing::Whole } else { Landing::Nothing })
            .collect())
    };
    match pick {
        CrashPick::All => Ok(vec![Landing::Whole; n]),
        CrashPick::None => Ok(vec![Landing::Nothing; n]),
        CrashPick::Subset(subset) => from_subset(subset),
        CrashPick::Torn { subset, torn } => {
            let mut out: Vec<Landing> = from_subset(subset)?;
            for (i, sectors) in torn {
                let Some(&len) = blocks.get(*i) else {
                    return Err(bad(format!(
                        "torn write {i} is not among the {n} unflushed"
                    )));
                };
                if sectors.len() as u64 != len {
                    return Err(bad(format!(
                        "torn write {i} has {len} blocks but {} sector flags",
                        sectors.len()
                    )));
                }
                out[*i] = Landing::Blocks(sectors.clone());
            }
            Ok(out)
        }
        CrashPick::Random { seed } => {
            let mut rng = SplitMix64::new(*seed);
            Ok(blocks
                .iter()
                .map(|&len| random_landing(&mut rng, len))
                .collect())
        }
    }
}

fn random_landing(rng: &mut SplitMix64, blocks: u64) -> Landing {
    if !rng.chance(0.5) {
        return Landing::Nothing;
    }
    if blocks > 1 && rng.chance(0.25) {
        return Landing::Blocks((0..blocks).map(|_| rng.chance(0.5)).collect());
    }
    Landing::Whole
}

/// Applies the blocks of write `entry` that `landing` says landed to `image`.
pub(super) fn apply(image: &mut [u8], block_size: usize, entry: &LogEntry, landing: &Landing) {
    let LogEntry::Write {
        lba, blocks, data, ..
    } = entry
    else {
        return;
    };
    for b in 0..*blocks as usize {
        let lands = match landing {
            Landing::Whole => true,
            Landing::Nothing => false,
            Landing::Blocks(mask) => mask[b],
        };
        if !lands {
            continue;
        }
        let at = (*lba as usize + b) * block_size;
        let dst = &mut image[at..at + block_size];
        match data {
            Some(d) => dst.copy_from_slice(&d[b * block_size..(b + 1) * block_size]),
            None => dst.fill(0),
        }
    }
}
