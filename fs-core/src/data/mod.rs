//! File data in a transaction: file extent items, data extent references and checksums.
//! The iomap operations that use them are in `io/`.
//!
//! Invariants:
//! - file extents are block aligned and never overlap; a data extent is referenced once per
//!   file extent pointing into it, under the back-reference `(fs tree, ino, key.offset -
//!   offset)`;
//! - new data goes to space reserved with `Volume::reserve_data` in `begin` and is
//!   referenced only when the write completes (`complete` for writeback, `end` for a
//!   direct write), after the device acknowledged it: a crash before the commit leaves the
//!   old extents in place and the new space free;
//! - every block of a regular extent of a COW file has a crc32c, inserted in the same
//!   transaction as the extent: a one-block extent folded from the fsync log keeps it in
//!   its file extent item (the data extent's item says so), others in the checksum tree;
//!   reads check it (`verify_read`);
//! - NOCOW files overwrite unshared regular extents in place and have no checksums.

mod csum;
mod extents;

pub(crate) use csum::{block_crcs, crc_of, gather};
pub(crate) use extents::{
    extent_at, extent_ranges, extents_in, insert_extent, is_shared, punch, replace_extent,
    union_bytes,
};

use cow::{DataBackref, TreeId};

/// The back-reference of a file extent of `ino` whose data extent starts at file offset
/// `file_off_of_extent_start`.
pub(crate) fn backref(ino: u64, file_off_of_extent_start: u64) -> DataBackref {
    DataBackref {
        root: TreeId::FS,
        objectid: ino,
        offset: file_off_of_extent_start,
    }
}
