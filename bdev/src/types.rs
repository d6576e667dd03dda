//! Units and the device geometry.

use std::fmt;

/// A logical block address: an index in units of the device's block size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lba(pub u64);

impl fmt::Display for Lba {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a device is and what it promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Logical block (sector) size in bytes; every I/O is a whole number of blocks.
    pub block_size: u32,
    /// Number of logical blocks.
    pub block_count: u64,
    /// Required alignment of every buffer address, in bytes (a power of two).
    pub buf_align: usize,
    /// I/Os should not cross multiples of this many blocks (0: no boundary).
    pub optimal_io_boundary_blocks: u32,
    /// The device acknowledges writes before they are durable.
    pub volatile_write_cache: bool,
    /// A completed flush means every write completed before it is durable.
    pub flush_honoured: bool,
    /// A completed FUA write is durable on its own.
    pub fua_honoured: bool,
}

impl Geometry {
    /// Capacity in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.block_count * u64::from(self.block_size)
    }

    /// Whether the device can lose acknowledged writes that nothing can make durable: a
    /// volatile cache that flush does not empty. Upper layers refuse read-write use of such a
    /// device unless the user accepts the risk.
    pub fn durability_unknowable(&self) -> bool {
        self.volatile_write_cache && !self.flush_honoured
    }
}
