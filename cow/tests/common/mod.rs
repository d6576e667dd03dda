//! Helpers shared by the cow integration tests: devices, a BTreeMap model (seeds and the
//! generator are `testkit`'s).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::{BlockDevice, IoQueue};
use cow::{Direction, FormatOptions, Key, TreeId, Volume};

pub use testkit::Rng;

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
