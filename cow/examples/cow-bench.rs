//! Microbenchmark of the cow layer on a RAM device: random inserts with periodic commits,
//! point lookups and range scans. Reports numbers only (no targets yet).
//!
//! `cargo run --release -p cow --example cow-bench -- [items] [nodesize] [items-per-commit]`

use std::sync::Arc;
use std::time::Instant;

use bdev::mem::MemDevice;
use bdev::BlockDevice;
use cow::{Direction, FormatOptions, Key, TreeId, Volume};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn rate(n: u64, t: Instant) -> String {
    let s = t.elapsed().as_secs_f64();
    format!("{:>10.0} ops/s ({n} in {s:.2} s)", n as f64 / s)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let items = args.first().copied().unwrap_or(500_000);
    let nodesize = args.get(1).copied().unwrap_or(16384) as u32;
    let per_commit = args.get(2).copied().unwrap_or(10_000);
    let dev: Arc<dyn BlockDevice> = Arc::new(MemDevice::new("bench", 4096, (1u64 << 30) / 4096)?);
    let mut io = dev.queue(128)?;
    let opts = FormatOptions {
        nodesize,
        ..FormatOptions::default()
    };
    let vol = Volume::format(dev.clone(), &mut *io, &opts)?;
    let tree = TreeId(256);
    let value = [0xabu8; 64];
    println!("cow-bench: {items} items, {nodesize}-byte nodes, 64-byte values, commit every {per_commit}, 1 GiB mem device");

    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut keys = Vec::with_capacity(items as usize);
    let t = Instant::now();
    let mut tx = vol.begin()?;
    tx.create_tree(tree)?;
    for i in 0..items {
        let k = Key::new(rng.next(), 1, 0);
        tx.upsert(&mut *io, tree, k, &value)?;
        keys.push(k);
        if (i + 1) % per_commit == 0 {
            tx.commit(&mut *io)?;
            tx = vol.begin()?;
        }
    }
    tx.commit(&mut *io)?;
    println!("random insert + commit  {}", rate(items, t));

    let r = vol.reader();
    let t = Instant::now();
    let n = items.min(1_000_000);
    for _ in 0..n {
        let k = keys[(rng.next() % items) as usize];
        assert!(r.get(&mut *io, tree, k)?.is_some());
    }
    println!("point lookup (cached)   {}", rate(n, t));

    let t = Instant::now();
    let mut seen = 0u64;
    for it in r.iter(&mut *io, tree, Key::MIN, Key::MAX, Direction::Forward) {
        it?;
        seen += 1;
    }
    println!("full forward scan       {} (items/s)", rate(seen, t));

    let t = Instant::now();
    let scans = 10_000u64;
    let mut total = 0;
    for _ in 0..scans {
        let lo = Key::new(rng.next(), 0, 0);
        total += r
            .iter(&mut *io, tree, lo, Key::MAX, Direction::Forward)
            .take(100)
            .count() as u64;
    }
    println!("100-item range scans    {} ({total} items)", rate(scans, t));

    let t = Instant::now();
    let back = r
        .iter(&mut *io, tree, Key::MIN, Key::MAX, Direction::Backward)
        .count() as u64;
    println!("full backward scan      {} (items/s)", rate(back, t));
    drop(r);

    // Cold lookups: a fresh volume on the same device, small cache.
    drop(vol);
    let vol = Volume::open(dev.clone(), &mut *io, &cow::OpenOptions { cache_nodes: 64 })?;
    let r = vol.reader();
    let t = Instant::now();
    let n = items.min(100_000);
    for _ in 0..n {
        let k = keys[(rng.next() % items) as usize];
        assert!(r.get(&mut *io, tree, k)?.is_some());
    }
    println!("point lookup (64-node cache, mostly misses) {}", rate(n, t));
    let report = r.check(&mut *io)?;
    println!(
        "check: {} nodes in {} trees, {} items; generation {}",
        report.nodes,
        report.trees,
        report.items,
        r.generation()
    );
    Ok(())
}
