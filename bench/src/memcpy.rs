//! `--memcpy-limit`: how fast this machine copies random blocks out of DMA memory.
//!
//! A RAM bdev's read is a copy from its memory into the request's buffer, so this rate is
//! the ceiling of any RAM-bdev benchmark on one thread. The source is 1 GiB, far beyond the
//! caches, allocated the way the `mem` backend allocates its store (one 2 MiB-aligned
//! mapping, hugepages when configured) and touched before timing; offsets come from the same
//! PRNG the engine uses. The copy goes into one destination buffer with `copy_from_slice`,
//! the same `memcpy` the backend calls.

use std::time::{Duration, Instant};

use bdev::DmaBuf;
use serde_json::{json, Value};

use crate::args::MemcpySpec;
use crate::error::BenchError;
use crate::memstat::MemStat;
use crate::rng::Rng;

/// Bytes of the source region.
pub const SOURCE_BYTES: usize = 1 << 30;

/// What a memcpy-limit run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct MemcpyResult {
    pub io_size: usize,
    /// Whether the source really is hugetlb memory (bdev falls back silently per allocation).
    pub hugepages: bool,
    pub memory: Option<MemStat>,
    pub copies: u64,
    pub runtime: Duration,
    pub seed: u64,
}

/// Copies random `io_size` blocks for the spec's duration.
pub fn measure(spec: &MemcpySpec) -> Result<MemcpyResult, BenchError> {
    // Copies between clock reads: one Instant::now() per 256 copies is noise.
    const BATCH: u64 = 256;
    let src = DmaBuf::alloc(SOURCE_BYTES, 2 << 20)?;
    let mut dst = DmaBuf::alloc(spec.io_size, 4096)?;
    let io = spec.io_size;
    let slots = (SOURCE_BYTES / io) as u64;
    let memory = MemStat::current();
    let hugepages = match memory {
        Some(m) => m.hugetlb_kib << 10 >= SOURCE_BYTES as u64,
        None => bdev::hugepages_available(),
    };
    let mut rng = Rng::new(spec.seed, 0);
    let mut copies = 0u64;
    let start = Instant::now();
    let runtime = loop {
        for _ in 0..BATCH {
            let off = rng.below(slots) as usize * io;
            dst.copy_from_slice(&src[off..off + io]);
            // Makes the copy observable, so it cannot be elided or merged.
            std::hint::black_box(&mut dst[..]);
        }
        copies += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= spec.duration {
            break elapsed;
        }
    };
    Ok(MemcpyResult {
        io_size: io,
        hugepages,
        memory,
        copies,
        runtime,
        seed: spec.seed,
    })
}

impl MemcpyResult {
    /// Copies per second.
    pub fn iops(&self) -> f64 {
        self.copies as f64 / self.runtime.as_secs_f64()
    }

    fn mibps(&self) -> f64 {
        self.iops() * self.io_size as f64 / f64::from(1 << 20)
    }

    /// A small table in bdevperf's style.
    pub fn table(&self) -> String {
        format!(
            "memcpy limit: random {}-byte copies out of a {} MiB DMA buffer into one buffer, \
             1 thread, hugepages: {}{}\n {:<28}: {:>10} {:>10} {:>10} {:>10} {:>10}\n {:<28}: {:10.2} {:10.2} {:10.2} {:10.2} {:10.2}\n",
            self.io_size,
            SOURCE_BYTES >> 20,
            if self.hugepages { "yes" } else { "no" },
            self.memory.map_or(String::new(), |m| format!("\n{}", m.describe())),
            "Copy",
            "runtime(s)",
            "copies/s",
            "MiB/s",
            "GiB/s",
            "ns/copy",
            format!("memcpy {}", self.io_size),
            self.runtime.as_secs_f64(),
            self.iops(),
            self.mibps(),
            self.mibps() / 1024.0,
            1e9 / self.iops(),
        )
    }

    /// The JSON document: `{"memcpy_limit": {…}}`; `iops` is copies per second.
    pub fn json(&self) -> Value {
        json!({ "memcpy_limit": {
            "io_size": self.io_size,
            "source_bytes": SOURCE_BYTES,
            "hugepages": self.hugepages,
            "memory": self.memory.map(|m| m.json()),
            "runtime_s": self.runtime.as_secs_f64(),
            "copies": self.copies,
            "iops": self.iops(),
            "mibps": self.mibps(),
            "gibps": self.mibps() / 1024.0,
            "ns_per_copy": 1e9 / self.iops(),
            "seed": self.seed,
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_from_counts() {
        let r = MemcpyResult {
            io_size: 4096,
            hugepages: false,
            memory: None,
            copies: 5_000_000,
            runtime: Duration::from_secs(2),
            seed: 1,
        };
        assert_eq!(r.iops(), 2_500_000.0);
        let j = r.json();
        assert_eq!(j["memcpy_limit"]["ns_per_copy"].as_f64(), Some(400.0));
        assert!(r.table().contains("2500000.00"), "{}", r.table());
    }
}
