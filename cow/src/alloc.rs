//! Free space: an in-memory map of free byte ranges, rebuilt from the extent tree at open.
//!
//! Invariants:
//! - free ranges never overlap and never touch (neighbours are merged), and the two indexes
//!   (by start, by size) always hold the same ranges, except the data run: up to
//!   [`RUN_HOLD`] bytes held out of both indexes, where data allocations continue one after
//!   another at the cost of an addition (a data write reserves space per block, and six
//!   B-tree operations per reservation were a tenth of the writing thread's time). The run
//!   may touch an indexed range; it goes back into the indexes, merged, whenever another
//!   operation needs it;
//! - a range is free only if no committed state still refers to it: extents freed by a
//!   transaction are handed back here only once that transaction's superblock is durable and
//!   no reader of an older generation remains (see `volume.rs`).
//!
//! Allocation is best fit: the smallest free range that holds the request, so large
//! contiguous ranges stay whole for large requests. Data reservations (`alloc_data`) first
//! continue where the previous one ended, and small ones start a new run in a range with
//! room for more: writes made one after another then land on adjacent blocks, which a queue
//! can merge into one request (`bdev::IoQueue::merge_limit`). Every data allocation of a
//! volume goes through `FreeSpace::keeping`, which never takes one of the last whole
//! node-sized pieces the volume keeps for commits (`Volume::metadata_reserve`): data goes
//! into the holes between live blocks instead.

use std::collections::{BTreeMap, BTreeSet};

/// The free ranges of a volume.
#[derive(Clone, Debug, Default)]
pub(crate) struct FreeSpace {
    by_start: BTreeMap<u64, u64>,
    by_size: BTreeSet<(u64, u64)>,
    free_bytes: u64,
    /// The unit counted by `slots` (the node size; 0: not counted).
    slot: u64,
    /// How many `slot`-sized pieces the free ranges hold (each range rounded down): how
    /// many nodes could still be allocated, however the rest is fragmented.
    slots: u64,
    /// Where the last data allocation ended (`alloc_data`), once there was one, while no
    /// run is held.
    data_next: Option<u64>,
    /// The data run `[start, end)`: free, counted in `free_bytes` and `slots` as a range of
    /// its own, in neither index. The next data allocation starts at `start`.
    run: Option<(u64, u64)>,
}

/// A data reservation smaller than this starts a new run (`FreeSpace::alloc_data`) in a free
/// range at least this large when there is one: room for the next small reservations to
/// follow it (twice the uring queue's merge limit).
pub(crate) const DATA_RUN: u64 = 128 << 10;

/// The most a data run holds out of the indexes: the rest of its range stays there for node
/// allocations, so nodes and data interleave in pieces of this size rather than at random.
pub(crate) const RUN_HOLD: u64 = 1 << 20;

impl FreeSpace {
    /// Total free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes
    }

    /// Starts counting the free space in whole pieces of `slot` bytes (`slot_bytes`).
    pub fn count_slots(&mut self, slot: u64) {
        self.slot = slot;
        let run = self.run.map_or(0, |(s, e)| (e - s) / slot);
        self.slots = self.by_start.values().map(|&l| l / slot).sum::<u64>() + run;
    }

    /// Free bytes in whole pieces of the counted slot size (0 if none is counted). While a
    /// data run is held, each of the run and the ranges it touches is counted on its own, so
    /// this may be short by up to two pieces ([`FreeSpace::release_run`] makes it exact).
    pub fn slot_bytes(&self) -> u64 {
        self.slots * self.slot
    }

    fn slots_of(&self, len: u64) -> u64 {
        len.checked_div(self.slot).unwrap_or(0)
    }

    fn add_raw(&mut self, start: u64, len: u64) {
        self.by_start.insert(start, len);
        self.by_size.insert((len, start));
        self.free_bytes += len;
        self.slots += self.slots_of(len);
    }

    fn remove_raw(&mut self, start: u64, len: u64) {
        self.by_start.remove(&start);
        self.by_size.remove(&(len, start));
        self.free_bytes -= len;
        self.slots -= self.slots_of(len);
    }

    /// Makes `[start, start + len)` free. Returns an error message if any of it already is.
    pub fn free(&mut self, start: u64, len: u64) -> Result<(), String> {
        let already = || format!("range {start:#x}+{len:#x} is already (partly) free");
        let end = start
            .checked_add(len)
            .ok_or_else(|| format!("range {start:#x}+{len:#x} ends past the address space"))?;
        if len == 0 {
            return Ok(());
        }
        let run = self.run.unwrap_or((u64::MAX, u64::MAX));
        if start < run.1 && run.0 < end {
            return Err(already() + " (data run)");
        }
        // One descent finds both neighbours: the last range starting at or before `end` is
        // the next one if it starts at `end`, and the one before it is then the previous.
        let mut below = self.by_start.range(..=end).map(|(&s, &l)| (s, l));
        let mut prev = below.next_back();
        let next = prev.filter(|&(s, _)| s == end);
        if next.is_some() {
            prev = below.next_back();
        }
        if prev.is_some_and(|(s, l)| s + l > start) {
            return Err(already());
        }
        if run.0 == end {
            // Given back right before the run (an unused reservation): the run takes it.
            self.resize_run(start, run.1);
            return Ok(());
        }
        let prev = prev.filter(|&(s, l)| s + l == start);
        let e = next.map_or(end, |(ns, nl)| ns + nl);
        if let Some((ns, nl)) = next {
            self.remove_raw(ns, nl);
        }
        let Some((ps, pl)) = prev else {
            self.add_raw(start, e - start);
            return Ok(());
        };
        // The previous range grows in place: its start stays its key.
        self.by_start.insert(ps, e - ps);
        self.by_size.remove(&(pl, ps));
        self.by_size.insert((e - ps, ps));
        self.free_bytes += e - ps - pl;
        self.slots = self.slots + self.slots_of(e - ps) - self.slots_of(pl);
        Ok(())
    }

    /// Makes every range of `sorted` free at once: in address order, none overlapping
    /// another. One pass over the free ranges and a rebuild of both indexes from
    /// sorted lists, instead of a descent and up to four B-tree changes per range: for a
    /// batch that is a good part of the map's size (a commit of random overwrites frees
    /// more ranges than the map holds), a rebuild is the cheaper. Returns an error message,
    /// with nothing changed, if any of it already is free.
    pub fn free_many(&mut self, sorted: &[(u64, u64)]) -> Result<(), String> {
        // The free ranges in address order, the run among them.
        let mut old: Vec<(u64, u64)> = Vec::with_capacity(self.by_start.len() + 1);
        old.extend(self.by_start.iter().map(|(&s, &l)| (s, l)));
        if let Some((s, e)) = self.run {
            old.insert(old.partition_point(|o| o.0 < s), (s, e - s));
        }
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(old.len() + sorted.len());
        let mut old = old.into_iter().peekable();
        let mut new = sorted.iter().copied().filter(|r| r.1 > 0).peekable();
        let mut added = 0u64;
        loop {
            let (s, l) = match (old.peek(), new.peek()) {
                (Some(&o), Some(&n)) if o.0 <= n.0 => old.next().expect("peeked"),
                (_, Some(&n)) => {
                    new.next();
                    let end = n.0.checked_add(n.1).ok_or_else(|| {
                        format!("range {:#x}+{:#x} ends past the address space", n.0, n.1)
                    })?;
                    if old.peek().is_some_and(|&(os, _)| os < end) {
                        return Err(format!(
                            "range {:#x}+{:#x} is already (partly) free",
                            n.0, n.1
                        ));
                    }
                    added += n.1;
                    n
                }
                (Some(_), None) => old.next().expect("peeked"),
                (None, None) => break,
            };
            match merged.last_mut() {
                Some((ps, pl)) if *ps + *pl > s => {
                    return Err(format!("range {s:#x}+{l:#x} is already (partly) free"))
                }
                Some((ps, pl)) if *ps + *pl == s => *pl += l,
                _ => merged.push((s, l)),
            }
        }
        // The run goes back into the indexes, merged; the next data allocation holds it
        // again where it started (`data_next`).
        if let Some((s, _)) = self.run.take() {
            self.data_next = Some(s);
        }
        self.free_bytes += added;
        self.slots = merged.iter().map(|&(_, l)| self.slots_of(l)).sum();
        let mut sizes: Vec<(u64, u64)> = merged.iter().map(|&(s, l)| (l, s)).collect();
        sizes.sort_unstable();
        // Both from sorted input: built bottom up, without a search per item.
        self.by_size = sizes.into_iter().collect();
        self.by_start = merged.into_iter().collect();
        Ok(())
    }

    /// How many free ranges the indexes hold (the data run aside).
    pub fn range_count(&self) -> usize {
        self.by_start.len()
    }

    /// Marks `[start, start + len)`, which must be entirely free, as used.
    pub fn take(&mut self, start: u64, len: u64) -> Result<(), String> {
        if self.run.is_some_and(|(s, e)| start < e && s < start + len) {
            self.release_run();
        }
        let Some((s, l)) = self
            .by_start
            .range(..=start)
            .next_back()
            .map(|(&s, &l)| (s, l))
            .filter(|&(s, l)| s + l >= start + len)
        else {
            return Err(format!("range {start:#x}+{len:#x} is not free"));
        };
        self.remove_raw(s, l);
        if s < start {
            self.add_raw(s, start - s);
        }
        if s + l > start + len {
            self.add_raw(start + len, s + l - start - len);
        }
        Ok(())
    }

    /// Allocates exactly `len` bytes from the smallest free range that holds them.
    pub fn alloc(&mut self, len: u64) -> Option<u64> {
        let found = self.by_size.range((len, 0)..).next();
        if found.is_none() && self.run.is_some() {
            // The run, merged back with the ranges it touches, may hold `len`.
            self.release_run();
            return self.alloc(len);
        }
        let &(_, start) = found?;
        self.take(start, len).expect("range came from the index");
        Some(start)
    }

    /// Allocates up to `max` bytes, at least `min`: best fit if a range holds `max`, else as
    /// much of the largest range as there is. Returns `(start, len)`.
    pub fn alloc_up_to(&mut self, min: u64, max: u64) -> Option<(u64, u64)> {
        if let Some(start) = self.alloc(max) {
            return Some((start, max));
        }
        // `alloc` found no range of `max` bytes, so it has put the run back.
        let &(len, start) = self.by_size.iter().next_back()?;
        if len < min {
            return None;
        }
        self.take(start, len).expect("range came from the index");
        Some((start, len))
    }

    /// [`FreeSpace::alloc_up_to`] for data: `max` bytes right where the previous data
    /// allocation ended if they are free there; else a request under [`DATA_RUN`] takes the
    /// start of the smallest range of at least `DATA_RUN` bytes (the next requests continue
    /// in it), or with `spread` and no such range, the start of the largest range, if it
    /// holds more than the request; else best fit as `alloc_up_to`. Returns `(start, len)`.
    ///
    /// `spread` is for a volume with free space to spare: once copy-on-write overwrites have
    /// scattered the free space into holes between live blocks, no range of `DATA_RUN`
    /// bytes is left, and best fit would give each small write the smallest hole.
    pub fn alloc_data(&mut self, min: u64, max: u64, spread: bool) -> Option<(u64, u64)> {
        if let Some((s, e)) = self.run {
            if e - s >= max {
                self.resize_run(s + max, e);
                return Some((s, max));
            }
            self.release_run();
        }
        let continued = self.data_next.filter(|&next| {
            self.by_start
                .range(..=next)
                .next_back()
                .is_some_and(|(&s, &l)| s + l >= next.saturating_add(max))
        });
        let Some(start) = continued.or_else(|| self.run_start(max, spread)) else {
            let r = self.alloc_up_to(min, max)?;
            self.data_next = Some(r.0 + r.1);
            return Some(r);
        };
        self.hold_run(start, max);
        let (s, e) = self.run.expect("just held");
        self.resize_run(s + max, e);
        Some((start, max))
    }

    /// [`FreeSpace::alloc_data`] that never takes one of the last `keep_slots` whole slots
    /// (the node space commits need); see [`FreeSpace::keeping`].
    pub fn alloc_data_keeping(
        &mut self,
        min: u64,
        max: u64,
        spread: bool,
        keep_slots: u64,
    ) -> Option<(u64, u64)> {
        // Near the floor, spreading over the largest ranges only hastens the fall to it.
        let spread = spread && self.slots > 2 * keep_slots;
        self.keeping(min, max, keep_slots, |f| f.alloc_data(min, max, spread))
    }

    /// [`FreeSpace::alloc_up_to`] that never takes one of the last `keep_slots` whole
    /// slots; see [`FreeSpace::keeping`].
    pub fn alloc_up_to_keeping(
        &mut self,
        min: u64,
        max: u64,
        keep_slots: u64,
    ) -> Option<(u64, u64)> {
        self.keeping(min, max, keep_slots, |f| f.alloc_up_to(min, max))
    }

    /// A data allocation of `min` to `max` bytes that never takes a slot from the last
    /// `keep_slots`, or none (nothing taken): `usual`'s placement if it leaves that many;
    /// else best fit among the pieces that cost no slot (holes smaller than a slot, and what
    /// a larger range holds past its last whole slot), up to `max` bytes; else `min` bytes
    /// from the smallest range, if that leaves enough.
    ///
    /// The usual placements cut into the largest ranges; once no slot is spare, small data
    /// goes into the holes between live blocks instead, so that the space left in whole
    /// slots for commits is never what data took.
    fn keeping(
        &mut self,
        min: u64,
        max: u64,
        keep_slots: u64,
        usual: impl FnOnce(&mut Self) -> Option<(u64, u64)>,
    ) -> Option<(u64, u64)> {
        if self.slot == 0 {
            return usual(self);
        }
        if let Some((start, len)) = usual(self) {
            if self.slots < keep_slots {
                // The count is short by the pieces a held run cut its range into.
                self.release_run();
            }
            if self.slots >= keep_slots {
                return Some((start, len));
            }
            let back = self.free(start, len);
            debug_assert!(back.is_ok(), "just allocated: {back:?}");
        }
        self.release_run();
        // A piece that costs no slot is taken even below the floor: data there leaves the
        // commits what they had. (Refused, 24 MB of holes on a 96 MB volume went unused
        // while the trees' growth had raised the reserve two nodes above the slots left,
        // and a buffered write accepted for those holes failed at its writeback.)
        if let Some((start, len)) = self.slot_free_piece(min, max) {
            self.take(start, len).expect("range came from the index");
            self.data_next = Some(start + len);
            return Some((start, len));
        }
        if self.slots <= keep_slots {
            return None;
        }
        let start = self.alloc(min)?;
        if self.slots >= keep_slots {
            self.data_next = Some(start + min);
            return Some((start, min));
        }
        let back = self.free(start, min);
        debug_assert!(back.is_ok(), "just allocated: {back:?}");
        None
    }

    /// The smallest free piece of at least `min` bytes whose allocation (up to `max` of it,
    /// at its range's start) costs no whole slot: `(start, len)`. Holes smaller than a slot
    /// come first in size order, so the search is short unless there are none.
    fn slot_free_piece(&self, min: u64, max: u64) -> Option<(u64, u64)> {
        self.by_size.range((min, 0)..).find_map(|&(len, start)| {
            let spare = if len < self.slot {
                len
            } else {
                len % self.slot
            };
            let take = spare.min(max);
            (take >= min).then_some((start, take))
        })
    }

    /// Holds `[start, start + RUN_HOLD)` (at least `len` bytes, at most to the end of its
    /// range) of the free range holding `[start, start + len)` out of the indexes as the run.
    fn hold_run(&mut self, start: u64, len: u64) {
        debug_assert!(self.run.is_none());
        let (rs, rl) = self
            .by_start
            .range(..=start)
            .next_back()
            .map(|(&s, &l)| (s, l))
            .filter(|&(s, l)| s + l >= start + len)
            .expect("a run starts in a free range that holds its first allocation");
        let end = (start + RUN_HOLD.max(len)).min(rs + rl);
        self.remove_raw(rs, rl);
        if rs < start {
            self.add_raw(rs, start - rs);
        }
        if end < rs + rl {
            self.add_raw(end, rs + rl - end);
        }
        self.free_bytes += end - start;
        self.slots += self.slots_of(end - start);
        self.run = Some((start, end));
    }

    /// Makes the run `[start, end)` (empty: no run, the next allocation continuing at
    /// `end`), keeping `free_bytes` and `slots` in step.
    fn resize_run(&mut self, start: u64, end: u64) {
        let (s, e) = self.run.unwrap_or((end, end));
        self.free_bytes = self.free_bytes + (end - start) - (e - s);
        self.slots = self.slots + self.slots_of(end - start) - self.slots_of(e - s);
        self.run = (start < end).then_some((start, end));
        self.data_next = Some(start);
    }

    /// Puts the run back into the indexes (merged with its neighbours), after which
    /// `slot_bytes` is exact; the next data allocation still tries to continue where the run
    /// started.
    pub fn release_run(&mut self) {
        let Some((s, e)) = self.run else {
            return;
        };
        self.resize_run(s, s);
        let back = self.free(s, e - s);
        debug_assert!(back.is_ok(), "the run was free: {back:?}");
    }

    /// Where a data request of `max` bytes starts a new run (`alloc_data`), if it is small:
    /// the smallest range of at least `DATA_RUN` bytes, or with `spread` the largest range
    /// if it holds more than the request.
    fn run_start(&self, max: u64, spread: bool) -> Option<u64> {
        if max >= DATA_RUN {
            return None;
        }
        let run = self.by_size.range((DATA_RUN, 0)..).next();
        let largest = self.by_size.last().filter(|&&(l, _)| spread && l > max);
        run.or(largest).map(|&(_, s)| s)
    }

    /// The free ranges, in address order, the run merged with the ranges it touches.
    #[cfg(test)]
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        let run = self.run.map(|(s, e)| (s, e - s));
        let mut all: Vec<(u64, u64)> = self.by_start.iter().map(|(&s, &l)| (s, l)).collect();
        all.extend(run);
        all.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (s, l) in all {
            match out.last_mut() {
                Some((ps, pl)) if *ps + *pl == s => *pl += l,
                _ => out.push((s, l)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_continues_where_the_last_data_allocation_ended() {
        let run = DATA_RUN;
        let mut f = FreeSpace::default();
        f.free(0, 8 << 10).unwrap();
        f.free(100 * run, 4 * run).unwrap();
        f.free(200 * run, 2 * run).unwrap();
        // A small reservation starts a run in the smallest range with room for more, not in
        // the 8 KiB one best fit would pick; the next ones follow it.
        assert_eq!(f.alloc_data(4096, 4096, false), Some((200 * run, 4096)));
        assert_eq!(
            f.alloc_data(4096, 8192, false),
            Some((200 * run + 4096, 8192))
        );
        assert_eq!(
            f.alloc_data(4096, 4096, false),
            Some((200 * run + 12288, 4096))
        );
        // Once the run's range cannot hold the request, a new run starts.
        assert_eq!(
            f.alloc_data(4096, 2 * run, false),
            Some((100 * run, 2 * run))
        );
        assert_eq!(f.alloc_data(4096, 4096, false), Some((102 * run, 4096)));
        // A large reservation continues the run too when it fits there; else it is best
        // fit, and the next small one continues after it.
        assert_eq!(f.alloc_data(run, run, false), Some((102 * run + 4096, run)));
        assert_eq!(
            f.alloc_data(run, run, false),
            Some((200 * run + 16384, run))
        );
        assert_eq!(
            f.alloc_data(4096, 4096, false),
            Some((201 * run + 16384, 4096))
        );
        // With no range of a run's size left, small reservations take what best fit gives.
        let mut g = FreeSpace::default();
        g.free(0, 8192).unwrap();
        g.free(40960, 4096).unwrap();
        assert_eq!(g.alloc_data(4096, 4096, false), Some((40960, 4096)));
        assert_eq!(g.alloc_data(4096, 4096, false), Some((0, 4096)));
        assert_eq!(g.alloc_data(4096, 4096, false), Some((4096, 4096)));
        assert_eq!(g.alloc_data(4096, 4096, false), None);
        assert_eq!(g.free_bytes(), 0);
        // Spread: with no range of a run's size, the largest range rather than the smallest.
        let mut h = FreeSpace::default();
        h.free(0, 4096).unwrap();
        h.free(40960, 16384).unwrap();
        h.free(81920, 8192).unwrap();
        assert_eq!(h.alloc_data(4096, 4096, true), Some((40960, 4096)));
        assert_eq!(h.alloc_data(4096, 4096, true), Some((45056, 4096)));
        // A range no larger than the request is left to best fit.
        let mut k = FreeSpace::default();
        k.free(0, 4096).unwrap();
        k.free(40960, 4096).unwrap();
        assert_eq!(k.alloc_data(4096, 4096, true), Some((0, 4096)));
    }

    /// splitmix64, for the seeded model test.
    /// The maximal free runs of a block map, as `(start, len)` in bytes.
    fn model_ranges(free: &[bool], bs: u64) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (i, _) in free.iter().enumerate().filter(|(_, &f)| f) {
            let at = i as u64 * bs;
            match out.last_mut() {
                Some((s, l)) if *s + *l == at => *l += bs,
                _ => out.push((at, bs)),
            }
        }
        out
    }

    /// Random frees, takes and allocations of every kind against a map of free blocks: every
    /// allocation is free space, refusals are exactly the double frees and takes of used
    /// space, an allocation fails only when no free stretch holds its minimum, and the free
    /// ranges (the data run merged in) are the model's. `BFS_SEED` reproduces a run.
    #[test]
    fn random_operations_match_a_block_map() {
        let seed = testkit::seed!();
        let mut rng = testkit::Rng::new(seed);
        const BS: u64 = 4096;
        const BLOCKS: usize = 2048;
        let slot = 4 * BS;
        let mut model = vec![true; BLOCKS];
        let mut f = FreeSpace::default();
        f.free(0, BLOCKS as u64 * BS).unwrap();
        f.count_slots(slot);
        let is = |m: &[bool], s: u64, l: u64, want: bool| {
            (s / BS..(s + l) / BS).all(|b| m[b as usize] == want)
        };
        let set = |m: &mut [bool], s: u64, l: u64, v: bool| {
            (s / BS..(s + l) / BS).for_each(|b| m[b as usize] = v)
        };
        for step in 0..20_000 {
            let most = if rng.below(8) == 0 { 80 } else { 6 };
            let len = (1 + rng.below(most)) * BS;
            let at = rng.below(BLOCKS as u64) * BS;
            let at = at.min(BLOCKS as u64 * BS - len);
            let ctx = format!("seed {seed} step {step}");
            let got = match rng.below(7) {
                0 | 1 => {
                    let ok = f.free(at, len).is_ok();
                    assert_eq!(
                        ok,
                        is(&model, at, len, false),
                        "free {at:#x}+{len:#x}: {ctx}"
                    );
                    ok.then_some((at, len))
                }
                2 => {
                    let ok = f.take(at, len).is_ok();
                    assert_eq!(
                        ok,
                        is(&model, at, len, true),
                        "take {at:#x}+{len:#x}: {ctx}"
                    );
                    if ok {
                        set(&mut model, at, len, false);
                    }
                    None
                }
                3 => f.alloc(len).map(|s| (s, len)),
                4 => f.alloc_up_to(BS, len),
                5 => f.alloc_data(BS, len, rng.below(2) == 0),
                _ => {
                    // Never takes one of the last slots kept; refused only when every
                    // placement would, and then with nothing taken.
                    let keep = rng.below(40);
                    let before = f.ranges();
                    let slots: u64 = before.iter().map(|r| r.1 / slot).sum();
                    let r = f.alloc_data_keeping(BS, len, rng.below(2) == 0, keep);
                    f.release_run();
                    match r {
                        Some(_) => {
                            let floor = slots.min(keep) * slot;
                            assert!(f.slot_bytes() >= floor, "{ctx}");
                        }
                        None => {
                            assert_eq!(f.ranges(), before, "{ctx}");
                            let spare = before.iter().any(|&(_, l)| {
                                let left = if l < slot { l } else { l % slot };
                                left >= BS
                            });
                            assert!(
                                !spare && slots <= keep,
                                "refused with {slots} slots, {keep} kept: {ctx}"
                            );
                        }
                    }
                    r
                }
            };
            match got {
                Some((s, l)) if !is(&model, s, l, true) => {
                    // A successful free.
                    assert!(is(&model, s, l, false), "{ctx}");
                    set(&mut model, s, l, true);
                }
                Some((s, l)) => set(&mut model, s, l, false),
                None => {}
            }
            let want = model_ranges(&model, BS);
            assert_eq!(f.ranges(), want, "{ctx}");
            let bytes: u64 = want.iter().map(|r| r.1).sum();
            assert_eq!(f.free_bytes(), bytes, "{ctx}");
            let slots: u64 = want.iter().map(|r| r.1 / slot * slot).sum();
            let counted = f.slot_bytes();
            assert!(counted <= slots && counted + 2 * slot >= slots, "{ctx}");
            if rng.below(8) == 0 {
                f.release_run();
                assert_eq!(f.slot_bytes(), slots, "exact once the run is back: {ctx}");
            }
            // Best fit finds room whenever a free stretch has it (checked on a quarter of the
            // steps, since the check itself puts the run back when nothing else fits).
            if rng.below(4) == 0 {
                match f.alloc(len) {
                    Some(s) => f.free(s, len).unwrap(),
                    None => {
                        let longest = want.iter().map(|r| r.1).max().unwrap_or(0);
                        assert!(longest < len, "no {len} bytes with {longest} free: {ctx}");
                    }
                }
            }
        }
    }

    /// `free_many` leaves exactly what freeing the same ranges one by one leaves (ranges,
    /// free bytes, node slots; and, with no data run held, where the next data allocation
    /// goes: a held run, which one-by-one frees may extend, is put back), with a data run
    /// held or not; a batch with any range already free changes nothing. `BFS_SEED`
    /// reproduces a run.
    #[test]
    fn free_many_matches_freeing_one_by_one() {
        let seed = testkit::seed!();
        let mut rng = testkit::Rng::new(seed);
        const BS: u64 = 4096;
        const BLOCKS: u64 = 4096;
        for round in 0..60 {
            let ctx = format!("seed {seed} round {round}");
            let mut f = FreeSpace::default();
            f.free(0, BLOCKS * BS).unwrap();
            f.count_slots(4 * BS);
            // Scattered free space, maybe a data run held, then a batch of used ranges.
            let mut used = Vec::new();
            while let Some((s, l)) = f.alloc_data(BS, BS * (1 + rng.below(3)), true) {
                used.push((s, l));
            }
            for &(s, l) in &used {
                if rng.below(3) == 0 {
                    f.free(s, l).unwrap();
                }
            }
            let run = rng.below(2) == 0;
            if run {
                let _ = f.alloc_data(BS, BS, false);
            }
            let free = f.ranges();
            let is_free = |s: u64| {
                let i = free.partition_point(|r| r.0 <= s);
                i > 0 && s < free[i - 1].0 + free[i - 1].1
            };
            let mut batch: Vec<(u64, u64)> = used
                .iter()
                .copied()
                .filter(|&(s, _)| !is_free(s))
                .filter(|_| rng.below(2) == 0)
                .collect();
            batch.sort_unstable();
            let mut one = f.clone();
            for &(s, l) in &batch {
                one.free(s, l).unwrap();
            }
            let mut many = f.clone();
            many.free_many(&batch).unwrap();
            assert_eq!(many.ranges(), one.ranges(), "{ctx}");
            assert_eq!(many.free_bytes(), one.free_bytes(), "{ctx}");
            many.release_run();
            one.release_run();
            assert_eq!(many.slot_bytes(), one.slot_bytes(), "{ctx}");
            if !run {
                let next = |f: &mut FreeSpace| f.alloc_data(BS, BS, false);
                assert_eq!(next(&mut many), next(&mut one), "{ctx}");
            }
            // A batch with a range already free (the first twice) is refused whole.
            if let Some(&first) = batch.first() {
                let before = (f.ranges(), f.free_bytes(), f.slot_bytes());
                let mut twice = batch.clone();
                twice.insert(0, first);
                assert!(f.free_many(&twice).is_err(), "{ctx}");
                let free_range = f.ranges()[0];
                assert!(f.free_many(&[free_range]).is_err(), "{ctx}");
                assert_eq!(
                    (f.ranges(), f.free_bytes(), f.slot_bytes()),
                    before,
                    "{ctx}"
                );
            }
        }
    }

    #[test]
    fn best_fit_merge_and_double_free() {
        let mut f = FreeSpace::default();
        f.free(0, 100).unwrap();
        f.free(200, 10).unwrap();
        f.free(300, 50).unwrap();
        assert_eq!(f.alloc(10), Some(200), "smallest range that fits");
        assert_eq!(f.alloc(40), Some(300));
        assert_eq!(f.alloc(1000), None);
        assert!(f.free(20, 10).is_err(), "double free is refused");
        f.free(200, 10).unwrap();
        f.free(100, 100).unwrap();
        assert_eq!(f.ranges(), vec![(0, 210), (340, 10)]);
        assert_eq!(f.free_bytes(), 220);
        assert_eq!(
            f.alloc_up_to(1, 500),
            Some((0, 210)),
            "largest when none fits"
        );
        f.take(340, 5).unwrap();
        assert!(f.take(340, 5).is_err());
        assert_eq!(f.ranges(), vec![(345, 5)]);
    }

    #[test]
    fn slots_count_whole_pieces_of_each_free_range() {
        let mut f = FreeSpace::default();
        f.free(0, 40).unwrap();
        f.free(100, 16).unwrap();
        f.count_slots(16);
        assert_eq!(f.slot_bytes(), 48, "two slots in 40 bytes, one in 16");
        // Taking 4 bytes from the 16-byte range costs a whole slot; from the 40-byte one,
        // none (36 still hold two).
        f.take(100, 4).unwrap();
        assert_eq!(f.slot_bytes(), 32);
        f.take(36, 4).unwrap();
        assert_eq!(f.slot_bytes(), 32);
        // Freeing next to a range merges and counts the merged range.
        f.free(36, 4).unwrap();
        f.free(40, 8).unwrap();
        assert_eq!(f.slot_bytes(), 48, "48 bytes at 0: three slots");
        assert_eq!(
            f.alloc(16),
            Some(0),
            "best fit is the 48-byte range, none smaller fits"
        );
        assert_eq!(f.slot_bytes(), 32);
    }
}
