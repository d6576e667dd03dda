//! Plain data of the API: attributes, statfs, directory entries.

use crate::items::{FileType, InodeItem};

/// Attributes of an inode (`struct stat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Inode number.
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    /// The type.
    pub file_type: FileType,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Access time (ns since the epoch).
    pub atime_ns: i64,
    /// Modification time.
    pub mtime_ns: i64,
    /// Status change time.
    pub ctime_ns: i64,
    /// Creation time.
    pub btime_ns: i64,
    /// The file is NOCOW.
    pub nocow: bool,
    /// Character and block devices: the device number (Linux's encoding); else 0.
    pub rdev: u64,
    /// Space the file takes, in 512-byte units (`st_blocks`): its allocated extents and
    /// cached writes, not its holes.
    pub blocks: u64,
}

impl Stat {
    pub(crate) fn from_item(ino: u64, i: &InodeItem, size: u64) -> Stat {
        Stat {
            ino,
            mode: i.mode,
            file_type: FileType::of_mode(i.mode),
            nlink: i.nlink,
            uid: i.uid,
            gid: i.gid,
            size,
            atime_ns: i.atime_ns,
            mtime_ns: i.mtime_ns,
            ctime_ns: i.ctime_ns,
            btime_ns: i.btime_ns,
            nocow: i.flags.contains(crate::items::InodeFlags::NOCOW),
            rdev: i.rdev(),
            blocks: 0,
        }
    }
}

/// Filesystem space (`struct statvfs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// Block size in bytes.
    pub block_size: u64,
    /// Blocks on the device.
    pub blocks: u64,
    /// Blocks not allocated.
    pub blocks_free: u64,
    /// Blocks new data may still take (free minus cached writes' reservations minus the
    /// room kept for metadata).
    pub blocks_avail: u64,
    /// Longest name.
    pub name_max: u64,
    /// Inode numbers handed out so far.
    pub files: u64,
}

/// One entry of [`Filesystem::readdir`](crate::Filesystem::readdir).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryInfo {
    /// The name: bytes, as Linux names are (1 to 255, no `/` or NUL).
    pub name: Vec<u8>,
    /// Its inode.
    pub ino: u64,
    /// Its type.
    pub file_type: FileType,
    /// The cookie to pass to `readdir` to continue after this entry.
    pub next_cookie: u64,
}

impl DirEntryInfo {
    /// The name for display (invalid UTF-8 replaced).
    pub fn name_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

/// What [`Filesystem::set_attr`](crate::Filesystem::set_attr) changes (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// Size (truncate or extend).
    pub size: Option<u64>,
    /// Access time.
    pub atime_ns: Option<i64>,
    /// Modification time.
    pub mtime_ns: Option<i64>,
    /// Status change time (otherwise any change sets it to now).
    pub ctime_ns: Option<i64>,
}

impl SetAttr {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == SetAttr::default()
    }
}
