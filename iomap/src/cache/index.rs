//! The per-file index: pages by page number, read-ahead state, and the first unreported
//! writeback error (errseq-like: the next fsync-equivalent takes it).

use std::collections::BTreeSet;
use std::ops::Range;

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
    /// The end of the pages read-ahead has asked for (a hint: they may have been evicted
    /// or invalidated since; a read that misses fills them itself).
    pub(crate) ra_end: u64,
    /// A writeback error nobody has been told about yet.
    pub(crate) wb_error: Option<IomapError>,
    /// The cache's invalidation count when this file's pages were last invalidated (or when
    /// this index was created): a read that looked its mapping up before then may hold the
    /// bytes a direct write replaced.
    pub(crate) invalidated_at: u64,
}

impl FileIndex {
    /// Updates the read-ahead state for a read of pages `[first, end)` of a file of
    /// `eof` pages and returns the pages to read ahead beyond `end`, if any.
    ///
    /// While the reads are sequential the window doubles, from at least the read's own
    /// size, up to `max`; the pages ahead are asked for once half a window or more is
    /// missing, so a reader of small pieces starts a few large requests, not one per read
    /// (Linux's asynchronous read-ahead marker does the same). A read elsewhere resets it.
    pub(crate) fn readahead(
        &mut self,
        first: u64,
        end: u64,
        max: u64,
        eof: u64,
    ) -> Option<Range<u64>> {
        // A file's first read counts as sequential (ra_next starts at 0), as in Linux.
        let sequential = first == self.ra_next;
        self.ra_next = end;
        if !sequential || max == 0 {
            self.ra_window = 0;
            self.ra_end = end;
            return None;
        }
        self.ra_window = (self.ra_window * 2).max(end - first).clamp(4.min(max), max);
        let window = self.ra_window;
        let from = self.ra_end.max(end);
        let to = (end + window).min(eof);
        if to <= from || (to - from < window.div_ceil(2) && to < eof) {
            return None;
        }
        self.ra_end = to;
        Some(from..to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequential_reader_asks_for_whole_half_windows_ahead() {
        let mut f = FileIndex::default();
        // 1 MiB reads (256 pages), window up to 256: each read asks for the next one.
        assert_eq!(f.readahead(0, 256, 256, 10_000), Some(256..512));
        assert_eq!(f.readahead(256, 512, 256, 10_000), Some(512..768));
        // Near the end of the file, whatever is left.
        assert_eq!(f.readahead(512, 768, 256, 800), Some(768..800));
        assert_eq!(f.readahead(768, 800, 256, 800), None);
        // Single pages: the window doubles from 4 and the pages ahead come in half windows.
        let mut f = FileIndex::default();
        let asked: Vec<_> = (0..40)
            .filter_map(|p| f.readahead(p, p + 1, 16, 10_000))
            .collect();
        assert_eq!(asked[..3], [1..5, 5..10, 10..19]);
        assert!(asked.iter().all(|r| r.end - r.start >= 4), "{asked:?}");
        assert!(
            asked.windows(2).all(|w| w[0].end == w[1].start),
            "{asked:?}"
        );
        // A seek stops read-ahead; reading on from there starts it again.
        assert_eq!(f.readahead(5000, 5001, 16, 10_000), None);
        assert_eq!(f.ra_window, 0);
        assert_eq!(f.readahead(5001, 5002, 16, 10_000), Some(5002..5006));
    }
}
