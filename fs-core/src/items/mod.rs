//! The filesystem's items in the fs tree (tree 5), btrfs-like. Each type has an `encode`
//! and a validating `parse`; untrusted bytes become these structures only through `parse`.
//! The byte layout is documented in `docs/FORMAT.md` ("fs items"); change both together.
//! Every integer is little-endian on the device, whatever the host: the lints below refuse
//! host- or big-endian conversions here.
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

pub(crate) mod codec;
mod dir;
mod extent;
mod file_type;
mod inode;
mod xattr;

pub use dir::{name_hash, DirEntry};
pub(crate) use dir::{DirEntries, InodeRefs};
pub use extent::{ExtentKind, FileExtent};
pub use file_type::{mode, FileType};
pub use inode::{InodeFlags, InodeItem};
pub(crate) use xattr::Xattrs;

/// Item types (the key's `kind`), btrfs's numbers.
pub mod kind {
    /// `(ino, INODE_ITEM, 0)`: the inode.
    pub const INODE_ITEM: u8 = 1;
    /// `(ino, INODE_REF, parent)`: the names of `ino` in directory `parent`.
    pub const INODE_REF: u8 = 12;
    /// `(ino, XATTR_ITEM, hash(name))`: extended attributes whose names hash there.
    pub const XATTR_ITEM: u8 = 24;
    /// `(ORPHAN_OBJECTID, ORPHAN_ITEM, ino)`: an unlinked inode still open.
    pub const ORPHAN_ITEM: u8 = 48;
    /// `(dir, DIR_ITEM, hash(name))`: entries of `dir` whose names hash there.
    pub const DIR_ITEM: u8 = 84;
    /// `(dir, DIR_INDEX, index)`: the entry with readdir cookie `index`.
    pub const DIR_INDEX: u8 = 96;
    /// `(ino, EXTENT_DATA, file offset)`: a file extent.
    pub const EXTENT_DATA: u8 = 108;
}

/// The root directory's inode number (btrfs's first free objectid).
pub const ROOT_INO: u64 = 256;
/// Objectid of orphan items.
pub const ORPHAN_OBJECTID: u64 = u64::MAX - 4;
/// The longest name, in bytes.
pub const NAME_MAX: usize = 255;
/// The first readdir cookie of a directory's entries (0 and 1 are `.` and `..`).
pub const FIRST_INDEX: u64 = 2;
