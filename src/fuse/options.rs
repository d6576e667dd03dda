//! Mount options (`-o a,b=c`).

use std::time::Duration;

/// The default of `commit=`: btrfs's (fs-core's own default).
pub const DEFAULT_COMMIT: Duration = fs_core::DEFAULT_COMMIT_INTERVAL;
/// The longest `commit=` interval accepted, in seconds (a day).
const MAX_COMMIT_SECS: u64 = 86_400;

/// When a close(2) or rename through the mount makes written data durable (the periodic
/// commit and fsync aside).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CloseSync {
    /// Every close of a handle that wrote (`sync_on_close`): about doubles the time of
    /// copying many small files.
    Always,
    /// As ext4's `auto_da_alloc` (the default): the close of a handle that rewrote a file
    /// truncated from a non-empty size, and a rename that replaces a file (its source's
    /// data first): the patterns that replace a file's contents, which a crash must not
    /// leave empty.
    #[default]
    Replace,
    /// Never (`noauto_da_alloc`).
    Never,
}

/// How [`mount`](super::mount) serves the filesystem.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// FUSE worker threads (each with its own fs-core context). Default 4.
    pub threads: usize,
    /// Mount read-only (the caller should also have mounted fs-core read-only).
    pub read_only: bool,
    /// Let other users in (`allow_other`; needs `user_allow_other` for non-root).
    pub allow_other: bool,
    /// The source shown in `/proc/mounts` (`fsname=`).
    pub fsname: String,
    /// Handle SIGINT and SIGTERM: sync, then unmount cleanly. Default on.
    pub handle_signals: bool,
    /// `commit=SECONDS` (`None` = `commit=0`, never; default [`DEFAULT_COMMIT`]): the
    /// interval of the filesystem's own timed commit, which `bypassfs mount` passes to
    /// fs-core as `fs_core::MountOptions::commit_interval` when it mounts the filesystem.
    /// [`mount`](super::mount) serves a filesystem already mounted, with the timer it was
    /// mounted with, and starts none of its own. The kernel does not pass
    /// `sync(2)`/`syncfs(2)` to a FUSE server, so that timer bounds what a crash loses of
    /// writes nobody fsync'd.
    pub commit: Option<Duration>,
    /// Mount even though a damaged fsync-log record has valid records after it, dropping
    /// their changes (`accept_log_loss`; fs-core's `MountOptions::accept_log_loss`: the
    /// caller mounts fs-core with it).
    pub accept_log_loss: bool,
    /// Mount although the device's mount claim names another host that never unmounted
    /// (`takeover`; fs-core's `MountOptions::take_over`: the caller mounts fs-core with it).
    pub take_over: bool,
    /// When a close(2) or a rename makes written data durable (an fdatasync). Default
    /// [`CloseSync::Replace`].
    pub close_sync: CloseSync,
    /// Every namespace change durable when it returns (`dirsync`; fs-core's
    /// `MountOptions::dirsync`: the caller mounts fs-core with it). Off by default: a
    /// namespace change is durable at the next commit (the `commit=` timer, an fsync of the
    /// file or of its directory, `sync MOUNTPOINT`).
    pub dirsync: bool,
    /// `metadata_cache=SIZE`: the node cache's memory budget (fs-core's
    /// `MountOptions::metadata_cache_bytes`: the caller mounts fs-core with it); `None`
    /// keeps fs-core's default.
    pub metadata_cache_bytes: Option<u64>,
    /// `overlay_budget=SIZE`: the fsync overlay's memory budget (fs-core's
    /// `MountOptions::overlay_bytes`: the caller mounts fs-core with it); `None` keeps
    /// fs-core's default.
    pub overlay_bytes: Option<u64>,
    /// `page_cache=SIZE`: the page cache's memory budget (fs-core's
    /// `MountOptions::cache_bytes`, with a quarter of it the dirty limit, as fs-core's
    /// defaults have it: the caller mounts fs-core with it); `None` keeps fs-core's default.
    pub page_cache_bytes: Option<u64>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            threads: 4,
            read_only: false,
            allow_other: false,
            fsname: "bypassfs".into(),
            handle_signals: true,
            commit: Some(DEFAULT_COMMIT),
            accept_log_loss: false,
            take_over: false,
            close_sync: CloseSync::Replace,
            dirsync: false,
            metadata_cache_bytes: None,
            overlay_bytes: None,
            page_cache_bytes: None,
        }
    }
}

/// A size in bytes with an optional `k`, `m` or `g` suffix (powers of 1024), at least 1.
fn parse_size(opt: &str, v: &str) -> Result<u64, String> {
    let (digits, shift) = match v.char_indices().last() {
        Some((i, 'k' | 'K')) => (&v[..i], 10),
        Some((i, 'm' | 'M')) => (&v[..i], 20),
        Some((i, 'g' | 'G')) => (&v[..i], 30),
        _ => (v, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{opt}={v}: want a size in bytes, e.g. 64m (k, m, g suffixes)"))
}

impl MountOptions {
    /// Parses a `-o` string: `ro`, `rw`, `allow_other`, `threads=N`, `fsname=NAME`,
    /// `commit=SECONDS` (0 = off), `nosignals`, `accept_log_loss`, `takeover`,
    /// `sync_on_close`, `auto_da_alloc`, `noauto_da_alloc`, `dirsync`,
    /// `metadata_cache=SIZE`, `overlay_budget=SIZE`, `page_cache=SIZE` (at least 1 MiB);
    /// `default_permissions` is accepted and always on. Unknown options are errors naming
    /// them.
    pub fn parse(s: &str) -> Result<MountOptions, String> {
        let mut o = MountOptions::default();
        for opt in s.split(',').filter(|x| !x.is_empty()) {
            match opt.split_once('=') {
                None => match opt {
                    "ro" => o.read_only = true,
                    "rw" => o.read_only = false,
                    "allow_other" => o.allow_other = true,
                    "default_permissions" => {}
                    "nosignals" => o.handle_signals = false,
                    "accept_log_loss" => o.accept_log_loss = true,
                    "takeover" => o.take_over = true,
                    "sync_on_close" => o.close_sync = CloseSync::Always,
                    "auto_da_alloc" => o.close_sync = CloseSync::Replace,
                    "noauto_da_alloc" => o.close_sync = CloseSync::Never,
                    "dirsync" => o.dirsync = true,
                    _ => return Err(format!("unknown mount option {opt:?}")),
                },
                Some(("threads", n)) => {
                    o.threads = n
                        .parse()
                        .ok()
                        .filter(|&n| (1..=256).contains(&n))
                        .ok_or_else(|| format!("threads={n}: want 1 to 256"))?;
                }
                Some(("fsname", n)) => o.fsname = n.to_string(),
                Some(("commit", n)) => {
                    let secs = n
                        .parse::<u64>()
                        .ok()
                        .filter(|&s| s <= MAX_COMMIT_SECS)
                        .ok_or_else(|| {
                            format!("commit={n}: want seconds from 0 (off) to {MAX_COMMIT_SECS}")
                        })?;
                    o.commit = (secs > 0).then(|| Duration::from_secs(secs));
                }
                Some(("metadata_cache", v)) => {
                    o.metadata_cache_bytes = Some(parse_size("metadata_cache", v)?);
                }
                Some(("overlay_budget", v)) => {
                    o.overlay_bytes = Some(parse_size("overlay_budget", v)?);
                }
                Some(("page_cache", v)) => {
                    let bytes = parse_size("page_cache", v)?;
                    if bytes < 1 << 20 {
                        return Err(format!("page_cache={v}: want at least 1m"));
                    }
                    o.page_cache_bytes = Some(bytes);
                }
                Some(_) => return Err(format!("unknown mount option {opt:?}")),
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let o = MountOptions::parse("ro,threads=2,fsname=img,default_permissions").unwrap();
        assert!(o.read_only);
        assert_eq!(o.threads, 2);
        assert_eq!(o.fsname, "img");
        assert!(MountOptions::parse("threads=0").is_err());
        assert!(MountOptions::parse("bogus").is_err());
        let d = MountOptions::parse("").unwrap();
        assert_eq!(
            (d.close_sync, d.take_over, d.accept_log_loss),
            (CloseSync::Replace, false, false)
        );
        assert!(!d.dirsync);
        assert!(MountOptions::parse("dirsync").unwrap().dirsync);
        let o = MountOptions::parse("noauto_da_alloc,takeover,accept_log_loss").unwrap();
        assert_eq!(
            (o.close_sync, o.take_over, o.accept_log_loss),
            (CloseSync::Never, true, true)
        );
        let o = MountOptions::parse("sync_on_close").unwrap();
        assert_eq!(o.close_sync, CloseSync::Always);
    }

    #[test]
    fn memory_budgets() {
        let d = MountOptions::parse("").unwrap();
        assert_eq!((d.metadata_cache_bytes, d.overlay_bytes), (None, None));
        assert_eq!(d.page_cache_bytes, None);
        let o = MountOptions::parse("page_cache=256m").unwrap();
        assert_eq!(o.page_cache_bytes, Some(256 << 20));
        assert!(MountOptions::parse("page_cache=64k")
            .unwrap_err()
            .contains("at least 1m"));
        let o = MountOptions::parse("metadata_cache=8m,overlay_budget=512k").unwrap();
        assert_eq!(
            (o.metadata_cache_bytes, o.overlay_bytes),
            (Some(8 << 20), Some(512 << 10))
        );
        assert_eq!(
            MountOptions::parse("overlay_budget=4096")
                .unwrap()
                .overlay_bytes,
            Some(4096)
        );
        for bad in [
            "metadata_cache=",
            "metadata_cache=0",
            "overlay_budget=1x",
            "overlay_budget=99999999999g",
        ] {
            let e = MountOptions::parse(bad).unwrap_err();
            assert!(e.contains(bad.split('=').next().unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn commit_interval() {
        assert_eq!(
            MountOptions::parse("").unwrap().commit,
            Some(DEFAULT_COMMIT)
        );
        assert_eq!(
            MountOptions::parse("commit=5").unwrap().commit,
            Some(Duration::from_secs(5))
        );
        assert_eq!(MountOptions::parse("commit=0").unwrap().commit, None);
        for bad in [
            "commit=",
            "commit=-1",
            "commit=1.5",
            "commit=86401",
            "commit=x",
        ] {
            let e = MountOptions::parse(bad).unwrap_err();
            assert!(e.contains("commit="), "{bad}: {e}");
        }
    }
}
