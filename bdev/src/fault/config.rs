//! What the fault device injects, and the checks that reject a meaningless configuration.

use crate::device::OpKind;
use crate::error::BdevError;

/// What to inject. The default injects nothing: the device is then a plain pass-through.
#[derive(Clone, Debug, Default)]
pub struct FaultConfig {
    /// Seeds every random decision; the same seed and the same sequence of submissions give
    /// the same faults and the same corrupted bytes.
    pub seed: u64,
    /// Requests that fail with [`IoError::Media`](crate::IoError::Media) without reaching
    /// the media. Rules are checked in order; the first that fires decides.
    pub errors: Vec<ErrorRule>,
    /// Completions are held back until this long after submission.
    pub latency: Option<Latency>,
    /// Chance that a successful read returns with a few bytes flipped.
    pub corrupt_read_probability: f64,
    /// Chance that a write of two or more blocks lands only as a prefix of its blocks
    /// (possibly none), while still reporting success.
    pub torn_write_probability: f64,
    /// Chance that a write lands, whole, at another LBA, while still reporting success.
    pub misdirect_write_probability: f64,
    /// Simulate a volatile write cache: writes stay in the wrapper until a flush or FUA and
    /// [`FaultDevice::crash`](super::FaultDevice::crash) can lose them.
    pub volatile_cache: bool,
}

/// One error-injection rule.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorRule {
    /// The kind of request the rule applies to.
    pub kind: OpKind,
    /// When it fires.
    pub trigger: Trigger,
    /// What happens after it fired.
    pub persistence: Persistence,
    /// Only requests overlapping blocks `[first, end)` match (and count for `NthOp`).
    /// Not allowed on flush rules: a flush has no LBA.
    pub lba_range: Option<(u64, u64)>,
}

impl ErrorRule {
    /// A rule failing the `n`-th (1-based) matching request of `kind`, once.
    pub fn nth(kind: OpKind, n: u64) -> ErrorRule {
        ErrorRule {
            kind,
            trigger: Trigger::NthOp(n),
            persistence: Persistence::Once,
            lba_range: None,
        }
    }

    /// A rule failing the first `n` matching requests of `kind`.
    pub fn first(kind: OpKind, n: u64) -> ErrorRule {
        ErrorRule {
            kind,
            trigger: Trigger::FirstN(n),
            persistence: Persistence::Once,
            lba_range: None,
        }
    }

    /// A rule failing each matching request of `kind` with probability `p`, transiently.
    pub fn probability(kind: OpKind, p: f64) -> ErrorRule {
        ErrorRule {
            kind,
            trigger: Trigger::Probability(p),
            persistence: Persistence::Once,
            lba_range: None,
        }
    }

    /// The same rule, failing every later matching request too once it has fired.
    pub fn persistent(mut self) -> ErrorRule {
        self.persistence = Persistence::Persistent;
        self
    }

    /// The same rule, restricted to requests overlapping blocks `[first, end)`.
    pub fn in_range(mut self, first: u64, end: u64) -> ErrorRule {
        self.lba_range = Some((first, end));
        self
    }
}

/// When an [`ErrorRule`] fires.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    /// Each matching request independently, with this probability.
    Probability(f64),
    /// The k-th matching request (1-based), counted from the device's creation.
    NthOp(u64),
    /// Each of the first n matching requests (SPDK's `bdev_error_inject_error` `num`).
    FirstN(u64),
}

/// What an [`ErrorRule`] does after firing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Persistence {
    /// Only the request that triggered it fails: a transient error. (An `NthOp` rule thus
    /// fails one request; a `Probability` rule keeps drawing for each later one.)
    #[default]
    Once,
    /// Every later matching request fails too (a dead region, a failed device).
    Persistent,
}

/// Completion delay. Reads wait `read_us`, every other request `write_us`, each plus a
/// uniformly drawn `[0, jitter_us]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Delay of a read, in microseconds.
    pub read_us: u64,
    /// Delay of a write, flush, unmap or write-zeroes, in microseconds.
    pub write_us: u64,
    /// Extra random delay, uniform in `[0, jitter_us]` microseconds.
    pub jitter_us: u64,
}

impl FaultConfig {
    /// Rejects probabilities outside `[0, 1]`, `NthOp(0)`, empty or flush LBA ranges.
    pub(crate) fn validate(&self, name: &str) -> Result<(), BdevError> {
        let bad = |what: String| BdevError::Config(format!("fault {name}: {what}"));
        let probabilities = [
            ("corrupt_read_probability", self.corrupt_read_probability),
            ("torn_write_probability", self.torn_write_probability),
            (
                "misdirect_write_probability",
                self.misdirect_write_probability,
            ),
        ];
        for (field, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(bad(format!("{field} is {p}, not a probability in [0, 1]")));
            }
        }
        for (i, rule) in self.errors.iter().enumerate() {
            match rule.trigger {
                Trigger::Probability(p) if !(0.0..=1.0).contains(&p) => {
                    return Err(bad(format!(
                        "error rule {i}: probability {p} is not in [0, 1]"
                    )));
                }
                Trigger::NthOp(0) => {
                    return Err(bad(format!("error rule {i}: NthOp counts from 1, not 0")));
                }
                _ => {}
            }
            match (rule.kind, rule.lba_range) {
                (OpKind::Flush, Some(_)) => {
                    return Err(bad(format!(
                        "error rule {i}: a flush has no LBA, so it cannot have an lba_range"
                    )));
                }
                (_, Some((first, end))) if first >= end => {
                    return Err(bad(format!(
                        "error rule {i}: lba_range [{first}, {end}) is empty"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether nothing at all is injected, so queues may skip the shared state entirely.
    pub(crate) fn is_inert(&self) -> bool {
        self.errors.is_empty()
            && self.latency.is_none()
            && self.corrupt_read_probability == 0.0
            && self.torn_write_probability == 0.0
            && self.misdirect_write_probability == 0.0
            && !self.volatile_cache
    }
}

impl ErrorRule {
    /// Whether a request of `kind` covering `blocks` blocks at `lba` is one this rule counts.
    pub(crate) fn matches(&self, kind: OpKind, lba: u64, blocks: u64) -> bool {
        self.kind == kind
            && self
                .lba_range
                .is_none_or(|(first, end)| lba < end && first < lba + blocks)
    }
}

/// What a simulated power loss does to writes still in the volatile cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKeep {
    /// Every unflushed write is lost.
    DropAll,
    /// Every unflushed write had reached the media.
    KeepAll,
    /// Each cached block reached the media with probability 1/2 (seeded), so multi-block
    /// writes can be torn at block granularity.
    Random,
}
