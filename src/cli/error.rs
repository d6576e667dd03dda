//! The CLI's one error: a message that says what went wrong and, where we know, what to do.

use std::fmt;

/// Exit statuses (documented in `--help`).
pub mod exit {
    /// Success; fsck: no error found.
    pub const OK: u8 = 0;
    /// bench: some I/O failed.
    pub const IO_FAILED: u8 = 1;
    /// fsck: errors found.
    pub const FSCK_ERRORS: u8 = 4;
    /// Anything that stopped the command.
    pub const OPERATIONAL: u8 = 8;
}

/// What stopped a subcommand.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Result` with [`CliError`].
pub type Result<T> = std::result::Result<T, CliError>;

/// Puts what was being done in front of an error, and a hint after it when the error is one
/// whose remedy we know.
pub trait Context<T> {
    /// `what` names the action and its object: "mounting disk.img".
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, fs_core::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let hint = match &e {
                fs_core::Error::Corrupt(_) => "; `bypassfs fsck DEVICE` lists what is wrong",
                fs_core::Error::NotFound(_) => "; `bypassfs ls DEVICE PATH` shows what exists",
                fs_core::Error::Invalid(m) if m.contains("align") => {
                    "; the buffer or offset is not aligned to the device block size (use a \
                     device whose block size divides 4096)"
                }
                fs_core::Error::NoSpace(m) if m.contains("fragmented") => {
                    "; no room for metadata although data space is free (a volume filled by a \
                     version without the metadata reserve): mount it read-only (`-o ro`, `get`, `cat`) to copy \
                     the files off, or onto a larger device"
                }
                fs_core::Error::NoSpace(_) => "; the device is full: use a larger one",
                _ => "",
            };
            CliError(format!("{}: {e}{hint}", what()))
        })
    }
}

impl<T> Context<T> for std::result::Result<T, bdev::BdevError> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CliError(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CliError(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for std::result::Result<T, bench::error::BenchError> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CliError(format!("{}: {e}", what())))
    }
}
