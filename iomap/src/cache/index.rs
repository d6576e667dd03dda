//! The per-file index: pages by page number, read-ahead state, and the first unreported
//! writeback error (errseq-like: the next fsync-equivalent takes it).

use std::collections::BTreeSet;

use super::pages::PageMap;
use crate::error::IomapError;

/// The cached state of one file.
#[derive(Default)]
pub(crate) struct FileIndex {
    pub(crate) pages: PageMap,
    /// The pages of `pages` holding a dirty block, so finding dirty runs does not walk
    /// every cached page of a large, mostly clean file.
    pub(crate) dirty: BTreeSet<u64>,
    /// The page a sequential reader would read next.
    pub(crate) ra_next: u64,
    /// Current read-ahead window, in pages (0: random access).
    pub(crate) ra_window: u64,
    /// A writeback error nobody has been told about yet.
    pub(crate) wb_error: Option<IomapError>,
    /// The cache's invalidation count when this file's pages were last invalidated (or when
    /// this index was created): a read that looked its mapping up before then may hold the
    /// bytes a direct write replaced.
    pub(crate) invalidated_at: u64,
}

impl FileIndex {
    /// Updates the read-ahead state for a read of pages `[first, end)` and returns the
    /// window to read beyond `end`: doubling while the reads are sequential, up to `max`.
    pub(crate) fn readahead(&mut self, first: u64, end: u64, max: u64) -> u64 {
        // A file's first read counts as sequential (ra_next starts at 0), as in Linux.
        self.ra_window = if first == self.ra_next {
            (self.ra_window * 2).clamp(4.min(max), max)
        } else {
            0
        };
        self.ra_next = end;
        self.ra_window
    }
}
