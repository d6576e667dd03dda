//! Volume behaviour: poisoning after failed writes and flushes, reader snapshots, data
//! extent references and the checksum tree API.

mod common;

use std::sync::Arc;

use bdev::fault::{ErrorRule, FaultConfig, FaultDevice};
use bdev::{BlockDevice, OpKind};
use common::*;
use cow::{DataBackref, Direction, Error, Key, OpenOptions, TreeId, Volume};

/// Opens the volume on `dev` again with the default options (after the last handle dropped).
fn reopen(dev: Arc<impl BlockDevice + 'static>, io: &mut dyn bdev::IoQueue) -> Volume {
    Volume::open(dev as Arc<dyn BlockDevice>, io, &OpenOptions::default()).unwrap()
}

fn fill(vol: &Volume, io: &mut dyn bdev::IoQueue, from: u64, n: u64, tag: u8) -> u64 {
    let mut tx = vol.begin().unwrap();
    if !tx.trees().contains(&USER) {
        tx.create_tree(USER).unwrap();
    }
    for i in from..from + n {
        tx.upsert(io, USER, Key::new(i, 1, 0), &[tag; 20]).unwrap();
    }
    tx.commit(io).unwrap()
}

fn poison_with(rule: ErrorRule) {
    let base = mem(4 << 20);
    let mut io = queue(&*base);
    let vol = Volume::format(base.clone(), &mut *io, &small_opts()).unwrap();
    let gen = fill(&vol, &mut *io, 0, 500, 1);
    drop(vol);
    let cfg = FaultConfig {
        seed: 1,
        errors: vec![rule.clone().persistent()],
        ..FaultConfig::default()
    };
    let fault: Arc<dyn BlockDevice> = Arc::new(FaultDevice::new("f", base.clone(), cfg).unwrap());
    let mut fio = queue(&*fault);
    let vol = Volume::open(fault, &mut *fio, &OpenOptions::default()).unwrap();
    let mut tx = vol.begin().unwrap();
    for i in 0..500 {
        tx.upsert(&mut *fio, USER, Key::new(i, 1, 0), &[2; 20])
            .unwrap();
    }
    let first = tx
        .commit(&mut *fio)
        .expect_err("the injected failure surfaces");
    assert!(matches!(first, Error::Io { .. }), "{first}");
    let why = vol.poisoned().expect("poisoned");
    assert_eq!(why, first.to_string());
    let e = vol.begin().err().expect("writes refused");
    assert!(matches!(&e, Error::Poisoned(w) if *w == why), "{e}");
    // Reads of the last committed state still work.
    let r = vol.reader();
    assert_eq!(
        r.get(&mut *fio, USER, Key::new(3, 1, 0))
            .unwrap()
            .as_deref(),
        Some(&[1; 20][..])
    );
    drop(r);
    assert!(matches!(vol.close(&mut *fio), Err(Error::Poisoned(_))));
    // Reopened on the healthy device: the last durable generation, intact.
    let vol = reopen(base.clone(), &mut *io);
    assert!(vol.generation() == gen || vol.generation() == gen + 1);
    let want = if vol.generation() == gen { 1 } else { 2 };
    let all = read_all(&vol, &mut *io, USER);
    assert!(all.values().all(|v| *v == vec![want; 20]) && all.len() == 500);
    vol.reader().check(&mut *io).unwrap();
    eprintln!(
        "{rule:?}: poisoned with \"{why}\"; reopened at generation {}",
        vol.generation()
    );
}

#[test]
fn failed_node_write_poisons_until_reopen() {
    poison_with(ErrorRule::nth(OpKind::Write, 3));
}

#[test]
fn failed_flush_poisons_until_reopen() {
    poison_with(ErrorRule::nth(OpKind::Flush, 1));
}

#[test]
fn failed_superblock_flush_poisons_until_reopen() {
    poison_with(ErrorRule::nth(OpKind::Flush, 2));
}

#[test]
fn readers_keep_their_snapshot_while_writers_free_its_nodes() {
    let dev = mem(8 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let g1 = fill(&vol, &mut *io, 0, 2000, 1);
    let r = vol.reader();
    let free_before = vol.free_bytes();
    for round in 0..6u8 {
        let mut tx = vol.begin().unwrap();
        for i in 0..2000 {
            if i % 3 == 0 {
                tx.delete(&mut *io, USER, Key::new(i, 1, 0)).unwrap();
            } else {
                tx.upsert(&mut *io, USER, Key::new(i, 1, 0), &[round + 10; 20])
                    .unwrap();
            }
        }
        tx.commit(&mut *io).unwrap();
        fill(&vol, &mut *io, 0, 2000, round + 20);
    }
    assert_eq!(r.generation(), g1);
    let seen: Vec<_> = r
        .iter(&mut *io, USER, Key::MIN, Key::MAX, Direction::Forward)
        .map(|x| x.unwrap())
        .collect();
    assert_eq!(seen.len(), 2000);
    assert!(
        seen.iter().all(|(_, v)| **v == [1; 20]),
        "reader saw a later generation"
    );
    r.check(&mut *io).unwrap();
    drop(r);
    // Once the reader is gone the pinned space comes back at the next transaction.
    vol.begin().unwrap().abort();
    assert!(
        vol.free_bytes() >= free_before - 64 * 1024,
        "{} < {free_before}",
        vol.free_bytes()
    );
    vol.reader().check(&mut *io).unwrap();
}

#[test]
fn data_extent_references_and_checksums() {
    let dev = mem(8 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let a = DataBackref {
        root: USER,
        objectid: 257,
        offset: 0,
    };
    let b = DataBackref {
        root: USER,
        objectid: 258,
        offset: 8192,
    };
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    let (ext, len) = tx.alloc_data(512, 64 << 10).unwrap();
    assert_eq!(len, 64 << 10, "a large free range serves the whole request");
    tx.add_data_ref(ext, len, a).unwrap();
    tx.add_data_ref(ext, len, b).unwrap();
    // Checksums of a new extent go in without a search for old ones; inserted again in the
    // same transaction, the second set replaces only the blocks it covers.
    tx.csum_insert(&mut *io, ext, &[7; 128]).unwrap();
    let sums: Vec<u32> = (0..64).collect();
    tx.csum_insert(&mut *io, ext, &sums).unwrap();
    let used_before = vol.reader().bytes_used();
    tx.commit(&mut *io).unwrap();
    let r = vol.reader();
    assert!(
        r.bytes_used() >= used_before + len,
        "the data extent is accounted"
    );
    assert_eq!(r.csum_lookup(&mut *io, ext + 5 * 512).unwrap(), Some(5));
    assert_eq!(r.csum_lookup(&mut *io, ext + 100 * 512).unwrap(), Some(7));
    assert_eq!(r.csum_lookup(&mut *io, ext + len).unwrap(), None);
    r.check(&mut *io).unwrap();
    drop(r);

    // Punch a hole in the checksums, then drop one reference: the extent stays.
    let mut tx = vol.begin().unwrap();
    tx.csum_delete(&mut *io, ext + 10 * 512, 4 * 512).unwrap();
    tx.drop_data_ref(ext, len, a).unwrap();
    tx.commit(&mut *io).unwrap();
    let r = vol.reader();
    assert_eq!(r.csum_lookup(&mut *io, ext + 9 * 512).unwrap(), Some(9));
    assert_eq!(r.csum_lookup(&mut *io, ext + 12 * 512).unwrap(), None);
    assert_eq!(r.csum_lookup(&mut *io, ext + 14 * 512).unwrap(), Some(14));
    // A range lookup agrees with a lookup per block, across the hole and both ends.
    let from = ext - 4 * 512;
    let range = r.csum_lookup_range(&mut *io, from, 140).unwrap();
    for (i, got) in range.iter().enumerate() {
        let one = r.csum_lookup(&mut *io, from + i as u64 * 512).unwrap();
        assert_eq!(*got, one, "block {i} of the range");
    }
    assert_eq!(range[4 + 9], Some(9));
    assert_eq!(range[4 + 12], None);
    assert_eq!(range[4 + 100], Some(7));
    assert!(r.csum_lookup_range(&mut *io, ext, 0).unwrap().is_empty());
    // Inside one item: one descent answers it all.
    let inside = r.csum_lookup_range(&mut *io, ext + 20 * 512, 8).unwrap();
    assert_eq!(inside, (20..28).map(Some).collect::<Vec<_>>());
    r.check(&mut *io).unwrap();
    drop(r);

    // Dropping a reference that does not exist is refused, and nothing changes.
    let gen = vol.generation();
    let mut tx = vol.begin().unwrap();
    tx.drop_data_ref(ext, len, a).unwrap();
    assert!(matches!(tx.commit(&mut *io), Err(Error::Invalid(_))));
    assert_eq!(vol.generation(), gen);

    // The last reference: extent and checksums go, and the space returns after commit.
    let mut tx = vol.begin().unwrap();
    tx.drop_data_ref(ext, len, b).unwrap();
    tx.commit(&mut *io).unwrap();
    let r = vol.reader();
    assert_eq!(r.csum_lookup(&mut *io, ext).unwrap(), None);
    assert_eq!(r.csum_lookup(&mut *io, ext + 14 * 512).unwrap(), None);
    r.check(&mut *io).unwrap();
    drop(r);
    let vol2_gen = vol.generation();
    drop(vol);
    let vol = reopen(dev.clone(), &mut *io);
    assert_eq!(vol.generation(), vol2_gen);
    let mut tx = vol.begin().unwrap();
    let (again, _) = tx.alloc_data(64 << 10, 64 << 10).unwrap();
    assert!(
        again <= ext,
        "freed space is reused ({again:#x} vs {ext:#x})"
    );
}

/// The data items of the extent at `ext`: (kind, inline back-reference of the extent item).
fn data_items(vol: &Volume, io: &mut dyn bdev::IoQueue, ext: u64) -> Vec<(u8, Option<u64>)> {
    let lo = Key::new(ext, cow::format::kind::EXTENT_ITEM, 0);
    let hi = Key::new(ext, cow::format::kind::EXTENT_DATA_REF, u64::MAX);
    let r = vol.reader();
    let items: Vec<_> = r
        .iter(io, TreeId::EXTENT, lo, hi, Direction::Forward)
        .map(|i| i.unwrap())
        .collect();
    items
        .into_iter()
        .map(|(k, d)| {
            let inline = (k.kind == cow::format::kind::EXTENT_ITEM).then(|| {
                let e = cow::format::ExtentItem::parse(&d).unwrap();
                e.inline.map_or(0, |(b, _)| b.objectid)
            });
            (k.kind, inline.filter(|&o| o != 0))
        })
        .collect()
}

/// A data extent's first referrer is kept in its extent item (one item for an unshared
/// extent); others get EXTENT_DATA_REF items; a freed inline place takes the next new one.
#[test]
fn the_first_back_reference_is_inline() {
    use cow::format::kind::{EXTENT_DATA_REF, EXTENT_ITEM};
    let dev = mem(4 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let by = |ino: u64| DataBackref {
        root: USER,
        objectid: ino,
        offset: 0,
    };
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    let (ext, len) = tx.alloc_data(4096, 4096).unwrap();
    tx.add_data_ref(ext, len, by(257)).unwrap();
    tx.add_data_ref(ext, len, by(257)).unwrap();
    tx.commit(&mut *io).unwrap();
    assert_eq!(
        data_items(&vol, &mut *io, ext),
        vec![(EXTENT_ITEM, Some(257))]
    );
    let mut tx = vol.begin().unwrap();
    tx.add_data_ref(ext, len, by(258)).unwrap();
    tx.drop_data_ref(ext, len, by(257)).unwrap();
    tx.commit(&mut *io).unwrap();
    assert_eq!(
        data_items(&vol, &mut *io, ext),
        vec![(EXTENT_ITEM, Some(257)), (EXTENT_DATA_REF, None)],
        "257 still holds one reference inline, 258 has an item"
    );
    let mut tx = vol.begin().unwrap();
    tx.drop_data_ref(ext, len, by(257)).unwrap();
    tx.commit(&mut *io).unwrap();
    assert_eq!(
        data_items(&vol, &mut *io, ext),
        vec![(EXTENT_ITEM, None), (EXTENT_DATA_REF, None)]
    );
    let mut tx = vol.begin().unwrap();
    tx.add_data_ref(ext, len, by(259)).unwrap();
    tx.commit(&mut *io).unwrap();
    assert_eq!(
        data_items(&vol, &mut *io, ext),
        vec![(EXTENT_ITEM, Some(259)), (EXTENT_DATA_REF, None)]
    );
    vol.reader().check(&mut *io).unwrap();
    // Dropping the item's reference, then the inline one, frees the extent.
    let mut tx = vol.begin().unwrap();
    tx.drop_data_ref(ext, len, by(258)).unwrap();
    tx.commit(&mut *io).unwrap();
    assert_eq!(
        data_items(&vol, &mut *io, ext),
        vec![(EXTENT_ITEM, Some(259))]
    );
    let mut tx = vol.begin().unwrap();
    tx.drop_data_ref(ext, len, by(259)).unwrap();
    tx.commit(&mut *io).unwrap();
    assert!(data_items(&vol, &mut *io, ext).is_empty());
    vol.reader().check(&mut *io).unwrap();
}

/// An extent adopted with its checksums kept by its referrers says so in its extent item,
/// gets nothing in the checksum tree, and is freed like any other.
#[test]
fn an_extent_can_leave_its_checksums_to_its_referrers() {
    let dev = mem(4 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let (b, l) = vol.reserve_data(4096, 4096).unwrap();
    let by = DataBackref {
        root: USER,
        objectid: 257,
        offset: 0,
    };
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    tx.adopt_data_csums_elsewhere(b, l).unwrap();
    tx.add_data_ref(b, l, by).unwrap();
    tx.commit(&mut *io).unwrap();
    let key = Key::new(b, cow::format::kind::EXTENT_ITEM, l);
    let item = vol
        .reader()
        .get(&mut *io, TreeId::EXTENT, key)
        .unwrap()
        .unwrap();
    let item = cow::format::ExtentItem::parse(&item).unwrap();
    assert!(item.csums_elsewhere);
    assert_eq!(item.inline, Some((by, 1)));
    assert_eq!(
        cow::format::ExtentItem::parse(&item.encode()).unwrap(),
        item
    );
    assert_eq!(vol.reader().csum_lookup(&mut *io, b).unwrap(), None);
    vol.reader().check(&mut *io).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.drop_data_ref(b, l, by).unwrap();
    tx.commit(&mut *io).unwrap();
    vol.begin().unwrap().commit(&mut *io).unwrap();
    assert!(vol
        .reader()
        .get(&mut *io, TreeId::EXTENT, key)
        .unwrap()
        .is_none());
    vol.reserve_exact(b, l).expect("the extent is free again");
    vol.reader().check(&mut *io).unwrap();
}

#[test]
fn internal_trees_refuse_items_and_dump_describes_them() {
    let dev = mem(4 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let mut tx = vol.begin().unwrap();
    assert!(matches!(
        tx.insert(&mut *io, TreeId::EXTENT, Key::MIN, b"x"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        tx.create_tree(TreeId(100)),
        Err(Error::Invalid(_))
    ));
    tx.create_tree(USER).unwrap();
    assert!(matches!(
        tx.insert(&mut *io, USER, Key::MIN, &[0; 4000]),
        Err(Error::Invalid(_))
    ));
    tx.insert(&mut *io, USER, Key::new(7, 1, 0), b"abc")
        .unwrap();
    tx.commit(&mut *io).unwrap();
    let mut out = String::new();
    let r = vol.reader();
    for t in r.trees() {
        r.dump_tree(&mut *io, t, &mut out).unwrap();
    }
    assert!(
        out.contains("ROOT_ITEM") && out.contains("METADATA_ITEM") && out.contains("(7 TYPE_1 0)"),
        "{out}"
    );
}

#[test]
fn reserved_data_is_adopted_or_given_back() {
    let dev = mem(4 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let free0 = vol.free_bytes();
    let (ext, len) = vol.reserve_data(4096, 64 << 10).unwrap();
    assert_eq!(len, 64 << 10);
    assert_eq!(
        vol.free_bytes(),
        free0 - len,
        "a reservation is not allocatable"
    );
    // The first half is referenced by a transaction, the second half given back.
    let half = len / 2;
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    tx.adopt_data(ext, half).unwrap();
    assert!(matches!(tx.adopt_data(ext, half), Err(Error::Invalid(_))));
    let backref = DataBackref {
        root: USER,
        objectid: 257,
        offset: 0,
    };
    tx.add_data_ref(ext, half, backref).unwrap();
    tx.commit(&mut *io).unwrap();
    vol.unreserve_data(ext + half, half).unwrap();
    let r = vol.reader();
    r.check(&mut *io).unwrap();
    assert!(r.bytes_used() >= half);
    drop(r);
    // An adopted piece of an aborted transaction is the caller's reservation again.
    let before = vol.free_bytes();
    let (b, l) = vol.reserve_data(4096, 4096).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.adopt_data(b, l).unwrap();
    tx.abort();
    assert_eq!(vol.free_bytes(), before - l);
    vol.unreserve_data(b, l).unwrap();
    assert_eq!(vol.free_bytes(), before);
    // An adopted extent freed unreferenced waits for pinned readers of older generations.
    let pin = vol.pin();
    let (b2, l2) = vol.reserve_data(4096, 4096).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.adopt_data(b2, l2).unwrap();
    tx.commit(&mut *io).unwrap();
    assert_eq!(
        vol.free_bytes(),
        before - l2,
        "pinned while an older reader lives"
    );
    vol.unpin(pin);
    let tx = vol.begin().unwrap();
    tx.commit(&mut *io).unwrap();
    assert_eq!(vol.free_bytes(), before);
    // An exact reservation of free space succeeds once; of used space it fails.
    vol.reserve_exact(b, l).unwrap();
    assert!(matches!(vol.reserve_exact(b, l), Err(Error::Invalid(_))));
    assert!(matches!(
        vol.reserve_exact(ext, 4096),
        Err(Error::Invalid(_))
    ));
    vol.unreserve_data(b, l).unwrap();
    assert_eq!(vol.free_bytes(), before);
    // A reservation freed through a transaction: kept while an older reader lives and by an
    // aborted transaction, free after a commit once the reader is gone.
    let (b3, l3) = vol.reserve_data(8192, 8192).unwrap();
    let mut tx = vol.begin().unwrap();
    assert!(matches!(tx.free_reserved(b3, 100), Err(Error::Invalid(_))));
    tx.free_reserved(b3, l3).unwrap();
    tx.abort();
    assert_eq!(
        vol.free_bytes(),
        before - l3,
        "still reserved after an abort"
    );
    let pin = vol.pin();
    let mut tx = vol.begin().unwrap();
    tx.free_reserved(b3, l3).unwrap();
    tx.commit(&mut *io).unwrap();
    assert_eq!(vol.free_bytes(), before - l3, "pinned by the older reader");
    vol.unpin(pin);
    vol.begin().unwrap().commit(&mut *io).unwrap();
    assert_eq!(vol.free_bytes(), before);
    vol.reader().check(&mut *io).unwrap();
}

#[test]
fn a_commit_that_frees_thousands_of_extents_hands_them_all_back() {
    let dev = mem(64 << 20);
    let mut io = queue(&*dev);
    let vol = Arc::new(Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap());
    let before = vol.free_bytes();
    // One-block reservations; every other one is freed, so no two freed extents touch and
    // the release is thousands of separate frees (many chunks of the free-space lock).
    let blocks: Vec<(u64, u64)> = (0..6000)
        .map(|_| vol.reserve_data(4096, 4096).unwrap())
        .collect();
    let (freed, kept): (Vec<_>, Vec<_>) = blocks.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let pin = vol.pin();
    let mut tx = vol.begin().unwrap();
    for (_, &(b, l)) in &freed {
        tx.free_reserved(b, l).unwrap();
    }
    tx.commit(&mut *io).unwrap();
    let freed_bytes: u64 = freed.iter().map(|(_, &(_, l))| l).sum();
    assert_eq!(
        vol.pinned_bytes(),
        freed_bytes,
        "pinned by the older reader"
    );
    // Another thread reserves and gives back while they are handed back.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = {
        let (vol, stop) = (Arc::clone(&vol), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (b, l) = vol.reserve_data(4096, 4096).unwrap();
                vol.unreserve_data(b, l).unwrap();
            }
        })
    };
    vol.unpin(pin);
    vol.begin().unwrap().commit(&mut *io).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    other.join().unwrap();
    assert_eq!(
        vol.pinned_bytes(),
        0,
        "nothing left waiting or being handed back"
    );
    for (_, &(b, l)) in &kept {
        vol.unreserve_data(b, l).unwrap();
    }
    assert_eq!(vol.free_bytes(), before, "every extent is free again");
    vol.reader().check(&mut *io).unwrap();
}

#[test]
fn data_kept_off_node_slots_takes_a_hole_no_node_fits_in() {
    let dev = mem(4 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let ss = u64::from(vol.sectorsize());
    // Everything data may take, one sector at a time: what is left is the metadata
    // reserve, in whole nodes (a commit copying every node once, and then some).
    let mut taken = Vec::new();
    while let Ok((b, l)) = vol.reserve_data(ss, ss) {
        taken.push((b, l));
    }
    let slots = vol.node_slot_bytes();
    assert!(
        slots >= vol.metadata_reserve() && vol.metadata_reserve() > 0,
        "{slots} bytes in whole nodes, the reserve is {}",
        vol.metadata_reserve()
    );
    assert_eq!(
        vol.free_bytes(),
        slots,
        "data took every piece no node fits in"
    );
    // Every other sector given back: more than a quarter of the volume free, most of it in
    // holes no node fits in.
    taken.sort_unstable();
    let mut holes = 0;
    for (i, &(b, l)) in taken.iter().enumerate() {
        if i % 2 == 0 {
            vol.unreserve_data(b, l).unwrap();
            holes += 1;
        }
    }
    let free = vol.free_bytes();
    assert!(
        free * 4 >= 4 << 20,
        "{free} bytes free: too few to spread data"
    );
    // Data goes into the holes, whatever the caller keeps beyond the reserve, and never
    // into the reserve's nodes.
    for _ in 0..holes {
        let (_, l) = vol.reserve_data_keeping(ss, ss, 0, ss).unwrap();
        assert_eq!(l, ss);
        assert_eq!(vol.node_slot_bytes(), slots, "data took a node slot");
    }
    assert_eq!(vol.free_bytes(), slots);
    // With the holes gone, data is refused, with nothing taken: the reserve is for nodes.
    for keep in [0, slots, 2 * slots] {
        assert!(matches!(
            vol.reserve_data_keeping(ss, ss, 0, keep),
            Err(Error::NoSpace(_))
        ));
    }
    assert!(matches!(vol.reserve_data(ss, ss), Err(Error::NoSpace(_))));
    assert_eq!(vol.free_bytes(), slots);
    // Commits still find their nodes there.
    let mut tx = vol.begin().unwrap();
    tx.create_tree(TreeId::FS).unwrap();
    for k in 0..200u64 {
        tx.insert(&mut *io, TreeId::FS, Key::new(k, 1, 0), &[7; 40])
            .unwrap();
    }
    tx.commit(&mut *io).unwrap();
    vol.reader().check(&mut *io).unwrap();
}

/// The node count behind the metadata reserve, kept per commit, is what the extent tree
/// holds when the volume is opened again: after commits that grow and shrink the trees,
/// and after transactions dropped uncommitted. `BFS_SEED` reproduces a run.
#[test]
fn metadata_reserve_counts_the_nodes_the_trees_hold() {
    let seed = testkit::seed!();
    let mut rng = testkit::Rng::new(seed);
    let dev = mem(8 << 20);
    let mut io = queue(&*dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let empty = vol.metadata_reserve();
    assert!(empty > 0);
    for round in 0..30u64 {
        let mut tx = vol.begin().unwrap();
        if !tx.trees().contains(&USER) {
            tx.create_tree(USER).unwrap();
        }
        for _ in 0..rng.below(400) {
            let k = Key::new(rng.below(3000), 1, 0);
            if rng.chance(60) {
                tx.upsert(&mut *io, USER, k, &[round as u8; 40]).unwrap();
            } else {
                tx.delete(&mut *io, USER, k).unwrap();
            }
        }
        if rng.chance(20) {
            drop(tx);
        } else {
            tx.commit(&mut *io).unwrap();
        }
    }
    let before = vol.metadata_reserve();
    assert!(
        before > empty,
        "seed {seed}: the trees grew, the reserve did not"
    );
    drop(vol);
    let vol = reopen(dev.clone(), &mut *io);
    assert_eq!(vol.metadata_reserve(), before, "seed {seed}");
}
