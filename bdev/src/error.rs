//! Errors of the block device layer. It depends on no other module of the crate, so every
//! module can use it.

/// Why an I/O failed. Completion errors never allocate; only rejected arguments carry a
/// formatted message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The request itself is wrong (alignment, length, range); nothing reached the media.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The media failed the request.
    #[error("media error on {op} at LBA {lba}")]
    Media {
        /// Which kind of operation failed.
        op: &'static str,
        /// First block of the failed request.
        lba: u64,
    },
    /// The operating system reported an error (a positive errno).
    #[error("{op} failed: {}", std::io::Error::from_raw_os_error(*.errno))]
    Os {
        /// Which kind of operation failed.
        op: &'static str,
        /// The errno value.
        errno: i32,
    },
    /// The device does not implement this operation.
    #[error("{0} is not supported by this device")]
    Unsupported(&'static str),
    /// The device went away (hot remove, closed file).
    #[error("device removed")]
    Removed,
}

impl IoError {
    /// The errno this error maps to at a POSIX-style API edge.
    pub fn errno(&self) -> i32 {
        match self {
            IoError::Invalid(_) => libc::EINVAL,
            IoError::Media { .. } => libc::EIO,
            IoError::Os { errno, .. } => *errno,
            IoError::Unsupported(_) => libc::EOPNOTSUPP,
            IoError::Removed => libc::ENODEV,
        }
    }
}

/// Why `submit` gave a request back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Every slot of the queue is in flight: poll, then submit again.
    #[error("queue full: poll for completions, then resubmit")]
    QueueFull,
    /// The request was refused before reaching the device.
    #[error(transparent)]
    Rejected(#[from] IoError),
}

/// Errors opening, configuring or allocating for a device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BdevError {
    /// A device description (SPDK JSON config or parameters) is wrong.
    #[error("config: {0}")]
    Config(String),
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Os {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// DMA memory could not be had.
    #[error("cannot allocate {len} bytes of DMA memory: {reason}")]
    NoMemory {
        /// Requested length.
        len: usize,
        /// Why.
        reason: String,
    },
    /// A synchronous I/O failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Another opener holds the device in a mode that excludes this one (a second writer, or
    /// a reader while a writer is active); the message names the device and who holds it.
    #[error("{0}")]
    InUse(String),
}

impl BdevError {
    pub(crate) fn os(context: impl Into<String>, source: std::io::Error) -> Self {
        BdevError::Os {
            context: context.into(),
            source,
        }
    }
}
