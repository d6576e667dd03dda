//! Model test: random tree operations with commits, aborts and reopens, compared with a
//! `BTreeMap`. `BFS_SEED` reproduces a run; `COW_MODEL_OPS` sets its length.

mod common;

use std::ops::Bound;
use std::sync::Arc;

use bdev::BlockDevice;
use common::*;
use cow::{Direction, Error, Key, OpenOptions, Transaction, Volume};

fn check_range(tx: &Transaction<'_>, io: &mut dyn bdev::IoQueue, model: &Model, rng: &mut Rng) {
    let (a, b) = (key(rng, 1200), key(rng, 1200));
    let (lo, hi) = (a.min(b), a.max(b));
    let want: Vec<_> = model
        .range((Bound::Included(lo), Bound::Included(hi)))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let fwd: Vec<_> = tx
        .iter(io, USER, lo, hi, Direction::Forward)
        .map(|x| x.map(|(k, d)| (k, d.to_vec())).unwrap())
        .collect();
    assert_eq!(fwd, want, "forward range {lo}..={hi}");
    let mut bwd: Vec<_> = tx
        .iter(io, USER, lo, hi, Direction::Backward)
        .map(|x| x.map(|(k, d)| (k, d.to_vec())).unwrap())
        .collect();
    bwd.reverse();
    assert_eq!(bwd, want, "backward range {lo}..={hi}");
}

/// One random operation on both the transaction and the model.
fn step(tx: &mut Transaction<'_>, io: &mut dyn bdev::IoQueue, model: &mut Model, rng: &mut Rng) {
    let k = key(rng, 1200);
    let max = if rng.chance(10) { 200 } else { 40 };
    let len = rng.below(max) as usize;
    let v = rng.bytes(len);
    match rng.below(10) {
        0..=3 => match tx.insert(io, USER, k, &v) {
            Ok(()) => assert!(
                model.insert(k, v).is_none(),
                "insert of existing {k} accepted"
            ),
            Err(Error::KeyExists { .. }) => assert!(model.contains_key(&k)),
            Err(e) => panic!("insert {k}: {e}"),
        },
        4 => match tx.update(io, USER, k, &v) {
            Ok(()) => assert!(model.insert(k, v).is_some()),
            Err(Error::NotFound { .. }) => assert!(!model.contains_key(&k)),
            Err(e) => panic!("update {k}: {e}"),
        },
        5..=7 => {
            let found = tx.delete(io, USER, k).unwrap();
            assert_eq!(found, model.remove(&k).is_some(), "delete {k}");
        }
        8 => assert_eq!(
            tx.get(io, USER, k).unwrap().as_deref(),
            model.get(&k).map(Vec::as_slice),
            "get {k}"
        ),
        _ => check_range(tx, io, model, rng),
    }
}

fn run(seed: u64, ops: usize) {
    let mut rng = Rng::new(seed);
    let dev = mem(32 << 20);
    let mut io = queue(&*dev);
    let opts = small_opts();
    let mut vol = Volume::format(dev.clone(), &mut *io, &opts).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    tx.commit(&mut *io).unwrap();
    let mut committed = Model::new();
    let mut done = 0;
    let mut reopens = 0;
    while done < ops {
        let mut model = committed.clone();
        let mut tx = vol.begin().unwrap();
        let batch = 1 + rng.below(400) as usize;
        for _ in 0..batch {
            step(&mut tx, &mut *io, &mut model, &mut rng);
        }
        done += batch;
        if rng.chance(15) {
            tx.abort();
        } else {
            tx.commit(&mut *io).unwrap();
            committed = model;
        }
        assert_eq!(
            read_all(&vol, &mut *io, USER),
            committed,
            "after generation {}",
            vol.generation()
        );
        if rng.chance(20) {
            let gen = vol.generation();
            drop(vol);
            vol = Volume::open(
                dev.clone() as Arc<dyn BlockDevice>,
                &mut *io,
                &OpenOptions { cache_nodes: 64 },
            )
            .unwrap();
            assert_eq!(vol.generation(), gen);
            reopens += 1;
        }
        vol.reader().check(&mut *io).unwrap();
    }
    let report = vol.reader().check(&mut *io).unwrap();
    eprintln!(
        "model: {done} ops, generation {}, {reopens} reopens, {} items, {} nodes in {} trees",
        vol.generation(),
        committed.len(),
        report.nodes,
        report.trees
    );
    assert!(report.items >= committed.len());
}

#[test]
fn random_operations_match_a_btreemap() {
    let seed = testkit::seed!();
    let ops = std::env::var("COW_MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12_000);
    run(seed, ops);
}

#[test]
fn fixed_seeds_match_a_btreemap() {
    for seed in [1, 2, 3] {
        run(seed, 3_000);
    }
}

#[test]
fn deep_tree_fill_and_drain() {
    let dev = mem(16 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    for i in 0..6000u64 {
        tx.insert(&mut *io, USER, Key::new(i, 1, 0), &i.to_le_bytes())
            .unwrap();
    }
    tx.commit(&mut *io).unwrap();
    let mut tx = vol.begin().unwrap();
    for i in (0..6000u64).rev().step_by(2) {
        assert!(tx.delete(&mut *io, USER, Key::new(i, 1, 0)).unwrap());
    }
    tx.commit(&mut *io).unwrap();
    let r = vol.reader();
    let all: Vec<_> = r
        .iter(&mut *io, USER, Key::MIN, Key::MAX, Direction::Forward)
        .map(|x| x.unwrap().0.objectid)
        .collect();
    assert_eq!(all, (0..6000).step_by(2).collect::<Vec<_>>());
    r.check(&mut *io).unwrap();
    drop(r);
    let mut tx = vol.begin().unwrap();
    for i in (0..6000u64).step_by(2) {
        assert!(tx.delete(&mut *io, USER, Key::new(i, 1, 0)).unwrap());
    }
    tx.commit(&mut *io).unwrap();
    assert!(read_all(&vol, &mut *io, USER).is_empty());
    vol.reader().check(&mut *io).unwrap();
}

/// Transactions that sweep the key space in ascending order, as a fold of the fsync log
/// does: most changes land in the leaf the previous one touched (the "finger" fast path),
/// with item sizes that make leaves split and merge along the way. Every result, the
/// committed trees and their structure are checked against a model.
#[test]
fn ascending_sweeps_match_a_btreemap() {
    let seed = testkit::seed!();
    let mut rng = Rng::new(seed);
    let dev = mem(32 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    tx.commit(&mut *io).unwrap();
    let mut model = Model::new();
    for sweep in 0..40 {
        let mut tx = vol.begin().unwrap();
        let mut at = rng.below(50);
        while at < 3000 {
            let k = Key::new(at, rng.below(3) as u8, rng.below(4));
            let len = if rng.chance(8) { 150 } else { rng.below(40) } as usize;
            let v = rng.bytes(len);
            match rng.below(7) {
                0 | 1 => {
                    tx.upsert(&mut *io, USER, k, &v).unwrap();
                    model.insert(k, v);
                }
                2 => match tx.insert(&mut *io, USER, k, &v) {
                    Ok(()) => assert!(model.insert(k, v).is_none(), "insert of existing {k}"),
                    Err(Error::KeyExists { .. }) => assert!(model.contains_key(&k)),
                    Err(e) => panic!("insert {k}: {e}"),
                },
                3 => match tx.update(&mut *io, USER, k, &v) {
                    Ok(()) => assert!(model.insert(k, v).is_some(), "update of missing {k}"),
                    Err(Error::NotFound { .. }) => assert!(!model.contains_key(&k)),
                    Err(e) => panic!("update {k}: {e}"),
                },
                4 => {
                    let found = tx.delete(&mut *io, USER, k).unwrap();
                    assert_eq!(found, model.remove(&k).is_some(), "delete {k}");
                }
                5 => assert_eq!(
                    tx.get(&mut *io, USER, k).unwrap().as_deref(),
                    model.get(&k).map(Vec::as_slice),
                    "get {k}"
                ),
                // Short and long ranges both ways from the key (walks that start in the
                // finger leaf and leave it).
                _ => {
                    let span = if rng.chance(20) { 400 } else { 3 };
                    let lo = Key::new(at.saturating_sub(span), 0, 0);
                    let hi = Key::new(at + span, 2, 3);
                    let want: Vec<_> = model.range(lo..=hi).map(|(k, v)| (*k, v.clone())).collect();
                    for dir in [Direction::Forward, Direction::Backward] {
                        let mut got: Vec<_> = tx
                            .iter(&mut *io, USER, lo, hi, dir)
                            .map(|x| x.map(|(k, d)| (k, d.to_vec())).unwrap())
                            .collect();
                        if dir == Direction::Backward {
                            got.reverse();
                        }
                        assert_eq!(got, want, "{dir:?} range {lo}..={hi}");
                    }
                }
            }
            // Mostly small steps (same leaf), sometimes a jump (a leaf or more ahead).
            at += if rng.chance(10) {
                rng.below(200)
            } else {
                rng.below(3)
            };
        }
        // Deletes in ascending order drain leaves below a quarter and merge them.
        if sweep % 4 == 3 {
            let keys: Vec<Key> = model.keys().copied().filter(|_| rng.chance(2)).collect();
            for k in keys {
                assert!(tx.delete(&mut *io, USER, k).unwrap(), "delete {k}");
                model.remove(&k);
            }
        }
        tx.commit(&mut *io).unwrap();
        assert_eq!(read_all(&vol, &mut *io, USER), model, "after sweep {sweep}");
        vol.reader().check(&mut *io).unwrap();
    }
    eprintln!("ascending sweeps: {} items at the end", model.len());
}
