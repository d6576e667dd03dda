//! bfsperf's errors: each says what to change.

use std::path::PathBuf;

use crate::args::ArgError;

/// Why a run could not be done (I/O errors during a run are counted, not raised).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The command line makes no sense.
    #[error(transparent)]
    Args(#[from] ArgError),
    /// The command line does not fit the configured bdevs.
    #[error("{0}")]
    Plan(String),
    /// A device could not be opened or set up.
    #[error(transparent)]
    Bdev(#[from] bdev::BdevError),
    /// A device refused a request for a reason other than a full queue; bdevperf stops there
    /// too ("Failed to submit bdev_io").
    #[error("{job}: device refused a request: {reason}")]
    Rejected {
        /// The job's bdev name.
        job: String,
        /// The device's reason.
        reason: String,
    },
    /// A `--prefill` write failed.
    #[error("{job}: prefill write at LBA {lba} failed: {reason}")]
    Prefill {
        /// The job's bdev name.
        job: String,
        /// Where.
        lba: u64,
        /// The device's reason.
        reason: String,
    },
    /// A filesystem operation of a `--fs` run failed outside the timed I/O.
    #[error("{what}: {source}")]
    Fs {
        /// What was being done.
        what: String,
        /// fs-core's error.
        source: fs_core::Error,
    },
    /// The results could not be written.
    #[error("writing {}: {source}", path.display())]
    Output {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
