//! Microbenchmark of what a filesystem's fold of random 4 KiB overwrites asks of the cow
//! layer, on a RAM device, in one thread: per overwritten block a data reservation, the new
//! extent adopted (its checksum kept by the referrer), a reference added to it and one
//! dropped from the extent it replaces, and the referrer's item updated; then the commit.
//! This is most of the folder thread's work in `bfsperf --fs` direct randwrite, without the
//! device, the rest of the filesystem and other threads, so that a change to the commit can
//! be measured apart from their noise. (With no reader pinning older generations, the
//! commit here also hands the freed extents back to free space, which in the filesystem
//! the writing thread mostly does.) Prints the thread's CPU time per block for each phase,
//! summed over the rounds (Linux only: `/proc/thread-self/schedstat`).
//!
//! `cargo run --release -p cow --example overwrite-commit -- [blocks] [per-round] [rounds]`
//! (defaults 65536, 40000, 24: a 256 MiB file of one-block extents on a 1 GiB volume,
//! folded 40000 blocks at a time, about what `bfsperf --fs` folds on a 1 GiB malloc bdev).

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::{BlockDevice, IoQueue};
use cow::{DataBackref, FormatOptions, Key, TreeId, Volume};

const FILE: TreeId = TreeId(256);
const INO: u64 = 257;
const BS: u64 = 4096;
/// A file extent item's size with its inline checksum, as fs-core's one-block items.
const ITEM: [u8; 37] = [0x5a; 37];

/// This thread's CPU time so far, in nanoseconds.
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    match s.split_whitespace().next().and_then(|v| v.parse().ok()) {
        Some(ns) => ns,
        None => {
            eprintln!("overwrite-commit: no /proc/thread-self/schedstat (Linux only)");
            std::process::exit(2)
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn backref(block: u64) -> DataBackref {
    DataBackref {
        root: FILE,
        objectid: INO,
        offset: block * BS,
    }
}

fn key(block: u64) -> Key {
    Key::new(INO, 108, block * BS)
}

/// One fold of `blocks` (sorted, distinct): reservations first (as writes make them), then
/// the transaction. Returns the CPU nanoseconds of (reserving, folding, committing).
fn fold(
    vol: &Volume,
    io: &mut dyn IoQueue,
    map: &mut [u64],
    blocks: &[u64],
) -> Result<[u64; 3], cow::Error> {
    let t0 = cpu_ns();
    let mut new = Vec::with_capacity(blocks.len());
    for _ in blocks {
        new.push(vol.reserve_data(BS, BS)?.0);
    }
    let t1 = cpu_ns();
    let mut tx = vol.begin()?;
    tx.expect_ref_changes(2 * blocks.len());
    // Adopted in device order, mapped in file order, as fs-core's fold does.
    let mut adopt = new.clone();
    adopt.sort_unstable();
    for &b in &adopt {
        tx.adopt_data_csums_elsewhere(b, BS)?;
    }
    for (&blk, &b) in blocks.iter().zip(&new) {
        let old = std::mem::replace(&mut map[blk as usize], b);
        tx.drop_data_ref(old, BS, backref(blk))?;
        tx.add_data_ref(b, BS, backref(blk))?;
        tx.upsert(io, FILE, key(blk), &ITEM)?;
    }
    let t2 = cpu_ns();
    tx.commit(io)?;
    let t3 = cpu_ns();
    Ok([t1 - t0, t2 - t1, t3 - t2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let nblocks = args.first().copied().unwrap_or(65536);
    let per_round = args.get(1).copied().unwrap_or(40000).min(nblocks);
    let rounds = args.get(2).copied().unwrap_or(24);
    let dev: Arc<dyn BlockDevice> = Arc::new(MemDevice::new("bench", 4096, (1u64 << 30) / 4096)?);
    let mut io = dev.queue(128)?;
    let vol = Volume::format(Arc::clone(&dev), &mut *io, &FormatOptions::default())?;
    // The file, written once in one-block extents.
    let mut map = Vec::with_capacity(nblocks as usize);
    let mut tx = vol.begin()?;
    tx.create_tree(FILE)?;
    tx.commit(&mut *io)?;
    for chunk in (0..nblocks).collect::<Vec<_>>().chunks(8192) {
        let mut tx = vol.begin()?;
        for &blk in chunk {
            let (b, _) = vol.reserve_data(BS, BS)?;
            tx.adopt_data_csums_elsewhere(b, BS)?;
            tx.add_data_ref(b, BS, backref(blk))?;
            tx.upsert(&mut *io, FILE, key(blk), &ITEM)?;
            map.push(b);
        }
        tx.commit(&mut *io)?;
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // The thread's CPU time is updated at scheduler ticks: summed over all the rounds,
    // not taken per round.
    let mut sum = [0u64; 3];
    for _ in 0..rounds {
        let mut blocks: BTreeMap<u64, ()> = BTreeMap::new();
        while (blocks.len() as u64) < per_round {
            blocks.insert(rng.next() % nblocks, ());
        }
        let blocks: Vec<u64> = blocks.into_keys().collect();
        let ns = fold(&vol, &mut *io, &mut map, &blocks)?;
        for (s, n) in sum.iter_mut().zip(ns) {
            *s += n;
        }
    }
    let per = |n: u64| n as f64 / (rounds * per_round) as f64;
    let [r, f, c] = sum.map(per);
    println!(
        "{nblocks} blocks, {rounds} folds of {per_round}: CPU ns per block: reserve {r:.0}, \
         fold {f:.0}, commit {c:.0}, total {:.0}",
        r + f + c
    );
    Ok(())
}
