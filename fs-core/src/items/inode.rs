//! INODE_ITEM: everything about a file but its names and its data.

use super::codec::{Reader, Writer};
use super::file_type::{mode, FileType};

/// Inode flags (the `flags` field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InodeFlags(pub u64);

impl InodeFlags {
    /// Data is overwritten in place where unshared (no copy-on-write, no data checksums).
    pub const NOCOW: InodeFlags = InodeFlags(1);
    /// Every flag this version knows.
    pub const KNOWN: u64 = 1;

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: InodeFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The inode item, 80 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InodeItem {
    /// File size in bytes (for a symlink: the target's length).
    pub size: u64,
    /// Hard links (a directory: 2 + subdirectories).
    pub nlink: u32,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// [`InodeFlags`].
    pub flags: InodeFlags,
    /// Access time, ns since the epoch.
    pub atime_ns: i64,
    /// Data modification time, ns.
    pub mtime_ns: i64,
    /// Status change time, ns.
    pub ctime_ns: i64,
    /// Creation time, ns.
    pub btime_ns: i64,
    /// Directories: the next DIR_INDEX (readdir cookie) to hand out; never reused.
    /// Character and block devices: the device number (`st_rdev`, Linux's encoding).
    /// Other types: [`FIRST_INDEX`](super::FIRST_INDEX), unused.
    pub next_index: u64,
    /// The transaction generation that created the inode.
    pub generation: u64,
}

/// Encoded size of an inode item.
pub const INODE_ITEM_SIZE: usize = 80;

impl InodeItem {
    /// The file type bits.
    pub fn kind(&self) -> u32 {
        self.mode & mode::S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == mode::S_IFDIR
    }

    /// The device number of a character or block device, else 0.
    pub fn rdev(&self) -> u64 {
        if FileType::of_mode(self.mode).has_rdev() {
            self.next_index
        } else {
            0
        }
    }

    /// The item bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u64(self.size)
            .u32(self.nlink)
            .u32(self.mode)
            .u32(self.uid)
            .u32(self.gid)
            .u64(self.flags.0)
            .i64(self.atime_ns)
            .i64(self.mtime_ns)
            .i64(self.ctime_ns)
            .i64(self.btime_ns)
            .u64(self.next_index)
            .u64(self.generation);
        debug_assert_eq!(w.0.len(), INODE_ITEM_SIZE);
        w.0
    }

    /// Parses and validates item bytes.
    pub fn parse(data: &[u8]) -> Result<InodeItem, String> {
        let mut r = Reader::new(data, "inode item");
        let item = InodeItem {
            size: r.u64()?,
            nlink: r.u32()?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            flags: InodeFlags(r.u64()?),
            atime_ns: r.i64()?,
            mtime_ns: r.i64()?,
            ctime_ns: r.i64()?,
            btime_ns: r.i64()?,
            next_index: r.u64()?,
            generation: r.u64()?,
        };
        r.finish()?;
        let k = item.kind();
        if FileType::from_mode(k).is_none() {
            return Err(format!("inode item: unknown file type {k:#o}"));
        }
        if item.flags.0 & !InodeFlags::KNOWN != 0 {
            return Err(format!("inode item: unknown flags {:#x}", item.flags.0));
        }
        if item.size > i64::MAX as u64 {
            return Err(format!("inode item: size {} too large", item.size));
        }
        Ok(item)
    }
}
