//! The on-disk format: little-endian `#[repr(C)]` structures with compile-time sizes, and the
//! only way from untrusted bytes to trusted values (`parse_*`) and back (`encode`).
//!
//! Invariants:
//! - every structure read from the device is validated by a `parse_*` function before any other
//!   code sees it; what those functions cannot check alone (a node's expected owner, level,
//!   generation, first key) is checked by the caller that knows it, before use;
//! - every structure is validated again just before it is written (`encode` re-checks).
//!
//! The byte-level description is `docs/FORMAT.md`; if you change this module, update it.

// On-disk integers are little-endian on every host: no host- or big-endian conversions.
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

mod items;
mod key;
mod node;
mod superblock;

pub use items::{DataBackref, ExtentItem, MetadataItem, RootItem};
pub use key::{kind, DiskKey, Key, TreeId, CSUM_OBJECTID};
pub use node::{
    max_item_size, parse_node, Body, Item, ItemData, KeyPtr, Node, ITEM_HEADER_SIZE, KEY_PTR_SIZE,
    MAX_LEVEL, MAX_NODESIZE, MIN_NODESIZE, NODE_HEADER_SIZE, NODE_MAGIC,
};
pub use superblock::{
    parse_superblock, reserved_ranges, superblock_offsets, RootPtr, Superblock, FORMAT_VERSION,
    MIN_DEVICE_BYTES, SUPERBLOCK_AREA, SUPERBLOCK_CHECKED, SUPERBLOCK_MAGIC, SUPERBLOCK_OFFSETS,
};
