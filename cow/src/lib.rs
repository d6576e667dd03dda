//! The copy-on-write layer of bypassfs: the on-disk format, copy-on-write B+trees of
//! (objectid, type, offset) keys, the reference-counted extent tree, the checksum tree, the
//! allocator and crash-safe transactions, all over any `bdev::BlockDevice`.
//!
//! Not built yet: this crate holds only its role until the cow issue lands.
#![forbid(unsafe_code)]
