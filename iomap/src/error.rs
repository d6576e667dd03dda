//! The errors of the iomap layer.
//!
//! A filesystem's own errors cross the layer typed: [`IomapError::Fs`] carries an
//! [`FsError`], which holds the filesystem's error value and gives it back by downcast, so
//! nothing is printed and parsed on the way.

use std::sync::Arc;

use bdev::IoError;

/// Why an iomap operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IomapError {
    /// The device failed an I/O of the operation.
    #[error("inode {ino}: device {op} at file offset {pos} failed: {source}")]
    Device {
        /// The file.
        ino: u64,
        /// What the I/O was for (read, write, writeback …).
        op: &'static str,
        /// File offset of the failed I/O.
        pos: u64,
        /// The device's error.
        source: IoError,
    },
    /// A writeback of the file failed earlier (in the background or for another caller);
    /// reported once, to the next fsync-equivalent.
    #[error("inode {ino}: an earlier writeback failed: {source}")]
    WritebackFailed {
        /// The file.
        ino: u64,
        /// The first error recorded.
        source: Box<IomapError>,
    },
    /// The filesystem's `begin` returned a mapping the core cannot use: a filesystem bug.
    #[error("inode {ino}: filesystem returned a bad {which} for {pos}+{len}: {reason}")]
    BadMapping {
        /// The file.
        ino: u64,
        /// "write map" or "source map".
        which: &'static str,
        /// Position asked for.
        pos: u64,
        /// Length asked for.
        len: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A direct I/O request is not aligned to the device sector.
    #[error("direct I/O at {pos}+{len} is not aligned to the {align}-byte device sector")]
    Unaligned {
        /// Requested offset.
        pos: u64,
        /// Requested length.
        len: u64,
        /// Required alignment.
        align: u64,
    },
    /// An argument is wrong (range overflow, bad configuration …).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The operation would have to wait and `NOWAIT` was given.
    #[error("operation would block")]
    WouldBlock,
    /// Memory for the page cache or bounce buffers could not be had.
    #[error("out of memory: {0}")]
    NoMemory(String),
    /// The filesystem refused the operation (no space, read-only …): its own error, typed.
    #[error("filesystem: {0}")]
    Fs(FsError),
    /// A read's mapping was replaced while the read ran: a concurrent write of the same
    /// blocks moved them elsewhere and a commit dropped the old checksums, so the bytes
    /// read (an older version) can no longer be checked. `verify_read` returns this instead
    /// of a checksum error when the block no longer maps where the read went; the layer
    /// then maps the range again and rereads (a bounded number of times: see
    /// [`MAPPING_RETRIES`]).
    #[error("inode {ino}: the mapping at file offset {pos} kept changing during reads")]
    MappingChanged {
        /// The file.
        ino: u64,
        /// File offset of the block.
        pos: u64,
    },
}

/// How many times a read whose mapping changed under it ([`IomapError::MappingChanged`])
/// is mapped again before the error goes to the caller.
pub const MAPPING_RETRIES: usize = 64;

impl IomapError {
    /// Wraps a device error of an I/O for `op` at file offset `pos` of `ino`.
    pub fn device(ino: u64, op: &'static str, pos: u64, source: IoError) -> IomapError {
        IomapError::Device {
            ino,
            op,
            pos,
            source,
        }
    }
}

/// A filesystem's error carried through the layer ([`IomapError::Fs`]): the value the
/// filesystem made, shared (errors are cloned), for the filesystem to take back with
/// [`FsError::downcast_ref`].
#[derive(Clone)]
pub struct FsError(Arc<dyn std::error::Error + Send + Sync>);

impl FsError {
    /// Wraps the filesystem's error `e`.
    pub fn new<E: std::error::Error + Send + Sync + 'static>(e: E) -> FsError {
        FsError(Arc::new(e))
    }

    /// An error that is only a message (for filesystems without an error type of their own,
    /// such as test models).
    pub fn msg(m: impl Into<String>) -> FsError {
        FsError::new(Message(m.into()))
    }

    /// The filesystem's error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }
}

impl std::fmt::Debug for FsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for FsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

/// Equal when they say the same (the payload types need not compare), so tests can match
/// errors by value.
impl PartialEq for FsError {
    fn eq(&self, other: &FsError) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.to_string() == other.to_string()
    }
}

impl Eq for FsError {}

/// The payload of [`FsError::msg`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

/// The result type of the layer.
pub type Result<T, E = IomapError> = std::result::Result<T, E>;
