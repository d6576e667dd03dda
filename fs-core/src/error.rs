//! The one error type of fs-core, with context, mapping to errno values at the API edge.

use iomap::{FsError, IomapError};

/// Everything a filesystem operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such file or directory (`ENOENT`).
    #[error("not found: {0}")]
    NotFound(String),
    /// The name exists (`EEXIST`).
    #[error("exists: {0}")]
    Exists(String),
    /// A path component is not a directory (`ENOTDIR`).
    #[error("not a directory: {0}")]
    NotDir(String),
    /// The operation needs a non-directory (`EISDIR`).
    #[error("is a directory: {0}")]
    IsDir(String),
    /// The directory is not empty (`ENOTEMPTY`).
    #[error("directory not empty: {0}")]
    NotEmpty(String),
    /// A name is longer than 255 bytes (`ENAMETOOLONG`).
    #[error("name too long: {0}")]
    NameTooLong(String),
    /// A wrong argument (`EINVAL`).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// No space left (`ENOSPC`).
    #[error("no space left: {0}")]
    NoSpace(String),
    /// The extended attribute does not exist (`ENODATA`).
    #[error("no such attribute: {0}")]
    NoAttr(String),
    /// Too many links (`EMLINK`).
    #[error("too many links: {0}")]
    TooManyLinks(String),
    /// The file would be too large (`EFBIG`).
    #[error("file too large: {0}")]
    TooBig(String),
    /// Not supported by this filesystem (`EOPNOTSUPP`).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The filesystem is read-only (mounted so, or after a failed metadata write: `EROFS`).
    #[error("read-only filesystem: {0}")]
    ReadOnly(String),
    /// An I/O error or data that fails its checksum (`EIO`); the message says which file,
    /// offset and device address.
    #[error("I/O error: {0}")]
    Io(String),
    /// Metadata on the device is corrupt (`EUCLEAN`); the message names the structure.
    #[error("corrupt filesystem: {0}")]
    Corrupt(String),
    /// The handle is not open for this (`EBADF`).
    #[error("bad file handle: {0}")]
    BadHandle(String),
    /// The operation is not permitted (`EPERM`: a hard link to a directory).
    #[error("operation not permitted: {0}")]
    NotPermitted(String),
    /// A symlink where it cannot be followed, or too many of them (`ELOOP`).
    #[error("too many levels of symbolic links: {0}")]
    Loop(String),
    /// Another mount or program has the device (`EBUSY`); the message names it.
    #[error("device busy: {0}")]
    Busy(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Linux errno values (this crate uses no libc).
mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EBADF: i32 = 9;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    pub const EMLINK: i32 = 31;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOTEMPTY: i32 = 39;
    pub const ELOOP: i32 = 40;
    pub const ENODATA: i32 = 61;
    pub const EOPNOTSUPP: i32 = 95;
    pub const EUCLEAN: i32 = 117;
}

impl Error {
    /// The errno value of this error (Linux numbering).
    pub fn errno(&self) -> i32 {
        use errno::*;
        match self {
            Error::NotFound(_) => ENOENT,
            Error::Exists(_) => EEXIST,
            Error::NotDir(_) => ENOTDIR,
            Error::IsDir(_) => EISDIR,
            Error::NotEmpty(_) => ENOTEMPTY,
            Error::NameTooLong(_) => ENAMETOOLONG,
            Error::Invalid(_) => EINVAL,
            Error::NoSpace(_) => ENOSPC,
            Error::NoAttr(_) => ENODATA,
            Error::TooManyLinks(_) => EMLINK,
            Error::TooBig(_) => EFBIG,
            Error::Unsupported(_) => EOPNOTSUPP,
            Error::ReadOnly(_) => EROFS,
            Error::Io(_) => EIO,
            Error::Corrupt(_) => EUCLEAN,
            Error::BadHandle(_) => EBADF,
            Error::Loop(_) => ELOOP,
            Error::NotPermitted(_) => EPERM,
            Error::Busy(_) => EBUSY,
        }
    }
}

impl From<cow::Error> for Error {
    fn from(e: cow::Error) -> Error {
        match e {
            cow::Error::NoSpace(m) => Error::NoSpace(m),
            cow::Error::Corrupt(m) => Error::Corrupt(m),
            e @ cow::Error::NoSuperblock(_) => Error::Corrupt(e.to_string()),
            cow::Error::Poisoned(m) => Error::ReadOnly(m),
            cow::Error::Invalid(m) => Error::Invalid(m),
            cow::Error::InUse(m) => Error::Busy(m),
            e @ (cow::Error::Io { .. } | cow::Error::Device(_)) => Error::Io(e.to_string()),
            e => Error::Corrupt(e.to_string()),
        }
    }
}

impl Error {
    /// Carries this error through the iomap layer, typed: `From<IomapError>` takes it back.
    pub(crate) fn into_iomap(self) -> IomapError {
        IomapError::Fs(FsError::new(self))
    }
}

impl From<IomapError> for Error {
    fn from(e: IomapError) -> Error {
        let inner = match &e {
            IomapError::WritebackFailed { source, .. } => source.as_ref(),
            other => other,
        };
        if let IomapError::Fs(f) = inner {
            if let Some(mine) = f.downcast_ref::<Error>() {
                return mine.clone();
            }
        }
        match e {
            IomapError::Unaligned { .. } | IomapError::Invalid(_) => Error::Invalid(e.to_string()),
            _ => Error::Io(e.to_string()),
        }
    }
}

impl From<bdev::BdevError> for Error {
    fn from(e: bdev::BdevError) -> Error {
        match e {
            bdev::BdevError::InUse(m) => Error::Busy(m),
            e => Error::Io(format!("device: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_comes_back_from_iomap_as_it_went() {
        let e = Error::NoSpace("direct write of 4096 bytes".into());
        let back = Error::from(e.clone().into_iomap());
        assert!(matches!(&back, Error::NoSpace(m) if m == "direct write of 4096 bytes"));
        let wrapped = IomapError::WritebackFailed {
            ino: 7,
            source: Box::new(Error::Exists("x".into()).into_iomap()),
        };
        assert!(matches!(Error::from(wrapped), Error::Exists(m) if m == "x"));
        // Another filesystem's error (or a message) is an I/O error with its text.
        let other = IomapError::Fs(FsError::msg("model says no"));
        assert!(matches!(Error::from(other), Error::Io(m) if m.contains("model says no")));
    }
}
