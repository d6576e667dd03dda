//! The copy-on-write layer of bypassfs: the on-disk format, copy-on-write B+trees of
//! (objectid, type, offset) keys, the reference-counted extent tree, the checksum tree, the
//! allocator and crash-safe transactions, all over any `bdev::BlockDevice`.
//!
//! Reading order: [`format`](mod@format) (bytes ↔ validated structures), `btree` (the algorithms),
//! [`Transaction`] (copy-on-write, delayed references, commit), [`Volume`] (open, readers,
//! poisoning). The byte-level format is `docs/FORMAT.md`.
//!
//! ```
//! use std::sync::Arc;
//! use bdev::{mem::MemDevice, BlockDevice};
//! use cow::{Direction, FormatOptions, Key, TreeId, Volume};
//!
//! let dev: Arc<dyn BlockDevice> = Arc::new(MemDevice::new("m", 4096, 1024).unwrap());
//! let mut io = dev.queue(32).unwrap();
//! let vol = Volume::format(dev.clone(), &mut *io, &FormatOptions::default()).unwrap();
//! let tree = TreeId(256);
//! let mut tx = vol.begin().unwrap();
//! tx.create_tree(tree).unwrap();
//! tx.insert(&mut *io, tree, Key::new(1, 1, 0), b"hello").unwrap();
//! tx.commit(&mut *io).unwrap();
//! let r = vol.reader();
//! assert_eq!(r.get(&mut *io, tree, Key::new(1, 1, 0)).unwrap().as_deref(), Some(&b"hello"[..]));
//! assert_eq!(r.iter(&mut *io, tree, Key::MIN, Key::MAX, Direction::Backward).count(), 1);
//! ```
#![forbid(unsafe_code)]

mod alloc;
mod btree;
mod check;
pub mod claim;
mod committed;
mod delayed;
mod dump;
mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzz;
mod open;
mod readers;
mod store;
mod superblocks;
mod transaction;
mod volume;

pub use btree::{Direction, Iter, LeafCache};
pub use check::{CheckReport, NodeInfo};
pub use error::{Error, Result};
pub use format::{DataBackref, ItemData, Key, TreeId};
pub use superblocks::{read_superblock_copies, volume_copies, SuperblockCopy};
pub use transaction::Transaction;
pub use volume::{FormatOptions, OpenOptions, ReadTxn, Volume};
