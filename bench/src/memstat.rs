//! What backs this process's memory: hugetlb pages, transparent hugepages, or neither.
//!
//! bdev falls back from hugepages to ordinary pages per allocation (when the pool runs dry,
//! e.g. because other processes hold it), so "hugepages are configured" does not say what a
//! run actually used. Reading `/proc/self/smaps_rollup` after set-up does.
//!
//! Each job's peak resident memory is the kernel's high-water mark (`VmHWM` of
//! `/proc/self/status`), reset when the job starts by writing `5` to `/proc/self/clear_refs`
//! (Linux 4.0+). Hugetlb pages (the DMA buffers of SPDK) are not in it.

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

/// Resets the process's peak resident memory to what it holds now, so that
/// [`peak_rss_kib`] reports the peak since. False if the kernel refused (then the peak is
/// since the process started).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak resident memory in KiB since it started or since the last
/// [`reset_peak_rss`] (Linux only; `None` elsewhere).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_hwm(&status)
}

fn parse_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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

    #[test]
    fn peak_rss_follows_the_process_and_resets() {
        let status = "Name:\tbfsperf\nVmPeak:\t  9000 kB\nVmHWM:\t  4242 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_hwm(status), Some(4242));
        assert_eq!(parse_hwm("Name: x\n"), None);
        let Some(before) = peak_rss_kib() else {
            return; // not Linux
        };
        // 64 MiB touched page by page raises the peak by about as much.
        let mut big = vec![0u8; 64 << 20];
        for i in (0..big.len()).step_by(4096) {
            big[i] = 1;
        }
        let during = peak_rss_kib().unwrap();
        assert!(
            during >= before.max(60 << 10),
            "{before} KiB, then {during} KiB"
        );
        assert_eq!(big.iter().step_by(4096).filter(|&&b| b == 1).count(), 16384);
        drop(big);
        if reset_peak_rss() {
            let after = peak_rss_kib().unwrap();
            // Other tests of this process may allocate meanwhile, but not 64 MiB more.
            assert!(after < during, "reset: {during} KiB, then {after} KiB");
        }
    }
}
