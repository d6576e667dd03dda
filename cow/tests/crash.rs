//! Crash tests with the `record` device: a randomized transaction workload is logged, then
//! every crash point is rebuilt with all subsets of the unflushed writes (or random subsets,
//! torn at sector granularity, where there are too many). Each state must open, show exactly
//! the last transaction whose superblock reached the media, and pass the full check.
//!
//! `BFS_SEED` reproduces a run. `COW_CRASH_SWEEP=full` runs the long sweep (more
//! transactions, all subsets up to 2^10 states, 1,000 random subsets beyond; the default is
//! 12 transactions, all subsets up to 2^8, 100 random subsets beyond).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::record::{CrashPick, LogEntry, RecordDevice};
use bdev::BlockDevice;
use common::*;
use cow::format::{parse_superblock, SUPERBLOCK_OFFSETS};
use cow::{DataBackref, Key, OpenOptions, Transaction, TreeId, Volume};

/// What a committed generation holds: the user tree and the checksums of live data extents.
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    items: Model,
    csums: BTreeMap<u64, u32>,
}

struct Sweep {
    transactions: usize,
    all_subsets_up_to: usize,
    random_picks: u64,
}

fn sweep() -> Sweep {
    if std::env::var("COW_CRASH_SWEEP").as_deref() == Ok("full") {
        Sweep {
            transactions: 40,
            all_subsets_up_to: 10,
            random_picks: 1000,
        }
    } else {
        Sweep {
            transactions: 12,
            all_subsets_up_to: 8,
            random_picks: 100,
        }
    }
}

/// Random changes in one transaction, mirrored in `state`. `extents` are live data extents.
fn mutate(
    tx: &mut Transaction<'_>,
    io: &mut dyn bdev::IoQueue,
    state: &mut State,
    extents: &mut Vec<(u64, u64, DataBackref)>,
    rng: &mut Rng,
) {
    let ops = if rng.chance(15) {
        40 + rng.below(40)
    } else {
        1 + rng.below(12)
    };
    for _ in 0..ops {
        let k = key(rng, 300);
        match rng.below(8) {
            0..=3 => {
                let len = rng.below(60) as usize;
                let v = rng.bytes(len);
                tx.upsert(io, USER, k, &v).unwrap();
                state.items.insert(k, v);
            }
            4 | 5 => {
                assert_eq!(
                    tx.delete(io, USER, k).unwrap(),
                    state.items.remove(&k).is_some()
                );
            }
            6 => {
                let max = 512 * (1 + rng.below(4));
                let (b, l) = tx.alloc_data(512, max).unwrap();
                let (objectid, offset) = (rng.below(100), rng.below(8) * 4096);
                let br = DataBackref {
                    root: USER,
                    objectid,
                    offset,
                };
                tx.add_data_ref(b, l, br).unwrap();
                let sums: Vec<u32> = (0..l / 512).map(|_| rng.next_u64() as u32).collect();
                tx.csum_insert(io, b, &sums).unwrap();
                for (i, s) in sums.iter().enumerate() {
                    state.csums.insert(b + i as u64 * 512, *s);
                }
                extents.push((b, l, br));
            }
            _ if !extents.is_empty() => {
                let at = rng.below(extents.len() as u64) as usize;
                let (b, l, br) = extents.swap_remove(at);
                tx.drop_data_ref(b, l, br).unwrap();
                for s in (b..b + l).step_by(512) {
                    state.csums.remove(&s);
                }
            }
            _ => {}
        }
    }
}

/// Runs the workload on a record device; returns it, the state of each generation and every
/// bytenr that ever had a checksum.
fn record(seed: u64, transactions: usize) -> (Arc<RecordDevice>, BTreeMap<u64, State>, Vec<u64>) {
    let mut rng = Rng::new(seed);
    let base = mem(2 << 20);
    let mut io = queue(&*base);
    let vol = Volume::format(base.clone(), &mut *io, &small_opts()).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    let gen0 = tx.commit(&mut *io).unwrap();
    drop(vol);
    let rec = Arc::new(RecordDevice::new("rec", base as Arc<dyn BlockDevice>).unwrap());
    let mut io = queue(&*rec);
    let vol = Volume::open(
        rec.clone() as Arc<dyn BlockDevice>,
        &mut *io,
        &OpenOptions::default(),
    )
    .unwrap();
    let mut states = BTreeMap::from([(gen0, State::default())]);
    let mut state = State::default();
    let mut extents = Vec::new();
    let mut ever = Vec::new();
    for _ in 0..transactions {
        let mut tx = vol.begin().unwrap();
        let mut next = state.clone();
        let mut next_extents = extents.clone();
        mutate(&mut tx, &mut *io, &mut next, &mut next_extents, &mut rng);
        if rng.chance(10) {
            tx.abort();
            continue;
        }
        let gen = tx.commit(&mut *io).unwrap();
        ever.extend(next.csums.keys().copied());
        state = next;
        extents = next_extents;
        states.insert(gen, state.clone());
    }
    vol.close(&mut *io).unwrap();
    ever.sort_unstable();
    ever.dedup();
    (rec, states, ever)
}

/// The generation of the newest superblock among the first `point` log entries (superblocks
/// are written with FUA, so each one logged is on the media).
fn durable_generation(log: &[LogEntry], point: usize, block_size: u64, initial: u64) -> u64 {
    log[..point]
        .iter()
        .filter_map(|e| match e {
            LogEntry::Write {
                lba, data: Some(d), ..
            } if lba * block_size == SUPERBLOCK_OFFSETS[0] => Some(
                parse_superblock(d, SUPERBLOCK_OFFSETS[0])
                    .expect("we wrote it")
                    .generation,
            ),
            _ => None,
        })
        .max()
        .unwrap_or(initial)
}

/// Opens one crash state and checks it against the expected generation.
fn verify(
    rec: &RecordDevice,
    point: usize,
    pick: &CrashPick,
    want_gen: u64,
    want: &State,
    ever: &[u64],
) {
    let ctx = || format!("crash point {point}, pick {pick:?}");
    let dev: Arc<dyn BlockDevice> = Arc::new(rec.materialize(point, pick).unwrap());
    let mut io = queue(&*dev);
    let vol = Volume::open(dev, &mut *io, &OpenOptions { cache_nodes: 64 })
        .unwrap_or_else(|e| panic!("{}: open failed: {e}", ctx()));
    assert_eq!(vol.generation(), want_gen, "{}", ctx());
    let r = vol.reader();
    r.check(&mut *io)
        .unwrap_or_else(|e| panic!("{}: check failed: {e}", ctx()));
    let items: Model = r
        .iter(&mut *io, USER, Key::MIN, Key::MAX, cow::Direction::Forward)
        .map(|x| {
            let (k, d) = x.unwrap_or_else(|e| panic!("{}: {e}", ctx()));
            (k, d.to_vec())
        })
        .collect();
    assert!(
        items == want.items,
        "{}: user tree differs from generation {want_gen}",
        ctx()
    );
    for &b in ever {
        let got = r.csum_lookup(&mut *io, b).unwrap();
        assert_eq!(
            got,
            want.csums.get(&b).copied(),
            "{}: checksum of block {b:#x}",
            ctx()
        );
    }
}

fn picks(n: usize, sweep: &Sweep, point: usize) -> Vec<CrashPick> {
    if n <= sweep.all_subsets_up_to {
        return (0u64..1 << n)
            .map(|m| CrashPick::Subset((0..n).map(|i| m >> i & 1 == 1).collect()))
            .collect();
    }
    let mut v = vec![CrashPick::All, CrashPick::None];
    v.extend((0..sweep.random_picks).map(|i| CrashPick::Random {
        seed: (point as u64) << 20 | i,
    }));
    v
}

#[test]
fn every_crash_state_opens_at_the_last_durable_generation() {
    let seed = testkit::seed!();
    let sweep = sweep();
    let (rec, states, ever) = record(seed, sweep.transactions);
    let log = rec.log();
    let bs = u64::from(rec.geometry().block_size);
    let (mut checked, mut torn_states, mut points) = (0u64, 0u64, 0);
    for point in rec.crash_points() {
        points += 1;
        let want_gen = durable_generation(&log, point, bs, *states.keys().next().unwrap());
        let want = &states[&want_gen];
        let n = rec.unflushed_at(point);
        for pick in picks(n, &sweep, point) {
            verify(&rec, point, &pick, want_gen, want, &ever);
            checked += 1;
            torn_states += u64::from(matches!(pick, CrashPick::Random { .. }));
        }
        // Each unflushed write torn alone (its first block only), the rest landed.
        for i in 0..n {
            let pick = CrashPick::Torn {
                subset: vec![true; n],
                torn: vec![(i, torn_mask(&log, &rec, point, i))],
            };
            verify(&rec, point, &pick, want_gen, want, &ever);
            checked += 1;
            torn_states += 1;
        }
    }
    eprintln!(
        "crash states checked: {checked} ({torn_states} with torn or random writes) at {points} crash points over {} log entries, {} generations",
        log.len(),
        states.len()
    );
    assert!(checked > 100);
}

/// A sector mask for unflushed write `i` at `point` that keeps only its first sector.
fn torn_mask(log: &[LogEntry], rec: &RecordDevice, point: usize, i: usize) -> Vec<bool> {
    let idx = rec.unflushed_writes(point)[i];
    let LogEntry::Write { blocks, .. } = log[idx] else {
        unreachable!("unflushed entries are writes")
    };
    (0..blocks).map(|b| b == 0).collect()
}

#[test]
fn crash_tests_cover_the_data_paths() {
    // The workload of a fixed seed commits data extents and checksums, so the sweep above
    // exercises the extent and csum trees, not only the user tree.
    let (_, states, ever) = record(7, 8);
    assert!(
        states.len() > 3 && !ever.is_empty(),
        "{} generations, {} csums",
        states.len(),
        ever.len()
    );
    let _ = TreeId::CSUM;
}
