//! File types: the `S_IFMT` bits of an inode's mode and the `d_type` codes of directory
//! entries, which both the inode and the directory items use.

/// `S_IFMT` and the file types this filesystem stores.
pub mod mode {
    /// File type mask.
    pub const S_IFMT: u32 = 0o170_000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100_000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040_000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120_000;
    /// Named pipe.
    pub const S_IFIFO: u32 = 0o010_000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140_000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020_000;
    /// Block device.
    pub const S_IFBLK: u32 = 0o060_000;
    /// Set-group-ID: on a directory, new entries take its group (and new subdirectories
    /// the bit).
    pub const S_ISGID: u32 = 0o2000;
}

/// The type of a directory entry (the `d_type` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe (FIFO).
    Fifo,
    /// Unix domain socket.
    Socket,
    /// Character device (its number is the inode's `rdev`).
    CharDev,
    /// Block device (its number is the inode's `rdev`).
    BlockDev,
}

impl FileType {
    /// The `d_type` value (`DT_*`) stored in directory entries.
    pub fn code(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharDev => 2,
            FileType::Dir => 4,
            FileType::BlockDev => 6,
            FileType::File => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }

    pub(crate) fn from_code(c: u8) -> Result<FileType, String> {
        Ok(match c {
            1 => FileType::Fifo,
            2 => FileType::CharDev,
            4 => FileType::Dir,
            6 => FileType::BlockDev,
            8 => FileType::File,
            10 => FileType::Symlink,
            12 => FileType::Socket,
            _ => return Err(format!("directory entry of unknown type {c}")),
        })
    }

    /// The type of an inode with `mode` (`None`: not a type this filesystem stores).
    pub fn from_mode(mode: u32) -> Option<FileType> {
        use self::mode as m;
        Some(match mode & m::S_IFMT {
            m::S_IFREG => FileType::File,
            m::S_IFDIR => FileType::Dir,
            m::S_IFLNK => FileType::Symlink,
            m::S_IFIFO => FileType::Fifo,
            m::S_IFSOCK => FileType::Socket,
            m::S_IFCHR => FileType::CharDev,
            m::S_IFBLK => FileType::BlockDev,
            _ => return None,
        })
    }

    /// The type of an inode with `mode`, which [`InodeItem::parse`](super::InodeItem::parse)
    /// validated (an unknown type reads as a regular file).
    pub fn of_mode(mode: u32) -> FileType {
        FileType::from_mode(mode).unwrap_or(FileType::File)
    }

    /// The `S_IFMT` bits of this type.
    pub fn mode_bits(self) -> u32 {
        use self::mode as m;
        match self {
            FileType::File => m::S_IFREG,
            FileType::Dir => m::S_IFDIR,
            FileType::Symlink => m::S_IFLNK,
            FileType::Fifo => m::S_IFIFO,
            FileType::Socket => m::S_IFSOCK,
            FileType::CharDev => m::S_IFCHR,
            FileType::BlockDev => m::S_IFBLK,
        }
    }

    /// Character and block devices: the types whose inode carries a device number.
    pub fn has_rdev(self) -> bool {
        matches!(self, FileType::CharDev | FileType::BlockDev)
    }
}
