//! `--spdk` and SPDK's environment options, as SPDK's own apps (bdevperf) name them.

use bypassfs::device::spdk::SpdkOptions;

/// The SPDK flags every subcommand that opens a DEVICE takes.
/// Each flag sets its own help heading: a heading set for the struct would carry over to the
/// flags of the subcommand declared after it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SpdkArgs {
    /// Run DEVICE, an SPDK JSON config, through SPDK itself: every bdev SPDK knows (NVMe,
    /// NVMe-oF, aio, uring, lvol …), not only the ones the native backends serve. Needs a
    /// build with `--features spdk` and, unless --no-huge, hugepages.
    #[arg(long = "spdk", help_heading = "SPDK")]
    pub spdk: bool,

    /// With --spdk: run SPDK without hugepages (as bdevperf --no-huge), in -s MiB of ordinary
    /// memory (default 512). Fine for aio, uring, malloc and NVMe-oF/TCP bdevs, not for local
    /// PCIe NVMe.
    #[arg(long = "no-huge", requires = "spdk", help_heading = "SPDK")]
    pub no_huge: bool,

    /// With --spdk: memory for SPDK in MiB (bdevperf's -s); default: grow on demand with
    /// hugepages, 512 without.
    #[arg(
        short = 's',
        long = "mem-size",
        value_name = "MIB",
        requires = "spdk",
        help_heading = "SPDK"
    )]
    pub mem_size_mb: Option<u32>,

    /// With --spdk: SPDK's core mask (bdevperf's -m: 0x1, [0,2-3]; default core 0). Only
    /// SPDK's management thread runs there; I/O runs on the threads that use the filesystem.
    #[arg(
        short = 'm',
        long = "cpumask",
        value_name = "MASK",
        requires = "spdk",
        value_parser = parse_mask,
        help_heading = "SPDK"
    )]
    pub core_mask: Option<String>,
}

impl SpdkArgs {
    /// How to start SPDK, if `--spdk` was given.
    pub fn options(&self) -> Option<SpdkOptions> {
        self.spdk.then(|| SpdkOptions {
            no_huge: self.no_huge,
            mem_size_mb: self.mem_size_mb,
            core_mask: self.core_mask.clone(),
        })
    }
}

/// Checks a core mask as bfsperf does, and keeps the text for SPDK (which reads both forms).
fn parse_mask(text: &str) -> Result<String, String> {
    bench::args::parse_core_mask(text).map(|_| text.trim().to_string())
}
