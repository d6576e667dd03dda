//! The errors of the copy-on-write layer.

use bdev::{BdevError, IoError};

use crate::format::{Key, TreeId};

/// Everything that can go wrong in `cow`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O failed; `context` says what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done ("writing node 0x… of tree 2 (extent)").
        context: String,
        /// The device's error.
        source: IoError,
    },
    /// The device could not be used (queue, buffers, geometry).
    #[error("device: {0}")]
    Device(#[from] BdevError),
    /// Metadata on the device is not what it must be; the message names the structure, where
    /// it is and what is wrong ("leaf 0x1a4000 in tree 2 (extent): key order broken at slot 12").
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// No superblock copy is valid; the message lists why, copy by copy.
    #[error("no valid superblock: {0}")]
    NoSuperblock(String),
    /// An earlier metadata write or flush failed, so the volume refuses writes until it is
    /// reopened; the message is that first failure.
    #[error("volume is read-only until reopened after an earlier failure: {0}")]
    Poisoned(String),
    /// Not enough free space.
    #[error("out of space: {0}")]
    NoSpace(String),
    /// Another mount has the volume read-write (`claim.rs`); the message names it.
    #[error("in use: {0}")]
    InUse(String),
    /// The caller asked for something invalid.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// `insert` of a key that exists.
    #[error("key {key} already exists in tree {tree}")]
    KeyExists {
        /// The tree.
        tree: TreeId,
        /// The key.
        key: Key,
    },
    /// `update` of a key that does not exist.
    #[error("key {key} not found in tree {tree}")]
    NotFound {
        /// The tree.
        tree: TreeId,
        /// The key.
        key: Key,
    },
    /// The tree does not exist in this transaction or snapshot.
    #[error("tree {0} does not exist")]
    NoSuchTree(TreeId),
    /// An earlier operation of this transaction failed half-way; only dropping it is possible.
    #[error("transaction unusable after an earlier error: {0}")]
    TransactionFailed(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A corruption error about the node at `bytenr` of `tree`.
    pub(crate) fn node(
        what: &str,
        bytenr: u64,
        tree: TreeId,
        problem: impl std::fmt::Display,
    ) -> Error {
        Error::Corrupt(format!("{what} {bytenr:#x} in tree {tree}: {problem}"))
    }

    /// An I/O error with context.
    pub(crate) fn io(context: impl Into<String>, source: IoError) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
