//! Readers that share a `LeafCache` across snapshots: every lookup through one agrees with
//! a model while commits reshape the tree between them (a leaf of another generation must
//! never answer), and a pinned reader is covered by its pin.

mod common;

use std::cell::RefCell;

use common::*;
use cow::{Direction, Key, LeafCache, Volume};

/// What a lookup of `k` sees through a pinned reader with `cache`.
struct Seen {
    exact: Option<Vec<u8>>,
    /// The last key at or below `k` (a backward walk, as `extent_at` and the checksum
    /// lookup start).
    below: Option<Key>,
    /// The fourth key from `k` on (a forward walk that may leave the first leaf).
    fourth: Option<Key>,
    /// The last item in `lo..=k` read in place (`ReadTxn::last_at_or_before`), through the
    /// cache and through a reader with none (a descent from the root).
    last_cached: Option<(Key, Vec<u8>)>,
    last_uncached: Option<(Key, Vec<u8>)>,
}

fn look(
    vol: &Volume,
    io: &mut dyn bdev::IoQueue,
    cache: &RefCell<LeafCache>,
    lo: Key,
    k: Key,
) -> Seen {
    let pin = vol.pin();
    let r = vol.pinned_reader(pin, Some(cache));
    let exact = r.get(io, USER, k).unwrap().map(|d| d.to_vec());
    let below = r
        .iter(io, USER, Key::MIN, k, Direction::Backward)
        .next()
        .map(|x| x.unwrap().0);
    let fourth = r
        .iter(io, USER, k, Key::MAX, Direction::Forward)
        .nth(3)
        .map(|x| x.unwrap().0);
    let in_place = |k: &Key, d: &[u8]| (*k, d.to_vec());
    let last_cached = r.last_at_or_before(io, USER, lo, k, in_place).unwrap();
    drop(r);
    let r = vol.pinned_reader(pin, None);
    let last_uncached = r.last_at_or_before(io, USER, lo, k, in_place).unwrap();
    drop(r);
    vol.unpin(pin);
    Seen {
        exact,
        below,
        fourth,
        last_cached,
        last_uncached,
    }
}

#[test]
fn cached_leaves_answer_only_for_their_generation() {
    let seed = testkit::seed!();
    let mut rng = Rng::new(seed);
    let dev = mem(8 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    tx.commit(&mut *io).unwrap();
    let cache = RefCell::new(LeafCache::new());
    let mut model = Model::new();
    for round in 0..40 {
        let mut tx = vol.begin().unwrap();
        for _ in 0..rng.below(60) + 1 {
            let k = key(&mut rng, 400);
            if rng.chance(25) {
                tx.delete(&mut *io, USER, k).unwrap();
                model.remove(&k);
            } else {
                let v = vec![round as u8; 1 + rng.below(40) as usize];
                tx.upsert(&mut *io, USER, k, &v).unwrap();
                model.insert(k, v);
            }
        }
        tx.commit(&mut *io).unwrap();
        for _ in 0..200 {
            let k = key(&mut rng, 420);
            let lo = if rng.chance(50) {
                Key::MIN
            } else {
                key(&mut rng, 420)
            };
            let seen = look(&vol, &mut *io, &cache, lo, k);
            let at = format!("seed {seed} round {round} key {k}");
            assert_eq!(seen.exact.as_ref(), model.get(&k), "{at}: get");
            let below = model.range(..=k).next_back().map(|(k, _)| *k);
            assert_eq!(seen.below, below, "{at}: last item at or below");
            let fourth = model.range(k..).nth(3).map(|(k, _)| *k);
            assert_eq!(seen.fourth, fourth, "{at}: fourth item from");
            let last = (lo <= k)
                .then(|| model.range(lo..=k).next_back())
                .flatten()
                .map(|(k, v)| (*k, v.clone()));
            assert_eq!(seen.last_cached, last, "{at}: last item from {lo}, cached");
            assert_eq!(
                seen.last_uncached, last,
                "{at}: last item from {lo}, uncached"
            );
        }
    }
    assert!(!cache.borrow().is_empty(), "the lookups cached no leaf");
    vol.reader().check(&mut *io).unwrap();
}
