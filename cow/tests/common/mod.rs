//! Helpers shared by the cow integration tests: a seeded PRNG, devices, a BTreeMap model.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::{BlockDevice, IoQueue};
use cow::{Direction, FormatOptions, Key, TreeId, Volume};

/// xorshift64*: small, fast, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The seed from `var` if set, else from the clock; printed either way.
pub fn seed(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("seed = {seed} (override with {var}={seed})");
    seed
}

pub const USER: TreeId = TreeId(256);

/// Options for small volumes with deep trees: 1 KiB nodes, 512-byte sectors.
pub fn small_opts() -> FormatOptions {
    FormatOptions {
        nodesize: 1024,
        sectorsize: 512,
        fsid: Some([0x42; 16]),
        ..FormatOptions::default()
    }
}

pub fn mem(bytes: u64) -> Arc<MemDevice> {
    Arc::new(MemDevice::new("mem", 512, bytes / 512).unwrap())
}

pub fn queue(dev: &dyn BlockDevice) -> Box<dyn IoQueue> {
    dev.queue(64).unwrap()
}

/// A random key from a small space (so inserts, updates and deletes collide).
pub fn key(rng: &mut Rng, space: u64) -> Key {
    Key::new(rng.below(space), rng.below(3) as u8, rng.below(4))
}

pub type Model = BTreeMap<Key, Vec<u8>>;

/// Everything in `tree`, read through a fresh reader.
pub fn read_all(vol: &Volume, io: &mut dyn IoQueue, tree: TreeId) -> Model {
    let r = vol.reader();
    r.iter(io, tree, Key::MIN, Key::MAX, Direction::Forward)
        .map(|x| x.map(|(k, d)| (k, d.to_vec())).unwrap())
        .collect()
}
