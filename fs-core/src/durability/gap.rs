//! A damaged fsync-log record with valid records after it.
//!
//! Records are written one at a time, in slot order, under the log's lock, each only after
//! the one before it is durable; a crash can only leave the last one unwritten or torn. A
//! record that does not decode followed by a valid record of the same generation is
//! therefore damage to the media, not a crash: replaying the prefix alone would silently
//! drop the fsync'd changes of every later record (issue 20). Replay refuses to do that on
//! a read-write mount unless told to accept the loss (`MountOptions::accept_log_loss`); a
//! read-only mount shows the prefix (what can be proven) and logs the loss; fsck reports
//! it as an error.

use std::collections::BTreeSet;
use std::sync::Arc;

use bdev::BlockDevice;

use crate::durability::area::find_area;
use crate::error::Result;
use crate::state::Core;
use crate::state::{decode, Entry};

/// Valid records found after a damaged one. Plain data: a report, each field a finding of
/// its own.
#[derive(Debug)]
pub(crate) struct LogGap {
    /// The generation the records extend.
    pub generation: u64,
    /// The slot of the first record that does not decode.
    pub damaged: u64,
    /// Slots of the valid records after it.
    pub later: Vec<u64>,
    /// Inodes whose logged changes those records hold.
    pub inos: BTreeSet<u64>,
}

impl LogGap {
    /// What is lost, for an error, a log line and fsck.
    pub fn message(&self) -> String {
        let inos: Vec<String> = self.inos.iter().map(u64::to_string).collect();
        format!(
            "fsync log record {} (generation {}) is damaged, but {} later record(s) (slots \
             {:?}) are valid: the fsync'd changes of record {} and after it are lost \
             (inodes {} of the later records, and whatever record {} held)",
            self.damaged,
            self.generation,
            self.later.len(),
            self.later,
            self.damaged,
            inos.join(", "),
            self.damaged,
        )
    }
}

/// Looks for valid records of `generation` after the slot `damaged` of the log area
/// `(addr, len)`, whose record did not decode.
pub(crate) fn find_gap(
    core: &Core,
    (addr, len): (u64, u64),
    generation: u64,
    damaged: u64,
) -> Result<Option<LogGap>> {
    let bs = core.bs();
    let mut gap = LogGap {
        generation,
        damaged,
        later: Vec::new(),
        inos: BTreeSet::new(),
    };
    for slot in damaged + 1..len / bs {
        let block = crate::durability::io::read(core, addr + slot * bs, bs)?;
        if let Some(rec) = decode(&block, generation, slot) {
            gap.later.push(slot);
            gap.inos.extend(rec.iter().map(Entry::ino));
        }
    }
    Ok((!gap.later.is_empty()).then_some(gap))
}

/// The gap in the fsync log of the volume on `dev`, if any: for fsck, which does not mount.
pub(crate) fn log_gap(dev: Arc<dyn BlockDevice>) -> Result<Option<LogGap>> {
    let mut io = dev.queue(16)?;
    let vol = cow::Volume::open(Arc::clone(&dev), &mut *io, &cow::OpenOptions::default())?;
    drop(io);
    let core = Core::new(vol, dev, Some("fsck".into()));
    let Some((addr, len)) = find_area(&core)? else {
        return Ok(None);
    };
    let generation = core.vol().generation();
    let bs = core.bs();
    for slot in 0..len / bs {
        let block = crate::durability::io::read(&core, addr + slot * bs, bs)?;
        if decode(&block, generation, slot).is_none() {
            return find_gap(&core, (addr, len), generation, slot);
        }
    }
    Ok(None)
}
