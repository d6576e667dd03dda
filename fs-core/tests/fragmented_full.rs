//! A nearly full volume whose free space is left in pieces smaller than a B-tree node stays
//! mountable and writable: small direct and buffered writes, overwrites, fsyncs and deletes
//! fill a 64 MiB RAM device with 16 KiB nodes until writes say ENOSPC, again and again.
//! Then, after a crash and after a clean unmount alike, the volume mounts read-write (the
//! crash replays the fsync log, which commits), fsck is clean, every acknowledged byte
//! reads back, and deleting files frees space that new writes can use.
//!
//! `BFS_SEED` reproduces a run; each test runs a few seeds drawn from it.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bdev::mem::MemDevice;
use common::*;
use fs_core::{Context, Filesystem, FormatOptions, OpenFlags};
use testkit::Rng;

const BS: u64 = 4096;
/// Device size in MiB.
const DEVICE_MIB: u64 = 64;
/// Files the workload writes; each grows to at most `FILE_MAX` bytes.
const FILES: usize = 12;
const FILE_MAX: u64 = 8 << 20;

fn format_16k(dev: &Arc<MemDevice>) {
    let opts = FormatOptions {
        nodesize: 16 << 10,
        block_size: 4096,
    };
    Filesystem::format(dev.clone(), opts).unwrap();
}

fn path(i: usize) -> String {
    format!("/f{i}")
}

fn is_enospc(e: &fs_core::Error) -> bool {
    e.errno() == 28
}

/// What the workload wrote: each file's acknowledged bytes.
#[derive(Default)]
struct Model {
    files: BTreeMap<usize, Vec<u8>>,
}

impl Model {
    fn apply(&mut self, i: usize, pos: u64, data: &[u8]) {
        let f = self.files.entry(i).or_default();
        let end = pos as usize + data.len();
        if f.len() < end {
            f.resize(end, 0);
        }
        f[pos as usize..end].copy_from_slice(data);
    }
}

/// The workload's state: the model and how often writes met ENOSPC.
struct Workload {
    rng: Rng,
    model: Model,
    enospc: u64,
    ops: u64,
}

impl Workload {
    /// One random write of `i`: direct (whole blocks) or buffered (any bytes), overwriting
    /// or extending. A write that fails with ENOSPC may have written part of its range; the
    /// bytes read back there must each be the old or the new ones, and the model takes them.
    fn write(&mut self, fs: &Filesystem, ctx: &Context, i: usize, append_pct: u64) {
        let size = self.model.files.get(&i).map_or(0, |f| f.len() as u64);
        let is_direct = self.rng.chance(30);
        // Mostly overwrites inside the file (each frees what it replaces, in small
        // pieces), some appends (which fill the volume).
        let append = size == 0 || self.rng.chance(append_pct);
        let (pos, len) = if is_direct {
            let blocks = 1 + self.rng.below(2);
            let end = if append { size.div_ceil(BS) } else { size / BS };
            let at = if append {
                end
            } else {
                self.rng.below(end.max(1))
            };
            (at.min(FILE_MAX / BS - blocks) * BS, blocks * BS)
        } else {
            let len = 1 + self.rng.below(BS + BS / 2);
            let at = if append {
                size
            } else {
                self.rng.below(size.max(1))
            };
            (at.min(FILE_MAX - len), len)
        };
        let data = self.rng.bytes(len as usize);
        let flags = if is_direct { direct() } else { rw() };
        // Creating a file (after a delete) adds items: ENOSPC too on a full volume.
        let f = match fs.open(ctx, &path(i), flags, 0o644) {
            Ok(f) => f,
            Err(e) if is_enospc(&e) && size == 0 => {
                self.enospc += 1;
                return;
            }
            Err(e) => panic!("opening {}: {e}", path(i)),
        };
        match f.write_at(ctx, pos, &data) {
            Ok(n) => self.model.apply(i, pos, &data[..n]),
            Err(e) if is_enospc(&e) => {
                self.enospc += 1;
                self.adopt_partial(fs, ctx, i, pos, &data);
            }
            Err(e) => panic!("write of {len} bytes at {pos} to {}: {e}", path(i)),
        }
        if self.rng.chance(30) {
            f.fsync(ctx).expect("fsync on a full volume");
        }
    }

    fn adopt_partial(&mut self, fs: &Filesystem, ctx: &Context, i: usize, pos: u64, new: &[u8]) {
        let old = self.model.files.get(&i).cloned().unwrap_or_default();
        let f = fs.open(ctx, &path(i), OpenFlags::read_only(), 0).unwrap();
        let size = f.size().unwrap() as usize;
        let end = size.min(pos as usize + new.len());
        if end <= pos as usize {
            return;
        }
        let mut got = vec![0u8; end - pos as usize];
        f.read_at(ctx, pos, &mut got).unwrap();
        for (k, &b) in got.iter().enumerate() {
            let at = pos as usize + k;
            let was = old.get(at).copied().unwrap_or(0);
            assert!(
                b == was || b == new[k],
                "{} byte {at} after a failed write: {b:#x}, neither old {was:#x} nor new {:#x}",
                path(i),
                new[k]
            );
        }
        self.model.apply(i, pos, &got);
    }

    /// Deletes file `i` (it may be written again later, from empty).
    fn delete(&mut self, fs: &Filesystem, i: usize) {
        if self.model.files.remove(&i).is_some() {
            fs.unlink(&path(i)).expect("unlink on a full volume");
        }
    }

    /// Fills the files to `fill_bytes` in all, one block per write in random order of the
    /// blocks, so that each block is an extent of its own which an overwrite frees whole.
    fn fill(&mut self, fs: &Filesystem, ctx: &Context, fill_bytes: u64) {
        let blocks = fill_bytes / FILES as u64 / BS;
        for i in 0..FILES {
            let mut order: Vec<u64> = (0..blocks).collect();
            for k in (1..order.len()).rev() {
                order.swap(k, self.rng.below(k as u64 + 1) as usize);
            }
            let buffered = fs.open(ctx, &path(i), rw(), 0o644).unwrap();
            let direct_file = fs.open(ctx, &path(i), direct(), 0o644).unwrap();
            for b in order {
                let data = self.rng.bytes(BS as usize);
                let f = if b % 2 == 0 { &direct_file } else { &buffered };
                let n = f
                    .write_at(ctx, b * BS, &data)
                    .expect("filling a volume with room");
                self.model.apply(i, b * BS, &data[..n]);
            }
            buffered.fsync(ctx).unwrap();
        }
    }

    /// `ops` writes, overwrites and deletes, `append_pct` percent of the writes appends.
    /// The rest overwrite: each frees what it replaces, a block here and there, so the free
    /// space ends up in holes between live blocks (the allocator takes larger ranges first).
    fn churn(&mut self, fs: &Filesystem, ctx: &Context, ops: u64, append_pct: u64, deletes: bool) {
        for _ in 0..ops {
            self.ops += 1;
            let i = self.rng.below(FILES as u64) as usize;
            // A rare delete, which the next write of the file makes a create.
            if deletes && self.rng.below(4000) == 0 {
                self.delete(fs, i);
            } else {
                self.write(fs, ctx, i, append_pct);
            }
        }
    }

    /// Every acknowledged byte reads back; nothing else exists.
    fn verify(&self, fs: &Filesystem, ctx: &Context, when: &str) {
        for i in 0..FILES {
            match self.model.files.get(&i) {
                Some(want) => {
                    let got = read_all(fs, ctx, &path(i));
                    assert_eq!(got.len(), want.len(), "{} size {when}", path(i));
                    if let Some(k) = (0..want.len()).find(|&k| got[k] != want[k]) {
                        panic!("{} differs at byte {k} {when}", path(i));
                    }
                }
                None => assert!(fs.stat(&path(i)).is_err(), "{} exists {when}", path(i)),
            }
        }
    }

    /// Makes every acknowledged write durable (what a crash must then keep).
    fn fsync_all(&self, fs: &Filesystem, ctx: &Context) {
        for &i in self.model.files.keys() {
            let f = fs.open(ctx, &path(i), rw(), 0o644).unwrap();
            f.fsync(ctx).expect("fsync on a full volume");
        }
    }
}

/// After the crash or clean unmount that left `dev`: mounts read-write, checks every byte,
/// deletes half of the files, checks that the space came back and that new writes fit, and
/// that the result unmounts clean and reads back after another mount.
fn recovers(dev: Arc<MemDevice>, w: &mut Workload, when: &str) {
    let (fs, ctx) = match Filesystem::mount(dev.clone(), mount_opts()) {
        Ok(fs) => {
            let ctx = fs.context().unwrap();
            (fs, ctx)
        }
        Err(e) => panic!("mounting read-write {when}: {e}"),
    };
    w.verify(&fs, &ctx, when);
    let avail = fs.statfs().unwrap().blocks_avail;
    let victims: Vec<usize> = w.model.files.keys().copied().step_by(2).collect();
    for i in victims {
        w.delete(&fs, i);
    }
    fs.sync(&ctx).expect("sync after deletes");
    let freed = fs.statfs().unwrap().blocks_avail;
    assert!(
        freed > avail + 256,
        "{when}: deleting half the files freed {} blocks",
        freed.saturating_sub(avail)
    );
    // Writing works again: a megabyte of small writes, none failing.
    let i = (0..FILES).find(|i| !w.model.files.contains_key(i)).unwrap();
    for k in 0..64u64 {
        let data = w.rng.bytes(16 << 10);
        let flags = if k % 2 == 0 { direct() } else { rw() };
        let f = fs.open(&ctx, &path(i), flags, 0o644).unwrap();
        let n = f
            .write_at(&ctx, k * (16 << 10), &data)
            .unwrap_or_else(|e| panic!("{when}: write {k} after deleting: {e}"));
        assert_eq!(n, data.len());
        w.model.apply(i, k * (16 << 10), &data);
    }
    w.fsync_all(&fs, &ctx);
    fs.unmount(&ctx).unwrap();
    let rep = assert_clean(dev.clone());
    assert!(
        rep.node_free_bytes >= rep.metadata_reserve,
        "{when}: {} bytes free in whole nodes after deleting, the reserve is {}",
        rep.node_free_bytes,
        rep.metadata_reserve
    );
    let (fs, ctx) = mount(dev.clone());
    w.verify(&fs, &ctx, &format!("{when}, remounted after deleting"));
    fs.unmount(&ctx).unwrap();
}

/// One seed: fill, then recover from a crash image and from a clean unmount.
fn fill_fragment_and_recover(seed: u64) {
    eprintln!("fragmented_full: seed {seed}");
    let dev = mem(DEVICE_MIB);
    format_16k(&dev);
    let (fs, ctx) = mount(dev.clone());
    let mut w = Workload {
        rng: Rng::new(seed),
        model: Model::default(),
        enospc: 0,
        ops: 0,
    };
    // Over half full, fragmented by overwrites (a quarter or more free: the allocator
    // spreads small data over the largest ranges), then filled to ENOSPC and churned there.
    w.fill(&fs, &ctx, DEVICE_MIB * (1 << 20) * 11 / 20);
    w.churn(&fs, &ctx, 15_000, 0, false);
    fs.sync(&ctx).unwrap();
    let mut rounds = 0;
    while w.enospc == 0 && rounds < 40 {
        w.churn(&fs, &ctx, 1_000, 20, false);
        rounds += 1;
    }
    w.churn(&fs, &ctx, 5_000, 5, true);
    let st = fs.statfs().unwrap();
    eprintln!(
        "seed {seed}: {} operations, {} met ENOSPC; {} blocks free, {} bytes in whole nodes",
        w.ops,
        w.enospc,
        st.blocks_free,
        fs.node_free_bytes()
    );
    assert!(w.enospc > 0, "seed {seed}: never full in {} ops", w.ops);
    w.verify(&fs, &ctx, "before the crash");
    w.fsync_all(&fs, &ctx);
    // The crash: the device as it is now, the filesystem never unmounted.
    let image = dev.snapshot();
    fs.unmount(&ctx).expect("clean unmount of a full volume");
    assert_clean(dev.clone());
    let crashed = Arc::new(MemDevice::from_image("crashed", 4096, &image).unwrap());
    let mut after_crash = Workload {
        rng: Rng::new(seed ^ 1),
        model: Model {
            files: w.model.files.clone(),
        },
        enospc: 0,
        ops: 0,
    };
    recovers(
        crashed,
        &mut after_crash,
        &format!("after a crash (seed {seed})"),
    );
    recovers(dev, &mut w, &format!("after unmount (seed {seed})"));
}

#[test]
fn a_fragmented_full_volume_mounts_read_write_and_frees_space() {
    let seed = testkit::seed!();
    let mut rng = Rng::new(seed);
    for _ in 0..2 {
        fill_fragment_and_recover(rng.next_u64());
    }
}
