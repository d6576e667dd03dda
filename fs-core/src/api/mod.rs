//! The public API: [`Filesystem`] (format, mount, unmount, statfs, the namespace by path
//! and by inode), [`Context`] (one per thread), [`File`] (reads, writes, fsync), and sync.
//! The top layer: it joins the iomap layer (`io/`) with durability (`durability/`).

mod context;
pub(crate) mod file;
mod fs;
mod namespace;
mod sync;
mod timer;

pub use context::Context;
pub(crate) use context::DEV;
pub use file::{File, OpenFlags};
pub use fs::{
    Filesystem, FormatOptions, MemoryUse, MountOptions, DEFAULT_COMMIT_INTERVAL,
    DEFAULT_FOLDER_NICE, DEFAULT_LOOKUP_CACHE_ENTRIES,
};
pub use namespace::{NewNode, LINK_MAX, SYMLINK_MAX};
pub(crate) use sync::fsync_ino;
pub use timer::{Clock, ManualClock, SystemClock};
