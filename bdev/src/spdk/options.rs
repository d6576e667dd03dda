//! How to start SPDK's environment: what `SpdkEnv::start` takes and the app thread uses.

/// How to start SPDK's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpdkEnvOptions {
    /// Process name given to DPDK.
    pub name: String,
    /// Run without hugepages (DPDK's `--no-huge`): ordinary memory, fine for malloc, uring,
    /// aio and NVMe-oF/TCP bdevs, not for local PCIe NVMe devices.
    pub no_huge: bool,
    /// Memory to reserve up front, in MiB. `None`: with hugepages, grow on demand; with
    /// `no_huge`, DPDK's default (64 MiB), so give one for anything but small bdevs.
    pub mem_size_mb: Option<u32>,
    /// DPDK core mask (SPDK's default `0x1`). Only the management thread is a DPDK core;
    /// I/O queues run on whatever threads open them, so this rarely matters.
    pub core_mask: Option<String>,
    /// Also print SPDK's notices (default: warnings and errors only).
    pub verbose: bool,
}

impl Default for SpdkEnvOptions {
    fn default() -> Self {
        SpdkEnvOptions {
            name: "bypassfs".into(),
            no_huge: false,
            mem_size_mb: None,
            core_mask: None,
            verbose: false,
        }
    }
}
