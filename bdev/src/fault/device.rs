//! The fault device: configuration checks, simulated power loss, and statistics.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::device::{BlockDevice, Bufs, IoQueue, Op};
use crate::error::{BdevError, IoError};
use crate::types::{Geometry, Lba};
use crate::wait;

use super::config::{CrashKeep, FaultConfig};
use super::plan::{FaultStats, Shared, State};
use super::queue::FaultQueue;

/// A wrapper injecting seeded faults into any block device (see the [module](super) docs).
pub struct FaultDevice {
    name: String,
    inner: Arc<dyn BlockDevice>,
    shared: Arc<Shared>,
}

impl FaultDevice {
    /// Wraps `inner`, or says what is wrong with `config`
    /// (`BdevError::Config("fault <name>: …")`).
    pub fn new(
        name: &str,
        inner: Arc<dyn BlockDevice>,
        config: FaultConfig,
    ) -> Result<FaultDevice, BdevError> {
        config.validate(name)?;
        let mut geometry = inner.geometry();
        geometry.volatile_write_cache |= config.volatile_cache;
        let shared = Arc::new(Shared::new(config, geometry));
        Ok(FaultDevice {
            name: name.to_owned(),
            inner,
            shared,
        })
    }

    /// The wrapped device (to wrap it again after a [`crash`](Self::crash)).
    pub fn inner(&self) -> &Arc<dyn BlockDevice> {
        &self.inner
    }

    /// Faults injected so far.
    pub fn stats(&self) -> FaultStats {
        self.shared.lock().stats
    }

    /// Blocks currently held in the volatile cache (written, not yet on the inner device).
    pub fn cached_blocks(&self) -> usize {
        self.shared.lock().cache.len()
    }

    /// Simulates power loss. Cached (unflushed) blocks are dropped, kept, or a seeded random
    /// subset kept, as `keep` says; kept blocks are written to the inner device before this
    /// returns. From then on the device is dead, like a removed disk: every request on an
    /// existing queue — in flight or submitted later — completes with [`IoError::Removed`],
    /// and [`queue`](BlockDevice::queue) fails. To "reboot", wrap [`inner`](Self::inner) in a
    /// new device. A second call does nothing.
    ///
    /// Errors only if writing the kept blocks to the inner device fails.
    pub fn crash(&self, keep: CrashKeep) -> Result<(), BdevError> {
        let landed = {
            let mut state = self.shared.lock();
            // Set under the lock, so no request planned after this sees a live device.
            if self.shared.crashed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
            let before = state.cache.len() as u64;
            let State { cache, rng, .. } = &mut *state;
            let landed = cache.crash(keep, rng);
            let kept: u64 = landed.iter().map(|&(_, n, _)| n).sum();
            state.stats.blocks_lost_at_crash += before - kept;
            landed
        };
        if landed.is_empty() {
            return Ok(());
        }
        let geo = self.shared.geometry;
        let mut queue = self.inner.queue(1)?;
        for (lba, blocks, data) in landed {
            let op = match data {
                None => Op::WriteZeroes {
                    lba: Lba(lba),
                    blocks,
                    fua: false,
                },
                Some(bytes) => {
                    let mut buf = crate::DmaBuf::alloc(bytes.len(), geo.buf_align)?;
                    buf.copy_from_slice(&bytes);
                    Op::Write {
                        lba: Lba(lba),
                        bufs: Bufs::One(buf),
                        fua: false,
                    }
                }
            };
            wait::run(&mut *queue, op).1?;
        }
        Ok(())
    }
}

impl BlockDevice for FaultDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn geometry(&self) -> Geometry {
        self.shared.geometry
    }

    fn queue(&self, depth: usize) -> Result<Box<dyn IoQueue>, BdevError> {
        if depth == 0 {
            return Err(BdevError::Config(format!(
                "{}: queue depth must be positive",
                self.name
            )));
        }
        if self.shared.crashed() {
            return Err(BdevError::Io(IoError::Removed));
        }
        // Room beyond `depth` in the inner queue is for the write-backs of cached blocks.
        let inner_depth = if self.shared.inert {
            depth
        } else {
            depth.saturating_mul(2)
        };
        let inner = self.inner.queue(inner_depth)?;
        Ok(Box::new(FaultQueue::new(
            Arc::clone(&self.shared),
            inner,
            depth,
        )))
    }
}
