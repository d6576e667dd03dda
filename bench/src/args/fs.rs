//! What a `--fs` run is: the file job's options, the mount's budgets, the metadata
//! workload, and the page cache's state when timing starts.

use clap::ValueEnum;

/// The page cache when a `--fs` job's timing starts (`--cache`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CacheStart {
    /// As the prefill left it.
    #[default]
    #[value(skip)]
    AsPrefilled,
    /// Clean pages dropped.
    Cold,
    /// The file read once.
    Warm,
}

/// Where the filesystem's own threads run with `-m` (`--fs-threads`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FsThreads {
    /// On the CPUs of `-m` (`MountOptions::background_cpus`).
    #[default]
    Mask,
    /// Where the scheduler puts them.
    Anywhere,
}

/// The options of a `--fs` run.
#[derive(Debug, Clone, PartialEq)]
pub struct FsOptions {
    /// `None`: `fs::DEFAULT_FILE_SHARE_PERCENT` of the free space.
    pub file_size: Option<u64>,
    pub direct: bool,
    pub fdatasync_every: Option<u64>,
    /// fsync once after the timed I/O, its time counted in the runtime.
    pub end_fsync: bool,
    /// `--page-cache`: the mount's page cache budget in bytes.
    pub page_cache: Option<u64>,
    /// `--dirty-cache`: its dirty limit in bytes (default a quarter of `page_cache`).
    pub dirty_cache: Option<u64>,
    /// `--cache`: the file's pages when timing starts.
    pub cache: CacheStart,
    /// `--one-pass`: a sequential job stops after one pass over the file.
    pub one_pass: bool,
    /// `--shared-file`: the jobs of -m share one file.
    pub shared_file: bool,
    /// `--fs-threads`: with -m, where the filesystem's own threads run.
    pub fs_threads: FsThreads,
    /// `--meta`: the metadata workload instead of the file job.
    pub meta: Option<MetaSpec>,
    /// `--metadata-cache` and `--overlay-budget`: the mount's memory budgets, where given.
    pub budgets: Budgets,
}

/// The memory budgets of a `--fs` mount; `None` keeps fs-core's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    pub metadata_cache_bytes: Option<u64>,
    pub overlay_bytes: Option<u64>,
}

impl FsOptions {
    /// The mount's options: the metadata workload's page cache and the budgets given.
    pub fn mount_options(&self) -> fs_core::MountOptions {
        let d = match &self.meta {
            Some(m) => m.mount_options(),
            None => fs_core::MountOptions::default(),
        };
        let d = match self.page_cache {
            Some(c) => fs_core::MountOptions {
                cache_bytes: c,
                dirty_bytes: self.dirty_cache.unwrap_or(c / 4),
                ..d
            },
            None => d,
        };
        fs_core::MountOptions {
            metadata_cache_bytes: self
                .budgets
                .metadata_cache_bytes
                .unwrap_or(d.metadata_cache_bytes),
            overlay_bytes: self.budgets.overlay_bytes.unwrap_or(d.overlay_bytes),
            ..d
        }
    }
}

/// What `--meta` runs (`meta.rs`; defined here, where the arguments fill it in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSpec {
    /// Files of the create, stat and unlink rows.
    pub files: u64,
    /// Bytes written into every file.
    pub file_bytes: usize,
    /// Directories of the extract row.
    pub dirs: u64,
    /// Files in each of them.
    pub files_per_dir: u64,
    /// Page cache and dirty budget of the mount (`--meta-cache`; 0: fs-core's defaults).
    pub cache_bytes: u64,
    /// Entries of the name and attribute caches (`--meta-lookup-cache`; `None`: fs-core's
    /// default).
    pub lookup_cache_entries: Option<usize>,
}

impl MetaSpec {
    /// The mount's options: with `cache_bytes`, a cache that size whose half may be dirty
    /// before writers write back.
    pub fn mount_options(&self) -> fs_core::MountOptions {
        let d = fs_core::MountOptions {
            lookup_cache_entries: self
                .lookup_cache_entries
                .unwrap_or(fs_core::DEFAULT_LOOKUP_CACHE_ENTRIES),
            ..fs_core::MountOptions::default()
        };
        match self.cache_bytes {
            0 => d,
            c => fs_core::MountOptions {
                cache_bytes: c,
                dirty_bytes: c / 2,
                ..d
            },
        }
    }
}

impl Default for MetaSpec {
    fn default() -> Self {
        MetaSpec {
            files: 20_000,
            file_bytes: 4096,
            dirs: 100,
            files_per_dir: 200,
            cache_bytes: 0,
            lookup_cache_entries: None,
        }
    }
}
