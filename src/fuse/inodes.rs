//! Inode → paths: fs-core is path-based, FUSE inode-based.
//!
//! Every inode the kernel knows (it learnt it from a lookup, create, mkdir, symlink or link
//! reply) has at least one path here. Hard links give an inode several paths; unlink
//! removes one; rename rewrites the renamed path and everything below it. FUSE inode 1 is
//! fs-core's root inode.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use fs_core::items::ROOT_INO;

/// The kernel's name for the root directory.
pub(crate) const FUSE_ROOT: u64 = 1;

/// fs-core inode number of FUSE inode `ino`.
pub(crate) fn to_fs(ino: u64) -> u64 {
    if ino == FUSE_ROOT {
        ROOT_INO
    } else {
        ino
    }
}

/// FUSE inode number of fs-core inode `ino`.
pub(crate) fn to_fuse(ino: u64) -> u64 {
    if ino == ROOT_INO {
        FUSE_ROOT
    } else {
        ino
    }
}

/// `parent/name` for a directory path.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn under(p: &str, dir: &str) -> bool {
    p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
}

#[derive(Default)]
pub(crate) struct Inodes {
    paths: Mutex<HashMap<u64, Vec<String>>>,
}

impl Inodes {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Vec<String>>> {
        self.paths.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A path of fs-core inode `ino`.
    pub fn path(&self, ino: u64) -> Option<String> {
        if ino == ROOT_INO {
            return Some("/".into());
        }
        self.lock().get(&ino).and_then(|v| v.first().cloned())
    }

    /// Records that `path` names `ino`.
    pub fn add(&self, ino: u64, path: String) {
        if ino == ROOT_INO {
            return;
        }
        let mut m = self.lock();
        let v = m.entry(ino).or_default();
        if !v.contains(&path) {
            v.push(path);
        }
    }

    /// `path` (and everything below it) no longer exists.
    pub fn remove(&self, path: &str) {
        let mut m = self.lock();
        for v in m.values_mut() {
            v.retain(|p| !under(p, path));
        }
        m.retain(|_, v| !v.is_empty());
    }

    /// `old` was renamed to `new` (which it replaced if it existed).
    pub fn rename(&self, old: &str, new: &str) {
        self.remove(new);
        self.rewrite(old, new);
    }

    /// `a` and `b` were exchanged.
    pub fn exchange(&self, a: &str, b: &str) {
        let tmp = "\u{0}exchange";
        self.rewrite(a, tmp);
        self.rewrite(b, a);
        self.rewrite(tmp, b);
    }

    fn rewrite(&self, old: &str, new: &str) {
        let mut m = self.lock();
        for v in m.values_mut() {
            for p in v.iter_mut() {
                if under(p, old) {
                    *p = format!("{new}{}", &p[old.len()..]);
                }
            }
        }
    }
}
