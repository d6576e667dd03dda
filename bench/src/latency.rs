//! A latency histogram with bounded relative error, for the p99 of every row.
//!
//! Buckets are log-linear (as HdrHistogram's): below 2^`SUB_BITS` ns one bucket per
//! nanosecond, above it each power of two is cut into 2^`SUB_BITS` equal buckets, so a
//! bucket's width is at most 1/32 of its values. Recording is a shift, a count of leading
//! zeros and an add: cheap enough for the poll loop of a job doing millions of I/Os a second.

/// Sub-buckets per power of two, as bits.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets for every `u64`: the linear ones, then `SUB` per power of two from `SUB` up.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Counts of latencies by bucket. Plain data: merge, query, clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
        }
    }
}

/// The bucket of `ns`.
#[inline(always)]
fn bucket(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let sub = (ns >> shift) & (SUB - 1);
    ((u64::from(shift) + 1) * SUB + sub) as usize
}

/// The largest value of bucket `b`.
fn bucket_max(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB {
        return b;
    }
    let shift = b / SUB - 1;
    let sub = b % SUB;
    // The bucket holds [(SUB + sub) << shift, (SUB + sub + 1) << shift).
    (((SUB + sub + 1) as u128) << shift)
        .saturating_sub(1)
        .min(u128::from(u64::MAX)) as u64
}

impl Histogram {
    /// Adds one latency.
    #[inline(always)]
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket(ns)] += 1;
        self.total += 1;
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    /// Latencies recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The latency that `per_mille`/1000 of the recorded ones do not exceed, as the upper
    /// end of its bucket (so at most 1/32 above the true value, never below it); 0 if
    /// nothing was recorded. Callers cap it with the exact maximum.
    pub fn quantile_ns(&self, per_mille: u64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        // The rank of the wanted latency, 1-based, rounded up (the nearest-rank method).
        let rank = (u128::from(self.total) * u128::from(per_mille.min(1000))).div_ceil(1000);
        let rank = rank.max(1) as u64;
        let mut seen = 0;
        for (b, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_max(b);
            }
        }
        u64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for ns in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket(ns);
            assert!(b < BUCKETS, "{ns}");
            assert!(b >= last, "buckets go down at {ns}");
            last = b;
            let hi = bucket_max(b);
            assert!(hi >= ns, "{ns} above its bucket's end {hi}");
            assert!(
                hi - ns <= ns / 16 + 1,
                "{ns}: bucket ends at {hi}, too wide"
            );
        }
        assert_eq!(bucket_max(bucket(u64::MAX)), u64::MAX);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_ns(990), 0);
        // 1..=1000 µs: the 99th percentile is 990 µs, the median 500 µs.
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let p99 = h.quantile_ns(990);
        assert!((990_000..=990_000 + 990_000 / 32).contains(&p99), "{p99}");
        let p50 = h.quantile_ns(500);
        assert!((500_000..=500_000 + 500_000 / 32).contains(&p50), "{p50}");
        let mut g = Histogram::default();
        g.record(7);
        h.merge(&g);
        assert_eq!(h.count(), 1001);
        assert_eq!(g.quantile_ns(1000), 7);
    }
}
