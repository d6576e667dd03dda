//! [`Ranges`]: a set of disjoint half-open block ranges.

use std::collections::BTreeMap;

/// A set of disjoint half-open block ranges `start → end`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ranges(pub BTreeMap<u64, u64>);

impl Ranges {
    /// The range containing `b`.
    pub fn containing(&self, b: u64) -> Option<(u64, u64)> {
        self.0
            .range(..=b)
            .next_back()
            .map(|(&s, &e)| (s, e))
            .filter(|&(_, e)| e > b)
    }

    /// The first range starting after `b`.
    pub fn next_after(&self, b: u64) -> Option<u64> {
        self.0.range(b + 1..).next().map(|(&s, _)| s)
    }

    /// Removes `[a, b)`; returns how many blocks were in the set.
    pub fn remove(&mut self, a: u64, b: u64) -> u64 {
        let hit: Vec<(u64, u64)> = self
            .0
            .range(..b)
            .filter(|&(_, &e)| e > a)
            .map(|(&s, &e)| (s, e))
            .collect();
        let mut n = 0;
        for (s, e) in hit {
            self.0.remove(&s);
            n += e.min(b) - s.max(a);
            if s < a {
                self.0.insert(s, a);
            }
            if e > b {
                self.0.insert(b, e);
            }
        }
        n
    }

    /// Adds `[a, b)`; returns how many blocks are new.
    pub fn insert(&mut self, a: u64, b: u64) -> u64 {
        let had = self.remove(a, b);
        let (mut s, mut e) = (a, b);
        if let Some((ps, pe)) = self.0.range(..a).next_back().map(|(&s, &e)| (s, e)) {
            if pe == a {
                self.0.remove(&ps);
                s = ps;
            }
        }
        if let Some(ne) = self.0.get(&b).copied() {
            self.0.remove(&b);
            e = ne;
        }
        self.0.insert(s, e);
        (b - a) - had
    }
}
