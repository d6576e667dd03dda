//! Plain C types of the API.
#![allow(non_camel_case_types)]

/// A mounted filesystem (0 is never valid).
pub type bfs_fs_t = u64;
/// A per-thread I/O context of one filesystem (0 is never valid).
pub type bfs_ctx_t = u64;
/// An open file (0 is never valid).
pub type bfs_file_t = u64;

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
