//! Plain C types of the API.
#![allow(non_camel_case_types)]

/// A mounted filesystem (0 is never valid).
pub type bfs_fs_t = u64;
/// A per-thread I/O context of one filesystem (0 is never valid).
pub type bfs_ctx_t = u64;
/// An open file (0 is never valid).
pub type bfs_file_t = u64;
/// An open directory stream (0 is never valid).
pub type bfs_dir_t = u64;

/// Attributes of a file (`struct stat`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct bfs_stat {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Type and permission bits (`S_IFREG | 0644` …).
    pub mode: u32,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Access time, ns since the epoch.
    pub atime_ns: i64,
    /// Modification time.
    pub mtime_ns: i64,
    /// Status change time.
    pub ctime_ns: i64,
    /// Creation time.
    pub btime_ns: i64,
    /// Space the file takes in 512-byte units (`st_blocks`): not its holes.
    pub blocks: u64,
    /// Character and block devices: the device number (Linux's encoding); else 0.
    pub rdev: u64,
    /// 1 for a NOCOW file (`bfs_create_nocow`), else 0.
    pub nocow: u32,
}

impl From<&fs_core::Stat> for bfs_stat {
    fn from(s: &fs_core::Stat) -> Self {
        bfs_stat {
            ino: s.ino,
            size: s.size,
            mode: s.mode,
            nlink: s.nlink,
            uid: s.uid,
            gid: s.gid,
            atime_ns: s.atime_ns,
            mtime_ns: s.mtime_ns,
            ctime_ns: s.ctime_ns,
            btime_ns: s.btime_ns,
            blocks: s.blocks,
            rdev: s.rdev,
            nocow: u32::from(s.nocow),
        }
    }
}

/// Space and limits of a filesystem (`struct statvfs`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct bfs_statfs {
    /// Block size in bytes (the unit of the counts below).
    pub block_size: u64,
    /// Blocks on the device.
    pub blocks: u64,
    /// Blocks not allocated.
    pub blocks_free: u64,
    /// Blocks new data may still take: free blocks less those promised to cached writes
    /// and the room kept for metadata.
    pub blocks_avail: u64,
    /// Inode numbers handed out so far.
    pub files: u64,
    /// Longest name in bytes.
    pub name_max: u64,
}

impl From<&fs_core::StatFs> for bfs_statfs {
    fn from(s: &fs_core::StatFs) -> Self {
        bfs_statfs {
            block_size: s.block_size,
            blocks: s.blocks,
            blocks_free: s.blocks_free,
            blocks_avail: s.blocks_avail,
            files: s.files,
            name_max: s.name_max,
        }
    }
}

/// Longest name plus its NUL.
pub const BFS_NAME_MAX: usize = 256;

/// One directory entry.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bfs_dirent {
    /// Inode number.
    pub ino: u64,
    /// Cookie to resume reading after this entry.
    pub next_cookie: u64,
    /// `DT_REG`, `DT_DIR` or `DT_LNK`.
    pub d_type: u32,
    /// NUL-terminated name.
    pub name: [u8; BFS_NAME_MAX],
}

/// A finished asynchronous request.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct bfs_completion {
    /// What the submitter passed.
    pub user_data: u64,
    /// Bytes transferred, or a negative errno.
    pub result: i64,
}
