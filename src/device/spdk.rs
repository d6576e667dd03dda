//! Opening a bdev of an SPDK JSON config through SPDK itself (`--spdk` on the command line,
//! `BFS_DEVICE_SPDK` in the C API): every method SPDK knows (NVMe, NVMe-oF, aio, uring,
//! lvol …), not only the ones the native backends serve.
//!
//! SPDK starts once per process, from one config with one set of environment options
//! (`bdev::spdk::SpdkEnv`): opening a second bdev of the same config, or the same bdev again,
//! joins the running SPDK; a different config or other options in the same process is an
//! error that says so. Before the first start the hugepage setup is checked here, so that a
//! host without hugepages gets advice instead of DPDK's log lines.
//!
//! Unlike a file opened natively, a file under an SPDK `bdev_aio_create` or
//! `bdev_uring_create` is not locked against other processes: the filesystem's own mount
//! claim is what refuses a second read-write mount.

use std::path::Path;
use std::sync::Arc;

use bdev::{BdevError, BlockDevice};

/// How SPDK's environment is started: the options SPDK's own apps (bdevperf) take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpdkOptions {
    /// Run without hugepages (`--no-huge`): ordinary memory, fine for malloc, aio, uring and
    /// NVMe-oF/TCP bdevs, not for local PCIe NVMe devices.
    pub no_huge: bool,
    /// Memory for SPDK in MiB (`-s`); `None`: grow on demand with hugepages,
    /// 512 MiB without (DPDK's own default, 64 MiB, is too little for SPDK's bdev
    /// layer to start).
    pub mem_size_mb: Option<u32>,
    /// SPDK's core mask (`-m`: `0x1`, `[0,2-3]`); `None`: SPDK's default, core 0. Only
    /// SPDK's management thread runs there: I/O runs on the threads that use the filesystem.
    pub core_mask: Option<String>,
}

/// Why a bdev could not be opened through SPDK.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpdkOpenError {
    /// This build has no SPDK (the `spdk` feature is off).
    NotBuilt,
    /// SPDK's environment cannot start as asked (no hugepages, too few); the message says
    /// what to do.
    Environment(String),
    /// The config or the bdev choice is wrong, or SPDK refused to start or open the bdev.
    Device(BdevError),
}

impl std::fmt::Display for SpdkOpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpdkOpenError::NotBuilt => f.write_str(NOT_BUILT),
            SpdkOpenError::Environment(msg) => f.write_str(msg),
            SpdkOpenError::Device(BdevError::Config(msg) | BdevError::InUse(msg)) => {
                f.write_str(msg)
            }
            SpdkOpenError::Device(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SpdkOpenError {}

impl From<BdevError> for SpdkOpenError {
    fn from(e: BdevError) -> Self {
        SpdkOpenError::Device(e)
    }
}

/// What asking for SPDK says in a build without it.
pub const NOT_BUILT: &str = "SPDK was asked for (--spdk, BFS_DEVICE_SPDK), but this build of \
     bypassfs has no SPDK support: rebuild it with the `spdk` feature on a host with SPDK \
     installed (pkg-config spdk_bdev): `cargo install --path . --features spdk`, or `cargo \
     build --features spdk`";

/// SPDK's memory with `no_huge` and no `mem_size_mb`, in MiB: enough for the bdev layer's
/// I/O pools and the filesystem's buffers.
#[cfg(feature = "spdk")]
const NO_HUGE_MEM_MB: u32 = 512;

/// Whether this build can open bdevs through SPDK (the `spdk` feature).
pub const BUILT: bool = cfg!(feature = "spdk");

/// Starts SPDK with the JSON config at `config` (or joins it, if this process started it
/// with the same config and options) and opens its bdev `bdev` (`None`: the config's only
/// unclaimed bdev). The device is read-write whatever the caller means to do with it.
pub fn open(
    config: &Path,
    bdev: Option<&str>,
    opts: &SpdkOptions,
) -> Result<Arc<dyn BlockDevice>, SpdkOpenError> {
    let shown = config.display();
    if !config
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return Err(BdevError::Config(format!(
            "SPDK opens the bdevs of an SPDK JSON config (*.json), and {shown} is not one: \
             describe the file or drive there (bdev_aio_create with \"filename\", \
             bdev_nvme_attach_controller …) and pick it with --bdev NAME, or leave SPDK out \
             to open {shown} directly"
        ))
        .into());
    }
    if !BUILT {
        return Err(SpdkOpenError::NotBuilt);
    }
    let text = std::fs::read_to_string(config).map_err(|e| BdevError::Os {
        context: format!("reading config {shown}"),
        source: e,
    })?;
    start_and_open(&shown.to_string(), &text, bdev, opts)
}

#[cfg(feature = "spdk")]
fn start_and_open(
    shown: &str,
    text: &str,
    want: Option<&str>,
    opts: &SpdkOptions,
) -> Result<Arc<dyn BlockDevice>, SpdkOpenError> {
    use bdev::spdk::{SpdkDevice, SpdkEnv, SpdkEnvOptions};

    let env_opts = SpdkEnvOptions {
        name: "bypassfs".into(),
        no_huge: opts.no_huge,
        mem_size_mb: opts.mem_size_mb.or(opts.no_huge.then_some(NO_HUGE_MEM_MB)),
        core_mask: opts.core_mask.clone(),
        verbose: false,
    };
    if SpdkEnv::running().is_none() && !opts.no_huge {
        hugepages_ready(opts.mem_size_mb).map_err(SpdkOpenError::Environment)?;
    }
    let in_config = |e: BdevError| match e {
        BdevError::Config(msg) => BdevError::Config(format!("{shown}: {msg}")),
        other => other,
    };
    let env = SpdkEnv::start(text, env_opts).map_err(in_config)?;
    let names = env.bdev_names();
    let name = super::pick_name(shown, &names, want)?;
    let dev = SpdkDevice::open(&env, &name).map_err(in_config)?;
    Ok(Arc::new(dev))
}

#[cfg(not(feature = "spdk"))]
fn start_and_open(
    _shown: &str,
    _text: &str,
    _want: Option<&str>,
    _opts: &SpdkOptions,
) -> Result<Arc<dyn BlockDevice>, SpdkOpenError> {
    Err(SpdkOpenError::NotBuilt)
}

/// What to do when hugepages are missing, for both front ends.
#[cfg(feature = "spdk")]
const WITHOUT_HUGEPAGES: &str = "reserve some (`echo 1024 | sudo tee \
     /proc/sys/vm/nr_hugepages`: 2 GiB of 2 MiB pages), or run SPDK without them: `--no-huge` \
     (512 MiB of ordinary memory; more with `-s MIB`; C API: BFS_DEVICE_SPDK_NO_HUGE), fine \
     for aio, uring, malloc and NVMe-oF/TCP bdevs, not for local PCIe NVMe";

/// Checks what DPDK needs of hugepages before SPDK starts: a hugetlbfs mount and free
/// pages (enough for `mem_size_mb`, when given). DPDK would otherwise fail with log lines
/// that do not say what to do.
#[cfg(feature = "spdk")]
fn hugepages_ready(mem_size_mb: Option<u32>) -> Result<(), String> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if !mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
    {
        return Err(format!(
            "SPDK needs hugepages, and no hugetlbfs is mounted (`sudo mkdir -p /dev/hugepages \
             && sudo mount -t hugetlbfs nodev /dev/hugepages`); then {WITHOUT_HUGEPAGES}"
        ));
    }
    let free_mb = free_hugepage_mb();
    let wanted_mb = u64::from(mem_size_mb.unwrap_or(0)).max(1);
    if free_mb < wanted_mb {
        let wanted = match mem_size_mb {
            Some(mb) => format!("-s {mb} asks for {mb} MiB"),
            None => "SPDK needs some".into(),
        };
        return Err(format!(
            "SPDK needs hugepages: {wanted}, and {free_mb} MiB of hugepages are free (`grep \
             Huge /proc/meminfo`): {WITHOUT_HUGEPAGES}"
        ));
    }
    Ok(())
}

/// Free hugepage memory of every page size, in MiB.
#[cfg(feature = "spdk")]
fn free_hugepage_mb() -> u64 {
    let Ok(sizes) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return 0;
    };
    sizes
        .flatten()
        .filter_map(|d| {
            // "hugepages-2048kB"
            let name = d.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let free: u64 = std::fs::read_to_string(d.path().join("free_hugepages"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some(free * kb / 1024)
        })
        .sum()
}
