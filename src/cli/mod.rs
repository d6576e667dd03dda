//! The subcommands (one file each) and what they share: opening a DEVICE, errors with a
//! hint, progress bars, logging.

pub mod bench;
pub mod cat;
pub mod device;
pub mod error;
pub mod fsck;
pub mod get;
pub mod log;
pub mod ls;
pub mod mkfs;
pub mod mount;
pub mod output;
pub mod probe;
pub mod progress;
pub mod put;
pub mod spdk;
pub mod stat;
