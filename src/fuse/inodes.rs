//! FUSE inode numbers are fs-core's, but for the root: the kernel calls it 1.

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
