//! The record device's queue: forwards to the inner queue and logs what completes.
//!
//! Invariants:
//! - the inner tag of a request is its slot index; a slot keeps the caller's tag and, for a
//!   flush, how many log entries existed when it was submitted (what it covers);
//! - an entry is appended when the completion is reaped from the inner queue, under the log
//!   lock, before the caller can see it: so a write the caller saw complete before submitting
//!   a flush is always among the entries the flush covers.

use std::sync::Arc;

use crate::device::{Bufs, Completion, IoQueue, Op, Rejected};
use crate::error::SubmitError;

use super::log::{Log, Shared};

struct Slot {
    tag: u64,
    /// For a flush: log length at submission.
    covers: usize,
}

pub(super) struct RecordQueue {
    shared: Arc<Shared>,
    inner: Box<dyn IoQueue>,
    block_size: u64,
    depth: usize,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Completions reaped from the inner queue, kept for its capacity.
    scratch: Vec<Completion>,
}

impl RecordQueue {
    pub(super) fn new(
        shared: Arc<Shared>,
        inner: Box<dyn IoQueue>,
        depth: usize,
        block_size: u32,
    ) -> RecordQueue {
        RecordQueue {
            shared,
            scratch: Vec::with_capacity(inner.depth()),
            inner,
            block_size: u64::from(block_size),
            depth,
            slots: (0..depth).map(|_| Slot { tag: 0, covers: 0 }).collect(),
            free: (0..depth).rev().collect(),
        }
    }
}

/// Appends the entry for a successfully completed `op`; reads leave no trace.
fn log_completion(log: &mut Log, op: &Op, covers: usize, block_size: u64) {
    match op {
        Op::Read { .. } => {}
        Op::Write { lba, bufs, fua } => {
            let data: Arc<[u8]> = match bufs {
                Bufs::One(b) => Arc::from(&b[..]),
                Bufs::Many(v) => v.iter().flat_map(|b| b.iter().copied()).collect(),
            };
            let blocks = data.len() as u64 / block_size;
            log.push_write(lba.0, blocks, Some(data), *fua);
        }
        Op::WriteZeroes { lba, blocks, fua } => log.push_write(lba.0, *blocks, None, *fua),
        // Later reads of unmapped blocks may return zeroes, so the log treats them as such.
        Op::Unmap { lba, blocks } => log.push_write(lba.0, *blocks, None, false),
        Op::Flush => log.push_flush(covers),
    }
}

impl IoQueue for RecordQueue {
    fn submit(&mut self, tag: u64, op: Op) -> Result<(), Rejected> {
        let Some(slot) = self.free.pop() else {
            return Err(Rejected {
                tag,
                op,
                error: SubmitError::QueueFull,
            });
        };
        let covers = match op {
            Op::Flush => self.shared.lock().entries.len(),
            _ => 0,
        };
        match self.inner.submit(slot as u64, op) {
            Ok(()) => {
                self.slots[slot] = Slot { tag, covers };
                Ok(())
            }
            Err(r) => {
                self.free.push(slot);
                Err(Rejected {
                    tag,
                    op: r.op,
                    error: r.error,
                })
            }
        }
    }

    fn poll(&mut self, done: &mut Vec<Completion>) -> usize {
        let mut reaped = std::mem::take(&mut self.scratch);
        let n = self.inner.poll(&mut reaped);
        if n > 0 {
            let logs = reaped
                .iter()
                .any(|c| c.result.is_ok() && !matches!(c.op, Op::Read { .. }));
            let mut log = logs.then(|| self.shared.lock());
            for mut c in reaped.drain(..) {
                let slot = c.tag as usize;
                let Slot { tag, covers } = self.slots[slot];
                self.free.push(slot);
                if let (Ok(()), Some(log)) = (&c.result, log.as_deref_mut()) {
                    log_completion(log, &c.op, covers, self.block_size);
                }
                c.tag = tag;
                done.push(c);
            }
        }
        self.scratch = reaped;
        n
    }

    fn in_flight(&self) -> usize {
        self.depth - self.free.len()
    }

    fn depth(&self) -> usize {
        self.depth
    }
}
