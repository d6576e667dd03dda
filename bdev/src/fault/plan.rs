//! The device-wide fault state and the decision, taken once per request at submission, of
//! what happens to it.
//!
//! Every random draw happens here, in submission order, under the device lock, and in a
//! fixed order per request (error rules, then corruption / misdirection / tearing, then
//! latency jitter). That is what makes a run reproducible from its seed. Nothing is drawn
//! for a probability of 0 or 1, so disabled faults do not shift the stream of the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::device::{Bufs, Op, OpKind};
use crate::rng::SplitMix64;
use crate::types::Geometry;

use super::cache::{Overlay, Run, VolatileCache};
use super::config::{ErrorRule, FaultConfig, Persistence, Trigger};

/// How many faults a device injected, so tests can check injection really happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Reads failed by an error rule.
    pub read_errors: u64,
    /// Writes failed by an error rule.
    pub write_errors: u64,
    /// Flushes failed by an error rule.
    pub flush_errors: u64,
    /// Unmaps failed by an error rule.
    pub unmap_errors: u64,
    /// Write-zeroes failed by an error rule.
    pub write_zeroes_errors: u64,
    /// Reads returned with flipped bytes.
    pub corrupted_reads: u64,
    /// Writes of which only a prefix of blocks landed.
    pub torn_writes: u64,
    /// Writes that landed at another LBA.
    pub misdirected_writes: u64,
    /// Requests whose completion was held back by the latency setting.
    pub delayed: u64,
    /// Writes, write-zeroes and unmaps held in the volatile cache.
    pub cached_writes: u64,
    /// Cached blocks lost by [`FaultDevice::crash`](super::FaultDevice::crash).
    pub blocks_lost_at_crash: u64,
}

impl FaultStats {
    /// Requests of `kind` failed by an error rule.
    pub fn errors(&self, kind: OpKind) -> u64 {
        match kind {
            OpKind::Read => self.read_errors,
            OpKind::Write => self.write_errors,
            OpKind::Flush => self.flush_errors,
            OpKind::Unmap => self.unmap_errors,
            OpKind::WriteZeroes => self.write_zeroes_errors,
        }
    }

    pub(super) fn count_error(&mut self, kind: OpKind) {
        match kind {
            OpKind::Read => self.read_errors += 1,
            OpKind::Write => self.write_errors += 1,
            OpKind::Flush => self.flush_errors += 1,
            OpKind::Unmap => self.unmap_errors += 1,
            OpKind::WriteZeroes => self.write_zeroes_errors += 1,
        }
    }
}

/// What the device and its queues share.
pub(super) struct Shared {
    pub config: FaultConfig,
    /// Nothing to inject: queues forward without taking the lock.
    pub inert: bool,
    pub geometry: Geometry,
    /// Set once by [`FaultDevice::crash`]; checked without the lock on every request.
    pub crashed: AtomicBool,
    state: Mutex<State>,
}

impl Shared {
    pub(super) fn new(config: FaultConfig, geometry: Geometry) -> Shared {
        Shared {
            inert: config.is_inert(),
            state: Mutex::new(State::new(&config, geometry.block_size)),
            config,
            geometry,
            crashed: AtomicBool::new(false),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere (a failing test thread) must not hide the state from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn crashed(&self) -> bool {
        self.crashed.load(Ordering::Acquire)
    }
}

/// What happens to one request.
pub(super) enum Action {
    /// It fails with a media error without reaching the media.
    Fail,
    /// It goes to the inner device unchanged.
    Forward,
    /// A read that goes to the inner device; its data is then covered with the cached
    /// blocks and/or corrupted with the given seed.
    Read {
        corrupt: Option<u64>,
        overlay: Option<Overlay>,
    },
    /// A write whose first `keep` blocks land at `lba` (moved, torn, or both).
    Write { lba: u64, keep: u64 },
    /// The volatile cache took it; it succeeds without reaching the inner device.
    Cached,
    /// A flush that must first write these cached runs back.
    Flush { runs: Vec<Run> },
}

/// An [`Action`] and how long its completion is held back.
pub(super) struct Plan {
    pub action: Action,
    pub delay_us: u64,
}

#[derive(Clone, Copy, Default)]
struct RuleState {
    /// Matching requests seen so far (for `NthOp`).
    seen: u64,
    /// A `Persistent` rule that fired: every later match fails.
    tripped: bool,
}

/// Everything the queues of one fault device share.
pub(super) struct State {
    pub rng: SplitMix64,
    rules: Vec<RuleState>,
    pub cache: VolatileCache,
    pub stats: FaultStats,
}

impl State {
    pub(super) fn new(config: &FaultConfig, block_size: u32) -> State {
        State {
            rng: SplitMix64::new(config.seed),
            rules: vec![RuleState::default(); config.errors.len()],
            cache: VolatileCache::new(block_size),
            stats: FaultStats::default(),
        }
    }

    /// Decides the fate of a validated request `op` covering `blocks` blocks on a device of
    /// `block_count` blocks.
    pub(super) fn plan(
        &mut self,
        config: &FaultConfig,
        block_count: u64,
        op: &Op,
        blocks: u64,
    ) -> Plan {
        let kind = op.kind();
        let lba = op.lba().map_or(0, |l| l.0);
        let action = if self.injected_error(&config.errors, kind, lba, blocks) {
            self.stats.count_error(kind);
            Action::Fail
        } else {
            match op {
                Op::Read { .. } => self.plan_read(config, lba, blocks),
                Op::Write { bufs, fua, .. } => {
                    self.plan_write(config, block_count, (lba, blocks), bufs, *fua)
                }
                Op::Unmap { .. } | Op::WriteZeroes { .. } => {
                    self.plan_zeroes(config, lba, blocks, op.fua())
                }
                Op::Flush => self.plan_flush(config),
            }
        };
        let delay_us = match config.latency {
            None => 0,
            Some(l) => {
                let base = if kind == OpKind::Read {
                    l.read_us
                } else {
                    l.write_us
                };
                let jitter = if l.jitter_us == 0 {
                    0
                } else {
                    self.rng.below(l.jitter_us.saturating_add(1))
                };
                base.saturating_add(jitter)
            }
        };
        if delay_us > 0 {
            self.stats.delayed += 1;
        }
        Plan { action, delay_us }
    }

    /// Runs the error rules; every matching rule counts the request, the first that fires
    /// fails it.
    fn injected_error(&mut self, rules: &[ErrorRule], kind: OpKind, lba: u64, blocks: u64) -> bool {
        let mut fail = false;
        for (rule, st) in rules.iter().zip(&mut self.rules) {
            if !rule.matches(kind, lba, blocks) {
                continue;
            }
            st.seen += 1;
            if fail {
                continue;
            }
            let hit = st.tripped
                || match rule.trigger {
                    Trigger::Probability(p) => self.rng.chance(p),
                    Trigger::NthOp(n) => st.seen == n,
                    Trigger::FirstN(n) => st.seen <= n,
                };
            if hit {
                fail = true;
                st.tripped |= rule.persistence == Persistence::Persistent;
            }
        }
        fail
    }

    fn plan_read(&mut self, config: &FaultConfig, lba: u64, blocks: u64) -> Action {
        // The corruption seed is drawn now, not at completion, so completion order (which
        // the inner device decides) cannot change which bytes flip.
        let corrupt = self
            .rng
            .chance(config.corrupt_read_probability)
            .then(|| self.rng.next_u64());
        if corrupt.is_some() {
            self.stats.corrupted_reads += 1;
        }
        let overlay = if config.volatile_cache {
            self.cache.overlay(lba, blocks)
        } else {
            None
        };
        if corrupt.is_none() && overlay.is_none() {
            Action::Forward
        } else {
            Action::Read { corrupt, overlay }
        }
    }

    fn plan_write(
        &mut self,
        config: &FaultConfig,
        block_count: u64,
        (lba, blocks): (u64, u64),
        bufs: &Bufs,
        fua: bool,
    ) -> Action {
        let mut target = lba;
        // Another in-range start exists only if the write does not span the whole device.
        if self.rng.chance(config.misdirect_write_probability) && block_count > blocks {
            let pick = self.rng.below(block_count - blocks);
            target = if pick >= lba { pick + 1 } else { pick };
            self.stats.misdirected_writes += 1;
        }
        let mut keep = blocks;
        // A single sector is atomic on real media, so only multi-block writes tear.
        if blocks > 1 && self.rng.chance(config.torn_write_probability) {
            keep = self.rng.below(blocks);
            self.stats.torn_writes += 1;
        }
        if config.volatile_cache && !fua {
            self.cache.write(target, bufs, keep);
            self.stats.cached_writes += 1;
            return Action::Cached;
        }
        if config.volatile_cache {
            // Written through: older cached versions must neither be read nor written back.
            self.cache.evict(target, keep);
        }
        if target == lba && keep == blocks {
            Action::Forward
        } else {
            Action::Write { lba: target, keep }
        }
    }

    fn plan_zeroes(&mut self, config: &FaultConfig, lba: u64, blocks: u64, fua: bool) -> Action {
        if !config.volatile_cache {
            return Action::Forward;
        }
        if fua {
            self.cache.evict(lba, blocks);
            return Action::Forward;
        }
        // An unmap may read back as zeroes, so caching it as zeroes is a legal behaviour.
        self.cache.write_zeroes(lba, blocks);
        self.stats.cached_writes += 1;
        Action::Cached
    }

    fn plan_flush(&mut self, config: &FaultConfig) -> Action {
        if config.volatile_cache && !self.cache.is_empty() {
            Action::Flush {
                runs: self.cache.runs(),
            }
        } else {
            Action::Forward
        }
    }
}
