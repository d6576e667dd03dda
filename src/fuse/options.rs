//! Mount options (`-o a,b=c`).

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
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            threads: 4,
            read_only: false,
            allow_other: false,
            fsname: "bypassfs".into(),
            handle_signals: true,
        }
    }
}

impl MountOptions {
    /// Parses a `-o` string: `ro`, `rw`, `allow_other`, `threads=N`, `fsname=NAME`,
    /// `nosignals`; `default_permissions` is accepted and always on. Unknown options are
    /// errors naming them.
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
    }
}
