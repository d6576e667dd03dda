//! What backs this process's memory: hugetlb pages, transparent hugepages, or neither.
//!
//! bdev falls back from hugepages to ordinary pages per allocation (when the pool runs dry,
//! e.g. because other processes hold it), so "hugepages are configured" does not say what a
//! run actually used. Reading `/proc/self/smaps_rollup` after set-up does.

use serde_json::{json, Value};

/// Resident memory by page kind, in KiB (Linux only; `None` elsewhere).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStat {
    pub rss_kib: u64,
    pub hugetlb_kib: u64,
    pub thp_kib: u64,
}

impl MemStat {
    /// This process, now.
    pub fn current() -> Option<MemStat> {
        std::fs::read_to_string("/proc/self/smaps_rollup")
            .ok()
            .map(|t| MemStat::parse(&t))
    }

    fn parse(text: &str) -> MemStat {
        let mut m = MemStat::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(key), Some(kib)) = (
                words.next(),
                words.next().and_then(|v| v.parse::<u64>().ok()),
            ) else {
                continue;
            };
            match key {
                "Rss:" => m.rss_kib = kib,
                "Private_Hugetlb:" | "Shared_Hugetlb:" => m.hugetlb_kib += kib,
                "AnonHugePages:" => m.thp_kib = kib,
                _ => {}
            }
        }
        m
    }

    /// One line for people: `memory: 1026 MiB hugetlb, 0 MiB THP, 4 MiB other pages`.
    /// (Hugetlb pages are not counted in Rss.)
    pub fn describe(&self) -> String {
        format!(
            "memory: {} MiB hugetlb, {} MiB transparent hugepages, {} MiB other pages",
            self.hugetlb_kib >> 10,
            self.thp_kib >> 10,
            self.rss_kib.saturating_sub(self.thp_kib) >> 10
        )
    }

    /// For the JSON results.
    pub fn json(&self) -> Value {
        json!({ "hugetlb_kib": self.hugetlb_kib, "thp_kib": self.thp_kib, "rss_kib": self.rss_kib })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_smaps_rollup() {
        let text = "00400000-7ffd [rollup]\nRss:  856968 kB\nAnonHugePages:  854016 kB\n\
                    Shared_Hugetlb:  0 kB\nPrivate_Hugetlb:  1050624 kB\n";
        let m = MemStat::parse(text);
        assert_eq!(
            m,
            MemStat {
                rss_kib: 856_968,
                hugetlb_kib: 1_050_624,
                thp_kib: 854_016
            }
        );
        assert!(m
            .describe()
            .starts_with("memory: 1026 MiB hugetlb, 834 MiB transparent"));
    }
}
