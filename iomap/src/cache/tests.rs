//! Unit tests of the page cache's races and run lookups (kept apart from `mod.rs`).

use super::*;

const K: u64 = 1024;

/// A cache of 16 KiB pages over 4 KiB blocks with pages 0..8 of inode 1 up to date.
fn cache() -> PageCache {
    let dev = Arc::new(bdev::mem::MemDevice::new("mem0", 4096, 256).unwrap());
    let c = PageCache::new(dev, 16 * K, 4 * K, 64, 64).unwrap();
    c.populate(Ino(1), 0, 128 * K).unwrap();
    c.fill(Ino(1), 0, 128 * K, None, |_, b| b.fill(7));
    c
}

/// A read that looked its mapping up before a direct write's invalidation must not leave
/// the replaced bytes cached (the race a concurrency test caught about once in 100 runs).
#[test]
fn a_fill_from_a_mapping_older_than_an_invalidation_is_dropped() {
    let c = cache();
    let (ino, other) = (Ino(1), Ino(2));
    let mut got = [0u8; 4096];
    let read = |c: &PageCache, ino, mark, (a, b): (u64, u64)| {
        c.populate(ino, a, b).unwrap();
        let (taken, pieces) = c.take(ino, a, b, TakeFor::Fill).unwrap();
        c.restore(taken, pieces, Outcome::FilledUnlessInvalidated(mark));
    };
    // Nothing invalidated since the mark: the fill counts.
    c.invalidate(ino, 128 * K, 144 * K);
    let mark = c.invalidation_mark();
    read(&c, ino, mark, (128 * K, 132 * K));
    assert!(c.read_cached(ino, 128 * K, &mut got));
    // Invalidated after the mark (any range of the file): dropped, for data and zeroes.
    let mark = c.invalidation_mark();
    c.invalidate(ino, 0, 4 * K);
    read(&c, ino, mark, (132 * K, 136 * K));
    assert!(!c.read_cached(ino, 132 * K, &mut got));
    c.fill(ino, 132 * K, 136 * K, Some(mark), |_, b| b.fill(0));
    assert!(!c.read_cached(ino, 132 * K, &mut got));
    // Other files' invalidations do not matter once a file has pages...
    let mark = c.invalidation_mark();
    c.invalidate(other, 0, 4 * K);
    read(&c, ino, mark, (136 * K, 140 * K));
    assert!(c.read_cached(ino, 136 * K, &mut got));
    // ...but a file without pages at its invalidation gets an index that counts as
    // invalidated when it is created.
    let mark = c.invalidation_mark();
    c.invalidate(other, 0, 4 * K);
    read(&c, other, mark, (0, 4 * K));
    assert!(!c.read_cached(other, 0, &mut got));
    let mark = c.invalidation_mark();
    read(&c, other, mark, (0, 4 * K));
    assert!(c.read_cached(other, 0, &mut got));
}

/// A reader that found blocks stale, then mapped them, must not fill them after another
/// thread wrote them meanwhile: the device's bytes are older (a lost write in fs-core's
/// concurrency test, through read-ahead into pages other threads were writing).
#[test]
fn a_fill_leaves_blocks_written_since_the_reader_looked() {
    let c = cache();
    let ino = Ino(1);
    let mut got = [0u8; 4096];
    // Page 8 (blocks at 128-144 KiB) is cached and stale.
    c.populate(ino, 128 * K, 144 * K).unwrap();
    assert_eq!(
        c.stale_runs(ino, 128 * K, 144 * K),
        vec![(128 * K, 144 * K)]
    );
    // A writer fills block 1 of the page before the reader takes the run.
    assert!(c.write_cached(ino, 132 * K, &[9; 4096]));
    assert!(c.take(ino, 128 * K, 144 * K, TakeFor::Fill).is_none());
    // The reader looks again and takes only what is still stale.
    assert_eq!(
        c.stale_runs(ino, 128 * K, 144 * K),
        vec![(128 * K, 132 * K), (136 * K, 144 * K)]
    );
    let (taken, pieces) = c.take(ino, 128 * K, 132 * K, TakeFor::Fill).unwrap();
    c.restore(taken, pieces, Outcome::Filled);
    // Zero fills (holes, delalloc) skip up-to-date blocks too.
    c.fill(ino, 128 * K, 144 * K, None, |_, b| b.fill(0));
    assert!(c.read_cached(ino, 132 * K, &mut got));
    assert_eq!(got, [9; 4096]);
    assert!(c.read_cached(ino, 136 * K, &mut got));
    assert_eq!(got, [0; 4096]);
    // A writeback takes only blocks that are all still dirty.
    assert!(c.take(ino, 128 * K, 136 * K, TakeFor::Writeback).is_none());
    let (taken, pieces) = c.take(ino, 132 * K, 136 * K, TakeFor::Writeback).unwrap();
    c.restore(taken, pieces, Outcome::Written);
    assert!(c.take(ino, 132 * K, 136 * K, TakeFor::Writeback).is_none());
    assert!(c.read_cached(ino, 132 * K, &mut got));
    assert_eq!(got, [9; 4096]);
}

#[test]
fn dirty_runs_are_found_through_the_dirty_set_and_end_at_clean_pages() {
    let c = cache();
    let ino = Ino(1);
    assert_eq!(c.next_dirty_run(ino, 0, u64::MAX, u64::MAX), None);
    // Page 1 block 3 and page 2 blocks 0-1 touch: one run across the page boundary.
    assert!(c.write_cached(ino, 28 * K, &[1; 12 * 1024]));
    // Page 5 block 2, after clean pages 3 and 4.
    assert!(c.write_cached(ino, 88 * K, &[2; 4 * 1024]));
    assert_eq!(c.stats().dirty, 3);
    assert_eq!(c.dirty_files(), vec![ino]);
    let all = (0, u64::MAX, u64::MAX);
    assert_eq!(
        c.next_dirty_run(ino, all.0, all.1, all.2),
        Some((28 * K, 40 * K))
    );
    assert_eq!(
        c.next_dirty_run(ino, 0, u64::MAX, 4 * K),
        Some((28 * K, 32 * K))
    );
    assert_eq!(
        c.next_dirty_run(ino, 40 * K, u64::MAX, u64::MAX),
        Some((88 * K, 92 * K))
    );
    assert_eq!(
        c.next_dirty_run(ino, 0, 30 * K, u64::MAX),
        Some((28 * K, 32 * K))
    );
    // Writing pages 1 and 2 back cleans them; page 5 stays dirty.
    let (taken, pieces) = c.take(ino, 28 * K, 40 * K, TakeFor::Writeback).unwrap();
    c.restore(taken, pieces, Outcome::Written);
    assert_eq!(c.stats().dirty, 1);
    assert_eq!(
        c.next_dirty_run(ino, 0, u64::MAX, u64::MAX),
        Some((88 * K, 92 * K))
    );
    // Truncating into page 5 before its dirty block drops the block's dirty state.
    c.truncate(ino, 84 * K);
    assert_eq!(c.next_dirty_run(ino, 0, u64::MAX, u64::MAX), None);
    assert_eq!(c.stats().dirty, 0);
    assert!(c.dirty_files().is_empty());
    // Whole dirty pages past a truncation leave the set with their page.
    assert!(c.write_cached(ino, 64 * K, &[3; 4 * 1024]));
    c.truncate(ino, 16 * K);
    assert_eq!(c.next_dirty_run(ino, 0, u64::MAX, u64::MAX), None);
    assert!(c.dirty_files().is_empty());
}
