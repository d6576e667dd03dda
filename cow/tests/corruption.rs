//! Corruption tests: bytes flipped in every kind of node and in superblock copies give a
//! clear error naming the damaged structure, or the mirror is used; never a panic, never
//! wrong data.

mod common;

use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::BlockDevice;
use common::*;
use cow::format::{parse_superblock, RootPtr, Superblock, SUPERBLOCK_CHECKED, SUPERBLOCK_OFFSETS};
use cow::{DataBackref, Direction, Error, Key, OpenOptions, TreeId, Volume};

/// A populated volume: a user tree three levels deep, data extents and checksums.
fn populated(dev: &Arc<MemDevice>) -> Model {
    let mut io = queue(&**dev);
    let vol = Volume::format(dev.clone(), &mut *io, &small_opts()).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.create_tree(USER).unwrap();
    let mut model = Model::new();
    let mut rng = Rng::new(99);
    for i in 0..3000u64 {
        let k = Key::new(i * 7, 1, i % 3);
        let v = rng.bytes(8 + (i % 24) as usize);
        tx.insert(&mut *io, USER, k, &v).unwrap();
        model.insert(k, v);
    }
    for f in 0..40 {
        let (b, l) = tx.alloc_data(4096, 4096).unwrap();
        let br = DataBackref {
            root: USER,
            objectid: f,
            offset: 0,
        };
        tx.add_data_ref(b, l, br).unwrap();
        tx.csum_insert(&mut *io, b, &[f as u32; 8]).unwrap();
    }
    tx.commit(&mut *io).unwrap();
    vol.close(&mut *io).unwrap();
    model
}

fn open(dev: &Arc<MemDevice>) -> Result<Volume, Error> {
    let mut io = queue(&**dev);
    Volume::open(
        dev.clone() as Arc<dyn BlockDevice>,
        &mut *io,
        &OpenOptions { cache_nodes: 16 },
    )
}

/// Reads the whole user tree both ways: the exact model or an error, nothing else.
fn read_is_right_or_error(dev: &MemDevice, vol: &Volume, model: &Model) -> Result<(), Error> {
    let mut io = queue(dev);
    let r = vol.reader();
    for dir in [Direction::Forward, Direction::Backward] {
        let mut got: Vec<(Key, Vec<u8>)> = r
            .iter(&mut *io, USER, Key::MIN, Key::MAX, dir)
            .map(|x| x.map(|(k, d)| (k, d.to_vec())))
            .collect::<Result<_, _>>()?;
        if dir == Direction::Backward {
            got.reverse();
        }
        assert!(
            got.iter().eq(model
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect::<Vec<_>>()
                .iter()),
            "wrong data returned without an error"
        );
    }
    for (k, v) in model.iter().step_by(97) {
        assert_eq!(
            r.get(&mut *io, USER, *k)?.as_deref(),
            Some(v.as_slice()),
            "wrong data for {k}"
        );
    }
    Ok(())
}

fn flip(dev: &MemDevice, off: u64, mask: u8) {
    let mut b = [0u8];
    dev.read_bytes(off, &mut b).unwrap();
    b[0] ^= mask;
    dev.write_bytes(off, &b).unwrap();
}

#[test]
fn flipped_bytes_in_every_kind_of_node_are_caught() {
    let dev = mem(8 << 20);
    let model = populated(&dev);
    let nodes = {
        let vol = open(&dev).unwrap();
        let mut io = queue(&*dev);
        let r = vol.reader();
        r.nodes(&mut *io).unwrap()
    };
    let kinds: std::collections::BTreeSet<(TreeId, bool)> =
        nodes.iter().map(|n| (n.tree, n.level == 0)).collect();
    assert!(
        kinds.contains(&(USER, false)) && kinds.contains(&(TreeId::EXTENT, false)),
        "{kinds:?}"
    );
    let mut rng = Rng::new(5);
    let (mut at_open, mut at_read, mut at_check) = (0, 0, 0);
    for n in &nodes {
        // The checksum, the header, the first item header and somewhere random.
        for off in [0, 30, 70, rng.below(1024)] {
            flip(&dev, n.bytenr + off, 0x20);
            let hex = format!("{:#x}", n.bytenr);
            match open(&dev) {
                Err(e) => {
                    assert!(
                        matches!(e, Error::Corrupt(_)) && e.to_string().contains(&hex),
                        "{e}"
                    );
                    at_open += 1;
                }
                Ok(vol) => {
                    if let Err(e) = read_is_right_or_error(&dev, &vol, &model) {
                        assert!(e.to_string().contains(&hex), "{e}");
                        at_read += 1;
                    }
                    let mut io = queue(&*dev);
                    let e = vol
                        .reader()
                        .check(&mut *io)
                        .expect_err("check misses a corrupt node");
                    assert!(e.to_string().contains(&hex), "{e}");
                    at_check += 1;
                }
            }
            flip(&dev, n.bytenr + off, 0x20);
        }
    }
    eprintln!(
        "{} nodes × 4 flips: {at_open} refused at open, {at_read} errors on read, {at_check} \
         caught by check (kinds {kinds:?})",
        nodes.len()
    );
    open(&dev).unwrap();
}

#[test]
fn a_misdirected_or_stale_node_is_caught() {
    let dev = mem(8 << 20);
    let model = populated(&dev);
    let vol = open(&dev).unwrap();
    let mut io = queue(&*dev);
    let leaves: Vec<_> = vol
        .reader()
        .nodes(&mut *io)
        .unwrap()
        .into_iter()
        .filter(|n| n.tree == USER && n.level == 0)
        .collect();
    drop(vol);
    // Copy one valid leaf over another: checksum fine, address wrong.
    let mut a = vec![0u8; 1024];
    let mut b = vec![0u8; 1024];
    dev.read_bytes(leaves[1].bytenr, &mut a).unwrap();
    dev.read_bytes(leaves[2].bytenr, &mut b).unwrap();
    dev.write_bytes(leaves[2].bytenr, &a).unwrap();
    let vol = open(&dev).unwrap();
    let e = read_is_right_or_error(&dev, &vol, &model).unwrap_err();
    assert!(e.to_string().contains("misdirected"), "{e}");
    dev.write_bytes(leaves[2].bytenr, &b).unwrap();
    read_is_right_or_error(&dev, &vol, &model).unwrap();
}

#[test]
fn superblock_mirror_is_used_and_generations_never_regress() {
    // 64 MiB + room: a second copy fits.
    let dev = Arc::new(MemDevice::new("big", 512, (66 << 20) / 512).unwrap());
    let mut io = queue(&*dev);
    let model = populated(&dev);
    let (primary, mirror) = (SUPERBLOCK_OFFSETS[0], SUPERBLOCK_OFFSETS[1]);
    let gen = open(&dev).unwrap().generation();

    // Every byte of the primary's checked sector: the mirror takes over.
    for i in (0..SUPERBLOCK_CHECKED as u64).step_by(5) {
        flip(&dev, primary + i, 0x01);
        let vol = open(&dev).unwrap_or_else(|e| panic!("flip at {i}: {e}"));
        assert_eq!(vol.generation(), gen);
        flip(&dev, primary + i, 0x01);
    }
    read_is_right_or_error(&dev, &open(&dev).unwrap(), &model).unwrap();

    // Both copies bad: a clear error naming both.
    flip(&dev, primary + 40, 0x80);
    flip(&dev, mirror + 40, 0x80);
    let e = open(&dev).err().expect("no valid superblock");
    assert!(matches!(e, Error::NoSuperblock(_)), "{e}");
    assert!(
        e.to_string().contains("0x10000") && e.to_string().contains("0x4000000"),
        "{e}"
    );
    flip(&dev, primary + 40, 0x80);
    flip(&dev, mirror + 40, 0x80);

    // A stale mirror (an older generation) never wins over a valid newer primary.
    let mut old = vec![0u8; 4096];
    dev.read_bytes(mirror, &mut old).unwrap();
    let vol = open(&dev).unwrap();
    let mut tx = vol.begin().unwrap();
    tx.insert(&mut *io, USER, Key::new(1, 200, 0), b"new")
        .unwrap();
    let newer = tx.commit(&mut *io).unwrap();
    drop(vol);
    dev.write_bytes(mirror, &old).unwrap();
    assert_eq!(open(&dev).unwrap().generation(), newer);

    // The primary copied over the mirror's place is misdirected, not a valid mirror.
    let mut p = vec![0u8; 4096];
    dev.read_bytes(primary, &mut p).unwrap();
    dev.write_bytes(mirror, &p).unwrap();
    flip(&dev, primary + 8, 0xff);
    let e = open(&dev).err().expect("both copies invalid");
    assert!(e.to_string().contains("misdirected"), "{e}");
}

#[test]
fn garbage_and_empty_devices_are_clear_errors() {
    let dev = mem(4 << 20);
    let e = open(&dev).err().unwrap();
    assert!(e.to_string().contains("bad magic"), "{e}");
    let tiny = mem(512 << 10);
    let mut io = queue(&*tiny);
    let e = Volume::format(tiny.clone(), &mut *io, &small_opts())
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::Invalid(_)) && e.to_string().contains("at least"),
        "{e}"
    );
    let mut rng = Rng::new(3);
    dev.write_bytes(0, &rng.bytes(4 << 20)).unwrap();
    assert!(matches!(open(&dev), Err(Error::NoSuperblock(_))));
}

/// A primary with a valid checksum but impossible contents (a volume larger than the device,
/// or a root pointer at a node that is not the root tree's) does not block the open: the
/// intact mirror is used. Both copies so: the error names the primary's problem.
#[test]
fn a_checksummed_but_impossible_primary_falls_back_to_the_mirror() {
    let dev = Arc::new(MemDevice::new("big", 512, (66 << 20) / 512).unwrap());
    let model = populated(&dev);
    let (primary, mirror) = (SUPERBLOCK_OFFSETS[0], SUPERBLOCK_OFFSETS[1]);
    let mut good = vec![0u8; 4096];
    dev.read_bytes(primary, &mut good).unwrap();
    let sb = parse_superblock(&good, primary).unwrap();
    let gen = sb.generation;
    let rewrite = |at: u64, sb: &Superblock| {
        let mut b = vec![0u8; 4096];
        b[..SUPERBLOCK_CHECKED].copy_from_slice(&sb.encode(at).unwrap());
        dev.write_bytes(at, &b).unwrap();
    };
    // The leaf holding the user tree's items is a valid node, but not the root tree.
    let mut io = queue(&*dev);
    let user_leaf = {
        let vol = open(&dev).unwrap();
        let r = vol.reader();
        r.nodes(&mut *io)
            .unwrap()
            .into_iter()
            .find(|n| n.tree == USER && n.level == 0)
            .expect("a user leaf")
            .bytenr
    };
    let impossible = [
        Superblock {
            total_bytes: 1 << 40,
            generation: gen + 1,
            ..sb.clone()
        },
        Superblock {
            root: RootPtr {
                bytenr: user_leaf,
                ..sb.root
            },
            generation: gen + 1,
            ..sb.clone()
        },
    ];
    for bad in &impossible {
        rewrite(primary, bad);
        let vol = open(&dev).unwrap_or_else(|e| panic!("{bad:?}: {e}"));
        assert_eq!(vol.generation(), gen);
        read_is_right_or_error(&dev, &vol, &model).unwrap();
        drop(vol);
        rewrite(mirror, bad);
        let e = open(&dev).err().expect("no usable copy");
        assert!(!e.to_string().is_empty());
        rewrite(mirror, &sb);
    }
    dev.write_bytes(primary, &good).unwrap();
    assert_eq!(open(&dev).unwrap().generation(), gen);
}
