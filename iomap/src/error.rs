//! The errors of the iomap layer.

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
    /// The filesystem refused the operation (no space, read-only …).
    #[error("filesystem: {0}")]
    Fs(String),
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

/// The result type of the layer.
pub type Result<T, E = IomapError> = std::result::Result<T, E>;
