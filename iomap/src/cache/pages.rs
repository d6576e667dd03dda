//! The pages of one file by page number: a hash map for the point lookups every read and
//! write makes, beside the page numbers in order for the walks of eviction, truncation and
//! the busy check.
//!
//! A B-tree map alone made a cached 4 KiB read walk four or five nodes of a large file's
//! tree, each a likely cache miss: about a third of a cached random read's time went to
//! those walks. A hash lookup is one or two.
//!
//! Invariant: `order` holds exactly the keys of `by_no`.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::RangeBounds;

use super::page::Page;

/// Hashes a page number to itself in the low bits and a mix of it in the top 7. The hash
/// table picks the bucket from the low bits, so neighbouring pages sit in neighbouring
/// buckets and a sequential walk (a writeback putting 256 pages back, a 1 MiB write) stays
/// in a few cache lines; a scrambling hash made each page of such a walk a cache miss
/// (restoring written-back pages was 13 % of a 1 GiB fsync). The table tells keys of one
/// probe group apart by the top 7 bits, so those come from a multiplication. Page numbers
/// are not chosen by an adversary.
#[derive(Default)]
pub(crate) struct PageNoHasher(u64);

impl Hasher for PageNoHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; stay correct for anything else.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        const LOW: u64 = (1 << 57) - 1;
        self.0 = (n & LOW) | (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) & !LOW);
    }
}

/// The cached pages of one file.
#[derive(Default)]
pub(crate) struct PageMap {
    by_no: HashMap<u64, Page, BuildHasherDefault<PageNoHasher>>,
    order: BTreeSet<u64>,
}

impl PageMap {
    pub(crate) fn get(&self, p: &u64) -> Option<&Page> {
        self.by_no.get(p)
    }

    pub(crate) fn get_mut(&mut self, p: &u64) -> Option<&mut Page> {
        self.by_no.get_mut(p)
    }

    pub(crate) fn contains_key(&self, p: &u64) -> bool {
        self.by_no.contains_key(p)
    }

    pub(crate) fn insert(&mut self, p: u64, page: Page) -> Option<Page> {
        self.order.insert(p);
        self.by_no.insert(p, page)
    }

    pub(crate) fn remove(&mut self, p: &u64) -> Option<Page> {
        self.order.remove(p);
        self.by_no.remove(p)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_no.is_empty()
    }

    /// The pages whose numbers fall in `range`, in order.
    pub(crate) fn range(
        &self,
        range: impl RangeBounds<u64>,
    ) -> impl Iterator<Item = (u64, &Page)> + '_ {
        self.order
            .range(range)
            .map(|p| (*p, self.by_no.get(p).expect("order and by_no agree")))
    }

    /// Calls `f` on the pages from number `from` on, in order, until it returns false.
    pub(crate) fn visit_from_mut(&mut self, from: u64, mut f: impl FnMut(u64, &mut Page) -> bool) {
        for p in self.order.range(from..) {
            let pg = self.by_no.get_mut(p).expect("order and by_no agree");
            if !f(*p, pg) {
                return;
            }
        }
    }

    /// Every page, in no particular order.
    pub(crate) fn into_values(self) -> impl Iterator<Item = Page> {
        self.by_no.into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Page {
        let dev = bdev::mem::MemDevice::new("m", 4096, 4).unwrap();
        Page::new(bdev::BlockDevice::alloc_buf(&dev, 4096).unwrap())
    }

    #[test]
    fn lookups_and_walks_agree_with_a_btree_model() {
        let mut m = PageMap::default();
        let mut model = BTreeSet::new();
        // A seeded walk of inserts and removes over a small key space (seed printed).
        let seed = 0x5eed_u64;
        println!("seed {seed:#x}");
        let mut x = seed;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let p = (x >> 33) % 200;
            if x & 1 == 0 {
                assert_eq!(m.insert(p, page()).is_some(), !model.insert(p));
            } else {
                assert_eq!(m.remove(&p).is_some(), model.remove(&p));
            }
            assert_eq!(m.contains_key(&p), model.contains(&p));
        }
        let got: Vec<u64> = m.range(50..150).map(|(p, _)| p).collect();
        let want: Vec<u64> = model.range(50..150).copied().collect();
        assert_eq!(got, want);
        let mut seen = Vec::new();
        m.visit_from_mut(120, |p, pg| {
            pg.referenced = false;
            seen.push(p);
            seen.len() < 5
        });
        let want: Vec<u64> = model.range(120..).take(5).copied().collect();
        assert_eq!(seen, want);
        assert!(seen.iter().all(|p| !m.get(p).unwrap().referenced));
        assert_eq!(m.is_empty(), model.is_empty());
        assert_eq!(m.into_values().count(), model.len());
    }
}
