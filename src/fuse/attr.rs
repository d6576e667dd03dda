//! fs-core attributes and errors in FUSE's terms.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs_core::{Error, FileType, Stat};
use fuser::{Errno, FileAttr, INodeNo};

use super::inodes::to_fuse;

/// How long the kernel may cache attributes and names: every change goes through this
/// mount, which keeps the kernel's caches right, so this only bounds staleness after bugs.
pub(crate) const TTL: Duration = Duration::from_secs(1);

pub(crate) fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

pub(crate) fn kind(t: FileType) -> fuser::FileType {
    match t {
        FileType::Dir => fuser::FileType::Directory,
        FileType::Symlink => fuser::FileType::Symlink,
        FileType::Fifo => fuser::FileType::NamedPipe,
        FileType::Socket => fuser::FileType::Socket,
        FileType::CharDev => fuser::FileType::CharDevice,
        FileType::BlockDev => fuser::FileType::BlockDevice,
        _ => fuser::FileType::RegularFile,
    }
}

pub(crate) fn time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

pub(crate) fn ns_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn file_attr(s: &Stat, block_size: u32) -> FileAttr {
    FileAttr {
        ino: INodeNo(to_fuse(s.ino)),
        size: s.size,
        blocks: s.blocks,
        atime: time(s.atime_ns),
        mtime: time(s.mtime_ns),
        ctime: time(s.ctime_ns),
        crtime: time(s.btime_ns),
        kind: kind(s.file_type),
        perm: (s.mode & 0o7777) as u16,
        nlink: s.nlink,
        uid: s.uid,
        gid: s.gid,
        // The kernel's own 32-bit encoding, as mknod passed it.
        rdev: s.rdev as u32,
        blksize: block_size,
        flags: 0,
    }
}
